// Live: the calls being recorded now, refreshed every 2 seconds without reloading the page; a call whose recorder
// stopped sending heartbeats is flagged at once. Each refresh is a read the API records.
import { apiJson } from "../api.js";
import { badge, duration, el, emptyRow, heading, moreButton, person, showError, table, when } from "../ui.js";

const REFRESH_MS = 2000;

export function render(view) {
  const list = table("live", "Calls being recorded now", ["Policy user", "Participants", "Started", "Recorder", "Last heartbeat", "Safely stored", "Modalities", "State"]);
  const checked = el("p", { id: "live-status", class: "muted", role: "status", "aria-live": "polite" });
  const alerts = el("p", { id: "live-alerts", class: "warning", role: "alert", hidden: true });
  const more = moreButton("live-more", () => refresh(true));
  view.append(heading("Live", el("span", { class: "muted" }, "calls being recorded now")), alerts, checked, list, more);
  let continuation = null;
  let pages = 1;

  async function refresh(next = false) {
    if (next) pages += 1;
    try {
      const body = list.querySelector("tbody");
      const rows = [];
      let token = null;
      let checkedAt = null;
      for (let page = 0; page < pages; page += 1) {
        const params = new URLSearchParams({ limit: "25" });
        if (token) params.set("continuation", token);
        const answer = await apiJson(`/live?${params}`);
        rows.push(...answer.items);
        token = answer.continuation;
        checkedAt = answer.checkedAt;
        if (!token) break;
      }
      continuation = token;
      body.replaceChildren();
      for (const call of rows) body.append(row(call));
      if (!rows.length) emptyRow(body, 8, "No call is being recorded right now.");
      more.hidden = !continuation;
      const silent = rows.filter((call) => call.state === "silent");
      alerts.hidden = !silent.length;
      alerts.textContent = silent.length
        ? `${silent.length} recorder${silent.length === 1 ? " is" : "s are"} silent: no heartbeat for more than two intervals.`
        : "";
      checked.textContent = `${rows.length} call${rows.length === 1 ? "" : "s"} · checked ${when(checkedAt)}`;
      showError("");
    } catch (error) {
      showError(error);
    }
  }

  refresh();
  const timer = window.setInterval(() => refresh(), REFRESH_MS);
  return () => window.clearInterval(timer);
}

function row(call) {
  const others = call.participants.filter((p) => !p.isRecorder && p.id !== call.observedUser.id).map(person);
  const state = call.state === "silent" ? badge("silent", `silent ${Math.round(call.silentForSeconds)} s`) : badge(call.state === "spilling" ? "pending" : "recorded", call.state);
  return el(
    "tr",
    { class: `live-call ${call.state}`, "data-recording": call.recordingId },
    el("td", {}, person(call.observedUser)),
    el("td", {}, others.join(", ") || "—"),
    el("td", {}, when(call.startedAt)),
    el("td", { class: "muted" }, call.recorderInstance),
    el("td", {}, when(call.lastHeartbeat)),
    // Audio staged on the blob so far (what a crash now would keep), and blocks waiting on the recorder's disk.
    el("td", { class: "staged" }, duration(call.secondsStaged), call.blocksSpilled ? el("span", { class: "muted" }, ` · ${call.blocksSpilled} block${call.blocksSpilled === 1 ? "" : "s"} waiting on disk`) : null),
    el("td", {}, call.modalities.join(", ")),
    el("td", {}, state),
  );
}
