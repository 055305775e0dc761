// The landlord officers' dashboard (/landlord/dashboard): how many Awaab's Law clocks were met
// on time, met late and missed per category and month (GET /cases/stats?months=), in the same
// scope as the case list: a landlord officer's organisation, every landlord for council officers.
import { api, el, showError } from "/static/common.js";
import { caseWorker } from "/static/cases.js";

const $ = (name) => document.getElementById(name);

function monthWords(month) {
  const [year, number] = month.split("-").map(Number);
  return new Date(Date.UTC(year, number - 1, 15)).toLocaleDateString(undefined, { month: "long", year: "numeric" });
}

function row(r) {
  const share = Math.round(100 * r.on_time_share);
  const meter = el("span", { class: "meter", role: "img", "aria-label": `${share}% on time` }, el("span"));
  meter.firstChild.style.width = `${share}%`;
  const clocks = Object.values(r.by_clock).map((c) => el("li", {
    text: `${c.label}: ${c.met_on_time} of ${c.decided} on time${c.met_late ? `, ${c.met_late} late` : ""}`
          + `${c.missed ? `, ${c.missed} missed` : ""}` }));
  return el("li", { "data-month": r.month, "data-category": r.category },
            el("h3", { text: `${monthWords(r.month)}: ${r.category}` }),
            el("p", {}, el("strong", { class: "on-time", text: String(r.met_on_time) }),
               ` of ${r.decided} clocks met on time (${share}%); ${r.met_late} met late, ${r.missed} missed`),
            meter, el("ul", { class: "small" }, ...clocks));
}

async function refresh() {
  try {
    const stats = await api(`/cases/stats?months=${encodeURIComponent($("months").value)}`);
    $("rows").replaceChildren(...(stats.rows.length ? [...stats.rows].reverse().map(row)   // the latest month first
      : [el("li", { class: "muted", text: "No clock was decided in this period." })]));
    const sum = (key) => stats.rows.reduce((n, r) => n + r[key], 0);
    const decided = sum("decided");
    $("totals").textContent = decided ? `${sum("met_on_time")} of ${decided} clocks met on time in this period.` : "";
    showError($("error"), null);
  } catch (err) {
    showError($("error"), err);
  }
}

async function main() {
  if (!(await caseWorker())) return;
  $("months").addEventListener("change", refresh);
  $("period").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  await refresh();
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError($("error"), err));
