// Policy (Recorder.Admin): the published desired state, its plan against the tenant (findings and changes), and
// the generated PowerShell that makes the changes, to download, review and run. Locally the plan compares with the
// Teams/Graph simulator; against Microsoft 365 it compares with the file the export script wrote (docs/policies.md).
import { api, apiJson } from "../api.js";
import { el, emptyRow, heading, meta, Pages, showError, status, table, when } from "../ui.js";

function values(object) {
  if (!object) return "—";
  return Object.entries(object).map(([name, value]) => `${name}=${JSON.stringify(value)}`).join(", ");
}

export async function render(view) {
  const facts = el("dl", { id: "policy-meta", class: "meta" });
  const text = el("pre", { id: "policy-text", tabIndex: 0, role: "region", "aria-label": "Published desired state" });
  const form = el("form", { id: "plan-form", class: "card stack", "aria-labelledby": "plan-h" },
    el("h2", { id: "plan-h" }, "Plan against the tenant"),
    el("p", { class: "muted" }, "Compares the published desired state with the tenant's current policies. Against Microsoft 365, choose the file the export script wrote; on the local stack the simulator's tenant is read."),
    el("label", {}, "Current state (export file, optional on the local stack)", el("input", { name: "currentState", type: "file", accept: "application/json,.json" })),
    el("div", { class: "actions" },
      el("button", { id: "plan-button", type: "submit" }, "Plan"),
      el("button", { id: "script-button", type: "button", class: "secondary", disabled: true }, "Download PowerShell")),
    status("plan-status"));
  const findings = table("plan-findings", "Findings of the plan", ["Severity", "Kind", "Subject", "Message"]);
  const changes = table("plan-changes", "Changes of the plan", ["Action", "Kind", "Subject", "Changed", "Before", "After"]);
  const changePages = new Pages(25);
  const pager = el("div");
  const findingPages = new Pages(25);
  const findingPager = el("div");
  view.append(heading("Policy"), el("section", { class: "card", "aria-labelledby": "published-h" }, el("h2", { id: "published-h" }, "Published desired state"), facts, text),
    form, el("h2", {}, "Findings"), findings, findingPager, el("h2", {}, "Changes"), changes, pager);
  let published = null;
  let lastBody = null;
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
    const body = { desiredState: published.text };
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
    } catch (error) {
      form.querySelector("#plan-status").textContent = "";
      showError(error);
    } finally {
      button.disabled = !published;
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

  try {
    published = await apiJson("/policy/desired-state");
    meta(facts, [
      ["SHA-256", published.sha256],
      ["Published", `${when(published.publishedAt)} by ${published.publishedBy || "unknown"}`],
    ]);
    text.textContent = published.text;
  } catch (error) {
    form.querySelector("#plan-button").disabled = true;
    if (error.status === 404) text.textContent = "No desired state has been published yet: publish one with PUT /api/v1/policy/desired-state (docs/policies.md).";
    else showError(error);
  }
}
