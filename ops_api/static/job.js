// One job: its steps in driving order, each bin marked emptied or skipped (with a reason) and
// each gritting section done, start and complete, a note for the office, the route map and
// the printable sheet. Works with no signal: the page draws from the copy the service worker
// kept, and every tap goes to the outbox (outbox.js), sent when the connection returns.
import { api, cachedJson, el, keepJson, offlineReady, showError, signedInOrKept, when } from "/static/common.js";
import * as outbox from "/static/outbox.js";

const id = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const PATH = `/jobs/${encodeURIComponent(id)}`;
const $ = (name) => document.getElementById(name);
const error = $("error"), status = $("status");
const REASONS = { blocked: "blocked", contaminated: "contaminated", not_out: "not put out", damaged: "damaged",
                  other: "other" };
const OPEN = new Set(["assigned", "started"]);

let job = null, user = null, queued = [], skipping = null, focusAfter = null, mapDrawn = null;

const hhmm = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
                            : "");
const who = (userId) => (user && userId === user.user_id ? "You" : userId || "Someone");
const statusWords = (s, reason) => (s === "skipped" ? `skipped${reason ? ` (${REASONS[reason] || reason})` : ""}`
                                                    : s === "done" ? (job.kind === "bins" ? "emptied" : "done") : "not done");

// The stop's status as the crew sees it: the last mark waiting to be sent, else the server's.
function effective(step) {
  const mine = queued.filter((e) => e.kind === "mark" && e.state === "waiting" && e.body.stop === step.stop);
  const last = mine[mine.length - 1];
  return last ? { status: last.body.status, reason: last.body.reason, waiting: true }
              : { status: step.status || (step.done ? "done" : "pending"), reason: step.reason, waiting: false };
}

function effectiveState() {
  const waiting = queued.filter((e) => e.state === "waiting");
  if (waiting.some((e) => e.kind === "complete")) return "completed";
  if (job.state === "assigned" && waiting.some((e) => e.kind === "start")) return "started";
  return job.state;
}

function stepItem(step, editable) {
  const item = el("li", { value: step.seq });
  item.append(el("span", { class: "what", text: step.text }));
  if (!step.stop) {
    if (step.done) item.classList.add("done");
    return item;
  }
  const now = effective(step);
  Object.assign(item.dataset, { stop: step.stop, status: now.status });
  item.classList.add("stop", now.status);
  const lines = [];
  if (now.waiting) lines.push(`${statusWords(now.status, now.reason)}, waiting to send`);
  else if (now.status !== "pending") lines.push(`${who(step.marked_by)} marked this ${statusWords(now.status, now.reason)}`
                                               + (step.marked_at ? ` at ${hhmm(step.marked_at)}` : ""));
  if (step.street && !step.text.includes(step.street)) lines.push(step.street);
  for (const line of lines) item.append(el("span", { class: "state small", text: line }));
  if (step.conflict) {
    const c = step.conflict;
    item.append(el("span", { class: "conflict small", "data-conflict": c.by,
                             text: `${who(c.by)} marked this ${statusWords(c.status, c.reason)} at ${hhmm(c.marked_at)}` }));
  }
  if (!editable) return item;
  const label = job.kind === "bins" ? "Emptied" : "Section done";
  const name = step.street || step.stop;
  const actions = el("div", { class: "mark" });
  if (now.status === "pending") {
    actions.append(el("button", { type: "button", "data-do": "done", "aria-label": `${label}: ${name}`, text: label }));
    if (job.kind === "bins") {
      actions.append(el("button", { type: "button", class: "secondary", "data-do": "skip", "aria-expanded": String(skipping === step.stop),
                                    "aria-label": `Skip ${name}`, text: "Skip…" }));
    }
  } else {
    actions.append(el("button", { type: "button", class: "secondary", "data-do": "undo", "aria-label": `Undo: ${name}`, text: "Undo" }));
  }
  item.append(actions);
  if (skipping === step.stop && now.status === "pending") {
    const select = el("select", { id: `reason-${step.seq}`, name: "reason" },
                      ...Object.entries(REASONS).map(([value, text]) => el("option", { value, text })));
    item.append(el("div", { class: "skip-form" }, el("label", { for: `reason-${step.seq}`, text: "Why not emptied?" }), select,
                   el("div", { class: "mark" }, el("button", { type: "button", "data-do": "skip-confirm", text: "Skip this bin" }),
                      el("button", { type: "button", class: "secondary", "data-do": "skip-cancel", text: "Cancel" }))));
  }
  return item;
}

// Where the keyboard focus is in the steps (the list is redrawn as marks change): [stop, action] or null.
function focusedStop() {
  const active = document.activeElement;
  const item = active && active.closest && active.closest("#steps li[data-stop]");
  return item ? [item.dataset.stop, active.dataset.do || ""] : null;
}

function render() {
  if (!job) return;
  const focused = focusedStop();
  const state = effectiveState();
  document.title = `${job.title} · CityOps`;
  $("title").textContent = job.title;
  const parts = [job.kind === "bins" ? "Bin collection" : "Gritting", job.route_id ? `route ${job.route_id}` : null,
                 job.truck ? `truck ${job.truck}` : null, `state: ${state}`,
                 job.completed_at ? `done ${when(job.completed_at)}` : null];
  $("summary").textContent = parts.filter(Boolean).join(" · ");
  if (job.state === "cancelled") {
    showError(error, { message: `This job was cancelled${job.cancelled_by ? ` by ${job.cancelled_by}` : ""}`
                               + `${job.cancel_reason ? `: ${job.cancel_reason}` : ""}.`, hint: "ask the office what to do next" });
  }
  const editable = OPEN.has(state) && job.state !== "cancelled";
  const steps = [...(job.steps || [])].sort((a, b) => a.seq - b.seq);
  $("steps").replaceChildren(...(steps.length ? steps.map((s) => stepItem(s, editable))
                                              : [el("li", { class: "muted", text: "No steps for this job." })]));
  const stops = steps.filter((s) => s.stop).map((s) => effective(s).status);
  const count = (s) => stops.filter((x) => x === s).length;
  $("progress").textContent = stops.length ? `${count("done")} done, ${count("skipped")} skipped, `
                                             + `${count("pending")} to do, of ${stops.length}` : "";
  $("start").hidden = state !== "assigned";
  $("start").disabled = false;
  $("complete").hidden = !editable;
  $("feedback").hidden = !editable;
  $("sheet").href = `${PATH}/sheet`;
  document.body.dataset.state = job.state;
  const waiting = queued.filter((e) => e.state === "waiting").length;
  $("outbox").hidden = !waiting;
  $("outbox").textContent = waiting ? `Waiting to send (${waiting})` : "";
  document.body.dataset.waiting = String(waiting);
  const refused = queued.filter((e) => e.state === "refused");
  $("refused").hidden = !refused.length;
  $("refused-list").replaceChildren(...refused.map(refusedItem));
  if (focusAfter) {
    const target = document.querySelector(focusAfter);
    if (target) target.focus();
    focusAfter = null;
  } else if (focused) {   // back where it was: the same button, else the stop's first one
    const item = document.querySelector(`#steps li[data-stop="${CSS.escape(focused[0])}"]`);
    const target = item && (item.querySelector(`[data-do="${CSS.escape(focused[1])}"]`) || item.querySelector("button"));
    if (target) target.focus();
  }
}

function refusedItem(entry) {
  const what = entry.kind === "mark"
    ? `${entry.body.status === "note" ? `Note “${entry.body.note}”` : `${entry.body.stop}: ${statusWords(entry.body.status, entry.body.reason)}`}`
    : entry.kind === "start" ? "Start the job" : "Mark the job done";
  const dismiss = el("button", { type: "button", class: "secondary", text: "Dismiss" });
  dismiss.addEventListener("click", () => outbox.dismiss(entry.mark_id));
  return el("li", { "data-mark": entry.mark_id }, el("strong", { text: what }),
            el("span", { class: "small", text: ` (tapped ${hhmm(entry.body.marked_at || new Date(entry.seq / 1000))}) ` }),
            el("span", { class: "hint", text: `${entry.error}${entry.hint ? `: ${entry.hint}` : ""}` }), dismiss);
}

async function refreshQueue() {
  queued = await outbox.entries(id);
  render();
}

// Queue a tap for the signed-in user (known once /auth/me, or the phone's copy of it, answered).
async function queue(kind, body) {
  try {
    return await outbox.enqueue(id, (await me).user_id, kind, body);
  } catch (err) {
    showError(error, err);
    return null;
  }
}

function mark(body) {
  status.textContent = "";
  return queue("mark", body);
}

$("steps").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-do]");
  if (!button) return;
  const item = button.closest("li[data-stop]");
  const stop = item.dataset.stop, act = button.dataset.do;
  const at = `li[data-stop="${CSS.escape(stop)}"] button`;
  if (act === "done") { focusAfter = at; mark({ stop, status: "done" }); }
  else if (act === "undo") { focusAfter = at; mark({ stop, status: "pending" }); }
  else if (act === "skip") { skipping = stop; focusAfter = `li[data-stop="${CSS.escape(stop)}"] select`; render(); }
  else if (act === "skip-cancel") { skipping = null; focusAfter = at; render(); }
  else if (act === "skip-confirm") {
    skipping = null; focusAfter = at;
    mark({ stop, status: "skipped", reason: item.querySelector("select").value });
  }
});

$("start").addEventListener("click", () => {
  $("start").disabled = true;
  queue("start");
});
$("complete").addEventListener("submit", (event) => {
  event.preventDefault();
  queue("complete", { note: $("complete").note.value.trim() });
  status.textContent = "Job marked done. Thank you.";
});
$("feedback").addEventListener("submit", (event) => {
  event.preventDefault();
  const note = $("feedback-note").value.trim();
  if (!note) return;
  mark({ stop: null, status: "note", note });
  $("feedback-note").value = "";
  status.textContent = "Note kept; it goes to the office with your marks.";
});

async function take(fresh) {
  job = fresh;
  await keepJson(PATH, fresh);
  await refreshQueue();
}

outbox.listen(async (event) => {
  if (event.type === "changed") await refreshQueue();
  if (event.type === "answer" && String(event.job?.job_id) === String(id)) {
    const overtaken = event.results.filter((r) => r.outcome === "superseded").length;
    if (overtaken) status.textContent = `${overtaken} of your marks came after someone else's later one.`;
    await take(event.job.steps ? event.job : await api(PATH));
  }
  if ((event.type === "sent" || event.type === "refused") && String(event.job_id) === String(id)) {
    try { await take(await api(PATH)); } catch (err) { showError(error, err); }   // e.g. cancelled: say so
  }
});

// The map waits until the steps are usable: the route at once, the streets around it after.
async function drawMap() {
  const { drawRoute, basemapPath, legendFor } = await import("/static/map.js");
  $("legend").textContent = legendFor(job.kind);
  const svg = $("map");
  const drawn = drawRoute(svg, job.geojson);
  svg.dataset.lines = String(drawn.lines);
  const path = basemapPath(job.geojson);
  if (!path || mapDrawn === path) {
    svg.dataset.drawn = "yes";
    return;
  }
  try {
    let streets = await cachedJson(path);
    if (!streets) {
      streets = await api(path);
      await keepJson(path, streets);
    }
    drawRoute(svg, job.geojson, streets);
    svg.dataset.streets = String(streets.features.length);
    mapDrawn = path;
  } catch { /* no streets offline before the first visit: the route alone still reads */ }
  svg.dataset.drawn = "yes";   // the map is final (tests wait for it)
}

// Who is signed in, from the server or (no signal) the copy kept; marks wait for it.
const me = signedInOrKept().then((u) => { user = u; return u; });
me.catch((err) => showError(error, err));

async function main() {
  // The server may send the job inside the page (one round trip on a slow connection); the
  // service worker's copy of the page never holds one: then the phone's copy, then the network.
  const given = document.getElementById("job-data");
  const network = given ? Promise.resolve(JSON.parse(given.textContent)) : api(PATH);
  network.catch(() => {});   // handled below, once we know whether a kept copy was drawn
  const kept = given ? null : await cachedJson(PATH);
  job = kept || await network;
  await refreshQueue();
  document.body.dataset.ready = "yes";
  performance.mark("cityops-ready");   // `cityops bench pages` reads it: the page is usable from here
  if (kept) {
    network.then(take, (err) => { if (err.status && err.status !== 503) showError(error, err); });
  } else {
    await keepJson(PATH, job);
  }
  me.then((u) => { outbox.start(u.user_id); render(); }, () => {});
  await drawMap();
  offlineReady();
}

main().catch((err) => showError(error, err));
