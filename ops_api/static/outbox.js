// The crew's outbox: what they tapped while the signal was gone, kept on the device
// (IndexedDB) until the server has it. Each entry is one mark (POST /jobs/{id}/marks, with
// a client-made mark_id so a retry is stored once) or a start / complete. Entries are sent
// in the order they were made, marks of a job in one batch; a refused entry (the job was
// cancelled or reassigned, a bad value) stays, with the server's words, until the crew
// dismisses it. Never dropped silently.
import { api } from "/static/common.js";

const DB_NAME = "cityops-outbox", STORE = "entries";
const RETRY_MIN_MS = 2000, RETRY_MAX_MS = 60000;

let opened = null;
function database() {
  opened ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "mark_id" });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  return opened;
}

async function tx(mode, work) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const result = work(t.objectStore(STORE));
    t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    t.onerror = () => reject(t.error);
  });
}

export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));   // RFC 4122 version 4 by hand
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// The device's time now, ISO 8601 with its offset (the contract's marked_at).
export function deviceTime(date = new Date()) {
  const off = -date.getTimezoneOffset(), sign = off >= 0 ? "+" : "-", a = Math.abs(off);
  const local = new Date(date.getTime() + off * 60000).toISOString().slice(0, 19);
  return `${local}${sign}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

// Every entry, oldest first; `job` narrows to one job.
export async function entries(job) {
  const all = (await tx("readonly", (s) => s.getAll())) || [];
  return all.filter((e) => job === undefined || e.job_id === String(job)).sort((a, b) => a.seq - b.seq);
}

let counter = 0;
// Queue an action: kind "mark" (with `mark`: {stop, status, reason, note}), "start" or "complete" ({note}).
export async function enqueue(jobId, userId, kind, body = {}) {
  const mark_id = newId();
  const entry = { mark_id, job_id: String(jobId), user_id: userId, kind, state: "waiting", error: null,
                  seq: Date.now() * 1000 + (counter++ % 1000),
                  body: kind === "mark" ? { mark_id, marked_at: deviceTime(), note: "", reason: null, ...body } : body };
  await tx("readwrite", (s) => s.put(entry));
  changed();
  schedule(0);
  return entry;
}

export async function dismiss(markId) {
  await tx("readwrite", (s) => s.delete(markId));
  changed();
}

async function update(list) {
  await tx("readwrite", (s) => { for (const e of list) s.put(e); });
}

async function remove(list) {
  await tx("readwrite", (s) => { for (const e of list) s.delete(e.mark_id); });
}

// --- sending -------------------------------------------------------------------------------
const listeners = new Set();
// fn({type: "changed"}) after any change, fn({type: "answer", job, results}) with the server's job JSON,
// fn({type: "sent" | "refused", job_id}) after a start or complete went, or the server refused a job's entries.
export function listen(fn) { listeners.add(fn); }
function emit(event) { for (const fn of listeners) fn(event); }
function changed() { emit({ type: "changed" }); }

let currentUser = null, timer = null, delay = RETRY_MIN_MS, sending = null;

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(() => { flush(); }, ms);
}

// A network failure (status 0) or a server in trouble (5xx, 429): try again later.
function transient(err) { return err.status === 0 || err.status >= 500 || err.status === 429; }

async function sendRun(jobId, run) {
  const path = `/jobs/${encodeURIComponent(jobId)}`;
  if (run[0].kind === "mark") {
    const answer = await api(`${path}/marks`, { method: "POST", body: { marks: run.map((e) => e.body) } });
    emit({ type: "answer", job: answer.job, results: answer.results || [] });
  } else if (run[0].kind === "start") {
    try {
      await api(`${path}/start`, { method: "POST", body: {} });
    } catch (err) {
      if (err.status !== 409) throw err;   // already started (or done): what the crew wanted
      const job = await api(path);
      if (job.state === "cancelled") throw err;
    }
  } else {
    await api(`${path}/complete`, { method: "POST", body: run[0].body });
  }
  if (run[0].kind !== "mark") emit({ type: "sent", job_id: jobId });
}

async function flushNow() {
  const waiting = (await entries()).filter((e) => e.state === "waiting" && e.user_id === currentUser);
  let failed = false;
  while (waiting.length) {   // consecutive marks of one job go together (at most 500: the contract's cap)
    const first = waiting.shift(), run = [first];
    while (first.kind === "mark" && waiting.length && run.length < 500 && waiting[0].kind === "mark"
           && waiting[0].job_id === first.job_id) run.push(waiting.shift());
    try {
      await sendRun(first.job_id, run);
      await remove(run);
    } catch (err) {
      if (transient(err)) { failed = true; break; }
      for (const e of run) Object.assign(e, { state: "refused", error: err.message, hint: err.hint || "" });
      await update(run);
      // the job's later entries would be refused for the same reason: keep them with it
      const rest = waiting.filter((e) => e.job_id === first.job_id);
      for (const e of rest) Object.assign(e, { state: "refused", error: err.message, hint: err.hint || "" });
      await update(rest);
      waiting.splice(0, waiting.length, ...waiting.filter((e) => e.job_id !== first.job_id));
      emit({ type: "refused", job_id: first.job_id });
    } finally {
      changed();
    }
  }
  if (failed) {
    schedule(delay);
    delay = Math.min(delay * 2, RETRY_MAX_MS);
  } else {
    delay = RETRY_MIN_MS;
  }
}

// Send what is waiting now (one sender at a time).
export function flush() {
  if (!currentUser) return Promise.resolve();
  sending ??= flushNow().finally(() => { sending = null; });
  return sending;
}

// Start sending for this user: now, when the connection returns, and on a backing-off timer.
export function start(userId) {
  currentUser = userId;
  addEventListener("online", () => { delay = RETRY_MIN_MS; flush(); });
  flush();
}
