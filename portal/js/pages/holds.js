// Legal holds: create (Officer), list, details with the held recordings, and release with four eyes — one officer
// requests, another approves; both are shown, and the ledger records both.
import { apiJson, enc } from "../api.js";
import { badge, el, emptyRow, heading, meta, Pages, showError, status, table, when } from "../ui.js";

function officerName(officer) {
  return officer ? officer.name || officer.subject : "—";
}

function scope(hold) {
  const parts = [];
  if ((hold.custodians || []).length) parts.push(hold.custodians.join(", "));
  const ids = (hold.recordingIds || []).length;
  if (ids) parts.push(`${ids} recording${ids === 1 ? "" : "s"} by id`);
  return parts.join("; ") || "—";
}

export async function render(view, id, ctx) {
  if (id) return details(view, id, ctx);
  const filter = el("form", { id: "hold-filter", class: "filters inline", "aria-label": "Filter holds" },
    el("label", {}, "Status", el("select", { name: "status" }, el("option", { value: "active" }, "active"), el("option", { value: "released" }, "released"), el("option", { value: "" }, "all"))),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "secondary" }, "Show")));
  const list = table("holds", "Legal holds", ["Matter", "Description", "Scope", "Status", "Placed", "Release"]);
  const pages = new Pages(25);
  const pager = el("div");
  view.append(heading("Legal holds"));
  if (ctx.has(ctx.OFFICER)) view.append(createForm());
  view.append(el("h2", {}, "Holds"), filter, list, pager);

  function draw() {
    const body = list.querySelector("tbody");
    body.replaceChildren();
    for (const hold of pages.current) {
      body.append(el("tr", { class: "hold" },
        el("td", {}, el("a", { href: `#/holds/${enc(hold.id)}` }, hold.matterId)),
        el("td", {}, hold.description),
        el("td", {}, scope(hold)),
        el("td", {}, badge(hold.status === "active" ? "pending" : "recorded", hold.status)),
        el("td", {}, `${when(hold.createdAt)} by ${officerName(hold.createdBy)}`),
        el("td", {}, hold.releaseRequest ? `requested by ${officerName(hold.releaseRequest.requestedBy)}` : "—")));
    }
    if (!pages.items.length) emptyRow(body, 6, "No holds.");
    pager.replaceChildren(pages.controls(draw, "Hold pages"));
  }

  async function load() {
    showError("");
    const state = new FormData(filter).get("status");
    try {
      const answer = await apiJson(`/holds${state ? `?status=${enc(state)}` : ""}`);
      pages.set(answer.items);
      draw();
    } catch (error) {
      showError(error);
    }
  }

  function createForm() {
    const form = el("form", { id: "hold-form", class: "card stack", "aria-labelledby": "new-hold" },
      el("h2", { id: "new-hold" }, "Place a hold"),
      el("label", {}, "Matter", el("input", { name: "matterId", required: true, maxLength: 128 })),
      el("label", {}, "Description", el("input", { name: "description", required: true, maxLength: 2000 })),
      el("label", {}, "Custodians (object ids, UPNs or phone numbers; comma-separated)", el("input", { name: "custodians" })),
      el("label", {}, "Only calls with (participants; comma-separated, optional)", el("input", { name: "participants" })),
      el("label", {}, "Recordings from", el("input", { name: "from", type: "date" })),
      el("label", {}, "Recordings until", el("input", { name: "until", type: "date" })),
      el("label", {}, "And these recordings (ids; comma-separated, optional; held whatever the dates)", el("input", { name: "recordingIds" })),
      el("div", { class: "actions" }, el("button", { type: "submit" }, "Place hold")),
      status("hold-form-status"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      const data = new FormData(form);
      const body = {
        matterId: data.get("matterId").trim(),
        description: data.get("description").trim(),
        custodians: data.get("custodians").split(",").map((c) => c.trim()).filter(Boolean),
      };
      const recordingIds = data.get("recordingIds").split(",").map((c) => c.trim()).filter(Boolean);
      if (recordingIds.length) body.recordingIds = recordingIds;
      const participants = data.get("participants").split(",").map((c) => c.trim()).filter(Boolean);
      if (participants.length) body.query = { participants };
      if (data.get("from")) body.from = `${data.get("from")}T00:00:00Z`;
      if (data.get("until")) body.until = `${data.get("until")}T23:59:59Z`;
      try {
        const result = await apiJson("/holds", { method: "POST", body });
        form.querySelector("#hold-form-status").textContent = `Hold ${result.hold.matterId} placed: ${result.application ? result.application.held.length : 0} recordings held.`;
        window.location.hash = `#/holds/${enc(result.hold.id)}`;
      } catch (error) {
        showError(error);
      }
    });
    return form;
  }

  filter.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  await load();
}

async function details(view, id, ctx) {
  const facts = el("dl", { id: "hold-meta", class: "meta" });
  const release = el("section", { id: "hold-release", class: "card", "aria-labelledby": "release-h" });
  const held = table("hold-recordings", "Recordings held", ["Recording", "Started", "Status", "Retention until", "Holds"]);
  const pages = new Pages(25);
  const pager = el("div");
  view.append(el("p", {}, el("a", { href: "#/holds" }, "← Legal holds")), heading("Legal hold"), el("section", { class: "card" }, facts), release, el("h2", {}, "Recordings held"), held, pager);

  // The recordings a hold lists by id (up to 1,000), a page at a time.
  function listedIds(recordingIds) {
    const idPages = new Pages(10);
    const list = el("ul", { id: "hold-ids", class: "plain" });
    const pager = el("div");
    function draw() {
      list.replaceChildren(...idPages.current.map((r) => el("li", {}, el("a", { href: `#/recording/${enc(r)}` }, r))));
      pager.replaceChildren(idPages.controls(draw, "Pages of recordings listed by id"));
    }
    idPages.set(recordingIds);
    draw();
    return el("div", {}, list, pager);
  }

  function drawHeld() {
    const body = held.querySelector("tbody");
    body.replaceChildren();
    for (const r of pages.current) {
      body.append(el("tr", {},
        el("td", {}, el("a", { href: `#/recording/${enc(r.recordingId)}` }, r.recordingId)),
        el("td", {}, when(r.startedAt)), el("td", {}, r.status), el("td", {}, when(r.retentionUntil)), el("td", {}, r.legalHolds.join(", "))));
    }
    if (!pages.items.length) emptyRow(body, 5, "No recording is held yet.");
    pager.replaceChildren(pages.controls(drawHeld, "Held recording pages"));
  }

  async function load() {
    const { hold } = await apiJson(`/holds/${enc(id)}`);
    view.querySelector("h1").textContent = `Legal hold ${hold.matterId}`;
    meta(facts, [
      ["Matter", hold.matterId],
      ["Description", hold.description],
      ["Status", badge(hold.status === "active" ? "pending" : "recorded", hold.status)],
      ["Custodians", (hold.custodians || []).join(", ") || "—"],
      ["Recordings by id", (hold.recordingIds || []).length ? listedIds(hold.recordingIds) : "—"],
      ["Range", `${when(hold.from)} – ${when(hold.until)}`],
      ["Placed", `${when(hold.createdAt)} by ${officerName(hold.createdBy)}`],
      ["Release requested", hold.releaseRequest ? `${when(hold.releaseRequest.requestedAt)} by ${officerName(hold.releaseRequest.requestedBy)}: ${hold.releaseRequest.reason}` : "—"],
      ["Release approved", hold.releasedBy ? `${when(hold.releasedAt)} by ${officerName(hold.releasedBy)}` : "—"],
    ]);
    drawRelease(hold);
    const recordings = await apiJson(`/holds/${enc(id)}/recordings`);
    pages.set(recordings.items);
    drawHeld();
  }

  function drawRelease(hold) {
    release.replaceChildren(el("h2", { id: "release-h" }, "Release (four eyes)"));
    if (hold.status === "released") {
      release.append(el("p", { id: "release-done" }, `Released: requested by ${officerName(hold.releaseRequest && hold.releaseRequest.requestedBy)}, approved by ${officerName(hold.releasedBy)}.`));
      return;
    }
    if (!ctx.has(ctx.OFFICER)) {
      release.append(el("p", { class: "muted" }, "Only compliance officers request and approve releases."));
      return;
    }
    const requested = Boolean(hold.releaseRequest);
    const mine = requested && ctx.me && hold.releaseRequest.requestedBy.subject === ctx.me.subject;
    release.append(el("p", { class: "muted" }, requested
      ? (mine ? "You requested this release; another officer must approve it." : `Requested by ${officerName(hold.releaseRequest.requestedBy)}; you may approve it.`)
      : "One officer requests the release; a different officer approves it. The hold stays in force until then."));
    const reason = el("input", { id: "release-reason", name: "reason", required: true, maxLength: 2000 });
    const button = el("button", { id: requested ? "approve-release" : "request-release", type: "submit", disabled: mine }, requested ? "Approve release" : "Request release");
    const form = el("form", { class: "stack" }, el("label", { for: "release-reason" }, "Reason (recorded in the ledger)"), reason, el("div", { class: "actions" }, button));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      try {
        await apiJson(`/holds/${enc(id)}/release${requested ? "/approve" : ""}`, { method: "POST", body: { reason: reason.value.trim() } });
        await load();
      } catch (error) {
        showError(error);
      }
    });
    release.append(form);
  }

  try {
    await load();
  } catch (error) {
    showError(error);
  }
}
