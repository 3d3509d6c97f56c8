// Verbatim compliance portal: a small single-page app over the /api/v1 compliance API. No build step.
// The bearer token lives in sessionStorage; every API read is recorded in the ledger by the server.
"use strict";

const API = "/api/v1";
const CHUNK_LIMIT = 400; // most Range requests one replay makes (at 1 MiB each: hours of Opus audio)
const state = { token: null, claims: null, continuation: null, lastQuery: null, objectUrl: null };

const $ = (selector) => document.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "href") node.setAttribute("href", value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function badge(value) {
  return el("span", { class: `badge ${value || ""}` }, value || "—");
}

function showError(message) {
  $("#error").textContent = message || "";
}

// --- sign-in -------------------------------------------------------------------------------------------------

function decodeClaims(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch (error) {
    return null;
  }
}

function setToken(token) {
  const claims = decodeClaims(token);
  if (!claims) {
    $("#sign-in-error").textContent = "That is not a JWT access token.";
    return false;
  }
  state.token = token;
  state.claims = claims;
  sessionStorage.setItem("verbatim.token", token);
  return true;
}

function signOut() {
  state.token = null;
  state.claims = null;
  sessionStorage.removeItem("verbatim.token");
  route();
}

function roles() {
  return (state.claims && state.claims.roles) || [];
}

async function devSignIn() {
  const chosen = [...document.querySelectorAll("input[name=dev-role]:checked")].map((box) => box.value);
  $("#sign-in-error").textContent = "";
  const response = await fetch(`${API}/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ roles: chosen }),
  });
  if (!response.ok) {
    $("#sign-in-error").textContent = `Dev sign-in is not available here (${response.status}).`;
    return;
  }
  const body = await response.json();
  if (setToken(body.accessToken)) route();
}

// --- API ---------------------------------------------------------------------------------------------------

async function api(path, { reason, headers = {}, method = "GET", body } = {}) {
  const all = { Authorization: `Bearer ${state.token}`, ...headers };
  if (reason) all["X-Access-Reason"] = reason;
  const init = { method, headers: all };
  if (body !== undefined) {
    all["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${API}${path}`, init);
  if (response.status === 401) {
    signOut();
    throw new Error("Your sign-in is no longer valid.");
  }
  if (!response.ok && response.status !== 206) {
    let detail = `${response.status}`;
    try {
      const problem = await response.json();
      detail = `${problem.title}: ${problem.detail}`;
    } catch (error) {
      /* not JSON */
    }
    throw new Error(detail);
  }
  return response;
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

// --- formatting ----------------------------------------------------------------------------------------------

function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function person(p) {
  return p.displayName || p.userPrincipalName || p.phoneNumber || p.id || "unknown";
}

function localToIso(value) {
  return value ? new Date(value).toISOString() : "";
}

// --- search --------------------------------------------------------------------------------------------------

function searchParams(form) {
  const params = new URLSearchParams();
  for (const [name, value] of new FormData(form).entries()) {
    if (!value) continue;
    params.set(name, name === "from" || name === "to" ? localToIso(value) : value);
  }
  params.set("limit", "25");
  return params;
}

async function search(more = false) {
  showError("");
  const params = more ? new URLSearchParams(state.lastQuery) : searchParams($("#search-form"));
  if (more && state.continuation) params.set("continuation", state.continuation);
  state.lastQuery = params.toString();
  $("#search-button").disabled = true;
  $("#search-status").textContent = "Searching…";
  try {
    const page = await apiJson(`/recordings?${params}`);
    const body = $("#results tbody");
    if (!more) body.replaceChildren();
    for (const item of page.items) body.append(resultRow(item));
    state.continuation = page.continuation;
    $("#more").hidden = !page.continuation;
    const count = body.children.length;
    $("#search-status").textContent = count ? `${count} recording${count === 1 ? "" : "s"}` : "No recordings match.";
  } catch (error) {
    showError(error.message);
    $("#search-status").textContent = "";
  } finally {
    $("#search-button").disabled = false;
  }
}

function resultRow(item) {
  const others = item.participants.filter((p) => !p.isRecorder && p.id !== item.observedUser.id).map(person);
  const link = el("a", { href: `#/recording/${encodeURIComponent(item.id)}` }, when(item.startedAt));
  return el(
    "tr",
    { class: "result" },
    el("td", {}, link),
    el("td", {}, item.observedUser.displayName || item.observedUser.userPrincipalName || item.observedUser.id || "—"),
    el("td", {}, others.join(", ") || "—"),
    el("td", {}, `${item.callType} · ${item.direction}`),
    el("td", {}, duration(item.durationSeconds)),
    el("td", {}, badge(item.verdict)),
    el("td", {}, item.interrupted ? `${item.status} (interrupted)` : item.status),
  );
}

// --- recording -----------------------------------------------------------------------------------------------

function meta(list, pairs) {
  list.replaceChildren();
  for (const [name, value] of pairs) list.append(el("dt", {}, name), el("dd", {}, value ?? "—"));
}

async function showRecording(id) {
  showError("");
  resetPlayer();
  $("#rec-title").textContent = "Recording";
  try {
    const detail = await apiJson(`/recordings/${encodeURIComponent(id)}`);
    const rec = detail.recording;
    state.recording = detail;
    $("#rec-title").textContent = `Recording of ${rec.observedUser.displayName || rec.observedUser.userPrincipalName || rec.observedUser.id}`;
    meta($("#rec-meta"), [
      ["Recording id", rec.id],
      ["Call chain id", rec.callChainId],
      ["Started", when(rec.startedAt)],
      ["Ended", when(rec.endedAt)],
      ["Duration", duration(rec.durationSeconds)],
      ["Type", `${rec.callType} · ${rec.direction} · ${rec.modalities.join(", ")}`],
      ["Status", rec.interrupted ? `${rec.status} (interrupted)` : rec.status],
      ["Recorder", detail.recorderInstance],
      ["Retention until", when(rec.retentionUntil)],
      ["Legal holds", rec.legalHolds.length ? rec.legalHolds.join(", ") : "none"],
    ]);
    const people = $("#rec-participants");
    people.replaceChildren();
    for (const p of rec.participants) {
      people.append(el("li", {}, `${person(p)} `, el("span", { class: "muted" }, `${p.kind}${p.isRecorder ? " · recorder" : ""}`)));
    }
    const verdicts = $("#rec-verdicts");
    verdicts.replaceChildren();
    if (!detail.verdicts.length) verdicts.append(el("p", { class: "muted" }, "No call record reconciled yet."));
    for (const v of detail.verdicts) {
      verdicts.append(
        el(
          "p",
          { class: "verdict" },
          badge(v.verdict),
          ` ${v.userPrincipalName || v.userId}: ${Math.round(v.coverage * 100)} % recorded`,
          v.reason !== "recorded" ? ` — ${v.reason.replace(/_/g, " ")}${v.reasonDetail ? ` (${v.reasonDetail})` : ""}` : "",
        ),
      );
    }
    const proof = detail.proof;
    const signed = proof ? checkpointSummary(proof.checkpoint) : null;
    meta($("#rec-proof"), [
      ["Ledger proof", badge(detail.proofStatus)],
      ["Entry index", detail.sealedEntry ? `#${detail.sealedEntry.index} (sealed ${when(detail.sealedEntry.at)})` : null],
      ["Manifest SHA-256", detail.manifestSha256],
      ["Matches ledger", detail.manifestMatchesLedger === null ? null : badge(detail.manifestMatchesLedger ? "valid" : "invalid")],
      ["Checkpoint", signed ? `tree size ${signed.size}, signed by ${signed.key}` : null],
      ["Proof size", proof ? `${proof.hashes.length} hashes` : null],
    ]);
    $("#rec-manifest").textContent = detail.manifest ? JSON.stringify(detail.manifest, null, 2) : "not sealed";
    showRecordingChat(id);
    $("#evidence-choice").hidden = !detail.media.evidence;
    $("#play").disabled = !detail.media.access && !detail.media.evidence;
  } catch (error) {
    showError(error.message);
  }
}

// A C2SP checkpoint note: origin, tree size and root hash lines, a blank line, then "— <key name> <signature>".
function checkpointSummary(note) {
  const lines = note.split("\n");
  const signature = lines.find((line) => line.startsWith("\u2014 "));
  return { origin: lines[0], size: lines[1], key: signature ? signature.split(" ")[1] : "unknown key" };
}

function resetPlayer() {
  const player = $("#player");
  player.removeAttribute("src");
  player.load();
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = null;
  $("#play-status").textContent = "";
}

// The API answers media in bounded 206 parts (the Functions response is buffered); fetch them with the
// bearer token and the access reason (headers an <audio src> cannot send), then play from a blob URL.
async function play(event) {
  event.preventDefault();
  showError("");
  const detail = state.recording;
  const reason = $("#reason").value.trim();
  const evidence = $("#evidence").checked && detail.media.evidence;
  const url = evidence ? detail.media.evidence : detail.media.access;
  if (!url || !reason) return;
  resetPlayer();
  $("#play").disabled = true;
  const parts = [];
  let offset = 0;
  let total = null;
  let type = evidence ? "audio/flac" : "audio/ogg";
  try {
    for (let request = 0; request < CHUNK_LIMIT && (total === null || offset < total); request += 1) {
      const response = await api(url.replace(API, ""), { reason, headers: { Range: `bytes=${offset}-` } });
      const data = await response.arrayBuffer();
      type = response.headers.get("Content-Type") || type;
      const range = response.headers.get("Content-Range");
      total = range ? Number(range.split("/")[1]) : data.byteLength;
      parts.push(data);
      offset += data.byteLength;
      $("#play-status").textContent = `Loaded ${Math.round(offset / 1024)} of ${Math.round(total / 1024)} KiB`;
      if (data.byteLength === 0) break;
    }
    state.objectUrl = URL.createObjectURL(new Blob(parts, { type }));
    const player = $("#player");
    player.src = state.objectUrl;
    player.load();
    $("#play-status").textContent = `Ready: ${Math.round(total / 1024)} KiB ${evidence ? "lossless evidence" : "access copy"}. This access is recorded in the ledger.`;
    player.play().catch(() => {});
  } catch (error) {
    showError(error.message);
    $("#play-status").textContent = "";
  } finally {
    $("#play").disabled = false;
  }
}

// --- verdicts and reports ----------------------------------------------------------------------------------------

async function showVerdicts(event) {
  if (event) event.preventDefault();
  showError("");
  const params = new URLSearchParams({ limit: "100" });
  for (const [name, value] of new FormData($("#verdict-form")).entries()) {
    if (value) params.set(name, name === "verdict" ? value : `${value}T00:00:00Z`);
  }
  try {
    const page = await apiJson(`/verdicts?${params}`);
    const body = $("#verdicts tbody");
    body.replaceChildren();
    for (const v of page.items) {
      body.append(
        el(
          "tr",
          {},
          el("td", {}, when(v.callStart)),
          el("td", {}, v.userPrincipalName || v.userId),
          el("td", {}, badge(v.verdict)),
          el("td", {}, `${Math.round(v.coverage * 100)} %`),
          el("td", {}, v.reason.replace(/_/g, " "), v.explained ? el("span", { class: "muted" }, " (explained)") : null),
          el("td", { class: "muted" }, v.callId),
        ),
      );
    }
    if (!page.items.length) body.append(el("tr", {}, el("td", { colSpan: 6, class: "muted" }, "No verdicts.")));
  } catch (error) {
    showError(error.message);
  }
}

async function showReports(day) {
  showError("");
  try {
    const list = await apiJson("/reports/completeness");
    const items = $("#report-list");
    items.replaceChildren();
    for (const item of list.items) {
      items.append(el("li", {}, el("a", { href: `#/reports/${item.day}` }, item.day), el("span", { class: "muted" }, ` generated ${when(item.generatedAt)}`)));
    }
    if (!list.items.length) items.append(el("li", { class: "muted" }, "No reports yet."));
    $("#report").hidden = !day;
    if (!day) return;
    const view = await apiJson(`/reports/completeness/${day}`);
    const report = view.report;
    $("#report-title").textContent = `Completeness on ${report.day}`;
    $("#report-signature").replaceChildren(
      badge(view.signatureValid ? "valid" : "invalid"),
      ` signature · ledger entry ${view.ledgerEntry ? `#${view.ledgerEntry.index}` : "not found"} · ${view.blob}`,
    );
    const counts = $("#report-counts");
    counts.replaceChildren();
    for (const [name, value] of Object.entries(report.counts)) counts.append(el("tr", {}, el("td", {}, name), el("td", {}, value)));
    counts.append(el("tr", {}, el("td", {}, "calls / users"), el("td", {}, `${report.calls} / ${report.users}`)));
    const exceptions = $("#report-exceptions");
    exceptions.replaceChildren();
    for (const item of report.exceptions) {
      exceptions.append(
        el(
          "tr",
          {},
          el("td", { class: "muted" }, item.callId),
          el("td", {}, item.userPrincipalName || item.userId),
          el("td", {}, badge(item.verdict)),
          el("td", {}, item.reason.replace(/_/g, " ")),
          el("td", {}, item.explained ? "yes" : "no"),
          el("td", {}, `${item.coveragePermille / 10} %`),
        ),
      );
    }
  } catch (error) {
    showError(error.message);
  }
}

// --- chats ---------------------------------------------------------------------------------------------------

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const sign = seconds < 0 ? "−" : "+";
  const total = Math.round(Math.abs(seconds));
  return `${sign}${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

// One message with every version it went through: the first as posted, edits and the deletion after it.
function messageItem(message, offset) {
  const versions = el("ol", { class: "versions" });
  for (const v of message.versions) {
    const text = v.state === "deleted" ? el("em", {}, "deleted") : v.text || el("em", {}, "(no text)");
    versions.append(
      el(
        "li",
        { class: `version ${v.state}` },
        badge(v.state),
        ` ${when(v.lastModified)} `,
        el("span", { class: "text" }, text),
        el("span", { class: "muted" }, ` · ${v.source}${v.sealedIn ? " · sealed" : " · awaiting seal"}`),
      ),
    );
  }
  const head = el("div", { class: "sender" }, message.senderName || message.senderId || "unknown", " ", el("span", { class: "muted" }, when(message.created)));
  if (offset !== undefined && offset !== null) {
    const jump = el("button", { type: "button", class: "link offset", title: "on the recording's timeline" }, clock(offset));
    jump.addEventListener("click", () => {
      const player = $("#player");
      if (player.src) player.currentTime = Math.max(0, offset);
    });
    head.prepend(jump, " ");
  }
  return el("li", { class: `message ${message.state}` }, head, versions);
}

async function showRecordingChat(id) {
  const list = $("#rec-chat");
  list.replaceChildren();
  $("#rec-chat-status").textContent = "";
  try {
    const found = await apiJson(`/recordings/${encodeURIComponent(id)}/chat`);
    if (!found.chat) {
      $("#rec-chat-status").textContent = found.joinWebUrl ? "No captured chat for this meeting." : "Not a meeting, or no call record yet.";
      return;
    }
    const offsets = Object.fromEntries(found.timeline.map((t) => [t.messageId, t.offsetSeconds]));
    $("#rec-chat-status").textContent = `${found.chat.chat.topic || "Meeting chat"} — ${found.chat.messages.length} messages`;
    for (const message of found.chat.messages) list.append(messageItem(message, offsets[message.messageId]));
  } catch (error) {
    $("#rec-chat-status").textContent = error.message;
  }
}

async function listChats(event) {
  if (event) event.preventDefault();
  showError("");
  const params = searchParams($("#chat-form"));
  $("#chat-hits").hidden = true;
  $("#chats").hidden = false;
  try {
    const page = await apiJson(`/chats?${params}`);
    const body = $("#chats tbody");
    body.replaceChildren();
    for (const chat of page.items) {
      const link = el("a", { href: `#/chat/${encodeURIComponent(chat.chatId)}` }, chat.topic || chat.memberNames.join(", ") || chat.chatId);
      body.append(
        el("tr", {}, el("td", {}, when(chat.lastMessageAt)), el("td", {}, chat.chatType || ""), el("td", {}, link),
          el("td", {}, String(chat.policyUsers.length)), el("td", {}, String(chat.messages)), el("td", {}, String(chat.versions))),
      );
    }
    $("#chat-status").textContent = `${page.items.length} chats${page.continuation ? " (more)" : ""}`;
  } catch (error) {
    showError(error.message);
  }
}

async function searchChats(event) {
  event.preventDefault();
  showError("");
  const params = searchParams($("#chat-search-form"));
  $("#chats").hidden = true;
  $("#chat-hits").hidden = false;
  try {
    const page = await apiJson(`/chat-search?${params}`);
    const body = $("#chat-hits tbody");
    body.replaceChildren();
    for (const hit of page.items) {
      const link = el("a", { href: `#/chat/${encodeURIComponent(hit.chatId)}` }, "open");
      body.append(el("tr", {}, el("td", {}, when(hit.lastModified)), el("td", {}, badge(hit.state)), el("td", {}, hit.text), el("td", {}, link)));
    }
    $("#chat-status").textContent = `${page.items.length} messages (${page.mode})`;
  } catch (error) {
    showError(error.message);
  }
}

async function showChat(id) {
  showError("");
  $("#chat-messages").replaceChildren();
  try {
    const detail = await apiJson(`/chats/${encodeURIComponent(id)}`);
    const chat = detail.chat;
    $("#chat-title").textContent = chat.topic || chat.memberNames.join(", ") || "Chat";
    meta($("#chat-meta"), [
      ["Chat id", chat.chatId],
      ["Type", chat.chatType],
      ["Members", chat.memberNames.join(", ") || chat.members.join(", ")],
      ["Policy users", chat.policyUsers.join(", ")],
      ["Sealed bundles", detail.bundles.length ? detail.bundles.join(", ") : "none yet"],
    ]);
    for (const message of detail.messages) $("#chat-messages").append(messageItem(message));
  } catch (error) {
    showError(error.message);
  }
}

// --- exports -------------------------------------------------------------------------------------------------

// The last search's filters, as POST /exports takes them (`search`): the same names as GET /recordings.
function lastSearch() {
  const params = new URLSearchParams(state.lastQuery || "");
  params.delete("limit");
  params.delete("continuation");
  return Object.fromEntries(params.entries());
}

function showExportForm() {
  const filters = lastSearch();
  const names = Object.entries(filters).map(([name, value]) => `${name}=${value}`);
  $("#export-search-summary").textContent = state.lastQuery ? `(${names.join(", ") || "no filter: every recording"})` : "(search first)";
}

async function showExports() {
  showError("");
  showExportForm();
  try {
    const list = await apiJson("/exports");
    const body = $("#exports tbody");
    body.replaceChildren();
    for (const item of list.items) body.append(exportRow(item));
    if (!list.items.length) body.append(el("tr", {}, el("td", { colSpan: 8, class: "muted" }, "No exports yet.")));
  } catch (error) {
    showError(error.message);
  }
}

function exportRow(item) {
  const result = item.result;
  const progress = item.status === "running" ? ` ${item.progress.stage} ${item.progress.done}/${item.progress.total}` : "";
  const download = el("button", { type: "button", class: "download" }, "Download");
  download.hidden = item.status !== "completed";
  download.addEventListener("click", () => downloadExport(item, download).catch((error) => showError(error.message)));
  return el(
    "tr",
    { class: "export" },
    el("td", {}, when(item.createdAt)),
    el("td", {}, item.title || "—", el("br"), el("code", {}, item.id)),
    el("td", {}, item.requestedBy.name || item.requestedBy.subject),
    el("td", {}, badge(item.status), progress),
    el("td", {}, result ? result.recordings : item.progress.total || "—"),
    el("td", {}, result ? `${(result.packageBytes / 1e6).toFixed(1)} MB` : "—"),
    el("td", {}, when(item.expiresAt)),
    el("td", {}, download),
  );
}

async function createExport(event) {
  event.preventDefault();
  showError("");
  const form = $("#export-form");
  const data = new FormData(form);
  const body = {
    options: {
      evidence: data.has("evidence"),
      accessCopies: data.has("accessCopies"),
      callRecords: data.has("callRecords"),
    },
  };
  const title = String(data.get("title") || "").trim();
  if (title) body.title = title;
  const selection = data.get("selection");
  if (selection === "hold") body.holdId = String(data.get("hold") || "").trim();
  else if (selection === "ids") body.recordingIds = String(data.get("ids") || "").split(/\s+/).filter(Boolean);
  else body.search = lastSearch();
  $("#export-create").disabled = true;
  try {
    const response = await api("/exports", { method: "POST", body, reason: String(data.get("reason")).trim() });
    const view = await response.json();
    await followExport(view.export.id);
  } catch (error) {
    showError(error.message);
  } finally {
    $("#export-create").disabled = false;
    showExports();
  }
}

async function followExport(id) {
  const bar = $("#export-progress");
  bar.hidden = false;
  for (;;) {
    const view = await apiJson(`/exports/${encodeURIComponent(id)}`);
    const record = view.export;
    bar.max = Math.max(1, record.progress.total);
    bar.value = record.progress.done;
    $("#export-status").textContent = `Export ${id}: ${record.status}, ${record.progress.stage} ${record.progress.done} of ${record.progress.total}`;
    if (!["queued", "running"].includes(record.status)) {
      bar.hidden = true;
      if (record.status === "failed") throw new Error(`The export failed: ${record.error}`);
      return record;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// The package in Range parts with the bearer token and the reason, saved with a download link.
async function downloadExport(item, button) {
  const reason = $("#export-reason").value.trim();
  if (!reason) {
    showError("Give the reason for this download first (it is recorded in the ledger).");
    return;
  }
  button.disabled = true;
  const parts = [];
  const total = item.result.packageBytes;
  let offset = 0;
  try {
    while (offset < total) {
      const response = await api(`/exports/${encodeURIComponent(item.id)}/package`, {
        reason,
        headers: { Range: `bytes=${offset}-` },
      });
      const data = await response.arrayBuffer();
      if (!data.byteLength) break;
      parts.push(data);
      offset += data.byteLength;
      $("#export-status").textContent = `Downloading ${item.id}: ${Math.round(offset / 1024)} of ${Math.round(total / 1024)} KiB`;
    }
    const url = URL.createObjectURL(new Blob(parts, { type: "application/zip" }));
    const link = el("a", { href: url, download: `verbatim-export-${item.id}.zip` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    $("#export-status").textContent = `Downloaded ${item.id} (${total} bytes). Verify it with verify/verify_export.py inside it.`;
  } finally {
    button.disabled = false;
  }
}

// --- routing ---------------------------------------------------------------------------------------------------

function route() {
  const signedIn = Boolean(state.token);
  $("#sign-in").hidden = signedIn;
  $("#who").hidden = !signedIn;
  for (const view of document.querySelectorAll(".view")) view.hidden = true;
  if (!signedIn) return;
  $("#who-name").textContent = state.claims.name || state.claims.preferred_username || state.claims.oid || "signed in";
  $("#who-roles").textContent = roles().join(", ");
  const [, page, arg] = (location.hash || "#/search").split("/");
  for (const link of document.querySelectorAll("[data-nav]")) link.classList.toggle("active", link.dataset.nav === page);
  if (page === "recording" && arg) {
    $("#view-recording").hidden = false;
    showRecording(decodeURIComponent(arg));
  } else if (page === "chats") {
    $("#view-chats").hidden = false;
  } else if (page === "chat" && arg) {
    $("#view-chat").hidden = false;
    showChat(decodeURIComponent(arg));
  } else if (page === "verdicts") {
    $("#view-verdicts").hidden = false;
    showVerdicts();
  } else if (page === "reports") {
    $("#view-reports").hidden = false;
    showReports(arg);
  } else if (page === "exports") {
    $("#view-exports").hidden = false;
    showExports();
  } else {
    $("#view-search").hidden = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const saved = sessionStorage.getItem("verbatim.token");
  if (saved) setToken(saved);
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (setToken($("#token").value.trim())) route();
  });
  $("#dev-sign-in").addEventListener("click", () => devSignIn().catch((error) => showError(error.message)));
  $("#sign-out").addEventListener("click", signOut);
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search(false);
  });
  $("#more").addEventListener("click", () => search(true));
  $("#play-form").addEventListener("submit", play);
  $("#verdict-form").addEventListener("submit", showVerdicts);
  $("#export-form").addEventListener("submit", createExport);
  $("#chat-form").addEventListener("submit", listChats);
  $("#chat-search-form").addEventListener("submit", searchChats);
  window.addEventListener("hashchange", route);
  route();
});
