// Chat messages as the portal shows them: each message with every version it went through (as posted, edits, the
// deletion), and, beside a recording, its offset on the recording's timeline, which seeks the player.
import { badge, el, when } from "./ui.js";

export function clock(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const sign = seconds < 0 ? "−" : "+";
  const total = Math.round(Math.abs(seconds));
  return `${sign}${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

export function messageItem(message, offset, player) {
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
  if (offset !== undefined && offset !== null && player) {
    const jump = el("button", { type: "button", class: "link offset", title: "Seek the recording to this message", "aria-label": `Seek the recording to ${clock(offset)}` }, clock(offset));
    jump.addEventListener("click", () => {
      if (player.src) player.currentTime = Math.max(0, offset);
    });
    head.prepend(jump, " ");
  }
  return el("li", { class: `message ${message.state}` }, head, versions);
}
