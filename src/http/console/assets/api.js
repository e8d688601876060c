// Every read and action of the console goes through the server's public HTTP API (/v2 and
// the /__qstash controls) with the selected user's token, exactly as an SDK would.

let token = "";

export function setToken(value) {
  token = value;
}

export function currentToken() {
  return token;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Appends query parameters; arrays repeat the name, empty values are left out. */
function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) params.append(key, String(v));
  }
  const qs = params.toString();
  if (!qs) return path;
  return path + (path.includes("?") ? "&" : "?") + qs;
}

/**
 * One API call. `path` is sent as written (destinations in publish paths stay raw).
 * Resolves to the parsed JSON (or text); rejects with an ApiError carrying the server's
 * `{"error"}` message.
 */
export async function api(method, path, { query, headers = {}, body, json } = {}) {
  const init = { method, headers: { Authorization: `Bearer ${token}`, ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  let res;
  try {
    res = await fetch(withQuery(path, query), init);
  } catch (error) {
    throw new ApiError(0, `the server did not answer (${error.message})`);
  }
  const text = await res.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: keep the text
  }
  if (!res.ok) {
    const message = data && typeof data === "object" && data.error ? data.error : `${res.status} ${res.statusText}`;
    throw new ApiError(res.status, message);
  }
  return data;
}

export const get = (path, query) => api("GET", path, { query });
export const post = (path, options) => api("POST", path, options);
export const del = (path, options) => api("DELETE", path, options);
export const patch = (path, options) => api("PATCH", path, options);

/** A path segment (queue names, flow-control keys, ids) safely encoded. */
export const seg = (value) => encodeURIComponent(value);
