// Building the page. Every string becomes a text node or an attribute value: nothing a user
// or the server wrote is ever parsed as HTML.

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function formatSize(bytes) {
  if (typeof bytes !== "number") return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

// Dates in UTC, to the minute: the same for everyone reading a shared screen.
export function formatDate(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

let statusTimer = null;

// A short message for screen readers and eyes, in the page's live region.
export function announce(text) {
  const region = document.getElementById("status");
  region.textContent = text;
  region.classList.add("shown");
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => region.classList.remove("shown"), 6000);
}

async function writeClipboard(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Plain http on another host has no async clipboard: select the text for Ctrl-C.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return false;
  }
}

// A block of text to copy: the text itself (selectable) and a Copy button.
export function snippet(label, text, { secret = false } = {}) {
  const code = h("code", { class: secret ? "secret" : null }, text);
  const button = h("button", { type: "button", class: "copy", "aria-label": `Copy ${label}` }, "Copy");
  button.addEventListener("click", async () => {
    const copied = await writeClipboard(text, code);
    button.textContent = copied ? "Copied" : "Selected: press Ctrl-C";
    announce(copied ? `${label} copied to the clipboard` : `${label} selected: press Ctrl-C to copy`);
    setTimeout(() => { button.textContent = "Copy"; }, 2500);
  });
  return h("div", { class: "snippet" },
    h("div", { class: "snippet-label" }, label),
    h("div", { class: "snippet-body" }, h("pre", null, code), button));
}

export function badge(visibility) {
  return h("span", { class: `badge ${visibility === "public" ? "public" : "private"}` }, visibility);
}

// A table that turns into labelled cards on narrow screens (the labels come from data-label).
export function table(caption, columns, rows) {
  return h("table", { class: "list" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", null, rows.map((cells) => h("tr", null,
      cells.map((cell, i) => h("td", { "data-label": columns[i] }, cell))))));
}

export function alertBox(text, ...more) {
  return h("div", { class: "alert", role: "alert" }, h("p", null, text), ...more);
}

export function field(label, input, help) {
  const id = input.id;
  const helpId = help ? `${id}-help` : null;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    help ? h("p", { class: "help", id: helpId }, help) : null);
}
