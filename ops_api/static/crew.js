// The crew's job list: open jobs first (started, then assigned, oldest first), then the
// recently completed ones. Operators and admins see every job here.
import { api, el, showError, signedIn, when } from "/static/common.js";

const ORDER = { started: 0, assigned: 1, completed: 2 };
const error = document.getElementById("error");

function jobItem(job) {
  const link = el("a", { href: `/crew/jobs/${encodeURIComponent(job.job_id)}`, text: job.title });
  const meta = [job.kind === "bins" ? "bin collection" : "gritting", job.truck ? `truck ${job.truck}` : null,
                `assigned ${when(job.created_at)}`].filter(Boolean).join(" · ");
  return el("li", { "data-job": job.job_id }, link, el("span", { class: `badge ${job.state}`, text: job.state }),
            el("br"), el("span", { class: "muted small", text: meta }));
}

function fill(list, jobs, empty) {
  list.replaceChildren(...(jobs.length ? jobs.map(jobItem) : [el("li", { class: "muted", text: empty })]));
}

async function main() {
  const user = await signedIn();
  if (user.role === "householder") {
    location.replace("/home");
    return;
  }
  if (user.role === "operator" || user.role === "admin") document.getElementById("title").textContent = "All jobs";
  const jobs = await api("/jobs");
  jobs.sort((a, b) => (ORDER[a.state] ?? 3) - (ORDER[b.state] ?? 3)
                      || Date.parse(a.created_at) - Date.parse(b.created_at));
  fill(document.getElementById("open-jobs"), jobs.filter((j) => j.state !== "completed"), "Nothing to do.");
  fill(document.getElementById("done-jobs"), jobs.filter((j) => j.state === "completed").reverse().slice(0, 20),
       "Nothing done yet.");
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError(error, err));
