// The crew's job list: open jobs first (started, then assigned, oldest first), then the
// recently completed ones. Operators and admins see every job here (and a link to their
// live page). Once the list is shown, every open job's JSON, printable sheet and streets are
// kept on the phone (the API cache the service worker reads), so they open with no signal;
// marks waiting in the outbox are sent from here too.
import { API_CACHE, api, cachedJson, el, keepJson, offlineReady, showError, signedInOrKept, when } from "/static/common.js";
import * as outbox from "/static/outbox.js";

const ORDER = { started: 0, assigned: 1, completed: 2, cancelled: 3 };
const OPEN = new Set(["assigned", "started"]);
const error = document.getElementById("error");

function jobItem(job) {
  const link = el("a", { href: `/crew/jobs/${encodeURIComponent(job.job_id)}`, text: job.title });
  const p = job.progress;
  const meta = [job.kind === "bins" ? "bin collection" : "gritting", job.truck ? `truck ${job.truck}` : null,
                p && p.total ? `${p.done + p.skipped} of ${p.total} stops marked` : null,
                `assigned ${when(job.created_at)}`].filter(Boolean).join(" · ");
  return el("li", { "data-job": job.job_id }, link, el("span", { class: `badge ${job.state}`, text: job.state }),
            el("br"), el("span", { class: "muted small", text: meta }));
}

function fill(list, jobs, empty) {
  list.replaceChildren(...(jobs.length ? jobs.map(jobItem) : [el("li", { class: "muted", text: empty })]));
}

function show(jobs) {
  jobs.sort((a, b) => (ORDER[a.state] ?? 4) - (ORDER[b.state] ?? 4)
                      || Date.parse(a.created_at) - Date.parse(b.created_at));
  fill(document.getElementById("open-jobs"), jobs.filter((j) => OPEN.has(j.state)), "Nothing to do.");
  fill(document.getElementById("done-jobs"), jobs.filter((j) => !OPEN.has(j.state)).reverse().slice(0, 20),
       "Nothing done yet.");
}

async function showWaiting() {
  const waiting = (await outbox.entries()).filter((e) => e.state === "waiting").length;
  const note = document.getElementById("outbox");
  note.hidden = !waiting;
  note.textContent = waiting ? `Waiting to send (${waiting})` : "";
}

// Keep a copy of each open job of this user's (assignee or crew), its sheet and its streets,
// one at a time (the list came first). Staff see every job here but work at a desk: none kept.
async function keepOpenJobs(jobs, user) {
  if (!self.caches) return;
  const { basemapPath } = await import("/static/map.js");
  const cache = await caches.open(API_CACHE);
  const mine = (j) => j.assigned_to === user.user_id || (j.crew || []).includes(user.user_id);
  for (const job of jobs.filter((j) => OPEN.has(j.state) && mine(j))) {
    try {
      const path = `/jobs/${encodeURIComponent(job.job_id)}`;
      await cache.add(path);
      await cache.add(`${path}/sheet`);
      const streets = basemapPath((await cachedJson(path)).geojson);
      if (streets) await cache.add(streets);
    } catch { /* no signal now: kept the next time the list loads */ }
  }
  document.body.dataset.kept = "yes";
}

async function main() {
  const user = await signedInOrKept();
  if (user.role === "householder") {
    location.replace("/home");
    return;
  }
  if (user.role === "operator" || user.role === "admin") {
    document.getElementById("title").textContent = "All jobs";
    document.getElementById("operator-link").hidden = false;
  }
  const kept = await cachedJson("/jobs");
  if (kept) show(kept);
  let jobs = kept;
  try {
    jobs = await api("/jobs");
    show(jobs);
    await keepJson("/jobs", jobs);
  } catch (err) {
    if (!kept) throw err;
  }
  document.body.dataset.ready = "yes";
  outbox.listen((event) => { if (event.type === "changed") showWaiting(); });
  outbox.start(user.user_id);
  showWaiting();
  await offlineReady();
  await keepOpenJobs(jobs, user);
}

main().catch((err) => showError(error, err));
