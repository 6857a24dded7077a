// The studio's configuration page: the input-variable editor.

// "+ Add a variable" clones the row template with the next free index.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-add-var-row]");
  if (!button) return;
  const rows = document.getElementById("var-rows");
  const template = document.getElementById("var-row-template");
  if (!rows || !template) return;
  const index = Number(rows.dataset.nextIndex || rows.children.length);
  rows.dataset.nextIndex = String(index + 1);
  rows.insertAdjacentHTML("beforeend", template.innerHTML.replaceAll("__i__", String(index)));
  const added = rows.lastElementChild;
  const name = added && added.querySelector("input[type=text]");
  if (name) name.focus();
});

// A row's type decides which of its fields show: max length for texts, choices for a select.
function applyVarType(select) {
  const row = select.closest("[data-var-row]");
  if (!row) return;
  for (const field of row.querySelectorAll("[data-var-for]")) {
    field.hidden = !field.dataset.varFor.split(" ").includes(select.value);
  }
}
document.addEventListener("change", (event) => {
  if (event.target.matches && event.target.matches("[data-var-type]")) applyVarType(event.target);
});

// The preview's "Restart": a new conversation with the same (unsaved) configuration.
let debugInputs = null;
document.addEventListener("DOMContentLoaded", () => {
  const inputs = document.querySelector("[data-testid=debug-pane] #chat-inputs");
  if (inputs) debugInputs = inputs.cloneNode(true);
});
document.addEventListener("click", (event) => {
  if (!event.target.closest("[data-debug-restart]")) return;
  const pane = event.target.closest("[data-testid=debug-pane]");
  const thread = pane && pane.querySelector("#chat-thread");
  if (!thread) return;
  for (const turn of thread.querySelectorAll(".turn")) turn.remove();
  const conversation = pane.querySelector("#conversation-id");
  if (conversation) conversation.value = "";
  const error = pane.querySelector("#chat-error");
  if (error) error.textContent = "";
  const current = pane.querySelector("#chat-inputs");
  if (debugInputs && current) current.replaceWith(debugInputs.cloneNode(true));
});
