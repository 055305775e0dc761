// The householder's page: the current reading, the damp risk with advice, their damp and mould
// case (its next step in plain words, what has happened, their photos), the report form, the
// week's chart, and the diary. Everything comes from /households/me/... with the session cookie.
// "Now" is the platform's clock (`now` in /households/me: the real time in production, the
// town's in the demo), never the browser's: a reading's age, the chart's week and the diary's
// default time all count from it.
import { drawChart } from "/static/chart.js";
import { api, el, fmt, homeFor, showError, signedIn, when } from "/static/common.js";

const HOURS = 168;
const ACTIVITIES = Object.fromEntries([...document.querySelectorAll("#activity option")]
  .map((o) => [o.value, o.textContent]));
const error = document.getElementById("error");

const STALE_MINUTES = 60;

function showCurrent(current, nowMs) {
  const at = document.getElementById("reading-at");
  if (!current) {
    at.textContent = "No readings from your monitor yet. Check that it is plugged in.";
    return;
  }
  document.getElementById("air-temp").textContent = fmt(current.air_temp_c);
  document.getElementById("rh").textContent = fmt(current.rh_pct, 0);
  document.getElementById("dew-point").textContent = fmt(current.dew_point_c);
  const age = (nowMs - Date.parse(current.ts)) / 60_000;
  at.textContent = `Measured ${when(current.ts)}`
    + (age > STALE_MINUTES ? ". Your monitor has not sent a reading since then." : ".");
  at.dataset.stale = age > STALE_MINUTES ? "yes" : "no";
}

// Text on the band is black or white, whichever reads better on the API's colour.
function contrastText(band) {
  const rgb = getComputedStyle(band).backgroundColor.match(/\d+(\.\d+)?/g);
  if (!rgb) return;
  const [r, g, b] = rgb.slice(0, 3).map((c) => {
    const v = Number(c) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  band.classList.toggle("dark-text", luminance > 0.18);
}

// One message: the level's headline, one sentence of why, and what to do. No score beside it.
function showRisk(risk) {
  const band = document.getElementById("risk");
  const why = document.getElementById("risk-why");
  const advice = document.getElementById("risk-advice");
  band.dataset.level = risk ? risk.level : "unknown";
  if (!risk) {
    document.getElementById("risk-headline").textContent = "No damp assessment yet";
    why.textContent = "The first one appears after a day of readings.";
    advice.replaceChildren();
    document.getElementById("risk-todo").hidden = true;
    return;
  }
  if (risk.colour && CSS.supports("color", risk.colour)) band.style.backgroundColor = risk.colour;
  contrastText(band);
  document.getElementById("risk-headline").textContent = risk.headline;
  why.textContent = risk.why || "";
  document.getElementById("risk-todo").hidden = !(risk.advice || []).length;
  advice.replaceChildren(...(risk.advice || []).map((text) => el("li", { text })));
}

function showHistory(history, nowMs) {
  const to = nowMs;
  const from = to - HOURS * 3_600_000;
  const gap = Math.max(1800, 2.5 * (history.bucket_s || 300));
  drawChart(document.getElementById("chart-temp"), history.points,
            [{ key: "air_temp_c", cls: "air" }, { key: "dew_point_c", cls: "dew" }],
            { fromMs: from, toMs: to, unit: "°", maxGapS: gap });
  drawChart(document.getElementById("chart-rh"), history.points, [{ key: "rh_pct", cls: "rh" }],
            { fromMs: from, toMs: to, unit: "%", maxGapS: gap });
  const temps = history.points.map((p) => p.air_temp_c).filter((v) => typeof v === "number");
  const rhs = history.points.map((p) => p.rh_pct).filter((v) => typeof v === "number");
  document.getElementById("week-summary").textContent = temps.length
    ? `Temperature ${fmt(Math.min(...temps))} to ${fmt(Math.max(...temps))} °C; `
      + `humidity ${fmt(Math.min(...rhs), 0)} to ${fmt(Math.max(...rhs), 0)} %.`
    : "No readings in the last 7 days.";
}

function showDiary(entries) {
  const body = document.getElementById("diary-entries");
  const recent = [...entries].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 10);
  if (!recent.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "None yet." })));
    return;
  }
  body.replaceChildren(...recent.map((e) => el("tr", { "data-id": e.id },
    el("td", { text: when(e.at) }),
    el("td", { text: ACTIVITIES[e.activity] || e.activity }),
    el("td", { text: e.minutes ?? "" }),
    el("td", { text: e.note ?? "" }))));
}

function localInputValue(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return shifted.toISOString().slice(0, 16);
}

function setUpDiary(nowMs) {
  const form = document.getElementById("diary-form");
  const formError = document.getElementById("diary-error");
  const saved = document.getElementById("diary-saved");
  const submit = document.getElementById("diary-submit");
  form.at.value = localInputValue(new Date(nowMs));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(formError, null);
    saved.textContent = "";
    const at = new Date(form.at.value);
    const minutes = form.minutes.value ? Number(form.minutes.value) : null;
    if (Number.isNaN(at.getTime())) {
      showError(formError, { message: "Enter when it happened." });
      form.at.focus();
      return;
    }
    if (minutes !== null && !(Number.isInteger(minutes) && minutes > 0)) {
      showError(formError, { message: "Minutes must be a whole number above 0." });
      form.minutes.focus();
      return;
    }
    const entry = { at: at.toISOString(), activity: form.activity.value, minutes,
                    note: form.note.value.trim() || null };
    submit.disabled = true;
    try {
      await api("/households/me/diary", { method: "POST", body: entry });
      saved.textContent = "Added to your diary.";
      form.note.value = "";
      form.minutes.value = "";
      showDiary(await api("/households/me/diary"));
    } catch (err) {
      showError(formError, err);
    } finally {
      submit.disabled = false;
    }
  });
}

// --- the damp and mould case and the report ------------------------------------------------

const MAX_PHOTOS = 5;   // the API decides (cases.photos_per_report); this only spares a refused upload
const CLOCK_WORDS = { waiting: "starts after the investigation", on_time: "on time", due_soon: "due soon",
                      overdue: "late", met: "done", met_late: "done, but late" };
const LONG_DATE = new Intl.DateTimeFormat("en-GB", { weekday: "long", day: "numeric", month: "long",
                                                     year: "numeric", timeZone: "Europe/London" });

function longDate(iso) {
  return LONG_DATE.format(new Date(iso)).replace(",", "");
}

// The clocks' labels say what the landlord does; on the tenant's own page "the tenant" is "you".
function forYou(label) {
  return label.replace(/\bthe tenant\b/g, "you");
}

function lowerFirst(text) {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function showCase(found) {
  const box = document.getElementById("case");
  box.hidden = !found;
  if (!found) return;
  document.getElementById("case-state").textContent = found.state === "open"
    ? `Open since ${longDate(found.opened_at)}: your landlord knows about the damp and mould.`
    : "This case is closed.";
  const step = found.next_step;
  document.getElementById("case-next").replaceChildren(...(step ? [el("p", { "data-state": step.state },
    el("strong", { text: "Next step: " }),
    `your landlord must ${lowerFirst(forYou(step.label))} ${step.due_in_words}.`
      + (step.state === "overdue" ? " This is now late." : ""))] : []));
  document.getElementById("case-clocks").replaceChildren(...found.clocks.map((clock) => el("li",
    { "data-state": clock.state },
    `${forYou(clock.label)}: `,
    el("span", { class: "muted", text: clock.due_in_words
      ? `${clock.due_in_words} (${CLOCK_WORDS[clock.state] || clock.state})` : CLOCK_WORDS.waiting }))));
  document.getElementById("case-timeline").replaceChildren(...found.timeline.map((entry) => el("li", {},
    el("time", { datetime: entry.at, text: when(entry.at) }), ` ${entry.summary}`,
    ...(entry.text ? [el("q", { text: entry.text })] : []))));
  document.getElementById("case-photos-part").hidden = !found.photos.length;
  document.getElementById("case-photos").replaceChildren(...found.photos.map((photo, i) => {
    const url = `/households/me/case/photos/${photo.photo_id}`;
    return el("li", {}, el("a", { href: url, target: "_blank", rel: "noopener" },
      el("img", { src: url, alt: `Photo ${i + 1}, sent ${when(photo.uploaded_at)} (opens full size)`,
                  loading: "lazy", width: 160, height: 120 })));
  }));
}

// The API names every refused file in one message ("photos: photo 2 (a.pdf) is ...; photo 4 ...");
// the page lists them one a line.
function showReportError(target, err) {
  const message = err.message || String(err);
  if (!message.startsWith("photos: ")) {
    showError(target, err);
    return;
  }
  const files = message.slice("photos: ".length).split(/; (?=photo \d)/)
    .map((text) => text.charAt(0).toUpperCase() + text.slice(1));
  if (files.length === 1) {
    showError(target, { message: files[0], hint: err.hint });
    return;
  }
  showError(target, { message: "These photos could not be used:", hint: err.hint });
  target.insertBefore(el("ul", {}, ...files.map((text) => el("li", { text }))), target.querySelector(".hint"));
}

function setUpReport() {
  const form = document.getElementById("damp-form");
  const formError = document.getElementById("damp-error");
  const saved = document.getElementById("damp-saved");
  const submit = document.getElementById("damp-submit");
  const chosen = document.getElementById("damp-chosen");
  const photos = document.getElementById("damp-photos");
  photos.addEventListener("change", () => {
    chosen.replaceChildren(...[...photos.files].map((file, i) => el("li",
      { text: `Photo ${i + 1}: ${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)` })));
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(formError, null);
    saved.textContent = "";
    if (!form.text.value.trim()) {
      showError(formError, { message: "Say what you see, where, and since when." });
      form.text.focus();
      return;
    }
    if (photos.files.length > MAX_PHOTOS) {
      showError(formError, { message: `You chose ${photos.files.length} photos: send at most ${MAX_PHOTOS}.`,
                             hint: "Send the others with a second report." });
      photos.focus();
      return;
    }
    submit.disabled = true;
    try {
      showCase(await api("/households/me/reports", { method: "POST", body: new FormData(form) }));
      saved.textContent = "Sent. Your report is in your case above.";
      form.reset();
      chosen.replaceChildren();
    } catch (err) {
      showReportError(formError, err);
      if ((err.message || "").startsWith("photos:")) photos.focus();
      else form.text.focus();
    } finally {
      submit.disabled = false;
    }
  });
}

async function main() {
  const user = await signedIn();
  if (user.role !== "householder") {
    location.replace(homeFor(user.role));
    return;
  }
  const [me, history, diary, found] = await Promise.all([
    api("/households/me"), api(`/households/me/history?hours=${HOURS}`), api("/households/me/diary"),
    api("/households/me/case"),
  ]);
  const nowMs = Date.parse(me.now);
  setUpDiary(nowMs);
  setUpReport();
  showCase(found);
  showCurrent(me.current, nowMs);
  showRisk(me.risk);
  showHistory(history, nowMs);
  showDiary(diary);
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError(error, err));
