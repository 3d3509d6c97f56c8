// The portal's shell: sign-in, the navigation the person's roles allow, and hash routes to one module per page
// (js/pages/<name>.js, loaded when first visited). A page module exports `render(view, arg, ctx)` and may return
// a function that stops what it started (timers) when the person leaves the page.
import { apiJson } from "./api.js";
import { accessToken, initAuth, portalConfig, signIn, signOut, signedIn, usePastedToken, who } from "./auth.js";
import { $, el, showError } from "./ui.js";

const OFFICER = "Compliance.Officer";
const AUDITOR = "Compliance.Auditor";
const ADMIN = "Recorder.Admin";

// Which roles may open each page (the API enforces the same; this only keeps the UI honest).
export const PAGES = [
  { name: "search", title: "Recordings", roles: [OFFICER, AUDITOR] },
  { name: "chats", title: "Chats", roles: [OFFICER, AUDITOR] },
  { name: "live", title: "Live", roles: [OFFICER, AUDITOR] },
  { name: "holds", title: "Legal holds", roles: [OFFICER, AUDITOR] },
  { name: "verdicts", title: "Completeness", roles: [OFFICER, AUDITOR] },
  { name: "coverage", title: "Coverage", roles: [OFFICER, AUDITOR, ADMIN] },
  { name: "reports", title: "Reports", roles: [AUDITOR] },
  { name: "exports", title: "Exports", roles: [OFFICER, AUDITOR] },
  { name: "audit", title: "Audit trail", roles: [AUDITOR] },
  { name: "policy", title: "Policy", roles: [ADMIN] },
  { name: "recording", title: "Recording", roles: [OFFICER, AUDITOR], hidden: true },
];

const state = { roles: new Set(), me: null, leave: null };

const ctx = {
  has: (...roles) => roles.some((role) => state.roles.has(role)),
  get roles() {
    return state.roles;
  },
  get me() {
    return state.me;
  },
  OFFICER,
  AUDITOR,
  ADMIN,
};

function allowed(page) {
  return page.roles.some((role) => state.roles.has(role));
}

function renderNav(current) {
  const nav = $("#nav");
  nav.replaceChildren();
  for (const page of PAGES.filter((p) => !p.hidden && allowed(p))) {
    nav.append(
      el("a", { href: `#/${page.name}`, "data-nav": page.name, "aria-current": page.name === current ? "page" : null }, page.title),
    );
  }
}

async function loadMe() {
  try {
    state.me = await apiJson("/me");
    state.roles = new Set(state.me.roles);
  } catch (error) {
    state.me = null;
    state.roles = new Set();
    showError(error);
  }
}

// The health report's warnings, to anyone signed in with a role: "evidence store not locked" until the recordings
// container's default WORM policy is locked (issue 13, finding 3; docs/deploy.md, "Locking the evidence").
async function checkEvidenceStore() {
  const banner = $("#store-warning");
  banner.hidden = true;
  if (!state.roles.size) return;
  try {
    const response = await fetch("/api/health", { headers: { Authorization: `Bearer ${await accessToken()}` } });
    const report = await response.json();
    if ((report.warnings || []).includes("evidence store not locked")) {
      banner.textContent = "Evidence store not locked: until an operator locks the recordings container's default immutability policy, someone with enough Azure rights could shorten how long sealed recordings are kept.";
      banner.hidden = false;
    }
  } catch (error) {
    /* the health check is advisory here; the pages report their own errors */
  }
}

async function authChanged(message) {
  if (signedIn()) {
    await loadMe();
    checkEvidenceStore();
  } else {
    state.me = null;
    state.roles = new Set();
    $("#store-warning").hidden = true;
  }
  $("#sign-in-error").textContent = message || "";
  route();
}

function showSignIn() {
  const config = portalConfig();
  $("#sign-in").hidden = false;
  $("#sign-in-button").hidden = !config.signIn;
  $("#token-form").hidden = !config.tokenPaste;
  if (!config.signIn && !config.tokenPaste) {
    $("#sign-in-intro").textContent = "Sign-in is not configured for this portal: set PORTAL_CLIENT_ID (docs/deploy.md).";
  }
}

// Each route() draws into a view element of its own, put in place of the last one: a page whose module (or whose
// own render) was still loading when the person moved on then draws into a detached element, never beside the page
// that replaced it, and whatever it started is stopped at once.
let routes = 0;

async function route() {
  const turn = ++routes;
  if (state.leave) {
    state.leave();
    state.leave = null;
  }
  showError("");
  const view = el("div", { id: "view" });
  $("#view").replaceWith(view);
  const signed = signedIn();
  $("#who").hidden = !signed;
  $("#sign-in").hidden = true;
  if (!signed) {
    $("#nav").replaceChildren();
    showSignIn();
    return;
  }
  $("#who-name").textContent = (state.me && state.me.name) || who();
  $("#who-roles").textContent = [...state.roles].join(", ") || "no role";
  const [, name, ...rest] = (window.location.hash || "#/").split("/");
  const visible = PAGES.filter((p) => !p.hidden && allowed(p));
  const page = PAGES.find((p) => p.name === name) || visible[0];
  renderNav(page ? page.name : "");
  if (!page) {
    view.append(el("section", { class: "card" }, el("h1", {}, "No access"), el("p", {}, "Your account holds no role of the compliance API. Ask an administrator to assign you Compliance.Officer, Compliance.Auditor or Recorder.Admin.")));
    return;
  }
  if (!allowed(page)) {
    view.append(el("section", { class: "card" }, el("h1", {}, "Not for your role"), el("p", {}, `${page.title} needs one of: ${page.roles.join(", ")}.`)));
    return;
  }
  document.title = `${page.title} — Verbatim`;
  try {
    const module = await import(`./pages/${page.name}.js`);
    if (turn !== routes) return; // a later route() owns the page now
    const arg = rest.length ? decodeURIComponent(rest.join("/")) : "";
    const leave = (await module.render(view, arg, ctx)) || null;
    if (turn !== routes) {
      if (leave) leave();
      return;
    }
    state.leave = leave;
  } catch (error) {
    if (turn === routes) showError(error);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#sign-in-button").addEventListener("click", () => {
    $("#sign-in-error").textContent = "";
    signIn().catch((error) => {
      $("#sign-in-error").textContent = `Sign-in failed: ${error.errorMessage || error.message}`;
    });
  });
  $("#token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      usePastedToken($("#token").value.trim());
    } catch (error) {
      $("#sign-in-error").textContent = error.message;
    }
  });
  $("#sign-out").addEventListener("click", () => signOut());
  // The skip link moves focus to the content without touching the hash, which is the route.
  $("a.skip").addEventListener("click", (event) => {
    event.preventDefault();
    $("#main").focus();
  });
  window.addEventListener("hashchange", route);
  try {
    await initAuth(authChanged);
  } catch (error) {
    $("#sign-in-error").textContent = `The portal could not start: ${error.message}`;
  }
  route();
});
