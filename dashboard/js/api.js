// The API of the same origin: JSON in and out, errors as their `detail`, the admin key kept in
// sessionStorage (this browser tab only, never localStorage or a cookie).

const KEY_NAME = "cultivate-ml-admin-key";

export function adminKey() {
  try {
    return sessionStorage.getItem(KEY_NAME) || "";
  } catch (e) {
    return "";
  }
}

export function setAdminKey(key) {
  if (key) sessionStorage.setItem(KEY_NAME, key);
  else sessionStorage.removeItem(KEY_NAME);
  document.dispatchEvent(new CustomEvent("cml-key-changed"));
}

// An answer that was not 2xx: status, the contract's `error` code and its `detail` sentence.
export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.code = code;
  }
}

// fetch a route; resolves to the parsed JSON (or text with {text: true}); rejects with ApiError.
// opts: method, json (a body to send as JSON), body + contentType (raw), admin (send the key).
export async function api(path, opts = {}) {
  const headers = { Accept: "application/json" };
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    headers["Content-Type"] = opts.contentType || "text/plain";
    body = opts.body;
  }
  const key = adminKey();
  if (opts.admin && key) headers.Authorization = "Bearer " + key;
  let res;
  try {
    res = await fetch(path, { method: opts.method || (body ? "POST" : "GET"), headers, body,
                              cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "The service did not answer (" + e.message + ").", "network");
  }
  const text = await res.text();
  if (!res.ok) {
    let detail = "HTTP " + res.status + " " + res.statusText;
    let code = "http_" + res.status;
    try {
      const j = JSON.parse(text);
      if (j && typeof j.detail === "string") detail = j.detail;
      if (j && typeof j.error === "string") code = j.error;
    } catch (e) {
      /* not JSON: keep the status line */
    }
    throw new ApiError(res.status, detail, code);
  }
  if (opts.text) return text;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(res.status, "The service answered something that is not JSON.", "bad_json");
  }
}
