// The environment's webhook on the settings page: its URL, its write-only secret (the server
// only says whether one is set), a test event, and the newest delivery attempts.
import { api } from "../api.js";
import { $, esc, icon, plural, toast } from "../dom.js";
import { sendForm } from "../forms.js";
import { loadPanel } from "../panel.js";

export const webhookPanel = (envName) =>
  `<div class="panel"><h2>Webhooks · ${esc(envName)}</h2><p class="muted">Each vote is sent to this URL as a signed JSON POST ` +
  "(header <code>X-ClickVote-Signature</code>: HMAC-SHA256 of <code>timestamp.body</code> with the secret), retried until your server answers 2xx.</p>" +
  '<div id="webhook"></div></div>';

// 32 random bytes as hex: a secret the owner copies to the receiving server.
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return "whsec_" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function form(hook) {
  const hint = hook.secretSet ? "A secret is set (never shown again): leave empty to keep it" : "At least 16 characters";
  return '<form id="webhook-form" novalidate><div id="webhook-error"></div>' +
    `<label class="field" data-field="url"><span>URL</span><input id="webhook-url" name="url" type="url" placeholder="https://example.com/clickvote-hook" value="${esc(hook.url || "")}" spellcheck="false"></label>` +
    `<label class="field" data-field="secret"><span>Secret</span><div class="copy-row"><input id="webhook-secret" name="secret" type="password" autocomplete="off" placeholder="${esc(hint)}" spellcheck="false">` +
    `<button class="btn ghost" type="button" id="webhook-generate">${icon("refresh")}Generate</button></div></label>` +
    `<label class="field" data-field="maxPending"><span>Events kept waiting at most</span><input id="webhook-max-pending" name="maxPending" type="number" min="1" step="1" value="${hook.maxPending}">` +
    '<small class="hint">While your server is unreachable, the oldest waiting events past this are discarded (the log says how many).</small></label>' +
    `<label class="field" data-field="batchSize"><span>Events per POST at most</span><input id="webhook-batch-size" name="batchSize" type="number" min="1" max="16" step="1" value="${hook.batchSize}">` +
    '<small class="hint">Above 1, every POST is <code>{"type": "batch", "events": [...]}</code>, each event as it is sent alone.</small></label>' +
    '<div style="display:flex;gap:8px;flex-wrap:wrap"><button class="btn" type="submit">Save</button>' +
    (hook.secretSet
      ? '<button class="btn ghost" type="button" id="webhook-test">Send test event</button>' +
        `<button class="btn ghost danger" type="button" id="webhook-remove">Remove</button>`
      : "") + "</div></form>";
}

function row(d) {
  if (d.type === "discarded") {
    return `<tr class="discarded"><td>${esc(new Date(d.at).toLocaleTimeString())}</td><td class="hide-sm"><code>${esc(d.eventId)}</code></td><td>discarded</td>` +
      `<td class="num"></td><td><span class="muted">${esc(d.error)}</span></td><td class="num hide-sm">${d.dropped} events</td></tr>`;
  }
  const result = d.delivered ? `<span class="badge">${d.status}</span>` : `<span class="muted">${esc(d.error || "HTTP " + d.status)}</span>`;
  return `<tr><td>${esc(new Date(d.at).toLocaleTimeString())}</td><td class="hide-sm"><code>${esc(d.eventId)}</code></td><td>${esc(d.type)}</td>` +
    `<td class="num">${d.attempt}</td><td>${result}</td><td class="num hide-sm">${d.durationMs} ms</td></tr>`;
}

// GET /settings/webhook/deliveries: {pending, deliveries: [...]}, newest first
function loadLog() {
  return loadPanel($("#webhook-log"), "/settings/webhook/deliveries?limit=20", (log, box) => {
    box.innerHTML = `<p class="muted" id="webhook-pending">${plural(log.pending, "event")} waiting for delivery · ` +
      `<button class="btn ghost sm" type="button" id="webhook-refresh">${icon("refresh")}Refresh</button></p>` +
      (log.deliveries.length
        ? '<div style="overflow-x:auto"><table id="webhook-deliveries"><thead><tr><th>Time</th><th class="hide-sm">Event id</th><th>Type</th>' +
          '<th class="num">Try</th><th>Result</th><th class="num hide-sm">Took</th></tr></thead><tbody>' +
          log.deliveries.map(row).join("") + "</tbody></table></div>"
        : '<p class="muted">No deliveries yet.</p>');
    $("#webhook-refresh").onclick = loadLog;
  });
}

async function save(f) {
  const body = { url: f.url.value.trim() };
  if (f.secret.value) body.secret = f.secret.value;
  const bound = f.maxPending.value.trim();
  if (bound) body.maxPending = /^\d+$/.test(bound) ? Number(bound) : bound;
  const size = f.batchSize.value.trim();
  if (size) body.batchSize = /^\d+$/.test(size) ? Number(size) : size;
  if (!(await sendForm(f, $("#webhook-error"), "PUT", "/settings/webhook", body))) return;
  toast("Webhook saved");
  loadWebhook();
}

// GET /settings/webhook: {url, secretSet, maxPending, batchSize, ...}
export function loadWebhook() {
  return loadPanel($("#webhook"), "/settings/webhook", showWebhook);
}

function showWebhook(hook, box) {
  box.innerHTML = form(hook) + '<div id="webhook-log" style="margin-top:14px"></div>';
  const f = $("#webhook-form");
  f.onsubmit = (ev) => {
    ev.preventDefault();
    save(f);
  };
  $("#webhook-generate").onclick = () => {
    f.secret.value = newSecret();
    f.secret.type = "text";
    f.secret.select();
  };
  if (!hook.secretSet) return;
  $("#webhook-test").onclick = async () => {
    try {
      await api("POST", "/settings/webhook/test", {});
      toast("Test event queued");
      setTimeout(loadLog, 1500);
    } catch (e) {
      toast(e.message, "error");
    }
  };
  $("#webhook-remove").onclick = async () => {
    if (!confirm("Remove the webhook? Events not delivered yet are dropped.")) return;
    await api("DELETE", "/settings/webhook").catch((e) => toast(e.message, "error"));
    loadWebhook();
  };
  loadLog();
}
