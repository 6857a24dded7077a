// Small page behaviours, kept out of inline attributes so the CSP can forbid inline script.

// <form data-confirm="Delete this?">: ask before submitting.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
}, true);
