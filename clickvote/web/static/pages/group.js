// One vote group: its embed snippet, a live preview with the real embed, the items voted on.
import { state } from "../api.js";
import { $, $$, copy, esc, fmt, icon } from "../dom.js";
import { loadPanel } from "../panel.js";
import { go } from "../router.js";
import { shell } from "../shell.js";
import { deleteGroup, groupDialog, typeBadge } from "./groups.js";

const VARIANTS = { like: "Like", updown: "Up / down", stars: "Stars", reactions: "Reactions" };

function loadEmbed() {
  if (customElements.get("click-vote") || $('script[src="/embed.js"]')) return;
  const s = document.createElement("script");
  s.src = "/embed.js";
  s.defer = true;
  document.head.appendChild(s);
}

// The snippet as text: the attributes the README documents (`variant`, not the global `style`).
export function snippetText(key, group, item, variant) {
  const attr = (name, value) => ` ${name}="${esc(value)}"`;
  return `<script src="${location.origin}/embed.js" defer></script>\n` +
    `<click-vote${attr("key", key)}${attr("group", group)}${attr("item", item)}${attr("variant", variant)}></click-vote>`;
}

// The snippet text, highlighted: tag names, attribute names, attribute values.
function snippetHtml(text) {
  return esc(text)
    .replace(/&lt;(\/?)([\w-]+)/g, '&lt;$1<span class="t">$2</span>')
    .replace(/([\w-]+)=(&quot;.*?&quot;)/g, '<span class="a">$1</span>=<span class="s">$2</span>');
}

function pageHtml(g, variants, st) {
  return '<div class="page-head"><div class="grow"><p><a href="/groups">← Vote groups</a></p>' +
    `<h1>${esc(g.name)} ${typeBadge(g)}</h1></div>` +
    `<a class="btn ghost" href="/analytics?group=${encodeURIComponent(g.name)}">${icon("chart")}Analytics</a>` +
    '<button class="btn ghost" id="edit">Edit</button><button class="btn ghost danger" id="del">Delete</button></div>' +
    '<div class="grid cols-2"><div class="panel"><h2>Embed it</h2>' +
    '<p class="muted">Paste this where the votes should appear. <code>item</code> names what is voted on (an article id, a URL…).</p>' +
    `<div class="row" style="margin:12px 0"><label class="field" data-field="item"><span>Item</span><input id="item" value="${esc(st.item)}"></label>` +
    '<label class="field"><span>Variant</span><div class="seg" id="variant-seg" role="group" aria-label="Variant">' +
    variants.map((v) => `<button type="button" data-variant="${v}" aria-pressed="${v === st.variant}">${VARIANTS[v]}</button>`).join("") +
    "</div></label></div>" +
    `<pre class="snippet" id="snippet"></pre><div style="margin-top:12px;display:flex;gap:8px"><button class="btn" id="copy-snippet">${icon("copy")}Copy snippet</button></div>` +
    '<p class="muted" style="margin-top:14px">Logged-in users on your site? Pass <code>user-id="…"</code> and <code>signature="…"</code> (HMAC-SHA256 of the id with your secret key) so nobody can vote as someone else. Otherwise each visitor gets an anonymous voter token.</p></div>' +
    '<div class="panel"><h2>Live preview</h2><p class="muted">This is the real embed, connected to this environment: votes here count.</p>' +
    '<div class="preview" id="preview"></div>' +
    '<h3 style="margin-top:18px">Items voted on</h3><div class="chips" id="items"></div></div></div>';
}

// GET /votes/{name}/stats: `top` lists the leading items with their totals.
function loadItems(g, pick) {
  return loadPanel($("#items"), "/votes/" + encodeURIComponent(g.name) + "/stats?limit=50", (res, box) => {
    if (!res.top.length) {
      box.innerHTML = '<span class="muted">No votes yet. Try the preview!</span>';
      return;
    }
    box.innerHTML = res.top.map((it) => {
      const total = it.reactions
        ? Object.entries(it.reactions).filter(([, n]) => n).map(([id, n]) => `${id} ${fmt(n)}`).join(" ") || "–"
        : g.type !== "range" ? fmt(it.count) : it.count ? `${(+it.mean).toFixed(1)}★ ×${fmt(it.count)}` : "–";
      return `<button class="chip" type="button" data-v="${esc(it.voteTo)}" title="Preview this item">${esc(it.voteTo)} · ${esc(total)}</button>`;
    }).join("");
    for (const c of $$(".chip", box)) c.onclick = () => pick(c.dataset.v);
  });
}

const BACK = '<div class="page-head"><p><a href="/groups">← Vote groups</a></p></div>';

// GET /votes/{id}: the group, or why there is none
export function pageGroup(id) {
  shell(`<div id="group-box">${BACK}<div class="panel" id="group-load"></div></div>`);
  return loadPanel($("#group-load"), "/votes/" + encodeURIComponent(id), (g) => drawGroup(id, g), {
    height: 200, messages: { 404: "This vote group does not exist (or was deleted)." },
  });
}

function drawGroup(id, g) {
  const box = $("#group-box");
  const key = state.me.currentEnv.public_key;
  const variants = g.type === "range" ? ["stars"] : g.type === "reactions" ? ["reactions"] : ["like", "updown"];
  const st = { variant: variants[0], item: "demo-item" };
  box.innerHTML = pageHtml(g, variants, st);
  const update = () => {
    const text = snippetText(key, g.name, st.item, st.variant);
    $("#snippet").innerHTML = snippetHtml(text);
    $("#snippet").dataset.text = text;
    const cv = document.createElement("click-vote");
    for (const [k, v] of Object.entries({ key, group: g.name, item: st.item, variant: st.variant })) cv.setAttribute(k, v);
    $("#preview").replaceChildren(cv);
    onRedraw(cv, () => loadItems(g, pick));
  };
  const pick = (item) => {
    st.item = item;
    $("#item").value = item;
    update();
  };
  loadEmbed();
  update();
  $("#copy-snippet").onclick = () => copy($("#snippet").dataset.text, "Snippet");
  let typing = null;
  $("#item").oninput = (ev) => {
    clearTimeout(typing);
    const v = ev.target.value.trim();
    typing = setTimeout(() => {
      st.item = v || "demo-item";
      update();
    }, 350);
  };
  for (const b of $$("#variant-seg button")) {
    b.onclick = () => {
      st.variant = b.dataset.variant;
      for (const x of $$("#variant-seg button")) x.setAttribute("aria-pressed", String(x === b));
      update();
    };
  }
  $("#edit").onclick = () => groupDialog(g, () => pageGroup(id));
  $("#del").onclick = () => deleteGroup(g, () => go("/groups"));
  loadItems(g, pick);
}

// Runs `fn` (debounced) each time the preview widget redraws: after its own votes are
// acknowledged and when other pages vote on its item, however long that takes.
function onRedraw(cv, fn) {
  let later = null;
  const observer = new MutationObserver(() => {
    clearTimeout(later);
    later = setTimeout(() => (cv.isConnected ? fn() : observer.disconnect()), 300);
  });
  const attach = () => cv.shadowRoot && observer.observe(cv.shadowRoot, { subtree: true, childList: true });
  if (cv.shadowRoot) attach();
  else customElements.whenDefined("click-vote").then(attach);
}
