// Shared by the pages: the API client (same origin, session cookie, JSON bodies), error
// display from the API's {"error", "hint"} body, the signed-in user and the header.

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint || "";
  }
}

// The message an error body carries: ours ({error, hint}) or FastAPI's validation list.
async function errorFrom(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (body && typeof body.error === "string") return new ApiError(response.status, body.error, body.hint);
  if (body && Array.isArray(body.detail)) {
    const text = body.detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`).join("; ");
    return new ApiError(response.status, text, "");
  }
  if (body && typeof body.detail === "string") return new ApiError(response.status, body.detail, "");
  return new ApiError(response.status, `the server answered ${response.status} ${response.statusText}`,
                      "try again in a moment");
}

export function loginUrl() {
  const here = location.pathname + location.search;
  return `/login?next=${encodeURIComponent(here)}`;
}

// fetch JSON from the API. `body` is sent as JSON; a FormData / URLSearchParams as it is.
// A 401 sends the browser to the login page unless `allow401` is set.
export async function api(path, { method = "GET", body, allow401 = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body instanceof URLSearchParams || body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "cannot reach CityOps", "check your connection and try again");
  }
  if (response.status === 401 && !allow401) {
    location.assign(loginUrl());
    throw new ApiError(401, "please sign in", "");
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// Show an error (or clear it with null) in an element with class "error" and role="alert".
export function showError(element, error) {
  element.replaceChildren();
  if (!error) return;
  const message = document.createElement("span");
  message.textContent = error.message || String(error);
  element.append(message);
  if (error.hint) {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = error.hint;
    element.append(hint);
  }
}

export function homeFor(role) {
  if (role === "householder") return "/home";
  if (role === "landlord") return "/landlord";  // landlord officers: their damp and mould cases
  return "/crew";  // crews, operators and admins
}

// A path on this site to go back to after signing in, or null. The browser's own URL parser
// decides: it drops tabs and newlines and reads a backslash as "/", so "/<tab>/host" and
// "/<backslash>host" both mean another host ("//host"). Control characters, spaces and
// backslashes are refused outright; what is left must resolve to this origin.
export function safeNext(value, origin = location.origin) {
  if (typeof value !== "string" || !value.startsWith("/") || /[\u0000-\u0020\u007f\\]/.test(value)) return null;
  let url;
  try { url = new URL(value, origin); } catch { return null; }
  if (url.origin !== origin) return null;
  return url.pathname + url.search + url.hash;
}

// The signed-in user (or the login page), shown in the header with a sign-out button.
export async function signedIn() {
  const user = await api("/auth/me");
  const who = document.getElementById("who");
  if (who) who.textContent = user.display_name || user.username;
  const out = document.getElementById("sign-out");
  if (out) {
    out.hidden = false;
    out.addEventListener("click", async () => {
      try { await api("/auth/logout", { method: "POST", allow401: true }); } catch { /* signed out anyway */ }
      if (self.caches) await caches.delete(API_CACHE);   // the next person on this phone sees none of it
      location.assign("/login");
    });
  }
  return user;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

export function fmt(value, digits = 1) {
  return value === null || value === undefined || Number.isNaN(value) ? "–" : Number(value).toFixed(digits);
}

export function when(iso) {
  const d = new Date(iso);
  return d.toLocaleString(undefined, { weekday: "short", day: "numeric", month: "short",
                                       hour: "2-digit", minute: "2-digit" });
}

// --- offline (sw.js keeps copies of the API's answers in API_CACHE) ---------------------------
export const API_CACHE = "cityops-api";

// The copy of a GET answer the service worker kept, or null: for drawing a page at once,
// before (or without) the network's answer.
export async function cachedJson(path) {
  if (!self.caches) return null;
  try {
    const hit = await caches.match(path, { cacheName: API_CACHE });
    return hit ? await hit.json() : null;
  } catch { return null; }
}

// Keep `value` as the cached answer for GET `path` (after a POST answered with it).
export async function keepJson(path, value) {
  if (!self.caches) return;
  const cache = await caches.open(API_CACHE);
  await cache.put(path, new Response(JSON.stringify(value), { headers: { "Content-Type": "application/json" } }));
}

// The signed-in user as signedIn() gives it, kept on the phone; with no signal, the kept one
// (a 401 still sends the browser to the login page).
export async function signedInOrKept() {
  try {
    const user = await signedIn();
    const before = await cachedJson("/auth/me");
    if (before && before.user_id !== user.user_id && self.caches) await caches.delete(API_CACHE);  // someone else's
    await keepJson("/auth/me", user);
    return user;
  } catch (err) {
    const kept = err.status !== 401 ? await cachedJson("/auth/me") : null;
    if (!kept) throw err;
    const who = document.getElementById("who");
    if (who) who.textContent = kept.display_name || kept.username;
    return kept;
  }
}

// Install the service worker (sw.js) once the page is usable, so its downloads do not slow the first view.
export function offlineReady() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  return navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => null);
}
