// Form errors shown by their fields (`.field[data-field=name]`), the rest in a box.
import { api, fieldErrors } from "./api.js";
import { $, $$, errorBox } from "./dom.js";

// errs: {field: message}; returns whether there were any.
export function showFieldErrors(form, errs, box) {
  for (const f of $$(".field", form)) {
    f.classList.remove("invalid");
    $(".err", f)?.remove();
    $("input,select", f)?.removeAttribute("aria-invalid");
  }
  if (box) box.innerHTML = "";
  const unplaced = [];
  for (const [name, message] of Object.entries(errs)) {
    const f = $(`.field[data-field="${name}"]`, form);
    if (!f) {
      unplaced.push(message);
      continue;
    }
    f.classList.add("invalid");
    const s = document.createElement("small");
    s.className = "err";
    s.id = "err-" + name;
    s.textContent = message;
    f.appendChild(s);
    const input = $("input,select", f);
    input?.setAttribute("aria-invalid", "true");
    input?.setAttribute("aria-describedby", s.id);
  }
  if (unplaced.length && box) box.innerHTML = errorBox(unplaced.join("; "));
  $(".field.invalid input, .field.invalid select", form)?.focus();
  return Object.keys(errs).length > 0;
}

// An API refusal: by the fields it names, else as a message above the form.
export function formError(form, e, box) {
  showFieldErrors(form, fieldErrors(e), box);
  if (box && !box.innerHTML && !$(".field.invalid", form)) box.innerHTML = errorBox(e);
}

// Sends a form's body: refused, the refusal shown as above; accepted, the form's errors
// cleared. Resolves to whether it was accepted.
export async function sendForm(form, box, method, path, body) {
  try {
    await api(method, path, body);
  } catch (e) {
    formError(form, e, box);
    return false;
  }
  showFieldErrors(form, {}, box);
  return true;
}
