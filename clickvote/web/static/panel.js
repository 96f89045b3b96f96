// A panel filled by one GET of the JSON API, the same way on every page: a spinner while it
// has nothing of that answer to show (a box showing an earlier answer of the same path keeps
// it until the new one comes: a refresh does not flicker), then what `show` draws; on failure
// the API's message in an alert, with "Try again" where asking again may help. A 401 has
// already sent the browser to the login page (api.js), so it draws nothing.
import { api } from "./api.js";
import { errorBox, icon, spinner } from "./dom.js";

const newest = new WeakMap(); // box -> the newest load asked of it: an older answer draws nothing
const shown = new WeakMap(); // box -> the path whose answer it shows

// No answer at all, the server's trouble, or "not now": the same GET may well work later.
const passing = (status) => !status || status >= 500 || status === 408 || status === 429;

function showError(box, e, messages, again) {
  const retry = passing(e.status)
    ? `<button class="btn ghost sm" type="button" data-retry>${icon("refresh")}Try again</button>`
    : "";
  box.innerHTML = `<div class="load-error">${errorBox(messages[e.status] || e)}${retry}</div>`;
  const button = box.querySelector("[data-retry]");
  if (button) button.onclick = again;
}

// GET `path` into `boxes` (an element, or a list of elements filled from the one answer; one
// not on the page is passed over): show(data, box) for each box still on the page and not
// asked for anything newer since.
// `height`: the spinner's room in px; `messages`: {status: text} said instead of the API's.
// Resolves to the data, or undefined where it failed.
export async function loadPanel(boxes, path, show, { height = 40, messages = {} } = {}) {
  const list = [boxes].flat().filter(Boolean), ticket = {};
  for (const box of list) {
    newest.set(box, ticket);
    if (shown.get(box) !== path) box.innerHTML = spinner(height);
  }
  const current = () => list.filter((box) => box.isConnected && newest.get(box) === ticket);
  let data;
  try {
    data = await api("GET", path);
  } catch (e) {
    if (e.status === 401) return undefined;
    const failed = current();
    for (const box of failed) {
      shown.delete(box);
      showError(box, e, messages, () => loadPanel(failed, path, show, { height, messages }));
    }
    return undefined;
  }
  for (const box of current()) {
    shown.set(box, path);
    show(data, box);
  }
  return data;
}
