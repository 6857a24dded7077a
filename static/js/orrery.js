// Small page behaviours, kept out of inline attributes so the CSP can forbid inline script.

// <form data-confirm="Delete this?">: ask before submitting.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
}, true);

// Credential forms generated from a provider's schema: an element with
// data-show-on='[{"variable": "mode", "value": "chat"}]' is shown only while every control
// marked data-variable="mode" in the same form holds that value. Hidden inputs are also
// disabled, so they are not sent (the server drops them as well).
function showOnValue(form, variable) {
  for (const control of form.querySelectorAll("[data-variable]")) {
    if (control.dataset.variable !== variable || control.disabled) continue;
    if (control.type === "checkbox") return control.checked ? "true" : "false";
    if (control.type === "radio") {
      if (control.checked) return control.value;
      continue;
    }
    return control.value;
  }
  return "";
}

function applyShowOn(form) {
  // Twice, so a field that depends on a field that was just hidden follows it.
  for (let pass = 0; pass < 2; pass++) {
    for (const element of form.querySelectorAll("[data-show-on]")) {
      let conditions = [];
      try {
        conditions = JSON.parse(element.dataset.showOn);
      } catch (error) {
        continue;
      }
      const shown = conditions.every((c) => showOnValue(form, c.variable) === c.value);
      element.hidden = !shown;
      if (element.tagName === "OPTION") {
        element.disabled = !shown;
        const select = element.closest("select");
        if (!shown && element.selected && select) {
          const first = [...select.options].find((option) => !option.disabled);
          if (first) first.selected = true;
        }
      } else {
        for (const input of element.querySelectorAll("input, select, textarea")) {
          input.disabled = !shown;
        }
      }
    }
  }
}

function applyShowOnEverywhere() {
  const forms = new Set();
  for (const element of document.querySelectorAll("[data-show-on]")) {
    const form = element.closest("form");
    if (form) forms.add(form);
  }
  forms.forEach(applyShowOn);
}

document.addEventListener("change", (event) => {
  const form = event.target.form;
  if (form && event.target.dataset && event.target.dataset.variable) applyShowOn(form);
});
document.addEventListener("DOMContentLoaded", applyShowOnEverywhere);
document.addEventListener("htmx:afterSettle", applyShowOnEverywhere);

// ==== Playground ====
// <textarea data-submit-on-ctrl-enter>: Ctrl+Enter (⌘+Enter on a Mac) sends its form.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  if (!field.dataset || !("submitOnCtrlEnter" in field.dataset) || !field.form) return;
  event.preventDefault();
  field.form.requestSubmit();
});

// ==== Knowledge: drag and drop files onto <div data-dropzone> with a file input inside ====
function listDroppedFiles(zone) {
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector("[data-dropzone-files]");
  if (!input || !list) return;
  list.replaceChildren(
    ...[...input.files].map((file) => {
      const item = document.createElement("li");
      item.textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KB)`;
      return item;
    }),
  );
}

document.addEventListener("dragover", (event) => {
  const zone = event.target.closest && event.target.closest("[data-dropzone]");
  if (!zone) return;
  event.preventDefault();
  zone.classList.add("is-over");
});
document.addEventListener("dragleave", (event) => {
  const zone = event.target.closest && event.target.closest("[data-dropzone]");
  if (zone) zone.classList.remove("is-over");
});
document.addEventListener("drop", (event) => {
  const zone = event.target.closest && event.target.closest("[data-dropzone]");
  if (!zone) return;
  event.preventDefault();
  zone.classList.remove("is-over");
  const input = zone.querySelector("input[type=file]");
  if (!input || !event.dataTransfer) return;
  // Add the dropped files to those already chosen.
  const merged = new DataTransfer();
  for (const file of [...input.files, ...event.dataTransfer.files]) merged.items.add(file);
  input.files = merged.files;
  listDroppedFiles(zone);
});
document.addEventListener("change", (event) => {
  const zone = event.target.closest && event.target.closest("[data-dropzone]");
  if (zone && event.target.type === "file") listDroppedFiles(zone);
});

// A live list (data-live-list) skips a poll while one of its menus is open, so the menu
// is not closed under the pointer; the next poll catches up.
document.addEventListener("htmx:beforeRequest", (event) => {
  const list = event.detail && event.detail.elt;
  if (list && list.dataset && "liveList" in list.dataset && list.querySelector("details[open]")) {
    event.preventDefault();
  }
});
