// The vote groups of the environment: list (paged), create, edit, delete.
import { api, state } from "../api.js";
import { $, $$, esc, fmt, icon, plural, toast } from "../dom.js";
import { formError } from "../forms.js";
import { loadPanel } from "../panel.js";
import { go } from "../router.js";
import { shell } from "../shell.js";

const PAGE_SIZE = 10;

export function typeBadge(g) {
  if (g.type === "range") return `<span class="badge range">★ Range ${esc(g.start)}–${esc(g.end)}</span>`;
  if (g.type === "reactions") return `<span class="badge">Reactions ${(g.reactions || []).map((r) => esc(r.id)).join(" ")}</span>`;
  return '<span class="badge">Single</span>';
}

// A single group's score is its sum; a range group's is the mean rating over its voters; a
// reactions group shows its voters (summed over its items).
function score(g) {
  if (g.type === "reactions") return `${fmt(g.voters)} <span class="muted">voters</span>`;
  if (g.type !== "range") return fmt(g.score);
  if (!g.voters) return '<span class="muted">—</span>';
  return `${(g.score / g.voters).toFixed(1)} ★ <span class="muted">(${fmt(g.voters)})</span>`;
}

export function pageGroups() {
  shell(
    '<div class="page-head"><div class="grow"><h1>Vote groups</h1><p>Each group is a kind of vote (like, up/down, stars) you can put on any number of items.</p></div>' +
    `<button class="btn" id="add-group">${icon("plus")}New group</button></div>` +
    '<div class="panel flush" id="groups-box"></div>');
  $("#add-group").onclick = () => groupDialog(null);
  loadGroups();
}

const EMPTY =
  `<div class="empty">${icon("vote")}<h2>No vote groups yet</h2><p>Create one, then paste its snippet into your page.</p>` +
  `<button class="btn" id="add-first">${icon("plus")}Create your first group</button></div>`;

function row(g) {
  const href = "/groups/" + encodeURIComponent(g.id);
  return `<tr data-id="${esc(g.id)}"><td><a href="${href}"><strong>${esc(g.name)}</strong></a></td><td>${typeBadge(g)}</td>` +
    `<td class="num">${fmt(g.clicks)}</td><td class="num">${score(g)}</td><td class="actions hide-sm">` +
    `<a class="btn ghost sm" href="${href}">Open</a> <button class="btn ghost sm" data-edit>Edit</button> ` +
    "<button class=\"btn ghost sm danger\" data-del>Delete</button></td></tr>";
}

// GET /votes/ answers {items, total, page, limit, pages}.
function loadGroups() {
  const page = state.groupsPage;
  return loadPanel($("#groups-box"), `/votes/?page=${page}&limit=${PAGE_SIZE}`, (res, box) => {
    if (!res.items.length && page > 1) {
      state.groupsPage = page - 1;
      return loadGroups();
    }
    if (!res.items.length) {
      box.innerHTML = EMPTY;
      $("#add-first").onclick = () => groupDialog(null);
      return;
    }
    box.innerHTML =
      '<table><thead><tr><th>Name</th><th>Type</th><th class="num">Clicks</th><th class="num">Score</th><th class="hide-sm"></th></tr></thead><tbody>' +
      res.items.map(row).join("") + "</tbody></table>" +
      `<div class="pager"><span>${plural(res.total, "group")} · page ${res.page} of ${res.pages}</span><span>` +
      `<button class="btn ghost sm" id="prev"${res.page <= 1 ? " disabled" : ""}>← Previous</button> ` +
      `<button class="btn ghost sm" id="next"${res.page >= res.pages ? " disabled" : ""}>Next →</button></span></div>`;
    $("#prev").onclick = () => {
      state.groupsPage = Math.max(1, page - 1);
      loadGroups();
    };
    $("#next").onclick = () => {
      state.groupsPage = page + 1;
      loadGroups();
    };
    for (const tr of $$("tr[data-id]", box)) {
      const g = res.items.find((x) => x.id === tr.dataset.id);
      $("[data-edit]", tr).onclick = () => groupDialog(g);
      $("[data-del]", tr).onclick = () => deleteGroup(g, loadGroups);
    }
  }, { height: 200 });
}

export async function deleteGroup(g, after) {
  if (!confirm(`Delete the group "${g.name}"? Pages using it will stop showing votes.`)) return;
  try {
    await api("DELETE", "/votes/" + encodeURIComponent(g.id));
    toast("Group deleted");
    after();
  } catch (e) {
    toast(e.message, "error");
  }
}

function reactionLines(g) {
  return (g.reactions || []).map((r) => (r.label && r.label !== r.id ? r.id + " " + r.label : r.id)).join("\n");
}

// "id label" per line -> [{id, label}] (the label defaults to the id)
function parseReactions(text) {
  return text.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const m = /^(\S+)\s*(.*)$/.exec(line);
    return m[2] ? { id: m[1], label: m[2] } : { id: m[1] };
  });
}

function dialogHtml(g, isNew) {
  return `<form method="dialog" novalidate><h2>${isNew ? "New vote group" : "Edit " + esc(g.name)}</h2>` +
    '<div id="dlg-error"></div>' +
    `<label class="field" data-field="name"><span>Name</span><input name="name" value="${esc(g.name)}" required minlength="2" placeholder="e.g. article-likes" autocomplete="off">` +
    '<small class="hint">Used in the embed snippet; unique in this environment.</small></label>' +
    '<label class="field" data-field="type"><span>Type</span><select name="type">' +
    `<option value="single"${g.type !== "range" ? " selected" : ""}>Single: like or upvote/downvote</option>` +
    `<option value="range"${g.type === "range" ? " selected" : ""}>Range: star rating</option>` +
    `<option value="reactions"${g.type === "reactions" ? " selected" : ""}>Reactions: emoji or short names</option></select></label>` +
    '<div id="reactions-row"><label class="field" data-field="reactions"><span>Reactions</span>' +
    `<textarea name="reactions" rows="4" placeholder="👍 Like&#10;❤️ Love&#10;🎉 Hooray">${esc(reactionLines(g))}</textarea>` +
    '<small class="hint">One per line: its id (an emoji or a short name), then its label. Counts belong to the id: change labels and order freely.</small></label>' +
    `<label class="field" data-field="maxPerVoter"><span>Reactions per voter</span><input name="maxPerVoter" type="number" min="1" value="${esc(g.maxPerVoter ?? 1)}"></label></div>` +
    `<div class="row" id="range-row"><label class="field" data-field="start"><span>From</span><input name="start" type="number" value="${esc(g.start ?? 1)}"></label>` +
    `<label class="field" data-field="end"><span>To</span><input name="end" type="number" value="${esc(g.end ?? 5)}"></label></div>` +
    '<div class="actions"><button class="btn ghost" value="cancel" formnovalidate type="button" id="dlg-cancel">Cancel</button>' +
    `<button class="btn" type="submit">${isNew ? "Create group" : "Save changes"}</button></div></form>`;
}

// Create (g null) or edit a group; after(saved) runs once an edit is saved.
export function groupDialog(g, after = null) {
  const isNew = !g, d = document.createElement("dialog");
  const shown = g || { name: "", type: "single", start: 1, end: 5 };
  d.innerHTML = dialogHtml(shown, isNew);
  document.body.appendChild(d);
  const form = $("form", d);
  const sync = () => {
    $("#range-row", d).style.display = form.type.value === "range" ? "" : "none";
    $("#reactions-row", d).style.display = form.type.value === "reactions" ? "" : "none";
  };
  form.type.onchange = sync;
  sync();
  $("#dlg-cancel", d).onclick = () => d.close();
  d.addEventListener("close", () => d.remove());
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { name: form.name.value.trim(), type: form.type.value };
    if (body.type === "range") {
      body.start = parseInt(form.start.value, 10);
      body.end = parseInt(form.end.value, 10);
    }
    if (body.type === "reactions") {
      body.reactions = parseReactions(form.reactions.value);
      body.maxPerVoter = parseInt(form.maxPerVoter.value, 10) || 1;
    }
    const btn = $("button[type=submit]", form);
    btn.disabled = true;
    try {
      const saved = isNew
        ? await api("POST", "/votes/", body)
        : await api("PUT", "/votes/" + encodeURIComponent(g.id), body);
      d.close();
      toast(isNew ? "Group created" : "Group saved");
      if (isNew) go("/groups/" + encodeURIComponent(saved.id));
      else if (after) after(saved);
      else loadGroups();
    } catch (e) {
      btn.disabled = false;
      formError(form, e, $("#dlg-error", d));
    }
  };
  d.showModal();
  form.name.focus();
}
