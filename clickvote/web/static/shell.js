// The signed-in layout: side navigation, organisation and environment switchers.
import { api, loadMe, setCookie, state } from "./api.js";
import { $, LOGO, esc, icon, toast } from "./dom.js";
import { go, render, showFatal } from "./router.js";

function navItem(href, ic, label) {
  const here = location.pathname;
  const active = here === href || (href === "/groups" && here.startsWith("/groups/"));
  return `<a href="${href}"${active ? ' class="active" aria-current="page"' : ""}>${icon(ic)}${label}</a>`;
}

const options = (list, current) =>
  list.map((o) => `<option value="${esc(o.id)}"${o.id === current.id ? " selected" : ""}>${esc(o.name)}</option>`).join("");

async function reloadMe() {
  state.me = null;
  state.groupsPage = 1;
  try {
    const me = await loadMe();
    await render();
    toast(`Switched to ${me.currentOrg.name} / ${me.currentEnv.name}`);
  } catch (e) {
    showFatal(e);
  }
}

async function switchOrg(sel, org) {
  if (sel.value !== "__new__") {
    setCookie("org", sel.value);
    setCookie("env", "");
    return reloadMe();
  }
  const name = (prompt("Name of the new organisation") || "").trim();
  if (!name) {
    sel.value = org.id;
    return;
  }
  try {
    const created = await api("POST", "/org/create", { name });
    setCookie("org", created.id);
    setCookie("env", "");
    await reloadMe();
  } catch (e) {
    sel.value = org.id;
    toast(e.message, "error");
  }
}

// Draws the layout around `content` (HTML) and returns the content element.
export function shell(content) {
  const me = state.me, env = me.currentEnv, org = me.currentOrg;
  const pill = env.name === "production" ? "production" : "dev";
  document.getElementById("root").innerHTML =
    '<div class="shell"><aside class="side" aria-label="Main">' +
    `<a class="brand" href="/analytics">${LOGO}ClickVote</a>` +
    '<nav class="nav">' + navItem("/analytics", "chart", "Analytics") + navItem("/groups", "list", "Vote groups") +
    navItem("/settings", "gear", "Settings") + "</nav>" +
    `<div class="spacer"></div><div class="who" title="Signed in as">${esc(me.email)}</div>` +
    `<div class="nav"><button type="button" id="logout" class="navbtn">${icon("logout")}Log out</button></div></aside>` +
    '<div class="main"><header class="top">' +
    `<button class="btn ghost sm burger" id="burger" aria-label="Menu">${icon("menu")}</button>` +
    '<label class="switch"><span class="lbl">Organisation</span> <select id="org-switch" aria-label="Organisation">' +
    options(me.org, org) + '<option value="__new__">+ New organisation…</option></select></label>' +
    '<label class="switch"><span class="lbl">Environment</span> <select id="env-switch" aria-label="Environment">' +
    options(me.env, env) + "</select></label>" +
    `<span class="env-pill env-${pill}">${esc(env.name)}</span>` +
    `<span class="grow"></span></header><main class="content" id="content">${content}</main></div></div>`;
  $("#logout").onclick = async () => {
    await api("POST", "/auth/logout", {}).catch(() => {}); // gone anyway
    state.me = null;
    go("/login");
  };
  $("#burger").onclick = () => $(".shell").classList.toggle("nav-open");
  $("#org-switch").onchange = (ev) => switchOrg(ev.target, org);
  $("#env-switch").onchange = (ev) => {
    setCookie("env", ev.target.value);
    reloadMe();
  };
  return $("#content");
}
