// The operator's live page: every open job with its progress (a bar and the same in words),
// refreshed by polling GET /jobs every REFRESH_S seconds; a job's stops, their states and its
// history; cancel and reassign with a reason (the API refuses crews). Anyone else is sent to
// their own page.
import { api, el, homeFor, showError, signedIn, when } from "/static/common.js";

const REFRESH_S = 12;
const OPEN = new Set(["assigned", "started"]);
const $ = (name) => document.getElementById(name);
let selected = null;

function progressWords(p) {
  if (!p || !p.total) return "no stops to mark";
  const parts = [`${p.done} done`, `${p.skipped} skipped`, `${p.pending} to do`];
  if (p.conflicts) parts.push(`${p.conflicts} conflict${p.conflicts === 1 ? "" : "s"}`);
  return `${parts.join(", ")} (of ${p.total})`;
}

function jobItem(job) {
  const p = job.progress || { total: 0, done: 0, skipped: 0, pending: 0, conflicts: 0 };
  const share = p.total ? Math.round((100 * (p.done + p.skipped)) / p.total) : 0;
  const words = progressWords(job.progress);
  const open = el("button", { type: "button", class: "secondary", "data-open": job.job_id,
                              "aria-label": `Details of ${job.title}`, text: "Details" });
  open.addEventListener("click", () => select(job.job_id));
  const meter = el("span", { class: "meter", role: "img", "aria-label": `${share}% marked` }, el("span"));
  meter.firstChild.style.width = `${share}%`;
  return el("li", { "data-job": job.job_id, "data-done": p.done, "data-skipped": p.skipped, "data-pending": p.pending,
                    "data-conflicts": p.conflicts },
            el("strong", { text: job.title }), el("span", { class: `badge ${job.state}`, text: job.state }),
            el("br"), el("span", { class: "small", text: `${job.assigned_to}${(job.crew || []).length ? ` + ${job.crew.join(", ")}` : ""}` }),
            meter, el("span", { class: "small progress", text: words }), el("br"), open);
}

async function refresh() {
  try {
    const jobs = (await api("/jobs")).filter((j) => OPEN.has(j.state))
      .sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
    $("jobs").replaceChildren(...(jobs.length ? jobs.map(jobItem) : [el("li", { class: "muted", text: "No open jobs." })]));
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })}.`;
    showError($("error"), null);
    if (selected) await showDetail(await api(`/jobs/${encodeURIComponent(selected)}`));
  } catch (err) {
    showError($("error"), err);
  }
}

function stopRow(step) {
  const state = step.status === "skipped" ? `skipped (${step.reason || "no reason"})` : step.status;
  const by = step.marked_by ? `${step.marked_by}, ${when(step.marked_at)}` : "";
  const cells = [String(step.seq), step.street ? `${step.stop} · ${step.street}` : step.stop, state, by];
  const row = el("tr", { "data-stop": step.stop, "data-status": step.status }, ...cells.map((t) => el("td", { text: t })));
  if (step.conflict) {
    const c = step.conflict;
    row.lastChild.append(el("span", { class: "conflict small", text: ` · conflict: ${c.by} marked it ${c.status}`
                                      + `${c.reason ? ` (${c.reason})` : ""} at ${when(c.marked_at)}` }));
  }
  if (step.note) row.children[1].append(el("span", { class: "small muted", text: ` · “${step.note}”` }));
  return row;
}

function showDetail(job) {
  $("detail").hidden = false;
  $("detail").dataset.job = job.job_id;
  $("detail-title").textContent = job.title;
  $("detail-summary").textContent = [job.kind === "bins" ? "Bin collection" : "Gritting", `state: ${job.state}`,
                                     `assigned to ${job.assigned_to}`, progressWords(job.progress)].join(" · ");
  const stops = (job.steps || []).filter((s) => s.stop);
  $("detail-stops").replaceChildren(...(stops.length ? stops.map(stopRow)
    : [el("tr", {}, el("td", { colspan: 4, class: "muted", text: "No stops to mark on this job." }))]));
  $("detail-events").replaceChildren(...(job.events || []).map((e) => el("li", {
    text: `${when(e.at)}: ${e.what} by ${e.by}${e.from || e.to ? ` (${e.from || "–"} → ${e.to || "–"})` : ""}`
          + `${e.reason ? `: ${e.reason}` : ""}` })));
  const open = OPEN.has(job.state);
  $("cancel").hidden = !open;
  $("reassign").hidden = !open;
}

async function select(jobId) {
  selected = jobId;
  showError($("detail-error"), null);
  $("detail-status").textContent = "";
  try {
    showDetail(await api(`/jobs/${encodeURIComponent(jobId)}`));
    $("detail").focus();
  } catch (err) {
    showError($("error"), err);
  }
}

async function act(form, path, body, done) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  showError($("detail-error"), null);
  try {
    await api(path, { method: "POST", body });
    $("detail-status").textContent = done;
    form.reset();
    await refresh();
  } catch (err) {
    showError($("detail-error"), err);
  } finally {
    button.disabled = false;
  }
}

$("cancel").addEventListener("submit", (event) => {
  event.preventDefault();
  act($("cancel"), `/jobs/${encodeURIComponent(selected)}/cancel`, { reason: $("cancel-reason").value.trim() },
      "Job cancelled; the crew sees why.");
});
$("reassign").addEventListener("submit", (event) => {
  event.preventDefault();
  const crew = $("reassign-crew").value.split(",").map((s) => s.trim()).filter(Boolean);
  act($("reassign"), `/jobs/${encodeURIComponent(selected)}/reassign`,
      { assigned_to: $("reassign-to").value.trim(), reason: $("reassign-reason").value.trim(), crew },
      "Job reassigned.");
});

async function main() {
  const user = await signedIn();
  if (user.role !== "operator" && user.role !== "admin") {
    location.replace(homeFor(user.role));
    return;
  }
  $("every").textContent = String(REFRESH_S);
  await refresh();
  document.body.dataset.ready = "yes";
  setInterval(refresh, REFRESH_S * 1000);
}

main().catch((err) => showError($("error"), err));
