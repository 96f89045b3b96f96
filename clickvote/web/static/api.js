// The JSON API client and the signed-in user (state.me: GET /users/self).

export const state = { me: null, groupsPage: 1 };

let onUnauthorized = () => {};
// What to do when the session is gone (a 401 outside /auth/): the router sends to /login.
export function setUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  // body: the server's {message, statusCode, field?, errors?: [{field, message}], code?}
  constructor(status, body) {
    const msg = typeof body?.message === "string" ? body.message : null;
    super(msg || (status ? `Request failed (HTTP ${status})` : "Network error: is the server running?"));
    this.status = status;
    this.body = body || {};
  }
}

// The field errors of an answer as {field: message}: a 422 lists them in `errors`, other
// refusals (409 duplicate name or email, a 422 of ours) name one `field`.
export function fieldErrors(err) {
  const b = err?.body || {}, out = {};
  for (const e of b.errors || []) if (e.field && !out[e.field]) out[e.field] = e.message;
  if (b.field && !out[b.field]) out[b.field] = b.message;
  return out;
}

export function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
}

export function setCookie(name, value) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  const age = value ? "; max-age=31536000" : "; max-age=0";
  document.cookie = `${name}=${encodeURIComponent(value || "")}; path=/; SameSite=Lax${age}${secure}`;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && !/^\/auth\/(login|register)$/.test(path)) headers["X-CSRF-Token"] = cookie("csrftoken") || "";
  let r;
  try {
    r = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, null);
  }
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // not ours (a proxy's error page): the status says enough
  }
  if (r.ok) return data;
  const err = new ApiError(r.status, data);
  if (r.status === 401 && !path.startsWith("/auth/")) {
    state.me = null;
    onUnauthorized();
  }
  throw err;
}

export async function loadMe() {
  try {
    state.me = await api("GET", "/users/self");
  } catch (e) {
    state.me = null;
    if (e.status !== 401 && e.status !== 403) throw e;
  }
  return state.me;
}
