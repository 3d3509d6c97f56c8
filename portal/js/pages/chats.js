// Chats (Officer, Auditor): chats by participant and time, messages by words (or a substring over 7 days), and one
// chat's messages with every version. Each list pages with the API's continuation; every read is recorded.
import { messageItem } from "../chat.js";
import { apiJson, enc } from "../api.js";
import { badge, el, emptyRow, heading, localToIso, meta, moreButton, Pages, showError, status, table, when } from "../ui.js";

function params(form) {
  const found = new URLSearchParams();
  for (const [name, value] of new FormData(form).entries()) {
    if (value) found.set(name, name === "from" || name === "to" ? localToIso(value) : value);
  }
  found.set("limit", "25");
  return found;
}

export async function render(view, id) {
  if (id) return chat(view, id);
  const listForm = el("form", { id: "chat-form", class: "filters", "aria-label": "Chats by participant and time" },
    el("label", {}, "Participant", el("input", { name: "participant", placeholder: "object id" })),
    el("label", {}, "From", el("input", { name: "from", type: "datetime-local" })),
    el("label", {}, "To", el("input", { name: "to", type: "datetime-local" })),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "chat-list-button" }, "List chats")));
  const searchForm = el("form", { id: "chat-search-form", class: "filters", role: "search", "aria-label": "Search chat messages" },
    el("label", {}, "Text", el("input", { name: "q", placeholder: "words, or a fragment", maxLength: 200 })),
    el("label", {}, "Match", el("select", { name: "mode" }, el("option", { value: "terms" }, "whole words"), el("option", { value: "substring" }, "substring (7 days)"))),
    el("label", {}, "From", el("input", { name: "from", type: "datetime-local" })),
    el("label", {}, "To", el("input", { name: "to", type: "datetime-local" })),
    el("div", { class: "actions" }, el("button", { type: "submit", id: "chat-search-button" }, "Search messages")));
  const chats = table("chats", "Chats", ["Last message", "Type", "Topic / members", "Policy users", "Messages", "Versions"]);
  const hits = table("chat-hits", "Messages found", ["Modified", "State", "Text", "Chat"]);
  hits.hidden = true;
  const more = moreButton("chat-more", () => load(true));
  view.append(heading("Chats"), listForm, searchForm, status("chat-status"), chats, hits, more);
  emptyRow(chats.querySelector("tbody"), 6, "List chats by participant and time, or search their messages.");
  let mode = "list";
  let query = "";
  let continuation = null;
  let count = 0;

  async function load(again) {
    showError("");
    const list = mode === "list";
    const target = list ? chats : hits;
    const query2 = new URLSearchParams(query);
    if (again && continuation) query2.set("continuation", continuation);
    try {
      const page = await apiJson(`${list ? "/chats" : "/chat-search"}?${query2}`);
      const body = target.querySelector("tbody");
      if (!again) {
        body.replaceChildren();
        count = 0;
      }
      for (const item of page.items) {
        if (list) {
          const link = el("a", { href: `#/chats/${enc(item.chatId)}` }, item.topic || item.memberNames.join(", ") || item.chatId);
          body.append(el("tr", {}, el("td", {}, when(item.lastMessageAt)), el("td", {}, item.chatType || ""), el("td", {}, link),
            el("td", {}, String(item.policyUsers.length)), el("td", {}, String(item.messages)), el("td", {}, String(item.versions))));
        } else {
          body.append(el("tr", {}, el("td", {}, when(item.lastModified)), el("td", {}, badge(item.state)), el("td", {}, item.text),
            el("td", {}, el("a", { href: `#/chats/${enc(item.chatId)}` }, "open"))));
        }
      }
      count += page.items.length;
      if (!count) emptyRow(body, list ? 6 : 4, list ? "No chats match." : "No messages match.");
      continuation = page.continuation;
      more.hidden = !continuation;
      view.querySelector("#chat-status").textContent = list ? `${count} chats${continuation ? " (more)" : ""}` : `${count} messages (${page.mode})`;
    } catch (error) {
      showError(error);
    }
  }

  function start(event, which, form) {
    event.preventDefault();
    mode = which;
    query = params(form).toString();
    chats.hidden = which !== "list";
    hits.hidden = which === "list";
    load(false);
  }
  listForm.addEventListener("submit", (event) => start(event, "list", listForm));
  searchForm.addEventListener("submit", (event) => start(event, "search", searchForm));
}

// One chat: the API answers it whole (every message with its versions), so it is shown in pages of 50 messages.
async function chat(view, id) {
  const facts = el("dl", { id: "chat-meta", class: "meta" });
  const messages = el("ol", { id: "chat-messages", class: "chat" });
  const pages = new Pages(50);
  const pager = el("div");
  view.append(el("p", {}, el("a", { href: "#/chats" }, "← Chats")), heading("Chat"), el("section", { class: "card" }, facts), messages, pager);
  view.querySelector("h1").id = "chat-title";

  function draw() {
    messages.replaceChildren(...pages.current.map((message) => messageItem(message)));
    pager.replaceChildren(pages.controls(draw, "Message pages"));
  }

  try {
    const detail = await apiJson(`/chats/${enc(id)}`);
    const summary = detail.chat;
    view.querySelector("h1").textContent = summary.topic || summary.memberNames.join(", ") || "Chat";
    meta(facts, [
      ["Chat id", summary.chatId],
      ["Type", summary.chatType],
      ["Members", summary.memberNames.join(", ") || summary.members.join(", ")],
      ["Policy users", summary.policyUsers.join(", ")],
      ["Sealed bundles", detail.bundles.length ? detail.bundles.join(", ") : "none yet"],
    ]);
    pages.set(detail.messages);
    draw();
  } catch (error) {
    showError(error);
  }
}
