// Shared by the landlord officers' case pages (landlord.js, landlord-case.js,
// landlord-dashboard.js): who may use them and the words for a case's state and clocks.

import { homeFor, signedIn } from "/static/common.js";

export const CASE_ROLES = new Set(["landlord", "operator", "admin"]);

// The signed-in case worker; anyone else is sent to their own page (null).
export async function caseWorker() {
  const user = await signedIn();
  if (CASE_ROLES.has(user.role)) return user;
  location.replace(homeFor(user.role));
  return null;
}

const STATES = { suggested: "suggestion", open: "open", closed: "closed", dismissed: "dismissed" };
const CLOCK_STATES = { waiting: "waiting for an earlier step", on_time: "on time", due_soon: "due soon",
                       overdue: "overdue", met: "met on time", met_late: "met late" };

export function stateWords(state) { return STATES[state] || state; }
export function clockWords(state) { return CLOCK_STATES[state] || state; }

export function caseTitle(c) {
  return `Case ${c.case_id}: ${c.home_label || `home ${c.household_id}`}`;
}

// "3 days 4 hours", "5 hours", "20 minutes": a span in the largest two units.
export function span(seconds) {
  const s = Math.abs(seconds);
  const days = Math.floor(s / 86400), hours = Math.floor((s % 86400) / 3600), minutes = Math.floor((s % 3600) / 60);
  const unit = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  if (days) return hours ? `${unit(days, "day")} ${unit(hours, "hour")}` : unit(days, "day");
  if (hours) return unit(hours, "hour");
  return unit(Math.max(minutes, 1), "minute");
}

// A running clock's time left (or how late it is), in words.
export function dueWords(clock) {
  if (clock.time_left_s === null || clock.time_left_s === undefined) {
    if (!clock.due) return clockWords(clock.state);
    const left = (Date.parse(clock.due) - Date.now()) / 1000;
    return left < 0 ? `overdue by ${span(left)}` : `${span(left)} left`;
  }
  return clock.time_left_s < 0 ? `overdue by ${span(clock.time_left_s)}` : `${span(clock.time_left_s)} left`;
}
