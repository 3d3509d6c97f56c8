// Coverage: the last policy coverage audit — who must be recorded, who is not and why, with each user's effective
// policy and whether it is strict.
import { apiJson } from "../api.js";
import { badge, el, emptyRow, heading, Pages, showError, status, table, when } from "../ui.js";

export async function render(view, _arg, ctx) {
  const summary = el("dl", { id: "coverage-summary", class: "meta" });
  const findings = table("coverage-findings", "Users who must be recorded and are not", ["User", "Severity", "Effective policy", "Strict", "Source", "Groups", "Why"]);
  const pages = new Pages(25);
  const pager = el("div");
  const rerun = el("button", { id: "rerun-audit", type: "button", class: "secondary" }, "Re-run the audit now");
  const rerunStatus = status("rerun-status");
  view.append(heading("Coverage", ctx.has(ctx.ADMIN) ? rerun : null), rerunStatus, el("section", { class: "card", "aria-label": "Last audit" }, summary), el("h2", {}, "Findings"), findings, pager);

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
  }
}
