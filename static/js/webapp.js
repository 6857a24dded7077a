// The public web app pages (templates/chat/webapp_*.html). No inline script: the CSP forbids it.

// Copy: <button data-copy-from="#answer-…"> copies that element's text.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy-from], [data-copy-code]");
  if (!button) return;
  const source = button.dataset.copyFrom
    ? document.querySelector(button.dataset.copyFrom)
    : button.closest(".md-code") && button.closest(".md-code").querySelector("code");
  if (!source) return;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  const text = source.innerText;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
});

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  try { document.execCommand("copy"); done(); } catch (error) { /* nothing to do */ }
  area.remove();
}

// Images in answers are not loaded until asked: <button class="md-image" data-image-src>.
// The answer is untrusted; loading an image on its own would tell its host what the
// answer put in the URL.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.md-image");
  if (!button) return;
  event.preventDefault();
  const src = button.dataset.imageSrc || "";
  if (!/^https?:\/\//i.test(src)) return;
  const image = document.createElement("img");
  image.src = src;
  image.alt = button.dataset.imageAlt || "";
  image.className = "md-loaded-image";
  image.referrerPolicy = "no-referrer";
  button.replaceWith(image);
});

// Suggested questions: fill the message box and send.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-suggestion]");
  if (!button) return;
  const form = document.getElementById("chat-form");
  const query = document.getElementById("chat-query");
  if (!form || !query) return;
  query.value = button.dataset.suggestion;
  form.requestSubmit();
});

// Enter sends the chat message; Shift+Enter is a new line.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  if (!field.dataset || !("submitOnEnter" in field.dataset) || !field.form) return;
  event.preventDefault();
  if (field.value.trim()) field.form.requestSubmit();
});

// Ctrl+Enter sends the text generator's form from a paragraph field.
document.addEventListener("keydown", (event) => {
  const field = event.target;
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
  if (!field.dataset || !("submitOnCtrlEnter" in field.dataset) || !field.form) return;
  event.preventDefault();
  field.form.requestSubmit();
});

// After a message is sent, empty the box.
document.addEventListener("htmx:wsAfterSend", (event) => {
  const query = document.getElementById("chat-query");
  const form = document.getElementById("chat-form");
  if (query && form && form.contains(event.detail.elt || event.target)) query.value = "";
});

// A new conversation got its id: make the address point at it, so a reload shows it.
function followConversation() {
  const input = document.getElementById("conversation-id");
  const form = document.getElementById("chat-form");
  if (!input || !form || !input.value) return;
  const url = form.dataset.conversationUrl + input.value;
  if (window.location.pathname !== url) window.history.replaceState({}, "", url);
}

// Keep the newest text in view while it streams, unless the reader scrolled up.
let stickToBottom = true;
window.addEventListener("scroll", () => {
  stickToBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
});
document.addEventListener("htmx:oobAfterSwap", () => {
  followConversation();
  if (stickToBottom) window.scrollTo(0, document.body.scrollHeight);
});
