// The landlord officer's case list (/landlord): the sensors' suggestions to triage on top, then
// every case by its nearest due clock (overdue first, as GET /cases sorts them), each with its
// state, category, home, next step and when it is due in plain words; a filter by state.
// Council officers (operators, admins) see every landlord's; anyone else goes to their own page.
import { api, el, showError } from "/static/common.js";
import { caseTitle, caseWorker, dueWords, stateWords } from "/static/cases.js";

const $ = (name) => document.getElementById(name);

function caseItem(c) {
  const next = c.next_step;
  const overdue = next && next.state === "overdue";
  const what = c.state === "suggested" ? "Suggested by the sensors: triage it"
    : next ? `Next: ${next.label}, ${next.due_in_words}` : (c.state === "open" ? "No clock running" : "");
  return el("li", { "data-case": c.case_id, "data-state": c.state, "data-due": next ? next.state : null,
                    class: overdue ? "overdue" : null },
            el("a", { href: `/landlord/cases/${c.case_id}`, text: caseTitle(c) }), " ",
            el("span", { class: `badge ${c.state}`, text: stateWords(c.state) }),
            c.category ? el("span", { class: "badge", text: c.category }) : "",
            el("br"),
            el("span", { class: "small next", text: what }),
            next ? el("span", { class: overdue ? "small due overdue" : "small due muted", text: ` (${dueWords(next)})` }) : "");
}

async function refresh() {
  const state = $("state").value;
  try {
    const { cases } = await api(`/cases${state ? `?state=${encodeURIComponent(state)}` : ""}`);
    const ordered = [...cases.filter((c) => c.state === "suggested"), ...cases.filter((c) => c.state !== "suggested")];
    $("cases").replaceChildren(...(ordered.length ? ordered.map(caseItem)
      : [el("li", { class: "muted", text: "No cases to show." })]));
    const overdue = ordered.filter((c) => c.next_step && c.next_step.state === "overdue").length;
    $("count").textContent = `${ordered.length} case${ordered.length === 1 ? "" : "s"}`
      + (overdue ? `, ${overdue} with an overdue clock` : "") + ".";
    showError($("error"), null);
  } catch (err) {
    showError($("error"), err);
  }
}

async function main() {
  if (!(await caseWorker())) return;
  const wanted = new URLSearchParams(location.search).get("state");
  if (wanted && [...$("state").options].some((o) => o.value === wanted)) $("state").value = wanted;
  $("state").addEventListener("change", async () => {
    const url = new URL(location.href);
    if ($("state").value) url.searchParams.set("state", $("state").value); else url.searchParams.delete("state");
    history.replaceState(null, "", url);
    await refresh();
  });
  $("filter").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  await refresh();
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError($("error"), err));
