// The one way the pages reach the server: the public /v1 API with the signed-in key, exactly
// as the SDKs do. The key lives in sessionStorage: it is gone when the tab is closed.

const KEY_SLOT = "polytune.apiKey";

export const session = {
  get key() { return sessionStorage.getItem(KEY_SLOT); },
  signIn(key) { sessionStorage.setItem(KEY_SLOT, key); },
  signOut() { sessionStorage.removeItem(KEY_SLOT); },
};

// The server's OpenAI error envelope, kept whole: the message and the field it names.
export class ApiError extends Error {
  constructor(status, message, param) {
    super(param ? `${message} (param: ${param})` : message);
    this.status = status;
    this.param = param;
  }
}

// A job with polytune's own status: /v1 maps `status` into OpenAI's enum (a paused job reads
// "queued" there); the pages tell paused from queued, so they read polytune_status.
export function ownStatus(job) {
  return { ...job, status: job.polytune_status || job.status };
}

async function send(path, init) {
  const headers = { Authorization: `Bearer ${session.key}`, ...(init.headers || {}) };
  const res = await fetch(`/v1${path}`, { ...init, headers });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = data && data.error;
    throw new ApiError(res.status, (err && err.message) || text || res.statusText, err && err.param);
  }
  return data;
}

export function get(path) {
  return send(path, { method: "GET" });
}

export function post(path, body) {
  if (body instanceof FormData) return send(path, { method: "POST", body });
  return send(path, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

export function del(path) {
  return send(path, { method: "DELETE" });
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
