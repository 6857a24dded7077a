// Orrery chat bubble for any website. Paste on a page:
//   <script src="https://ORRERY/static/js/embed.js" data-orrery-chat="https://ORRERY/chat/CODE" defer></script>
// A round button in the bottom corner opens the chat in a frame; a second click closes it.
// Optional: data-orrery-label="Chat with us", data-orrery-color="#3b5bdb".
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || !script.dataset.orreryChat) return;
  let url;
  try {
    url = new URL(script.dataset.orreryChat, script.src);
  } catch (error) {
    return;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return;
  const label = script.dataset.orreryLabel || "Open chat";
  const color = /^#[0-9a-fA-F]{3,8}$/.test(script.dataset.orreryColor || "")
    ? script.dataset.orreryColor
    : "#3b5bdb";

  function start() {
    const button = document.createElement("button");
    button.type = "button";
    button.id = "orrery-chat-button";
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-expanded", "false");
    // A speech bubble, drawn (an emoji may be missing from the visitor's fonts).
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "26");
    svg.setAttribute("height", "26");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    path.setAttribute("fill", "currentColor");
    svg.appendChild(path);
    button.appendChild(svg);
    Object.assign(button.style, {
      position: "fixed", right: "1.25rem", bottom: "1.25rem", zIndex: "2147483646",
      width: "3.5rem", height: "3.5rem", borderRadius: "50%", border: "0", cursor: "pointer",
      background: color, color: "#fff", display: "grid", placeItems: "center",
      boxShadow: "0 4px 14px rgba(0,0,0,.25)",
    });
    let frame = null;
    button.addEventListener("click", () => {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.id = "orrery-chat-frame";
        frame.title = label;
        frame.src = url.href;
        frame.allow = "clipboard-write";
        Object.assign(frame.style, {
          position: "fixed", right: "1.25rem", bottom: "5.5rem", zIndex: "2147483647",
          width: "min(26rem, calc(100vw - 2.5rem))", height: "min(40rem, calc(100vh - 7rem))",
          border: "1px solid #e2e5eb", borderRadius: "12px", background: "#fff",
          boxShadow: "0 8px 30px rgba(0,0,0,.2)",
        });
        document.body.appendChild(frame);
      } else {
        frame.hidden = !frame.hidden;
      }
      button.setAttribute("aria-expanded", frame.hidden ? "false" : "true");
    });
    document.body.appendChild(button);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
