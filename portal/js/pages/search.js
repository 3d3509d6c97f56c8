// Recordings: search by participant, observed user, time, direction, call type, modality and verdict.
import { apiJson } from "../api.js";
import { holdOnRecordingsForm } from "../holdform.js";
import { badge, duration, el, emptyRow, heading, localToIso, moreButton, person, showError, status, table, when } from "../ui.js";

function select(name, label, options) {
  return el("label", {}, label, el("select", { name }, el("option", { value: "" }, "any"), options.map((o) => el("option", {}, o))));
}

// The last search's query string (the Exports page exports "the recordings of the last search").
let lastSearch = "";
export function lastSearchQuery() {
  return lastSearch;
}

export function render(view, _arg, ctx) {
  const officer = Boolean(ctx && ctx.has(ctx.OFFICER));
  const form = el(
    "form",
    { id: "search-form", class: "filters", role: "search", "aria-label": "Search recordings" },
    el("label", {}, "Participant", el("input", { name: "participant", placeholder: "object id, UPN or +phone" })),
    el("label", {}, "Observed user", el("input", { name: "observedUser", placeholder: "object id or UPN" })),
    el("label", {}, "From", el("input", { name: "from", type: "datetime-local" })),
    el("label", {}, "To", el("input", { name: "to", type: "datetime-local" })),
    select("direction", "Direction", ["inbound", "outbound"]),
    select("callType", "Call type", ["peerToPeer", "groupCall"]),
    select("modality", "Modality", ["audio", "video", "screenSharing"]),
    select("verdict", "Verdict", ["recorded", "partial", "missing", "pending"]),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "search-button" }, "Search")),
  );
  const columns = ["Started", "Observed user", "Participants", "Type", "Duration", "Verdict", "Status"];
  const results = table("results", "Recordings found", officer ? ["Select", ...columns] : columns);
  const more = moreButton("more", () => search(true));
  view.append(heading("Recordings"), form, status("search-status"), results, more);
  // Officers hold the results they tick (by recording id), without leaving the search.
  if (officer) {
    view.append(el("section", { class: "card", id: "hold-selected" }, holdOnRecordingsForm("selection-hold", () => [...results.querySelectorAll("input.pick:checked")].map((box) => box.value), "Place a legal hold on the selected recordings")));
  }
  let continuation = null;
  let lastQuery = "";

  async function search(again) {
    showError("");
    const params = again ? new URLSearchParams(lastQuery) : new URLSearchParams();
    if (!again) {
      for (const [name, value] of new FormData(form).entries()) {
        if (value) params.set(name, name === "from" || name === "to" ? localToIso(value) : value);
      }
      params.set("limit", "25");
    }
    lastQuery = params.toString();
    lastSearch = lastQuery;
    if (again && continuation) params.set("continuation", continuation);
    form.querySelector("#search-button").disabled = true;
    view.querySelector("#search-status").textContent = "Searching…";
    try {
      const page = await apiJson(`/recordings?${params}`);
      const body = results.querySelector("tbody");
      if (!again) body.replaceChildren();
      for (const item of page.items) body.append(row(item, officer));
      continuation = page.continuation;
      more.hidden = !continuation;
      const count = body.querySelectorAll("tr.result").length;
      if (!count) emptyRow(body, officer ? 8 : 7, "No recordings match.");
      view.querySelector("#search-status").textContent = count ? `${count} recording${count === 1 ? "" : "s"}` : "No recordings match.";
    } catch (error) {
      showError(error);
      view.querySelector("#search-status").textContent = "";
    } finally {
      form.querySelector("#search-button").disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search(false);
  });
}

function row(item, selectable) {
  const others = item.participants.filter((p) => !p.isRecorder && p.id !== item.observedUser.id).map(person);
  const pick = selectable
    ? el("td", {}, el("input", { type: "checkbox", class: "pick", value: item.id, "aria-label": `Select the recording of ${when(item.startedAt)} (${person(item.observedUser)})` }))
    : null;
  return el(
    "tr",
    { class: "result", "data-recording": item.id },
    pick,
    el("td", {}, el("a", { href: `#/recording/${encodeURIComponent(item.id)}` }, when(item.startedAt))),
    el("td", {}, person(item.observedUser)),
    el("td", {}, others.join(", ") || "—"),
    el("td", {}, `${item.callType} · ${item.direction}`),
    el("td", {}, duration(item.durationSeconds)),
    el("td", {}, badge(item.verdict)),
    el("td", {}, item.interrupted ? `${item.status} (interrupted)` : item.status),
  );
}
