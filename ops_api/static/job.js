// One job: the route drawn from its GeoJSON, the steps in driving order, start and mark
// done (with a note for the office), and the printable job sheet.
import { api, el, showError, signedIn, when } from "/static/common.js";
import { drawRoute } from "/static/map.js";

const id = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const error = document.getElementById("error");
const status = document.getElementById("status");
const startButton = document.getElementById("start");
const completeForm = document.getElementById("complete");
const doneButton = document.getElementById("done");

function show(job) {
  document.title = `${job.title} · CityOps`;
  document.getElementById("title").textContent = job.title;
  const parts = [job.kind === "bins" ? "Bin collection" : "Gritting", job.route_id ? `route ${job.route_id}` : null,
                 job.truck ? `truck ${job.truck}` : null, `state: ${job.state}`,
                 job.completed_at ? `done ${when(job.completed_at)}` : null];
  document.getElementById("summary").textContent = parts.filter(Boolean).join(" · ");
  const drawn = drawRoute(document.getElementById("map"), job.geojson);
  document.getElementById("map").dataset.lines = String(drawn.lines);
  const steps = [...(job.steps || [])].sort((a, b) => a.seq - b.seq);
  document.getElementById("steps").replaceChildren(...(steps.length
    ? steps.map((s) => el("li", { class: s.done ? "done" : null, value: s.seq, text: s.text }))
    : [el("li", { class: "muted", text: "No steps for this job." })]));
  startButton.hidden = job.state !== "assigned";
  completeForm.hidden = job.state === "completed";
  document.getElementById("sheet").href = `/jobs/${encodeURIComponent(job.job_id)}/sheet`;
  document.body.dataset.state = job.state;
}

async function act(button, path, body, message) {
  showError(error, null);
  status.textContent = "";
  button.disabled = true;
  try {
    await api(path, { method: "POST", body });
    show(await api(`/jobs/${encodeURIComponent(id)}`));
    status.textContent = message;
  } catch (err) {
    showError(error, err);
  } finally {
    button.disabled = false;
  }
}

startButton.addEventListener("click", () => act(startButton, `/jobs/${encodeURIComponent(id)}/start`, {}, "Job started."));
completeForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const note = completeForm.note.value.trim();
  act(doneButton, `/jobs/${encodeURIComponent(id)}/complete`, { note }, "Job marked done. Thank you.");
});

async function main() {
  await signedIn();
  show(await api(`/jobs/${encodeURIComponent(id)}`));
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError(error, err));
