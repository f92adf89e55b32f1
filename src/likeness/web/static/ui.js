// likeness pages: keyboard review, reveal of blurred pictures, grayscale. Plain ES module, no build step; every
// action here is also a link, a button or a form, so the pages work by keyboard without it and by mouse without it.

const GRAY = "likeness-grayscale";

function setGray(on) {
  document.documentElement.classList.toggle("grayscale", on);
  for (const b of document.querySelectorAll("[data-gray]")) b.setAttribute("aria-pressed", String(on));
  localStorage.setItem(GRAY, on ? "1" : "");
}

function reveal(figure) {
  const img = figure.querySelector("img[data-clear]");
  if (!img) return;
  img.src = img.dataset.clear; // the clear picture is fetched only now
  img.removeAttribute("data-clear");
  figure.classList.remove("is-blurred");
  figure.querySelector("[data-reveal]")?.remove();
}

function typing(event) {
  const t = event.target;
  return t instanceof HTMLElement && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}

function queueKeys(event, table) {
  const rows = [...table.querySelectorAll("tbody tr[data-href]")];
  const at = rows.indexOf(document.activeElement);
  if (event.key === "j" || event.key === "k") {
    const next = event.key === "j" ? Math.min(at + 1, rows.length - 1) : Math.max(at - 1, 0);
    rows[next]?.focus();
    return true;
  }
  if (event.key === "Enter" && at >= 0) {
    location.href = rows[at].dataset.href;
    return true;
  }
  return false;
}

function pageKeys(event) {
  if (event.key === "g") {
    setGray(!document.documentElement.classList.contains("grayscale"));
    return true;
  }
  if (event.key === "v") {
    document.querySelectorAll("figure.is-blurred").forEach(reveal);
    return true;
  }
  const focus = document.querySelector(`[data-key-focus="${event.key}"]`);
  if (focus) {
    focus.focus();
    return true;
  }
  const target = document.querySelector(`[data-key="${CSS.escape(event.key)}"]`);
  if (!target) return false;
  if (target instanceof HTMLButtonElement && target.form) target.form.requestSubmit(target);
  else target.click();
  return true;
}

document.addEventListener("DOMContentLoaded", () => {
  setGray(localStorage.getItem(GRAY) === "1");
  for (const b of document.querySelectorAll("[data-gray]")) {
    b.addEventListener("click", () => setGray(!document.documentElement.classList.contains("grayscale")));
  }
  for (const b of document.querySelectorAll("[data-reveal]")) {
    b.addEventListener("click", () => reveal(b.closest("figure")));
  }
  const table = document.querySelector("[data-queue]");
  table?.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-href]");
    if (row && !event.target.closest("a, button")) location.href = row.dataset.href;
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const done = (table && queueKeys(event, table)) || pageKeys(event);
    if (done) event.preventDefault();
  });
});
