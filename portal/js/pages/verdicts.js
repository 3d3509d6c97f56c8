// Completeness: verdicts per call and policy user, including calls nobody recorded.
import { apiJson } from "../api.js";
import { badge, el, emptyRow, heading, moreButton, showError, table, when } from "../ui.js";

export function render(view) {
  const form = el(
    "form",
    { id: "verdict-form", class: "filters", "aria-label": "Filter verdicts" },
    el("label", {}, "From", el("input", { name: "from", type: "date" })),
    el("label", {}, "To", el("input", { name: "to", type: "date" })),
    el("label", {}, "Verdict", el("select", { name: "verdict" }, el("option", { value: "" }, "any"), ["recorded", "partial", "missing", "pending"].map((v) => el("option", {}, v)))),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Show")),
  );
  const list = table("verdicts", "Verdicts", ["Call start", "User", "Verdict", "Coverage", "Reason", "Call id"]);
  const more = moreButton("verdicts-more", () => load(true));
  view.append(heading("Completeness"), form, list, more);
  let continuation = null;
  let query = "";

  async function load(again) {
    showError("");
    const params = new URLSearchParams(again ? query : { limit: "50" });
    if (!again) {
      for (const [name, value] of new FormData(form).entries()) {
        if (value) params.set(name, name === "verdict" ? value : `${value}T00:00:00Z`);
      }
      query = params.toString();
    } else if (continuation) params.set("continuation", continuation);
    try {
      const page = await apiJson(`/verdicts?${params}`);
      const body = list.querySelector("tbody");
      if (!again) body.replaceChildren();
      for (const v of page.items) {
        body.append(
          el(
            "tr",
            {},
            el("td", {}, when(v.callStart)),
            el("td", {}, v.userPrincipalName || v.userId),
            el("td", {}, badge(v.verdict)),
            el("td", {}, `${Math.round(v.coverage * 100)} %`),
            el("td", {}, v.reason.replace(/_/g, " "), v.explained ? el("span", { class: "muted" }, " (explained)") : null),
            el("td", { class: "muted" }, v.callId),
          ),
        );
      }
      if (!body.children.length) emptyRow(body, 6, "No verdicts.");
      continuation = page.continuation;
      more.hidden = !continuation;
    } catch (error) {
      showError(error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(false);
  });
  load(false);
}
