// Accepting a householder invitation: the token is the last part of /invite/<token>.
import { api, showError } from "/static/common.js";

const form = document.getElementById("invite");
const error = document.getElementById("error");
const submit = document.getElementById("submit");
const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(error, null);
  const data = {
    token,
    display_name: form.display_name.value.trim(),
    username: form.username.value.trim().toLowerCase(),
    password: form.password.value,
  };
  const missing = [["display_name", "your name"], ["username", "a username"], ["password", "a password"]]
    .find(([key]) => !data[key]);
  if (missing) {
    showError(error, { message: `Enter ${missing[1]}.` });
    form[missing[0]].focus();
    return;
  }
  if (data.password !== form.password2.value) {
    showError(error, { message: "The two passwords are different.", hint: "Type the same password twice." });
    form.password2.focus();
    return;
  }
  submit.disabled = true;
  try {
    await api("/auth/invitations/accept", { method: "POST", body: data, allow401: true });
    location.assign("/home");
  } catch (err) {
    showError(error, err);
  } finally {
    submit.disabled = false;
  }
});
