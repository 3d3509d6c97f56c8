// Policy (Recorder.Admin): the published desired state, its plan against the tenant (findings and changes), and
// the generated PowerShell that makes the changes, to download, review and run. Locally the plan compares with the
// Teams/Graph simulator; against Microsoft 365 it compares with the file the export script wrote (docs/policies.md).
// A change is reviewed here before it is published: edit the draft, validate it, plan it, read the plan, publish.
import { api, apiJson } from "../api.js";
import { el, emptyRow, heading, meta, Pages, showError, status, table, when } from "../ui.js";

function values(object) {
  if (!object) return "—";
  return Object.entries(object).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(", ");
}

export async function render(view) {
  const facts = el("dl", { id: "policy-meta", class: "meta" });
  const text = el("pre", { id: "policy-text", tabIndex: 0, role: "region", "aria-label": "Published desired state" });
  const draft = el("textarea", { id: "draft", name: "draft", rows: 14, spellcheck: false });
  const reviewed = el("input", { id: "reviewed", type: "checkbox", disabled: true });
  const publishButton = el("button", { id: "publish-button", type: "button", disabled: true }, "Publish this desired state");
  const form = el("form", { id: "plan-form", class: "card stack", "aria-labelledby": "plan-h" },
    el("h2", { id: "plan-h" }, "Plan against the tenant"),
    el("p", { class: "muted" }, "Compares the desired state below — the published one, or your draft of a change — with the tenant's current policies. Against Microsoft 365, choose the file the export script wrote; on the local stack the simulator's tenant is read."),
    el("label", { for: "draft" }, "Desired state (YAML; edit it to review a change)"), draft,
    el("label", {}, "Current state (export file, optional on the local stack)", el("input", { name: "currentState", type: "file", accept: "application/json,.json" })),
    el("div", { class: "actions" },
      el("button", { id: "validate-button", type: "button", class: "secondary" }, "Validate"),
      el("button", { id: "plan-button", type: "submit" }, "Plan"),
      el("button", { id: "script-button", type: "button", class: "secondary", disabled: true }, "Download PowerShell")),
    status("plan-status"),
    el("div", { class: "actions" }, el("label", { class: "check" }, reviewed, " I have reviewed this plan's findings and changes"), publishButton),
    status("publish-status"));
  const issues = table("draft-issues", "Validation findings of the desired state", ["Severity", "Where", "Message"]);
  const issuePages = new Pages(25);
  const issuePager = el("div");
  const findings = table("plan-findings", "Findings of the plan", ["Severity", "Kind", "Subject", "Message"]);
  const changes = table("plan-changes", "Changes of the plan", ["Action", "Kind", "Subject", "Changed", "Before", "After"]);
  const changePages = new Pages(25);
  const pager = el("div");
  const findingPages = new Pages(25);
  const findingPager = el("div");
  view.append(heading("Policy"), el("section", { class: "card", "aria-labelledby": "published-h" }, el("h2", { id: "published-h" }, "Published desired state"), facts, text),
    form, el("h2", {}, "Validation"), issues, issuePager, el("h2", {}, "Findings"), findings, findingPager, el("h2", {}, "Changes"), changes, pager);
  let published = null;
  let lastBody = null;
  let plannedText = null; // the draft the shown plan is of: publishing needs a plan of exactly this text
  emptyRow(issues.querySelector("tbody"), 3, "Not validated yet: press Validate.");

  function drawIssues() {
    const body = issues.querySelector("tbody");
    body.replaceChildren();
    for (const i of issuePages.current) {
      body.append(el("tr", {}, el("td", {}, i.severity), el("td", {}, `${i.path || "—"}${i.line ? ` (line ${i.line})` : ""}`), el("td", {}, i.message)));
    }
    if (!issuePages.items.length) emptyRow(body, 3, "No findings: the desired state is valid.");
    issuePager.replaceChildren(issuePages.controls(drawIssues, "Validation finding pages"));
  }

  // Publishing is open only for a draft that differs from what is published and whose plan is the one shown.
  function refreshPublish() {
    const ready = plannedText !== null && plannedText === draft.value && (published === null || draft.value !== published.text);
    reviewed.disabled = !ready;
    if (!ready) reviewed.checked = false;
    publishButton.disabled = !(ready && reviewed.checked);
  }
  draft.addEventListener("input", () => {
    plannedText = null;
    if (issuePages.items.length || !issues.querySelector("tbody td.muted")) {
      issuePages.set([]);
      issues.querySelector("tbody").replaceChildren();
      emptyRow(issues.querySelector("tbody"), 3, "The draft changed: press Validate.");
      issuePager.replaceChildren();
    }
    form.querySelector("#script-button").disabled = true;
    form.querySelector("#publish-status").textContent = "";
    refreshPublish();
  });
  reviewed.addEventListener("change", refreshPublish);

  form.querySelector("#validate-button").addEventListener("click", async () => {
    showError("");
    try {
      const report = await apiJson("/policy/validate", { method: "POST", text: draft.value, contentType: "application/yaml" });
      issuePages.set(report.issues);
      drawIssues();
      form.querySelector("#plan-status").textContent = report.valid ? "Valid." : `Not valid: ${report.issues.filter((i) => i.severity === "error").length} error(s); see Validation.`;
    } catch (error) {
      showError(error);
    }
  });

  publishButton.addEventListener("click", async () => {
    showError("");
    publishButton.disabled = true;
    try {
      const info = await apiJson("/policy/desired-state", { method: "PUT", text: draft.value, contentType: "application/yaml" });
      published = await apiJson("/policy/desired-state");
      showPublished();
      form.querySelector("#publish-status").textContent = `Published ${info.sha256.slice(0, 12)}… by ${info.publishedBy || "you"}; the next coverage audit checks against it.`;
    } catch (error) {
      showError(error);
    } finally {
      refreshPublish();
    }
  });
  emptyRow(findings.querySelector("tbody"), 4, "Not planned yet: press Plan.");
  emptyRow(changes.querySelector("tbody"), 6, "Not planned yet: press Plan.");

  function drawFindings() {
    const list = findings.querySelector("tbody");
    list.replaceChildren();
    for (const f of findingPages.current) {
      list.append(el("tr", {}, el("td", {}, f.severity), el("td", {}, f.kind), el("td", {}, f.subject || "—"), el("td", {}, f.message)));
    }
    if (!findingPages.items.length) emptyRow(list, 4, "No findings.");
    findingPager.replaceChildren(findingPages.controls(drawFindings, "Finding pages"));
  }

  function drawChanges() {
    const body = changes.querySelector("tbody");
    body.replaceChildren();
    for (const c of changePages.current) {
      body.append(el("tr", { class: `change ${c.action}` }, el("td", {}, c.action), el("td", {}, c.kind),
        el("td", {}, c.label ? `${c.label} (${c.subject})` : c.subject), el("td", {}, (c.changed || []).join(", ") || "—"),
        el("td", {}, values(c.before)), el("td", {}, values(c.after))));
    }
    if (!changePages.items.length) emptyRow(body, 6, "No change: the tenant already matches the desired state.");
    pager.replaceChildren(changePages.controls(drawChanges, "Change pages"));
  }

  async function requestBody() {
    const body = { desiredState: draft.value };
    const file = form.querySelector("input[name=currentState]").files[0];
    if (file) {
      try {
        body.currentState = JSON.parse(await file.text());
      } catch (error) {
        throw new Error(`${file.name} is not the JSON the export script writes: ${error.message}`);
      }
    }
    return body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const button = form.querySelector("#plan-button");
    button.disabled = true;
    form.querySelector("#plan-status").textContent = "Planning…";
    try {
      lastBody = await requestBody();
      const plan = await apiJson("/policy/plan", { method: "POST", body: lastBody });
      findingPages.set(plan.findings);
      drawFindings();
      changePages.set(plan.changes);
      drawChanges();
      form.querySelector("#plan-status").textContent = `Compared with ${plan.target}: ${plan.changes.length} change${plan.changes.length === 1 ? "" : "s"}, ${plan.findings.length} finding${plan.findings.length === 1 ? "" : "s"}.`;
      form.querySelector("#script-button").disabled = !plan.changes.length;
      plannedText = lastBody.desiredState;
    } catch (error) {
      form.querySelector("#plan-status").textContent = "";
      plannedText = null;
      showError(error);
    } finally {
      button.disabled = false;
      refreshPublish();
    }
  });

  form.querySelector("#script-button").addEventListener("click", async () => {
    showError("");
    try {
      const response = await api("/policy/plan?format=powershell", { method: "POST", body: lastBody });
      const url = URL.createObjectURL(new Blob([await response.text()], { type: "text/plain" }));
      const link = el("a", { href: url, download: "verbatim-policy-changes.ps1" });
      document.body.append(link);
      link.click();
      link.remove();
      window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      showError(error);
    }
  });

  function showPublished() {
    meta(facts, [
      ["SHA-256", published.sha256],
      ["Published", `${when(published.publishedAt)} by ${published.publishedBy || "unknown"}`],
    ]);
    text.textContent = published.text;
  }

  try {
    published = await apiJson("/policy/desired-state");
    showPublished();
    draft.value = published.text;
  } catch (error) {
    if (error.status === 404) text.textContent = "No desired state has been published yet: write one below (docs/policies.md), plan it and publish it.";
    else showError(error);
  }
}
