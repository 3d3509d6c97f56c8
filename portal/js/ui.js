// Small DOM and formatting helpers shared by the pages. No framework, no build step.

export const $ = (selector, root = document) => root.querySelector(selector);

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("aria-") || key === "role" || key === "for" || key === "scope" || key === "href" || key.startsWith("data-")) {
      node.setAttribute(key, value === true ? "" : String(value));
    } else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function badge(value, label) {
  return el("span", { class: `badge ${value || ""}` }, label || value || "—");
}

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : `${date.toISOString().replace("T", " ").slice(0, 19)} UTC`;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function person(p) {
  return p.displayName || p.userPrincipalName || p.phoneNumber || p.id || "unknown";
}

export function meta(list, pairs) {
  list.replaceChildren();
  for (const [name, value] of pairs) list.append(el("dt", {}, name), el("dd", {}, value ?? "—"));
}

export function localToIso(value) {
  return value ? new Date(value).toISOString() : "";
}

// A page heading and a status line (announced politely to screen readers).
export function heading(title, ...extra) {
  return el("div", { class: "page-head" }, el("h1", { tabIndex: -1 }, title), ...extra);
}

export function status(id) {
  return el("p", { id, class: "muted", role: "status" });
}

// A table with a caption (visually hidden), header cells with scope, and a body the caller fills.
export function table(id, caption, headers) {
  // A wide table scrolls sideways in a narrow window: the region is focusable so the keyboard can scroll it too.
  return el(
    "div",
    { class: "table-wrap", role: "region", "aria-label": caption, tabIndex: 0 },
    el(
      "table",
      { id, class: "grid" },
      el("caption", { class: "sr-only" }, caption),
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody"),
    ),
  );
}

export function emptyRow(tbody, columns, text) {
  tbody.append(el("tr", {}, el("td", { colSpan: columns, class: "muted" }, text)));
}

// Client-side pages of a list the API returns whole (holds, a hold's recordings, report lists).
export class Pages {
  constructor(size = 25) {
    this.size = size;
    this.items = [];
    this.page = 0;
  }
  set(items) {
    this.items = items;
    this.page = 0;
  }
  get current() {
    return this.items.slice(this.page * this.size, (this.page + 1) * this.size);
  }
  get count() {
    return Math.max(1, Math.ceil(this.items.length / this.size));
  }
  controls(onChange, label) {
    const prev = el("button", { type: "button", class: "secondary", disabled: this.page === 0 }, "Previous");
    const next = el("button", { type: "button", class: "secondary", disabled: this.page + 1 >= this.count }, "Next");
    prev.addEventListener("click", () => { this.page -= 1; onChange(); });
    next.addEventListener("click", () => { this.page += 1; onChange(); });
    return el("nav", { class: "pager", "aria-label": label }, prev, el("span", { class: "muted" }, `Page ${this.page + 1} of ${this.count}`), next);
  }
}

// "More" paging over the API's continuation tokens.
export function moreButton(id, onClick) {
  const button = el("button", { id, type: "button", class: "secondary", hidden: true }, "More");
  button.addEventListener("click", onClick);
  return button;
}

export function showError(error) {
  const target = $("#error");
  if (!target) return;
  target.textContent = error ? (error.message || String(error)) : "";
}
