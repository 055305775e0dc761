// The sign-in form: posts the OAuth2 password form to /auth/login (which sets the session
// cookie), then goes back to where the user came from or to their role's page.
import { api, homeFor, safeNext, showError } from "/static/common.js";

const form = document.getElementById("login");
const error = document.getElementById("error");
const submit = document.getElementById("submit");
const params = new URLSearchParams(location.search);
document.getElementById("signed-out").hidden = !params.has("signed_out");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(error, null);
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError(error, { message: "Enter your username and password." });
    (username ? form.password : form.username).focus();
    return;
  }
  submit.disabled = true;
  try {
    const answer = await api("/auth/login", {
      method: "POST", allow401: true,
      body: new URLSearchParams({ grant_type: "password", username, password }),
    });
    location.assign(safeNext(params.get("next")) || homeFor(answer.user.role));
  } catch (err) {
    showError(error, err);
    form.password.select();
  } finally {
    submit.disabled = false;
  }
});
