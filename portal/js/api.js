// The compliance API (/api/v1): every request carries the signed-in person's access token; errors are the API's
// problem+json answers, shown as their title and detail.
import { accessToken, signedOut } from "./auth.js";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
}

// `body` is sent as JSON; `text` as it is, with `contentType` (a YAML document, for instance).
export async function api(path, { method = "GET", body, text, contentType, reason, headers = {} } = {}) {
  const token = await accessToken();
  const all = { Authorization: `Bearer ${token}`, ...headers };
  if (reason) all["X-Access-Reason"] = reason;
  if (body !== undefined) all["Content-Type"] = "application/json";
  if (text !== undefined) all["Content-Type"] = contentType || "text/plain";
  const payload = text !== undefined ? text : body === undefined ? undefined : JSON.stringify(body);
  const response = await fetch(`${API}${path}`, { method, headers: all, body: payload });
  if (response.status === 401) {
    signedOut("Your sign-in is no longer valid; sign in again.");
    throw new ApiError(401, "Not signed in", "sign in again");
  }
  if (!response.ok && response.status !== 206) {
    let title = `${response.status} ${response.statusText}`;
    let detail = "";
    try {
      const problem = await response.json();
      title = problem.title || title;
      detail = problem.detail || "";
    } catch (error) {
      /* not problem+json */
    }
    throw new ApiError(response.status, title, detail);
  }
  return response;
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

export function enc(value) {
  return encodeURIComponent(value);
}
