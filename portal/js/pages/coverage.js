// Coverage: the last policy coverage audit — who must be recorded, who is not and why, with each user's effective
// policy and whether it is strict — and, for officers and auditors, every policy user with whether their calls
// were recorded over a window (the audit's policy users beside reconciliation's verdicts).
import { apiJson } from "../api.js";
import { badge, el, emptyRow, heading, moreButton, Pages, showError, status, table, when } from "../ui.js";

const STATES = [["recorded", "recorded"], ["not_recorded", "not recorded"], ["no_calls", "no calls"], ["pending", "pending"], ["excluded", "excluded"]];
const STATE_BADGE = { recorded: "recorded", not_recorded: "missing", pending: "pending" };
const label = (state) => (STATES.find(([value]) => value === state) || [state, state])[1];

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

// Every policy user and their state over a window, filterable, a page at a time ("More").
function peopleSection(ctx) {
  const today = new Date();
  const form = el(
    "form",
    { id: "people-form", class: "filters", "aria-label": "Filter policy users" },
    el("label", {}, "From", el("input", { name: "from", type: "date", value: isoDay(new Date(today.getTime() - 6 * 86400000)) })),
    el("label", {}, "Through", el("input", { name: "to", type: "date", value: isoDay(today) })),
    el("label", {}, "State", el("select", { name: "state" }, el("option", { value: "" }, "any"), STATES.map(([value, text]) => el("option", { value }, text)))),
    el("label", {}, "Must record", el("select", { name: "mustRecord" }, el("option", { value: "" }, "any"), el("option", { value: "true" }, "yes"), el("option", { value: "false" }, "no (recorded by policy only)"))),
    el("label", {}, "User", el("input", { name: "user", type: "search", placeholder: "UPN or object id" })),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Show")),
  );
  const counts = el("p", { id: "people-counts", class: "muted", role: "status" });
  const list = table("people", "Policy users and whether their calls were recorded", ["User", "Must record", "Effective policy", "State", "Calls recorded", "Gaps", "Last recording", "Why"]);
  const more = moreButton("people-more", () => load(true));
  const section = el("section", { "aria-labelledby": "people-title" }, el("h2", { id: "people-title" }, "Who must be recorded, and were they"), form, counts, list, more);
  let continuation = null;
  let query = "";

  function gapsCell(u) {
    if (!u.gaps.length) return "—";
    return el("div", {},
      el("span", {}, u.gapCalls ? `${u.gapCalls} (${Math.round(u.missingSeconds)} s)` : "none unexplained"),
      el("ul", { class: "plain" }, u.gaps.map((g) => el("li", { class: "muted" },
        `${when(g.callStart)} · ${g.verdict} · ${g.reason.replace(/_/g, " ")}${g.explained ? " (explained)" : ""} · `,
        g.recordingIds.length ? el("a", { href: `#/recording/${encodeURIComponent(g.recordingIds[0])}` }, "recording") : el("span", {}, g.callId)))));
  }

  function row(u) {
    const last = u.lastRecording;
    return el("tr", { "data-user": u.userId },
      el("td", {}, u.userPrincipalName || u.userId),
      el("td", {}, u.mustRecord ? `yes${u.groups.length ? ` (${u.groups.join(", ")})` : ""}` : "no"),
      el("td", {}, `${u.policyName || "none"}${u.policySource && u.policySource !== "none" ? ` (${u.policySource})` : ""}${u.strict ? ", strict" : ""}`),
      el("td", {}, badge(STATE_BADGE[u.state] || "", label(u.state))),
      el("td", {}, `${u.recordedCalls} of ${u.calls}${u.pendingCalls ? `, ${u.pendingCalls} pending` : ""}`),
      el("td", {}, gapsCell(u)),
      el("td", {}, last ? el("a", { href: `#/recording/${encodeURIComponent(last.recordingId)}` }, when(last.startedAt)) : "—"),
      el("td", {}, u.why));
  }

  async function load(again) {
    showError("");
    const params = new URLSearchParams(again ? query : { limit: "50" });
    if (!again) {
      for (const [name, value] of new FormData(form).entries()) {
        if (!value) continue;
        if (name === "from") params.set(name, `${value}T00:00:00Z`);
        else if (name === "to") params.set(name, new Date(Date.parse(`${value}T00:00:00Z`) + 86400000).toISOString());
        else params.set(name, value);
      }
      query = params.toString();
    } else if (continuation) params.set("continuation", continuation);
    try {
      const page = await apiJson(`/policy/coverage/users?${params}`);
      const body = list.querySelector("tbody");
      if (!again) body.replaceChildren();
      for (const u of page.items) body.append(row(u));
      if (!page.listed) counts.textContent = "The last audit counted the policy users without listing them: the next audit lists them.";
      else counts.textContent = `Over ${when(page.windowFrom)} – ${when(page.windowTo)}: ${STATES.map(([value, text]) => `${page.counts[value] || 0} ${text}`).join(", ")}.`;
      if (!body.children.length) emptyRow(body, 8, "No policy user matches.");
      continuation = page.continuation;
      more.hidden = !continuation;
    } catch (error) {
      if (error.status === 404) counts.textContent = "No coverage audit has run yet.";
      showError(error);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(false);
  });
  return { section, load: ctx.has(ctx.OFFICER, ctx.AUDITOR) ? () => load(false) : null };
}

export async function render(view, _arg, ctx) {
  const summary = el("dl", { id: "coverage-summary", class: "meta" });
  const findings = table("coverage-findings", "Users who must be recorded and are not", ["User", "Severity", "Effective policy", "Strict", "Source", "Groups", "Why"]);
  const pages = new Pages(25);
  const pager = el("div");
  const rerun = el("button", { id: "rerun-audit", type: "button", class: "secondary" }, "Re-run the audit now");
  const rerunStatus = status("rerun-status");
  const people = peopleSection(ctx);
  view.append(heading("Coverage", ctx.has(ctx.ADMIN) ? rerun : null), rerunStatus, el("section", { class: "card", "aria-label": "Last audit" }, summary));
  // Officers and auditors see each person's calls; an admin sees the policy findings only (no recording metadata).
  if (people.load) view.append(people.section);
  view.append(el("h2", {}, "Policy findings"), findings, pager);

  function draw() {
    const body = findings.querySelector("tbody");
    body.replaceChildren();
    for (const f of pages.current) {
      const effective = f.effective || {};
      body.append(el("tr", {},
        el("td", {}, f.userPrincipalName || f.userId),
        el("td", {}, badge(f.severity === "alert" ? "missing" : "pending", f.severity)),
        el("td", {}, effective.policyName || "none"),
        el("td", {}, effective.strict ? "yes" : "no"),
        el("td", {}, effective.source || "—"),
        el("td", {}, (f.groups || []).join(", ")),
        el("td", {}, f.message)));
    }
    if (!pages.items.length) emptyRow(body, 7, "Everyone who must be recorded is recorded.");
    pager.replaceChildren(pages.controls(draw, "Finding pages"));
  }

  function show(report) {
    summary.replaceChildren(
      el("dt", {}, "Last audit"), el("dd", { id: "coverage-audited" }, when(report.auditedAt)),
      el("dt", {}, "Must be recorded"), el("dd", {}, String(report.mustRecordUsers)),
      el("dt", {}, "Recorded"), el("dd", {}, String(report.recordedUsers)),
      el("dt", {}, "Must-record groups"), el("dd", {}, report.mustRecordGroups.join(", ") || "none"),
      el("dt", {}, "Source"), el("dd", {}, report.source),
      el("dt", {}, "Problems"), el("dd", {}, report.problems.length ? report.problems.join("; ") : "none"),
    );
    pages.set(report.findings);
    draw();
  }

  // Recorder.Admin: run the audit now (the API allows one run at a time, at least five minutes apart).
  rerun.addEventListener("click", async () => {
    showError("");
    rerun.disabled = true;
    rerunStatus.textContent = "Auditing…";
    try {
      show(await apiJson("/policy/coverage/audit", { method: "POST" }));
      rerunStatus.textContent = "Audited just now.";
      if (people.load) people.load();
    } catch (error) {
      rerunStatus.textContent = "";
      showError(error);
    } finally {
      rerun.disabled = false;
    }
  });

  try {
    show(await apiJson("/policy/coverage"));
  } catch (error) {
    if (error.status === 404) summary.replaceChildren(el("dt", {}, "Last audit"), el("dd", { id: "coverage-audited" }, "none yet"));
    showError(error);
    return;
  }
  if (people.load) await people.load();
}
