// The organisation's name, the environment's keys, the voter identities it accepts and its
// webhook (pages/webhooks.js).
import { api, loadMe, state } from "../api.js";
import { $, $$, copy, errorBox, esc, icon, toast } from "../dom.js";
import { formError, showFieldErrors } from "../forms.js";
import { render } from "../router.js";
import { shell } from "../shell.js";
import { loadWebhook, webhookPanel } from "./webhooks.js";

function keyRow(id, label, value, secret) {
  return `<label class="field"><span>${label}</span><div class="copy-row"><input id="${id}" readonly value="${esc(value)}"` +
    (secret ? ' type="password"' : "") + ' spellcheck="false">' +
    (secret ? `<button class="btn ghost" type="button" data-reveal="${id}" aria-label="Show secret key">${icon("eye")}</button>` : "") +
    `<button class="btn ghost" type="button" data-copy="${id}" aria-label="Copy ${label}">${icon("copy")}Copy</button></div></label>`;
}

// Which voter identities the environment accepts, each with what it protects against.
function identityBox(k) {
  return '<fieldset id="identities" class="identities"><legend>Votes are accepted from</legend>' +
    k.identityOptions.map((o) =>
      `<label><input type="checkbox" id="id-${esc(o.kind)}" data-identity="${esc(o.kind)}"${k.identities.includes(o.kind) ? " checked" : ""}>` +
      `<span><b>${esc(o.label)}</b><br><span class="muted">${esc(o.protects)}</span></span></label>`).join("") +
    "</fieldset>";
}

// GET /settings/: {publicKey, secretKey, identities, identityOptions: [{kind, label, protects}], ...}
async function loadKeys() {
  const box = $("#keys");
  let k;
  try {
    k = await api("GET", "/settings/");
  } catch (e) {
    box.innerHTML = errorBox(e);
    return;
  }
  if (!$("#keys")) return;
  box.innerHTML = keyRow("public-key", "Public key", k.publicKey, false) +
    keyRow("secret-key", "Secret key", k.secretKey, true) + identityBox(k) +
    `<div style="display:flex;gap:8px;flex-wrap:wrap"><button class="btn ghost danger" id="rotate">${icon("refresh")}Rotate keys</button></div>` +
    '<p class="muted" style="margin-top:10px">Rotating issues a new public and secret key at once: pages still using the old public key stop working.</p>';
  for (const b of $$("[data-copy]", box)) {
    b.onclick = () => {
      const input = $("#" + b.dataset.copy);
      copy(input.value, input.id === "secret-key" ? "Secret key" : "Public key");
    };
  }
  for (const b of $$("[data-reveal]", box)) {
    b.onclick = () => {
      const input = $("#" + b.dataset.reveal);
      input.type = input.type === "password" ? "text" : "password";
    };
  }
  for (const c of $$("[data-identity]", box)) {
    c.onchange = async () => {
      const kinds = $$("[data-identity]", box).filter((i) => i.checked).map((i) => i.dataset.identity);
      try {
        await api("PUT", "/settings/", { identities: kinds });
        toast("Saved");
      } catch (e) {
        c.checked = !c.checked;
        toast(e.message, "error");
      }
    };
  }
  $("#rotate").onclick = async () => {
    const name = state.me.currentEnv.name;
    if (!confirm(`Rotate the keys of ${name}? Pages using the current public key will stop working until you update them.`)) return;
    try {
      await api("POST", "/settings/rotate", {});
    } catch (e) {
      toast(e.message, "error");
      return;
    }
    toast("New keys issued");
    await loadMe();
    loadKeys();
  };
}

export function pageSettings() {
  const org = state.me.currentOrg, env = state.me.currentEnv;
  shell(
    `<div class="page-head"><div class="grow"><h1>Settings</h1><p>Organisation <strong>${esc(org.name)}</strong> · environment <strong>${esc(env.name)}</strong></p></div></div>` +
    '<div class="panel"><h2>Organisation</h2><form id="org-form" novalidate><div id="org-error"></div><div class="row">' +
    `<label class="field" data-field="name"><span>Name</span><input name="name" value="${esc(org.name)}" required></label>` +
    '<div class="field btn-cell"><span aria-hidden="true">&nbsp;</span><button class="btn" type="submit">Save</button></div></div></form></div>' +
    `<div class="panel"><h2>API keys · ${esc(env.name)}</h2><p class="muted">The public key goes into your pages. The secret key stays on your server: use it to sign user ids.</p>` +
    '<div id="keys"><div class="spinner"></div></div></div>' + webhookPanel(env.name));
  const f = $("#org-form");
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    const name = f.name.value.trim();
    if (name.length < 2 && showFieldErrors(f, { name: "Use at least 2 characters" }, $("#org-error"))) return;
    try {
      await api("PUT", "/org/update", { name });
    } catch (e) {
      formError(f, e, $("#org-error"));
      return;
    }
    showFieldErrors(f, {}, $("#org-error"));
    toast("Organisation renamed");
    await loadMe();
    render();
  };
  loadKeys();
  loadWebhook();
}
