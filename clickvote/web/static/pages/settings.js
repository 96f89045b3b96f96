// The organisation's name, the environment's keys, the voter identities it accepts and its
// other abuse layers (IP + browser window, rate limits, proof of work) and its webhook
// (pages/webhooks.js).
import { api, loadMe, state } from "../api.js";
import { $, $$, copy, esc, icon, toast } from "../dom.js";
import { sendForm, showFieldErrors } from "../forms.js";
import { loadPanel } from "../panel.js";
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

// GET /settings/ ({publicKey, secretKey, identities, identityOptions: [{kind, label, protects}],
// abuse, ...}) once for the panels given (`#keys`, `#abuse`), each drawn by its own function.
const PANELS = { keys: showKeys, abuse: showAbuse };
const loadSettings = (boxes) => loadPanel(boxes, "/settings/", (k, box) => PANELS[box.id](box, k));

function showKeys(box, k) {
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
    loadSettings($("#keys"));
  };
}

// The layers after the voter token, in the order a vote meets them (PUT /settings/ takes
// ipVoters, ipWindow, rateVoterBurst, rateVoterPerSec, powDifficulty).
function abuseForm(a) {
  const num = (name, label, value, min, max, help, step) =>
    `<label class="field" data-field="${name}"><span>${label}</span><input name="${name}" id="abuse-${name}" type="number" min="${min}" max="${max}" step="${step || 1}" value="${esc(String(value))}" required>` +
    `<small class="muted">${help}</small></label>`;
  return '<form id="abuse-form" novalidate><div id="abuse-error"></div>' +
    '<p class="muted">A vote meets these in order: the voter token (the identities above), then each below. Analytics shows the votes each refused.</p>' +
    "<h3>One address and browser as many voters</h3><div class=\"row\">" +
    num("ipVoters", "Voters per item", a.ipVoters, 0, 1000, "distinct voters one IP and user agent may be on one item; 0: off") +
    num("ipWindow", "Window (seconds)", a.ipWindow, 60, 604800, "how long those voters are remembered") + "</div>" +
    `<h3>Rate limits</h3><p class="muted" id="abuse-rate">The server allows each voter ${esc(String(a.serverRateVoterBurst))} votes at once, then ${esc(String(a.serverRateVoterPerSec))} per second; this environment may be stricter (0: the server's).</p><div class="row">` +
    num("rateVoterBurst", "Votes at once", a.rateVoterBurst, 0, 1000000, "per voter; 0: the server's", "any") +
    num("rateVoterPerSec", "Votes per second", a.rateVoterPerSec, 0, 1000000, "per voter, after those; 0: the server's", "any") + "</div>" +
    "<h3>Proof of work</h3><div class=\"row\">" +
    num("powDifficulty", "Difficulty (bits)", a.powDifficulty, 0, 24, "work a browser does before its first vote; 0: off. @clickvote/react 0.0.8 can't do it: its votes are refused while this is on") +
    '<div class="field btn-cell"><span aria-hidden="true">&nbsp;</span><button class="btn" type="submit" id="abuse-save">Save</button></div></div></form>';
}

function showAbuse(box, k) {
  box.innerHTML = abuseForm(k.abuse);
  const f = $("#abuse-form");
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const name of ["ipVoters", "ipWindow", "rateVoterBurst", "rateVoterPerSec", "powDifficulty"]) {
      const v = f[name].value.trim();
      body[name] = /^-?[0-9]+(\.[0-9]+)?$/.test(v) ? Number(v) : v; // the server names a bad one
    }
    if (await sendForm(f, $("#abuse-error"), "PUT", "/settings/", body)) toast("Saved");
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
    '<div id="keys"></div></div>' +
    `<div class="panel"><h2>Abuse control · ${esc(env.name)}</h2><div id="abuse"></div></div>` +
    webhookPanel(env.name));
  const f = $("#org-form");
  f.onsubmit = async (ev) => {
    ev.preventDefault();
    const name = f.name.value.trim();
    if (name.length < 2 && showFieldErrors(f, { name: "Use at least 2 characters" }, $("#org-error"))) return;
    if (!(await sendForm(f, $("#org-error"), "PUT", "/org/update", { name }))) return;
    toast("Organisation renamed");
    await loadMe();
    render();
  };
  loadSettings([$("#keys"), $("#abuse")]);
  loadWebhook();
}
