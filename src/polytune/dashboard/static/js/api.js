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

// The key's own organization ({id, name}; polytune's GET /v1/organization), asked once per
// signed-in key: the pages show its name where the API's objects carry its id.
let org = null;
export function organization() {
  if (!org || org.key !== session.key) {
    // A failed answer is not kept: the next page asks again.
    org = { key: session.key, answer: get("/organization").catch((err) => { org = null; throw err; }) };
  }
  return org.answer;
}

// A multipart upload through XMLHttpRequest, which (unlike fetch) reports the bytes sent:
// onProgress(fraction) while the body goes up, then the server validates the file before it
// answers; the answer or the API's error as `send` gives them.
export function uploadWithProgress(path, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/v1${path}`);
    xhr.setRequestHeader("Authorization", `Bearer ${session.key}`);
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("error", () => reject(new ApiError(0, "The upload failed: the server could not be reached.")));
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
      const err = data && data.error;
      reject(new ApiError(xhr.status, (err && err.message) || xhr.statusText, err && err.param));
    });
    xhr.send(body);
  });
}

// A download needs the key in a header, which a plain link cannot send: fetch the bytes, then
// hand them to the browser as a file, named `filename` or as the server's Content-Disposition
// says. The bytes are held in the tab's memory until saved: fine for result files and small
// models' weights; the CLI (`polytune models download`, resumable) is the way for large ones.
// onProgress(received, total) follows the body as it comes (total null when unsized).
export async function download(path, filename, onProgress) {
  const res = await fetch(`/v1${path}`, { headers: { Authorization: `Bearer ${session.key}` } });
  if (!res.ok) {
    let err = null;
    try { err = (await res.json()).error; } catch { err = null; }
    throw new ApiError(res.status, (err && err.message) || res.statusText, err && err.param);
  }
  const total = Number(res.headers.get("Content-Length")) || null;
  const chunks = [];
  let received = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    if (onProgress) onProgress(received, total);
  }
  const name = filename || dispositionName(res.headers.get("Content-Disposition")) || "download";
  const url = URL.createObjectURL(new Blob(chunks));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// The file name a Content-Disposition header gives: RFC 8187's filename* (UTF-8) first, then
// the quoted ASCII fallback (dialects/common/downloads.py writes both).
function dispositionName(header) {
  if (!header) return null;
  const star = header.match(/filename\*=UTF-8''([^;]+)/i);
  if (star) {
    try { return decodeURIComponent(star[1].trim()); } catch { /* the fallback below */ }
  }
  const plain = header.match(/filename="([^"]*)"/i);
  return plain ? plain[1] : null;
}
