// Audit trail (Auditor): who accessed what, when and why — the audit records of a day, filtered — and the ledger
// entries of one subject, with links to the recordings they name.
import { apiJson, enc } from "../api.js";
import { el, emptyRow, heading, moreButton, showError, table, when } from "../ui.js";

function subjectLink(subject) {
  if (subject && subject.startsWith("recording:")) {
    const id = subject.slice("recording:".length);
    return el("a", { href: `#/recording/${enc(id)}` }, subject);
  }
  if (subject && subject.startsWith("hold:")) return el("a", { href: `#/holds/${enc(subject.slice(5))}` }, subject);
  return subject || "—";
}

export function render(view) {
  const today = new Date().toISOString().slice(0, 10);
  const form = el("form", { id: "audit-form", class: "filters", "aria-label": "Filter the audit trail" },
    el("label", {}, "Day", el("input", { name: "day", type: "date", value: today, required: true })),
    el("label", {}, "Category", el("select", { name: "category" }, el("option", { value: "" }, "any"), ["access", "security", "alert"].map((c) => el("option", {}, c)))),
    el("label", {}, "Action", el("input", { name: "action", placeholder: "e.g. media.access" })),
    el("label", {}, "Target", el("input", { name: "target", placeholder: "e.g. recording:<id>" })),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Show")));
  const records = table("audit", "Audit records", ["At", "Who", "Action", "Target", "Why", "Category"]);
  const more = moreButton("audit-more", () => load(true));
  const ledgerForm = el("form", { id: "ledger-form", class: "filters inline", "aria-label": "Ledger entries of a subject" },
    el("label", {}, "Subject", el("input", { name: "subject", required: true, placeholder: "recording:<id> or hold:<id>" })),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "secondary" }, "Show entries")));
  const entries = table("ledger", "Ledger entries", ["#", "At", "Kind", "Actor", "Details"]);
  const ledgerMore = moreButton("ledger-more", () => ledger(true));
  view.append(heading("Audit trail"), form, records, more, el("h2", {}, "Ledger"), ledgerForm, entries, ledgerMore);
  let continuation = null;
  let query = "";

  async function load(again) {
    showError("");
    const params = new URLSearchParams(again ? query : undefined);
    if (!again) {
      for (const [name, value] of new FormData(form).entries()) if (value) params.set(name, value);
      params.set("limit", "50");
      query = params.toString();
    } else if (continuation) params.set("continuation", continuation);
    try {
      const page = await apiJson(`/audit?${params}`);
      const body = records.querySelector("tbody");
      if (!again) body.replaceChildren();
      for (const r of page.items) {
        body.append(el("tr", {}, el("td", {}, when(r.at)), el("td", {}, r.actorName || r.actor), el("td", {}, r.action),
          el("td", {}, subjectLink(r.target)), el("td", {}, (r.detail && r.detail.reason) || "—"), el("td", {}, r.category)));
      }
      if (!body.children.length) emptyRow(body, 6, "No audit records for these filters.");
      continuation = page.continuation;
      more.hidden = !continuation;
    } catch (error) {
      showError(error);
    }
  }

  // A subject's entries, 50 at a time (the API pages them by index: `after` the last one shown).
  let ledgerSubject = "";
  let nextAfter = null;
  async function ledger(again) {
    showError("");
    const params = new URLSearchParams({ subject: ledgerSubject, limit: "50" });
    if (again && nextAfter !== null) params.set("after", String(nextAfter));
    try {
      const page = await apiJson(`/ledger?${params}`);
      const body = entries.querySelector("tbody");
      if (!again) body.replaceChildren();
      for (const e of page.entries) {
        body.append(el("tr", { class: `entry ${e.kind}` }, el("td", {}, String(e.index)), el("td", {}, when(e.at)), el("td", {}, e.kind),
          el("td", {}, e.actor || "system"), el("td", {}, el("code", {}, JSON.stringify(e.details)))));
      }
      if (!body.children.length) emptyRow(body, 5, "No ledger entries for this subject.");
      nextAfter = page.nextAfter ?? null;
      ledgerMore.hidden = nextAfter === null;
    } catch (error) {
      showError(error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(false);
  });
  ledgerForm.addEventListener("submit", (event) => {
    event.preventDefault();
    ledgerSubject = new FormData(ledgerForm).get("subject").trim();
    ledger(false);
  });
  load(false);
}
