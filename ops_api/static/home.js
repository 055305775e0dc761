// The householder's page: the current reading, the damp risk with advice, the week's chart,
// and the diary. Everything comes from /households/me/... with the session cookie.
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

async function main() {
  const user = await signedIn();
  if (user.role !== "householder") {
    location.replace(homeFor(user.role));
    return;
  }
  const [me, history, diary] = await Promise.all([
    api("/households/me"), api(`/households/me/history?hours=${HOURS}`), api("/households/me/diary"),
  ]);
  const nowMs = Date.parse(me.now);
  setUpDiary(nowMs);
  showCurrent(me.current, nowMs);
  showRisk(me.risk);
  showHistory(history, nowMs);
  showDiary(diary);
  document.body.dataset.ready = "yes";
}

main().catch((err) => showError(error, err));
