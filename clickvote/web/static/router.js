// Client-side routing: history API paths, in-app links, one render at a time.
import { loadMe, setUnauthorized, state } from "./api.js";
import { $, esc, icon, toast } from "./dom.js";

// [pattern, page(...captures), public?]; set by start(), the last one matching every path
let routes = [];
let renderSeq = 0;
const root = () => document.getElementById("root");

export function go(path, replace = false) {
  history[replace ? "replaceState" : "pushState"](null, "", path);
  render();
}

function toLogin(replace) {
  go("/login?next=" + encodeURIComponent(location.pathname + location.search), replace);
}

export async function render() {
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const seq = ++renderSeq;
  let match = null, captures = [];
  for (const route of routes) {
    const m = route[0].exec(path);
    if (m) {
      match = route;
      captures = m.slice(1).map(decodeURIComponent);
      break;
    }
  }
  try {
    const me = state.me || match?.[2] ? state.me : await loadMe();
    if (seq !== renderSeq) return;
    if (!match[2] && !me && path !== "/") {
      toLogin(true);
      return;
    }
    await match[1](...captures);
  } catch (e) {
    if (seq === renderSeq) showFatal(e);
  }
}

export function showFatal(e) {
  const html = '<div class="panel"><div class="alert error" role="alert"><strong>Something went wrong.</strong> ' +
    esc(e?.message || e) + `</div><button class="btn" id="retry">${icon("refresh")}Try again</button></div>`;
  const content = $(".content");
  if (content) content.innerHTML = html;
  else root().innerHTML = `<div class="auth"><div class="card">${html}</div></div>`;
  $("#retry").onclick = () => {
    state.me = null;
    render();
  };
}

function onLinkClick(ev) {
  const a = ev.target.closest?.("a[href]:not([href^='#'])");
  if (!a || a.target || a.hasAttribute("download") || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || /^\/(static|api|socket\.io|embed\.js)/.test(url.pathname)) return;
  ev.preventDefault();
  $(".shell")?.classList.remove("nav-open");
  go(url.pathname + url.search);
}

export function start(table) {
  routes = table;
  setUnauthorized(() => {
    if (!/^\/(login|register)$/.test(location.pathname)) toLogin(false);
  });
  document.addEventListener("click", onLinkClick);
  window.addEventListener("popstate", render);
  window.addEventListener("error", (ev) => {
    if (ev.message) toast("Error: " + ev.message, "error");
  });
  window.addEventListener("unhandledrejection", (ev) => {
    if (ev.reason?.status !== 401) toast(ev.reason?.message || "Unexpected error", "error");
  });
  render();
}
