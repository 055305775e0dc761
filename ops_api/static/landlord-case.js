// One damp and mould case for a landlord officer (/landlord/cases/{id}): the case, its clocks
// (due, time left, state), the whole timeline (internal notes marked) and a form for each step
// through the API: triage a suggestion (POST /cases/{id}/triage), a step by its kind (POST
// /cases/{id}/events), each behind its own button, and closing (POST /cases/{id}/close). Each
// answer redraws the page.
import { api, el, showError, when } from "/static/common.js";
import { caseTitle, caseWorker, clockWords, dueWords, stateWords } from "/static/cases.js";

const $ = (name) => document.getElementById(name);
const caseId = Number(location.pathname.split("/").pop());
const HOW = ["phone", "visit", "letter", "email", "text_message", "in_person", "other"];
const CATEGORY = [["", "unchanged"], ["emergency", "emergency"], ["significant", "significant"]];
const FLAGS = [["child_under_5", "a child under 5"], ["over_65", "someone over 65"],
               ["respiratory_condition", "a respiratory condition"], ["disability", "a disability"],
               ["pregnancy", "a pregnancy"], ["other", "other"]];
const AT = { name: "at", label: "When it happened (empty: now)", type: "datetime-local" };
const options = (values) => values.map((v) => (Array.isArray(v) ? v : [v, v.replace("_", " ")]));

// Each step's form: its kind, title, button and fields; `while` says on which case states it shows.
const STEPS = [
  { kind: "investigation", title: "Investigation", button: "Record the investigation", fields: [
    { name: "investigator", label: "Who investigated", required: true },
    { name: "findings", label: "What they found", type: "textarea", required: true },
    { name: "cause", label: "Cause (optional)" },
    { name: "category", label: "Category the investigation found", type: "select", options: CATEGORY }, AT] },
  { kind: "summary_sent", title: "Written summary sent", button: "Record the summary sent", fields: [
    { name: "how", label: "Sent by", type: "select", options: options(["letter", "email", "by_hand", "other"]) },
    { name: "text", label: "The summary's text, as sent", type: "textarea", required: true }, AT] },
  { kind: "made_safe", title: "Made safe", button: "Record that the home was made safe", fields: [
    { name: "text", label: "What was done (optional)", type: "textarea" }, AT] },
  { kind: "safety_works", title: "Safety works", button: "Record the safety works", fields: [
    { name: "stage", label: "Stage", type: "select", options: options(["done", "booked"]) },
    { name: "contractor", label: "Contractor (optional)" },
    { name: "text", label: "What was done (optional)", type: "textarea" }, AT] },
  { kind: "further_works", title: "Further works", button: "Record the further works", fields: [
    { name: "stage", label: "Stage", type: "select", options: [["begun", "begun (or steps taken to begin)"],
                                                                ["started", "started on site"], ["done", "done"]] },
    { name: "contractor", label: "Contractor (optional)" },
    { name: "text", label: "What was done (optional)", type: "textarea" }, AT] },
  { kind: "alternative_accommodation", title: "Alternative accommodation", button: "Record the decision", fields: [
    { name: "decision", label: "Decision", type: "select",
      options: options(["not_needed", "offered", "accepted", "declined", "in_place", "ended"]) },
    { name: "note", label: "Note (optional)", type: "textarea" }, AT] },
  { kind: "contact", title: "Contact with the household", button: "Record the contact", always: true, fields: [
    { name: "how", label: "How", type: "select", options: options(HOW) },
    { name: "text", label: "What was said", type: "textarea", required: true },
    { name: "visible_to_tenant", label: "The household sees this line", type: "checkbox", checked: true }, AT] },
  { kind: "vulnerability", title: "Vulnerability flags", button: "Record the flags", always: true, fields: [
    { name: "flags", label: "Who lives there", type: "checkboxes", options: FLAGS },
    { name: "note", label: "Note (optional)", type: "textarea" }] },
  { kind: "note", title: "Internal note", button: "Add the note", always: true, fields: [
    { name: "text", label: "Note (never shown to the household)", type: "textarea", required: true }, AT] },
];

function field(kind, f) {
  const id = `${kind}-${f.name}`;
  if (f.type === "checkbox") {
    return el("p", { class: "choice" }, el("input", { type: "checkbox", id, name: f.name, checked: f.checked }),
              el("label", { for: id, text: f.label }));
  }
  if (f.type === "checkboxes") {
    return el("fieldset", {}, el("legend", { text: f.label }), ...f.options.map(([value, words]) =>
      el("p", { class: "choice" }, el("input", { type: "checkbox", id: `${id}-${value}`, name: f.name, value }),
         el("label", { for: `${id}-${value}`, text: words }))));
  }
  let input;
  if (f.type === "select") {
    input = el("select", { id, name: f.name }, ...f.options.map(([value, words]) => el("option", { value, text: words })));
  } else if (f.type === "textarea") {
    input = el("textarea", { id, name: f.name, required: f.required, maxlength: 8000 });
  } else {
    input = el("input", { id, name: f.name, type: f.type || "text", required: f.required, autocomplete: "off",
                          maxlength: f.type ? null : 200 });
  }
  return el("div", {}, el("label", { for: id, text: f.label }), input);
}

function body(form, step) {
  const out = { kind: step.kind };
  for (const f of step.fields) {
    if (f.type === "checkboxes") {
      out[f.name] = [...form.querySelectorAll(`input[name="${f.name}"]:checked`)].map((i) => i.value);
    } else if (f.type === "checkbox") {
      out[f.name] = form.elements[f.name].checked;
    } else {
      const value = form.elements[f.name].value.trim();
      if (f.type === "datetime-local") { if (value) out.at = new Date(value).toISOString(); }
      else if (value || f.required) out[f.name] = value;
    }
  }
  return out;
}

function stepForm(step) {
  const error = el("div", { class: "error", id: `${step.kind}-error`, role: "alert" });
  const form = el("form", { id: `step-${step.kind}`, "data-kind": step.kind, novalidate: true },
                  ...step.fields.map((f) => field(step.kind, f)), error,
                  el("div", { class: "actions" }, el("button", { type: "submit", id: `${step.kind}-submit`, text: step.button })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(form, error, `/cases/${caseId}/events`, body(form, step), `Recorded: ${step.title.toLowerCase()}.`,
         (answer) => answer.case);
  });
  form.hidden = true;
  const toggle = el("button", { type: "button", id: `${step.kind}-open`, class: "disclosure", "aria-expanded": "false",
                                "aria-controls": form.id, text: step.title });
  toggle.addEventListener("click", () => opened(form, form.hidden));
  return el("div", { class: "step", "data-step": step.kind, "data-always": step.always ? "yes" : null }, toggle, form);
}

// Show or hide a step's form (its button says which, to a screen reader too).
function opened(form, open) {
  form.hidden = !open;
  document.getElementById(`${form.dataset.kind}-open`).setAttribute("aria-expanded", String(open));
  if (open) form.querySelector("input, select, textarea").focus();
}

async function send(form, error, path, payload, done, caseOf = (answer) => answer) {
  showError(error, null);
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const answer = await api(path, { method: "POST", body: payload });
    form.reset();
    if (form.dataset.kind) opened(form, false);
    show(caseOf(answer));
    $("status").textContent = done;
    $("status").focus();
  } catch (err) {
    showError(error, err);
  } finally {
    button.disabled = false;
  }
}

function fact(term, value) {
  return value ? [el("dt", { text: term }), el("dd", { text: value })] : [];
}

function clockItem(c) {
  const due = c.due ? c.due_in_words : `runs from: ${c.starts_from.replace(/_/g, " ")}`;
  const left = c.met_at ? `met ${when(c.met_at)}` : c.due ? dueWords(c) : "";
  return el("li", { "data-clock": c.key, "data-state": c.state },
            el("strong", { text: c.label }), el("br"),
            el("span", { class: "small", text: due }), el("br"),
            el("span", { class: "muted small clock-state", text: `${clockWords(c.state)}${left ? `: ${left}` : ""}` }));
}

function eventItem(e) {
  const text = e.details && (e.details.text || e.details.findings || e.details.reason || e.details.note);
  return el("li", { "data-kind": e.kind, "data-event": e.event_id },
            el("time", { datetime: e.at, text: when(e.at) }), ` ${e.summary}`,
            el("span", { class: "small muted", text: ` · ${e.by || "the sensors"}${e.visible_to_tenant ? "" : " · internal"}` }),
            text ? el("q", { text }) : "");
}

function show(c) {
  document.title = `${caseTitle(c)} · CityOps`;
  $("title").textContent = caseTitle(c);
  $("case").hidden = false;
  $("case").dataset.state = c.state;
  const suggestion = c.suggestion ? `damp ${c.suggestion.worst_level} on each of the last ${c.suggestion.days} days` : null;
  $("about").replaceChildren(...fact("State", stateWords(c.state)), ...fact("Category", c.category),
    ...fact("Why this category", c.category_reason), ...fact("Home", c.home_label || c.household_id),
    ...fact("Aware since", c.aware_at && `${when(c.aware_at)} (${c.aware_how})`),
    ...fact("The sensors' evidence", suggestion),
    ...fact("Vulnerabilities", (c.vulnerabilities || []).join(", ").replace(/_/g, " ")),
    ...fact("Alternative accommodation", c.alternative_accommodation.decision?.replace(/_/g, " ")),
    ...fact("Closed", c.closed_at && `${when(c.closed_at)}: ${c.closed_reason}`));
  const next = c.next_step;
  $("next-step").textContent = next ? `Next: ${next.label}, ${next.due_in_words}.`
    : c.state === "suggested" ? "No clock runs on a suggestion: triage it." : "No clock is running.";
  $("next-step").dataset.state = next ? next.state : "";
  $("clocks").replaceChildren(...c.clocks.map(clockItem));
  $("timeline").replaceChildren(...c.timeline.map(eventItem));
  const active = c.state === "suggested" || c.state === "open";
  $("triage-card").hidden = !active;
  $("triage-title").textContent = c.state === "suggested" ? "Triage the suggestion" : "Change the category";
  $("triage-accept").closest("fieldset").hidden = c.state !== "suggested";   // open: re-categorise only
  $("triage-category-label").textContent = c.state === "suggested" ? "Category (when accepting)" : "Category";
  if (c.state !== "suggested") $("triage-accept").checked = true;
  $("steps-card").hidden = !active;
  for (const step of $("steps").children) step.hidden = c.state !== "open" && !step.dataset.always;
  $("close-card").hidden = c.state !== "open";
}

async function main() {
  if (!(await caseWorker())) return;
  $("steps").replaceChildren(...STEPS.map(stepForm));
  $("evidence-pdf").href = `/cases/${caseId}/evidence.pdf`;   // the whole record, internal notes included
  $("evidence-csv").href = `/cases/${caseId}/evidence.csv`;
  $("triage").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = $("triage");
    const decision = form.querySelector("input[name=decision]:checked").value;
    const payload = { decision, reason: $("triage-reason").value.trim() };
    if ($("triage-category").value) payload.category = $("triage-category").value;
    send(form, $("triage-error"), `/cases/${caseId}/triage`, payload,
         decision === "accept" ? "Triaged: the case is open and its clocks run." : "The suggestion was dismissed.");
  });
  $("close").addEventListener("submit", (event) => {
    event.preventDefault();
    send($("close"), $("close-error"), `/cases/${caseId}/close`, { reason: $("close-reason").value.trim() },
         "The case is closed.");
  });
  try {
    show(await api(`/cases/${caseId}`));
  } catch (err) {
    if (err.status === 404 || err.status === 422) $("title").textContent = "Case not found";
    showError($("error"), err);
  }
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError($("error"), err));
