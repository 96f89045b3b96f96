// Log in and register.
import { api, loadMe, state } from "../api.js";
import { $, LOGO } from "../dom.js";
import { formError, showFieldErrors } from "../forms.js";
import { go } from "../router.js";

const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function checkLocally(body, isLogin) {
  const errs = {};
  if (!EMAIL.test(body.email)) errs.email = "Enter a valid email address";
  if (!body.password) errs.password = "Enter your password";
  else if (!isLogin && body.password.length < 8) errs.password = "Use at least 8 characters";
  return errs;
}

// Where to go after logging in: ?next= if it is a path of this site.
function nextPath(isLogin) {
  const next = new URLSearchParams(location.search).get("next");
  return next && next[0] === "/" && next[1] !== "/" ? next : isLogin ? "/analytics" : "/groups";
}

function authPage(kind) {
  if (state.me) return go("/analytics", true);
  const isLogin = kind === "login";
  document.getElementById("root").innerHTML =
    '<div class="auth"><form class="card" id="auth-form" novalidate>' +
    `<div class="brand">${LOGO}ClickVote</div>` +
    `<h1>${isLogin ? "Welcome back" : "Create your account"}</h1>` +
    `<p class="sub">${isLogin ? "Log in to your dashboard" : "Likes, upvotes and star ratings, live on any page"}</p>` +
    '<div id="form-error"></div>' +
    '<label class="field" data-field="email"><span>Email</span><input type="email" name="email" autocomplete="email" required autofocus></label>' +
    '<label class="field" data-field="password"><span>Password</span><input type="password" name="password" autocomplete="' +
    (isLogin ? "current-password" : "new-password") + '" required minlength="8">' +
    (isLogin ? "" : '<small class="hint">At least 8 characters.</small>') + "</label>" +
    `<button class="btn" type="submit">${isLogin ? "Log in" : "Create account"}</button>` +
    '<p class="alt">' + (isLogin ? 'New here? <a href="/register">Create an account</a>' : 'Already have an account? <a href="/login">Log in</a>') + "</p>" +
    "</form></div>";
  const form = $("#auth-form");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { email: form.email.value.trim(), password: form.password.value };
    if (showFieldErrors(form, checkLocally(body, isLogin), $("#form-error"))) return;
    const btn = $("button[type=submit]", form);
    btn.disabled = true;
    try {
      await api("POST", "/auth/" + kind, body);
      state.me = null;
      await loadMe();
      go(nextPath(isLogin));
    } catch (e) {
      btn.disabled = false;
      formError(form, e, $("#form-error"));
    }
  };
}

export const pageLogin = () => authPage("login");
export const pageRegister = () => authPage("register");
