// Small DOM helpers shared by the panels: elements, numbers, tables and status messages.
import { setAdminKey } from "./api.js";

// el("td", {class: "num"}, "1.0", child, ...): attributes (on* as listeners), then children
// (strings become text nodes, never HTML).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

export const $ = (id) => document.getElementById(id);

export function num(x, digits = 3) {
  return typeof x === "number" && isFinite(x) ? x.toFixed(digits) : "–";
}

export function pct(x, digits = 1) {
  return typeof x === "number" && isFinite(x) ? (100 * x).toFixed(digits) + " %" : "–";
}

export function bytes(n) {
  if (typeof n !== "number") return "–";
  if (n >= 1048576) return (n / 1048576).toFixed(2) + " MB";
  if (n >= 1024) return (n / 1024).toFixed(1) + " kB";
  return n + " B";
}

// Fills a <table> from a header row and data rows; a cell is a value or {v, cls}.
export function fillTable(table, head, rows, opts = {}) {
  clear(table);
  table.hidden = false;
  const cell = (tag, c) => {
    if (c && typeof c === "object" && !(c instanceof Node) && "v" in c)
      return el(tag, { class: c.cls }, c.v);
    return el(tag, {}, c);
  };
  table.append(el("thead", {}, el("tr", {}, head.map((h) => cell("th", h)))));
  const body = el("tbody");
  // Each cell names its column (data-label): a table.stack shows rows as cards on a phone.
  const names = head.map((h) => (h && typeof h === "object" && "v" in h ? h.v : h));
  rows.forEach((r, i) => {
    const tr = el("tr", { class: opts.rowClass ? opts.rowClass(i) : undefined },
                  r.map((c, j) => {
                    const td = cell("td", c);
                    if (names[j]) td.dataset.label = names[j];
                    return td;
                  }));
    body.append(tr);
  });
  if (rows.length === 0 && opts.empty)
    body.append(el("tr", {}, el("td", { colspan: head.length, class: "muted" }, opts.empty)));
  table.append(body);
}

// A message in a status area: kind "ok" (default), "pending" or "error".
export function showStatus(target, message, kind = "ok") {
  clear(target);
  target.className = "status" + (kind === "ok" ? "" : " " + kind);
  if (message) target.append(message instanceof Node ? message : document.createTextNode(message));
}

// An API error in a status area, as its `detail`. A 401 asks for the admin key right there
// ("enter the admin key") and, once it is given, runs retry (when there is one) again.
export function showError(target, err, retry) {
  if (err && err.status === 401) {
    const input = el("input", { type: "password", autocomplete: "off", "aria-label": "admin key",
                                class: "key-ask" });
    const form = el("form", { class: "row" }, el("label", {}, "admin key ", input),
                    el("button", { type: "submit" }, retry ? "save and retry" : "save"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!input.value) return;
      setAdminKey(input.value);
      showStatus(target, "");
      if (retry) retry();
    });
    showStatus(target, el("span", {},
      el("strong", {}, "This needs the admin key: enter the admin key. "),
      err.detail ? el("span", { class: "muted" }, "(" + err.detail + ")") : null, form), "error");
    return;
  }
  const detail = err && err.detail ? err.detail : String(err && err.message ? err.message : err);
  showStatus(target, detail, "error");
}
