// Signing in: MSAL.js (msal-browser, served from vendor/) with the authorization code flow and PKCE against the
// Entra authority of config.json — Entra ID in Azure, the Teams/Graph simulator locally: one code path.
// Tokens stay in memory (cacheLocation "memoryStorage"): a redirect would reload the page and lose them, so sign-in
// is a popup; MSAL renews tokens silently with the refresh token (or a hidden iframe). Roles come from the
// API (GET /api/v1/me): the portal does not read access tokens, which belong to the API.
// On the local stack only, an access token can be pasted instead (a documented fallback).

let config = { signIn: null, tokenPaste: false };
let client = null;
let account = null;
let pasted = null;
let onChange = () => {};

export function portalConfig() {
  return config;
}

function scopes() {
  return config.signIn ? config.signIn.scopes : [];
}

export async function initAuth(changed) {
  onChange = changed;
  const response = await fetch("config.json", { cache: "no-store" });
  config = await response.json();
  if (config.signIn && window.msal) {
    const here = new URL(".", window.location.href);
    client = new window.msal.PublicClientApplication({
      auth: {
        clientId: config.signIn.clientId,
        authority: config.signIn.authority,
        knownAuthorities: config.signIn.knownAuthorities,
        redirectUri: new URL("redirect.html", here).href,
        postLogoutRedirectUri: new URL("redirect.html", here).href,
      },
      cache: { cacheLocation: "memoryStorage" },
    });
    await client.initialize();
  }
}

export function signedIn() {
  return Boolean(account || pasted);
}

export function who() {
  if (account) return account.name || account.username;
  return pasted ? "access token" : "";
}

export async function signIn() {
  if (!client) throw new Error("Sign-in is not configured for this portal (PORTAL_CLIENT_ID).");
  const result = await client.loginPopup({ scopes: scopes(), prompt: "select_account" });
  account = result.account;
  client.setActiveAccount(account);
  onChange();
}

export function usePastedToken(token) {
  if (!config.tokenPaste) throw new Error("Pasting a token works only on the local stack.");
  if (token.split(".").length !== 3) throw new Error("That is not a JWT access token.");
  pasted = token;
  onChange();
}

export async function accessToken() {
  if (pasted) return pasted;
  if (!client || !account) throw new Error("Not signed in.");
  try {
    return (await client.acquireTokenSilent({ scopes: scopes(), account })).accessToken;
  } catch (error) {
    if (error instanceof window.msal.InteractionRequiredAuthError) {
      return (await client.acquireTokenPopup({ scopes: scopes(), account })).accessToken;
    }
    throw error;
  }
}

export function signedOut(message) {
  account = null;
  pasted = null;
  onChange(message);
}

export async function signOut() {
  const leaving = account;
  account = null;
  pasted = null;
  if (client && leaving) {
    // Ends the session at the authority too (front-channel logout in a popup), best effort.
    await client.logoutPopup({ account: leaving }).catch(() => client.clearCache({ account: leaving }));
  }
  onChange();
}
