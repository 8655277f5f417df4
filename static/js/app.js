// Shared page behaviour: dialogs loaded by HTMX open as modals, and close (and leave the DOM)
// with their Cancel button or Escape.
document.addEventListener("htmx:afterSettle", (event) => {
  for (const dialog of event.detail.elt.querySelectorAll("dialog[data-modal]:not([open])")) {
    dialog.addEventListener("close", () => dialog.remove());
    dialog.showModal();
    const first = dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  }
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-close-dialog]");
  if (button) button.closest("dialog")?.close();
});
