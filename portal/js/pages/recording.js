// One recording: the call, its timeline (joins and leaves, separate speaker tracks, gaps and their reasons), the
// player (a reason is asked and recorded), the verdict, and the integrity panel (sealed entry, checkpoint, proof).
import { api, apiJson, API, enc } from "../api.js";
import { messageItem } from "../chat.js";
import { holdOnRecordingsForm } from "../holdform.js";
import { badge, duration, el, heading, meta, person, showError, when } from "../ui.js";

function holdLinks(holds) {
  return el("span", { id: "rec-holds" }, holds.length ? holds.flatMap((h, i) => [i ? ", " : "", el("a", { href: `#/holds/${enc(h)}` }, h)]) : "none");
}

const NOT_READY = "Access copy not ready: the evidence is sealed, and its access copy is still being made. It can be replayed once it is sealed too; reload in a minute.";
const CHUNK_LIMIT = 400; // most Range requests one replay makes (at 1 MiB each: hours of Opus audio)

export async function render(view, id, ctx) {
  let player = el("audio", { id: "player", controls: true, preload: "auto" });
  const reason = el("input", { id: "reason", name: "reason", required: true, maxLength: 500, placeholder: "e.g. Case 2025-114: trade reconstruction" });
  const evidenceChoice = el("label", { id: "evidence-choice", hidden: true }, el("input", { type: "checkbox", id: "evidence" }), " lossless evidence (FLAC)");
  const playButton = el("button", { id: "play", type: "submit" }, "Load and play");
  // A recording with video: which picture plays with the audio (the screen share or one camera). Browsers play only
  // the first video track of an MP4, so each stream has a sealed MP4 of its own and switching loads another one.
  const pictures = el("fieldset", { id: "pictures", class: "pictures", hidden: true }, el("legend", {}, "Picture"));
  // Whether the chosen stream was live at the player's position: before a camera came on, while it was off, or
  // after a share ended the player still paints the nearest frame, which was not what the stream showed then.
  const pictureLive = el("p", { id: "picture-live", class: "muted", hidden: true });
  let live = {}; // stream track -> spans of the recording's timeline in which it sent pictures (sealed manifest)
  // A recording that is one of a pair (2N recording: another recorder instance recorded the same call leg): this
  // recorder's own copy, or the pair's copy of the union of both captures (docs/resilience.md).
  const copies = el("fieldset", { id: "copies", class: "pictures", hidden: true }, el("legend", {}, "Copy"));
  const form = el("form", { id: "play-form" }, el("label", { for: "reason" }, "Reason for access (recorded in the ledger)"), reason, el("div", { class: "actions" }, playButton, evidenceChoice));
  view.append(
    el("p", {}, el("a", { href: "#/search" }, "← Recordings")),
    heading("Recording"),
    el(
      "div",
      { class: "cols" },
      el("section", { class: "card", "aria-labelledby": "call-h" }, el("h2", { id: "call-h" }, "Call"), el("dl", { id: "rec-meta", class: "meta" }),
        el("h2", {}, "Participants"), el("ul", { id: "rec-participants", class: "plain" })),
      el("section", { class: "card", "aria-labelledby": "replay-h" }, el("h2", { id: "replay-h" }, "Replay"), form, el("p", { id: "play-status", class: "muted", role: "status" }), player, pictureLive, copies, pictures,
        el("h2", {}, "Verdict"), el("div", { id: "rec-verdicts" }),
        el("h2", {}, "Integrity"), el("dl", { id: "rec-proof", class: "meta" }),
        el("details", {}, el("summary", {}, "Manifest"), el("pre", { id: "rec-manifest", tabIndex: 0 }))),
    ),
    el("section", { class: "card", "aria-labelledby": "timeline-h" }, el("h2", { id: "timeline-h" }, "Timeline"), el("ol", { id: "rec-timeline", class: "timeline" })),
    el("section", { id: "rec-chat-card", class: "card", "aria-labelledby": "chat-h" }, el("h2", { id: "chat-h" }, "Meeting chat"),
      el("p", { id: "rec-chat-status", class: "muted", role: "status" }), el("ol", { id: "rec-chat", class: "chat timeline" })),
  );
  // Officers place a legal hold on this recording alone (its holds are listed under Call).
  if (ctx && ctx.has(ctx.OFFICER)) {
    const placed = (result) => {
      const shown = view.querySelector("#rec-holds");
      if (shown && result.application && result.application.held.includes(id)) {
        const current = [...shown.querySelectorAll("a")].map((a) => a.textContent);
        shown.replaceWith(holdLinks([...new Set([...current, result.hold.id])].sort()));
      }
    };
    view.append(el("section", { class: "card" }, holdOnRecordingsForm("rec-hold", () => [id], "Place a legal hold on this recording", placed)));
  }
  let objectUrl = null;
  let detail = null;
  const loaded = new Map(); // stream track -> blob URL of its MP4, fetched once per page (each fetch is audited)

  function resetPlayer() {
    player.removeAttribute("src");
    player.load();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = null;
    for (const url of loaded.values()) URL.revokeObjectURL(url);
    loaded.clear();
    delete player.dataset.picture;
    pictureLive.hidden = true;
    view.querySelector("#play-status").textContent = "";
  }

  // The API answers media in bounded 206 parts (the Functions response is buffered); fetch them with the token
  // and the access reason (headers an <audio src> cannot send); returns a blob URL to play.
  async function download(url, why, type) {
    const parts = [];
    let offset = 0;
    let total = null;
    for (let request = 0; request < CHUNK_LIMIT && (total === null || offset < total); request += 1) {
      const response = await api(url.replace(API, ""), { reason: why, headers: { Range: `bytes=${offset}-` } });
      const data = await response.arrayBuffer();
      type = response.headers.get("Content-Type") || type;
      const range = response.headers.get("Content-Range");
      total = range ? Number(range.split("/")[1]) : data.byteLength;
      parts.push(data);
      offset += data.byteLength;
      view.querySelector("#play-status").textContent = `Loaded ${Math.round(offset / 1024)} of ${Math.round(total / 1024)} KiB`;
      if (data.byteLength === 0) break;
    }
    return { url: URL.createObjectURL(new Blob(parts, { type })), total };
  }

  const streams = () => (detail && detail.media.videoStreams) || [];
  const chosenStream = () => {
    const checked = pictures.querySelector("input[name=picture]:checked");
    return streams().find((s) => checked && s.track === checked.value) || streams()[0] || null;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const why = reason.value.trim();
    const evidence = view.querySelector("#evidence").checked && detail.media.evidence;
    const union = !evidence && detail.media.pair && copies.querySelector("input[name=copy]:checked").value === "pair";
    // A recording with video plays the chosen stream's MP4 (the audio with that picture); one sealed before the
    // streams had copies of their own plays the MP4 copy (the audio with the screen share and the cameras).
    const stream = evidence || union ? null : chosenStream();
    const url = evidence ? detail.media.evidence : union ? detail.media.pair : stream ? stream.url : detail.media.video || detail.media.access;
    if (!url || !why) return;
    if (!evidence && detail.media.accessReady === false) {
      view.querySelector("#play-status").textContent = NOT_READY;
      return;
    }
    resetPlayer();
    playButton.disabled = true;
    try {
      const { url: blobUrl, total } = await download(url, why, evidence ? "audio/flac" : !union && detail.media.video ? "video/mp4" : "audio/ogg");
      if (stream) loaded.set(stream.track, blobUrl);
      else objectUrl = blobUrl;
      if (stream) player.dataset.picture = stream.track;
      else delete player.dataset.picture;
      player.dataset.copy = evidence ? "evidence" : union ? "pair" : "own"; // what the player holds now
      player.src = blobUrl;
      player.load();
      const what = evidence ? "lossless evidence" : union ? "access copy of both recorders (union)" : stream ? `access copy with video (${pictureLabel(stream)})` : detail.media.video ? "access copy with video" : "access copy";
      view.querySelector("#play-status").textContent = `Ready: ${Math.round(total / 1024)} KiB ${what}. This access is recorded in the ledger.`;
      player.play().catch(() => {});
    } catch (error) {
      showError(error);
      view.querySelector("#play-status").textContent = "";
    } finally {
      playButton.disabled = tampered(detail);
    }
  });

  // Switching the picture while playing: the other stream's MP4 (fetched with the same reason, once), at the same
  // position, playing if it was playing. Before anything was loaded the choice only says what "Load and play" loads.
  pictures.addEventListener("change", async () => {
    const stream = chosenStream();
    if (!stream || !player.currentSrc || view.querySelector("#evidence").checked || player.dataset.copy === "pair") return;
    const why = reason.value.trim();
    if (!why) return;
    const at = player.currentTime;
    const playing = !player.paused && !player.ended;
    showError("");
    try {
      let blobUrl = loaded.get(stream.track);
      if (!blobUrl) {
        pictures.disabled = true;
        blobUrl = (await download(stream.url, why, "video/mp4")).url;
        loaded.set(stream.track, blobUrl);
      }
      player.pause();
      delete player.dataset.picture;
      player.src = blobUrl;
      player.addEventListener("loadedmetadata", () => {
        player.addEventListener("seeked", () => {
          player.dataset.picture = stream.track; // what the player shows now (and where: its currentTime)
          showLive();
          view.querySelector("#play-status").textContent = `Showing ${pictureLabel(stream)} from ${at.toFixed(1)} s. This access is recorded in the ledger.`;
          if (playing) player.play().catch(() => {});
        }, { once: true });
        player.currentTime = Math.min(at, player.duration || at);
      }, { once: true });
      player.load();
    } catch (error) {
      showError(error);
    } finally {
      pictures.disabled = false;
    }
  });

  // A frame interval either side of a span (a screen share sends one every 0.53 s) still counts as live.
  const SPAN_SLACK = 0.6;
  function showLive() {
    const stream = streams().find((s) => s.track === player.dataset.picture);
    pictureLive.hidden = !stream;
    if (!stream) return;
    const spans = live[stream.track] || [];
    const at = player.currentTime;
    const on = spans.some((s) => at >= s.start_seconds - SPAN_SLACK && at <= s.end_seconds + SPAN_SLACK);
    const when = spans.map((s) => `${duration(s.start_seconds)}–${duration(s.end_seconds)}`).join(", ") || "never";
    const label = pictureLabel(stream);
    pictureLive.textContent = on
      ? `Live at ${at.toFixed(1)} s: the ${label}.`
      : `Not live at ${at.toFixed(1)} s: the ${label} was on ${when}; the picture is the nearest frame it sent, not what it showed at this moment.`;
    pictureLive.dataset.live = on ? "yes" : "no";
  }

  function pictureLabel(stream) {
    const manifest = detail && detail.manifest;
    const who = ((manifest && manifest.participants) || []).find((p) => p.participant_id === stream.participantId);
    const name = who ? who.identity.display_name || who.identity.upn || who.participant_id : `source ${stream.sourceId}`;
    return `${stream.kind === "screenShare" ? "screen share" : "camera"} of ${name}`;
  }

  try {
    detail = await apiJson(`/recordings/${enc(id)}`);
  } catch (error) {
    showError(error);
    return () => resetPlayer();
  }
  const rec = detail.recording;
  view.querySelector("h1").textContent = `Recording of ${person(rec.observedUser)}`;
  meta(view.querySelector("#rec-meta"), [
    ["Recording id", rec.id],
    ["Call chain id", rec.callChainId],
    ["Started", when(rec.startedAt)],
    ["Ended", when(rec.endedAt)],
    ["Duration", duration(rec.durationSeconds)],
    ["Type", `${rec.callType} · ${rec.direction} · ${rec.modalities.join(", ")}`],
    ["Status", rec.interrupted ? `${rec.status} (interrupted)` : rec.status],
    ["Recorder", detail.recorderInstance],
    ["Pair", pairSummary(detail.pair)],
    ["Retention until", when(rec.retentionUntil)],
    ["Legal holds", holdLinks(rec.legalHolds)],
  ]);
  const people = view.querySelector("#rec-participants");
  for (const p of rec.participants) {
    people.append(el("li", {}, `${person(p)} `, el("span", { class: "muted" }, `${p.kind}${p.isRecorder ? " · recorder" : ""}`)));
  }
  const verdicts = view.querySelector("#rec-verdicts");
  if (!detail.verdicts.length) verdicts.append(el("p", { class: "muted" }, "No call record reconciled yet."));
  for (const v of detail.verdicts) {
    verdicts.append(el("p", { class: "verdict" }, badge(v.verdict), ` ${v.userPrincipalName || v.userId}: ${Math.round(v.coverage * 100)} % recorded`,
      v.reason !== "recorded" ? ` — ${v.reason.replace(/_/g, " ")}${v.reasonDetail ? ` (${v.reasonDetail})` : ""}` : ""));
  }
  const proof = detail.proof;
  const signed = proof ? checkpointSummary(proof.checkpoint) : null;
  // Every sealed object is read back by its sealed version and hashed by the API: "tampered" means something
  // sealed is missing or changed, and the API refuses to serve it (issue 13, finding 1).
  const problems = detail.integrityProblems || [];
  meta(view.querySelector("#rec-proof"), [
    ["Evidence", detail.integrity === "not_sealed" ? null : badge(detail.integrity)],
    ["Integrity problems", problems.length ? el("ul", { class: "problems" }, ...problems.map((text) => el("li", {}, text))) : null],
    ["Ledger proof", badge(detail.proofStatus)],
    ["Entry index", detail.sealedEntry ? `#${detail.sealedEntry.index} (sealed ${when(detail.sealedEntry.at)})` : null],
    ["Manifest SHA-256", detail.manifestSha256],
    ["Matches ledger", detail.manifestMatchesLedger === null ? null : badge(detail.manifestMatchesLedger ? "valid" : "invalid")],
    ["Checkpoint", signed ? `tree size ${signed.size}, signed by ${signed.key}` : null],
    ["Proof size", proof ? `${proof.hashes.length} hashes` : null],
  ]);
  view.querySelector("#rec-manifest").textContent = detail.manifest ? JSON.stringify(detail.manifest, null, 2) : "not sealed";
  if (detail.media.video) {
    // Video: the same player, as a <video> element (the chat's offsets seek it just the same).
    const video = el("video", { id: "player", controls: true, preload: "auto", playsInline: true, class: "video-player" });
    player.replaceWith(video);
    player = video;
    for (const event of ["timeupdate", "seeked", "loadeddata"]) player.addEventListener(event, showLive);
  }
  // One choice per stream: the screen share first (the default picture), then each camera, with when it was live.
  live = Object.fromEntries(((detail.manifest && detail.manifest.video) || []).map((v) => [v.track, v.spans || []]));
  streams().forEach((stream, index) => {
    const spans = (live[stream.track] || []).map((s) => `${duration(s.start_seconds)}–${duration(s.end_seconds)}`).join(", ");
    pictures.append(el("label", {},
      el("input", { type: "radio", name: "picture", value: stream.track, checked: index === 0, "data-track": stream.track }),
      ` ${pictureLabel(stream)}`, spans ? el("span", { class: "muted" }, ` (${spans})`) : null));
  });
  pictures.hidden = streams().length === 0;
  if (detail.media.pair) {
    const union = detail.pair ? ` (${detail.pair.unionSeconds.toFixed(1)} s)` : "";
    copies.append(
      el("label", {}, el("input", { type: "radio", name: "copy", value: "own", checked: true }), ` this recorder's copy (${detail.recorderInstance || "this recording"})`),
      el("label", {}, el("input", { type: "radio", name: "copy", value: "pair" }), " both recorders (union)", el("span", { class: "muted" }, union)),
    );
    copies.hidden = false;
  }
  timeline(view.querySelector("#rec-timeline"), detail.manifest);
  meetingChat(view, id, player);
  evidenceChoice.hidden = !detail.media.evidence;
  playButton.disabled = tampered(detail) || (!detail.media.access && !detail.media.evidence);
  if (detail.media.access && detail.media.accessReady === false) {
    // The evidence is sealed (and the verdict decided) first; the access copy is made and sealed after it, and is
    // never served before (the API answers 409 with Retry-After).
    view.querySelector("#play-status").textContent = NOT_READY;
    if (!detail.media.evidence) playButton.disabled = true;
  }
  return () => resetPlayer();
}

// "one of a pair with <recording> (<instance>)": another recorder instance recorded the same call leg (2N recording).
function pairSummary(pair) {
  if (!pair) return null;
  const others = pair.members.filter((m) => !m.thisRecording);
  return el("span", { id: "rec-pair" }, "one of a pair with ",
    ...others.flatMap((m, i) => [i ? ", " : "", el("a", { href: `#/recording/${enc(m.recordingId)}` }, m.recordingId), ` (${m.recorderInstance || "?"})`]),
    ` · union of both ${pair.unionSeconds.toFixed(1)} s`, pair.manifestIntact ? "" : " · pair manifest not as sealed");
}

// The meeting's chat beside its recording (a meeting's call record names the chat): each message at its offset on
// the recording's timeline, which seeks the player.
async function meetingChat(view, id, player) {
  const list = view.querySelector("#rec-chat");
  const state = view.querySelector("#rec-chat-status");
  try {
    const found = await apiJson(`/recordings/${enc(id)}/chat`);
    if (!found.chat) {
      state.textContent = found.joinWebUrl ? "No captured chat for this meeting." : "Not a meeting, or no call record yet.";
      return;
    }
    const offsets = Object.fromEntries(found.timeline.map((t) => [t.messageId, t.offsetSeconds]));
    state.textContent = `${found.chat.chat.topic || "Meeting chat"} — ${found.chat.messages.length} messages`;
    for (const message of found.chat.messages) list.append(messageItem(message, offsets[message.messageId], player));
  } catch (error) {
    state.textContent = error.message;
  }
}

function tampered(detail) {
  return Boolean(detail && detail.integrity === "tampered");
}

// A C2SP checkpoint note: origin, tree size and root hash lines, a blank line, then "— <key name> <signature>".
function checkpointSummary(note) {
  const lines = note.split("\n");
  const signature = lines.find((line) => line.startsWith("\u2014 "));
  return { origin: lines[0], size: lines[1], key: signature ? signature.split(" ")[1] : "unknown key" };
}

// What the sealed manifest says happened, in time order: who joined and left (the recorder's roster), who spoke
// when (speakers with a track of their own), who had their camera on and who shared their screen when, stretches
// without audio and why, and how the recording ended.
export function timeline(list, manifest) {
  list.replaceChildren();
  if (!manifest) {
    list.append(el("li", { class: "muted" }, "Not sealed yet: the timeline comes from the sealed manifest."));
    return;
  }
  const start = manifest.started_at ? new Date(manifest.started_at) : null;
  const offset = (iso) => (start && iso ? Math.max(0, (new Date(iso) - start) / 1000) : null);
  const events = [];
  const name = (p) => p.identity.display_name || p.identity.upn || p.phone_number || p.identity.id || p.participant_id;
  for (const p of manifest.participants || []) {
    if (p.is_recorder) continue;
    events.push({ at: offset(p.first_seen_at) ?? 0, kind: "join", text: `${name(p)} joined` });
    if (p.left_at) events.push({ at: offset(p.left_at), kind: "leave", text: `${name(p)} left${p.removed_reason ? ` (${p.removed_reason})` : ""}` });
  }
  const mixed = (manifest.evidence || []).find((t) => t.track === "mixed") || (manifest.evidence || [])[0];
  const rate = (mixed && mixed.sample_rate) || 16000;
  for (const gap of (mixed && mixed.gaps) || []) {
    events.push({ at: gap.start_sample / rate, kind: "gap", text: `No audio for ${(gap.samples / rate).toFixed(1)} s: nothing arrived from Teams; filled with silence to keep the timing` });
  }
  // Who spoke when: each speaker's own track (unmixed audio) with the stretches in which they spoke (voice activity,
  // sealed in the manifest); a manifest sealed before those were measured says only that the track exists.
  const speakers = (manifest.evidence || []).filter((t) => t.kind === "unmixed");
  for (const track of speakers) {
    const who = (manifest.participants || []).find((p) => (p.source_ids || []).includes(track.source_id));
    const label = who ? name(who) : `source ${track.source_id}`;
    if (!Array.isArray(track.speech)) {
      events.push({ at: 0, kind: "speaker", text: `${label} spoke on their own track (${duration(track.duration_seconds)})` });
    } else if (!track.speech.length) {
      events.push({ at: 0, kind: "speaker", text: `${label} has a track of their own and did not speak` });
    }
    for (const span of track.speech || []) {
      events.push({ at: span.start_seconds, kind: "speaker", text: `${label} spoke until ${duration(span.end_seconds)}` });
    }
  }
  // Mixed audio has no track per speaker: who spoke is who the platform named its dominant speaker (the loudest
  // voice, Teams' DominantSpeakerChanged events), sealed as spans of the mixed track with the speaker's audio source.
  const dominant = speakers.length ? [] : ((mixed && mixed.speech) || []).filter((s) => s.basis === "dominant-speaker");
  for (const span of dominant) {
    const who = (manifest.participants || []).find((p) => (p.source_ids || []).includes(span.source_id));
    const label = who ? name(who) : `source ${span.source_id}`;
    events.push({ at: span.start_seconds, kind: "speaker", text: `${label} spoke until ${duration(span.end_seconds)} (dominant speaker, as Teams reported it)` });
  }
  // Cameras and screen shares: when each was received (spans of the recording's timeline).
  for (const video of manifest.video || []) {
    const who = (manifest.participants || []).find((p) => p.participant_id === video.participant_id);
    const what = video.kind === "screenShare" ? "shared their screen" : "had their camera on";
    for (const span of video.spans || []) {
      events.push({ at: span.start_seconds, kind: "video", text: `${who ? name(who) : `source ${video.source_id}`} ${what} until ${duration(span.end_seconds)}` });
    }
  }
  const end = manifest.duration_seconds;
  events.push({
    at: end,
    kind: manifest.status === "interrupted" ? "gap" : "end",
    text: manifest.status === "interrupted"
      ? `Recording interrupted${manifest.salvaged ? ": the recorder went silent; what it had staged was salvaged and sealed" : ""}`
      : "Recording ended",
  });
  events.sort((a, b) => a.at - b.at);
  for (const event of events) {
    list.append(el("li", { class: `event ${event.kind}` }, el("span", { class: "at" }, duration(event.at)), " ", event.text));
  }
  if (!speakers.length && dominant.length) {
    list.append(el("li", { class: "muted" }, "Who spoke when: the dominant speaker Teams reported during the call (the loudest voice in the mixed audio); the recorder captured the mixed audio, not per-speaker tracks."));
  } else if (!speakers.length) {
    list.append(el("li", { class: "muted" }, "Who spoke when: this recording has no per-speaker tracks (the recorder captured the mixed audio)."));
  }
}
