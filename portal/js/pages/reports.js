// Completeness reports (Auditor): the stored daily reports, one with its signature check and ledger entry.
import { apiJson, enc } from "../api.js";
import { badge, el, heading, Pages, showError } from "../ui.js";

export async function render(view, day) {
  const items = el("ul", { id: "report-list", class: "plain" });
  const pages = new Pages(20);
  const pager = el("div");
  const report = el("section", { id: "report", class: "card", hidden: true, "aria-labelledby": "report-title" });
  view.append(heading("Completeness reports"), items, pager, report);

  function draw() {
    items.replaceChildren();
    for (const item of pages.current) {
      items.append(el("li", {}, el("a", { href: `#/reports/${enc(item.day)}` }, item.day), el("span", { class: "muted" }, ` generated ${item.generatedAt}`)));
    }
    if (!pages.items.length) items.append(el("li", { class: "muted" }, "No reports yet."));
    pager.replaceChildren(pages.controls(draw, "Report pages"));
  }

  try {
    const list = await apiJson("/reports/completeness");
    pages.set(list.items);
    draw();
    if (!day) return;
    const viewed = await apiJson(`/reports/completeness/${enc(day)}`);
    const r = viewed.report;
    report.hidden = false;
    report.append(
      el("h2", { id: "report-title" }, `Completeness on ${r.day}`),
      el("p", { id: "report-signature" }, badge(viewed.signatureValid ? "valid" : "invalid"), ` signature · ledger entry ${viewed.ledgerEntry ? `#${viewed.ledgerEntry.index}` : "not found"} · ${viewed.blob}`),
      el("table", { class: "grid counts" }, el("caption", { class: "sr-only" }, "Counts"), el("tbody", { id: "report-counts" },
        Object.entries(r.counts).map(([name, value]) => el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, value))),
        el("tr", {}, el("th", { scope: "row" }, "calls / users"), el("td", {}, `${r.calls} / ${r.users}`)))),
      el("h3", {}, "Exceptions"),
      el("div", { class: "table-wrap", role: "region", "aria-label": "Exceptions", tabIndex: 0 }, el("table", { class: "grid" }, el("caption", { class: "sr-only" }, "Exceptions"),
        el("thead", {}, el("tr", {}, ["Call id", "User", "Verdict", "Reason", "Explained", "Coverage"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", { id: "report-exceptions" }, r.exceptions.map((item) => el("tr", {},
          el("td", { class: "muted" }, item.callId), el("td", {}, item.userPrincipalName || item.userId), el("td", {}, badge(item.verdict)),
          el("td", {}, item.reason.replace(/_/g, " ")), el("td", {}, item.explained ? "yes" : "no"), el("td", {}, `${item.coveragePermille / 10} %`)))))),
    );
  } catch (error) {
    showError(error);
  }
}
