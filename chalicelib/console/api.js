// The console's only way to the server: the public /v1 API, with the signed-in user's token.
// The session lives in sessionStorage (this tab only, survives a reload, never in a URL).

// The API is one folder above this script: right at the root of `chalice local` and under
// API Gateway's stage prefix (`/api/console/api.js` -> `/api/`).
export const API_BASE = new URL("../", import.meta.url);

const SESSION_KEY = "nshub.session";
const NAMESPACE_RE = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){1,38}$/;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function apiBaseText() {
  return API_BASE.href.replace(/\/$/, "");
}

export function isNamespace(text) {
  return NAMESPACE_RE.test(text);
}

export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(SESSION_KEY));
    return value && value.id_token && value.username ? value : null;
  } catch {
    return null;
  }
}

function saveSession(value) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

export function forgetSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

function url(path, query) {
  const target = new URL(path, API_BASE);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") target.searchParams.set(key, value);
  }
  return target;
}

// One path segment, encoded: names follow a strict grammar, but nothing a user typed goes
// into a URL unencoded.
export function seg(text) {
  return encodeURIComponent(text);
}

async function send(method, path, { body, query, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(url(path, query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
    });
  } catch {
    throw new ApiError(0, "NetworkError",
      "the server did not answer: check your connection, then reload the page");
  }
}

async function parse(response) {
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const code = (data && data.Code) || response.headers.get("X-Error-Code") || `HTTP${response.status}`;
  const message = (data && typeof data.Message === "string" && data.Message)
    || `the server answered ${response.status}: try again, and report it if it keeps happening`;
  throw new ApiError(response.status, code, message);
}

async function refreshSession(current) {
  if (!current.refresh_token) return null;
  const response = await send("POST", "v1/auth/refresh", { body: { refresh_token: current.refresh_token } });
  if (!response.ok) return null;
  const tokens = await response.json();
  const renewed = { ...current, id_token: tokens.id_token, refresh_token: tokens.refresh_token || current.refresh_token };
  saveSession(renewed);
  return renewed;
}

// A call as the signed-in user (anonymous when signed out). An expired ID token is renewed
// once with the refresh token; if that fails the session is over and the caller hears 401.
export async function call(method, path, options = {}) {
  const current = session();
  let response = await send(method, path, { ...options, token: current && current.id_token });
  if (response.status === 401 && current) {
    const renewed = await refreshSession(current);
    if (!renewed) {
      forgetSession();
      throw new ApiError(401, "Unauthorized", "your session has ended: sign in again");
    }
    response = await send(method, path, { ...options, token: renewed.id_token });
  }
  return parse(response);
}

export async function signIn(username, password) {
  const tokens = await parse(await send("POST", "v1/auth/login", { body: { username, password } }));
  const me = await parse(await send("GET", "v1/me", { token: tokens.id_token }));
  saveSession({ username: me.username, namespace: me.namespace, id_token: tokens.id_token,
    refresh_token: tokens.refresh_token });
  return me;
}

export async function signUp(username, email, password) {
  return parse(await send("POST", "v1/auth/signup", { body: { username, email, password } }));
}

export async function confirmSignUp(username, code) {
  return parse(await send("POST", "v1/auth/confirm", { body: { username, code } }));
}
