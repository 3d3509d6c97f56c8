// Exports (issue 18; create and download: Officer, list: Officer and Auditor): export the last search's recordings,
// a legal hold or given ids with a reason, follow the progress, list the recent exports (paged here; the API
// answers the 100 newest) and download a package in Range parts with the token and the reason — or, for a
// multi-part package, its index, signature and each part.
import { api, apiJson, enc } from "../api.js";
import { badge, el, emptyRow, heading, Pages, showError, table, when } from "../ui.js";
import { lastSearchQuery } from "./search.js";

function lastSearch() {
  const params = new URLSearchParams(lastSearchQuery());
  params.delete("limit");
  params.delete("continuation");
  return Object.fromEntries(params.entries());
}

function radio(value, label, ...extra) {
  return el("label", {}, el("input", { type: "radio", name: "selection", value, checked: value === "search" }), ` ${label} `, ...extra);
}

export async function render(view, _arg, ctx) {
  const officer = ctx.has(ctx.OFFICER);
  const names = Object.entries(lastSearch()).map(([name, value]) => `${name}=${value}`);
  const summary = el("span", { id: "export-search-summary", class: "muted" }, lastSearchQuery() ? `(${names.join(", ") || "no filter: every recording"})` : "(search first)");
  const reason = el("input", { id: "export-reason", name: "reason", required: true, maxLength: 500, placeholder: "e.g. FCA request 2026/117" });
  const progress = el("progress", { id: "export-progress", max: 1, value: 0, hidden: true });
  const form = el("form", { id: "export-form", class: "card export-form", "aria-labelledby": "export-h" },
    el("h2", { id: "export-h" }, "Export"),
    el("fieldset", {}, el("legend", {}, "What to export"),
      radio("search", "the recordings of the last search", summary),
      radio("hold", "everything under the legal hold", el("input", { id: "export-hold", name: "hold", placeholder: "hold id", "aria-label": "Legal hold id" })),
      radio("ids", "these recordings", el("input", { id: "export-ids", name: "ids", placeholder: "recording ids, separated by spaces", "aria-label": "Recording ids" }))),
    el("label", { for: "export-reason" }, "Reason (recorded in the ledger with the export and each download)"), reason,
    el("label", { for: "export-title" }, "Title for the recipient"),
    el("input", { id: "export-title", name: "title", maxLength: 200, placeholder: "e.g. Sales desk calls, March 2025" }),
    el("div", { class: "actions" },
      el("label", {}, el("input", { type: "checkbox", name: "evidence", checked: true }), " lossless evidence"),
      el("label", {}, el("input", { type: "checkbox", name: "accessCopies", checked: true }), " access copies"),
      el("label", {}, el("input", { type: "checkbox", name: "callRecords", checked: true }), " call records"),
      el("label", {}, el("input", { type: "checkbox", name: "chats" }), " chats"),
      el("button", { id: "export-create", type: "submit" }, "Export")),
    el("p", { id: "export-status", class: "muted", role: "status" }), progress);
  const list = table("exports", "Exports", ["Requested", "Title", "By", "Status", "Recordings", "Size", "Expires", "Package"]);
  const pages = new Pages(25);
  const pager = el("div");
  view.append(heading("Exports"));
  if (officer) view.append(form);
  view.append(el("h2", {}, "Recent exports"), list, pager);
  let leaving = false;

  // A multi-part package (very large exports): the signed index, its signature and each part, each downloaded on
  // its own; the recipient verifies the folder holding them all with verify/verify_export.py from any part.
  function objects(item) {
    const result = item.result;
    return [
      { name: "package-index.json", bytes: result.indexBytes, label: "index", type: "application/json" },
      { name: "package-index.sig", bytes: result.indexSignatureBytes, label: "index signature", type: "text/plain" },
      ...result.parts.map((part) => ({ name: part.name, bytes: part.bytes, label: `part ${part.number}: ${part.recordings.length + part.chats.length} items`, type: "application/zip" })),
    ];
  }

  function packageCell(item) {
    const completed = officer && item.status === "completed";
    if (!completed || !item.result.parts?.length) {
      const download = el("button", { type: "button", class: "download", hidden: !completed }, "Download");
      download.addEventListener("click", () => downloadObject(item, `/exports/${enc(item.id)}/package`, `verbatim-export-${item.id}.zip`, item.result.packageBytes, "application/zip", download).catch((error) => showError(error)));
      return download;
    }
    const list = el("ul", { class: "export-parts" }, ...objects(item).map((object) => {
      const button = el("button", { type: "button", class: "download-part", "data-name": object.name, "aria-label": `Download ${object.name}` }, "Download");
      button.addEventListener("click", () => downloadObject(item, `/exports/${enc(item.id)}/parts/${enc(object.name)}`, object.name, object.bytes, object.type, button).catch((error) => showError(error)));
      const size = object.bytes < 1e6 ? `${(object.bytes / 1e3).toFixed(1)} kB` : `${(object.bytes / 1e6).toFixed(1)} MB`;
      return el("li", {}, el("code", {}, object.name), ` ${object.label}, ${size} `, button);
    }));
    return el("details", { class: "parts" }, el("summary", {}, `${item.result.parts.length} parts`), list);
  }

  function row(item) {
    const result = item.result;
    const running = item.status === "running" ? ` ${item.progress.stage} ${item.progress.done}/${item.progress.total}` : "";
    return el("tr", { class: "export" },
      el("td", {}, when(item.createdAt)),
      el("td", {}, item.title || "—", el("br"), el("code", {}, item.id)),
      el("td", {}, item.requestedBy.name || item.requestedBy.subject),
      el("td", {}, badge(item.status), running),
      el("td", {}, result ? String(result.recordings) : String(item.progress.total || "—")),
      el("td", {}, result ? `${(result.packageBytes / 1e6).toFixed(1)} MB` : "—"),
      el("td", {}, when(item.expiresAt)),
      el("td", {}, packageCell(item)));
  }

  function draw() {
    const body = list.querySelector("tbody");
    body.replaceChildren(...pages.current.map(row));
    if (!pages.items.length) emptyRow(body, 8, "No exports yet.");
    pager.replaceChildren(pages.controls(draw, "Export pages"));
  }

  async function load() {
    try {
      pages.set((await apiJson("/exports")).items);
      draw();
    } catch (error) {
      showError(error);
    }
  }

  async function follow(id) {
    progress.hidden = false;
    while (!leaving) {
      const record = (await apiJson(`/exports/${enc(id)}`)).export;
      progress.max = Math.max(1, record.progress.total);
      progress.value = record.progress.done;
      form.querySelector("#export-status").textContent = `Export ${id}: ${record.status}, ${record.progress.stage} ${record.progress.done} of ${record.progress.total}`;
      if (!["queued", "running"].includes(record.status)) {
        progress.hidden = true;
        if (record.status === "failed") throw new Error(`The export failed: ${record.error}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }

  // The package (or one object of a multi-part package) in Range parts with the bearer token and the reason,
  // saved through a download link.
  async function downloadObject(item, path, filename, total, type, button) {
    const why = reason.value.trim();
    if (!why) {
      showError("Give the reason for this download first (it is recorded in the ledger).");
      return;
    }
    button.disabled = true;
    const parts = [];
    let offset = 0;
    try {
      while (offset < total) {
        const response = await api(path, { reason: why, headers: { Range: `bytes=${offset}-` } });
        const data = await response.arrayBuffer();
        if (!data.byteLength) break;
        parts.push(data);
        offset += data.byteLength;
        form.querySelector("#export-status").textContent = `Downloading ${filename}: ${Math.round(offset / 1024)} of ${Math.round(total / 1024)} KiB`;
      }
      const url = URL.createObjectURL(new Blob(parts, { type }));
      const link = el("a", { href: url, download: filename });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      const verify = item.result.parts?.length
        ? "Put every part, the index and its signature in one folder and verify it with verify/verify_export.py from any part."
        : "Verify it with verify/verify_export.py inside it.";
      form.querySelector("#export-status").textContent = `Downloaded ${filename} (${total} bytes). ${verify}`;
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const data = new FormData(form);
    const body = { options: { evidence: data.has("evidence"), accessCopies: data.has("accessCopies"), callRecords: data.has("callRecords"), chats: data.has("chats") } };
    const title = String(data.get("title") || "").trim();
    if (title) body.title = title;
    const selection = data.get("selection");
    if (selection === "hold") body.holdId = String(data.get("hold") || "").trim();
    else if (selection === "ids") body.recordingIds = String(data.get("ids") || "").split(/\s+/).filter(Boolean);
    else body.search = lastSearch();
    const button = form.querySelector("#export-create");
    button.disabled = true;
    try {
      const created = await apiJson("/exports", { method: "POST", body, reason: reason.value.trim() });
      await follow(created.export.id);
    } catch (error) {
      showError(error);
    } finally {
      button.disabled = false;
      load();
    }
  });

  await load();
  return () => {
    leaving = true;
  };
}
