// Small DOM and text helpers shared by every view. No state, no server calls.

export const $ = (id) => document.getElementById(id);

// h("div", { class: "x", text: "...", onclick: fn, "data-testid": "y" }, ...children)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function svg(markup, cls) {
  const span = h("span", { class: cls || "svg" });
  span.innerHTML = markup; // constant markup only, never user content
  return span;
}

export const ICONS = {
  check: '<svg viewBox="0 0 16 11" width="16" height="11"><path fill="currentColor" d="M11.07.65 10.4.1a.5.5 0 0 0-.7.07L4.35 6.98 1.97 4.6a.5.5 0 0 0-.7 0l-.6.6a.5.5 0 0 0 0 .7l3.4 3.4a.5.5 0 0 0 .74-.04l6.33-7.9a.5.5 0 0 0-.07-.7z"/></svg>',
  double: '<svg viewBox="0 0 16 11" width="16" height="11"><path fill="currentColor" d="M11.07.65 10.4.1a.5.5 0 0 0-.7.07L4.35 6.98 1.97 4.6a.5.5 0 0 0-.7 0l-.6.6a.5.5 0 0 0 0 .7l3.4 3.4a.5.5 0 0 0 .74-.04l6.33-7.9a.5.5 0 0 0-.07-.7zm4 0L14.4.1a.5.5 0 0 0-.7.07L8.35 6.98l-.6-.6-.95 1.18 1.2 1.2a.5.5 0 0 0 .74-.04l6.33-7.9a.5.5 0 0 0-.07-.7z"/></svg>',
  clock: '<svg viewBox="0 0 16 15" width="14" height="14"><path fill="currentColor" d="M8 1.5a6 6 0 1 0 0 12 6 6 0 0 0 0-12zm0 1.2a4.8 4.8 0 1 1 0 9.6 4.8 4.8 0 0 1 0-9.6zM7.4 4v4.2l3.2 1.9.6-1-2.6-1.5V4z"/></svg>',
  link: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M14 3v2h3.6l-9.8 9.8 1.4 1.4L19 6.4V10h2V3h-7zm5 16H5V5h7V3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2v-7h-2v7z"/></svg>',
  list: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M3 13h2v-2H3v2zm0 4h2v-2H3v2zm0-8h2V7H3v2zm4 4h14v-2H7v2zm0 4h14v-2H7v2zM7 7v2h14V7H7z"/></svg>',
  pin: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M12 2a7 7 0 0 0-7 7c0 5.25 7 13 7 13s7-7.75 7-13a7 7 0 0 0-7-7zm0 9.5a2.5 2.5 0 1 1 0-5 2.5 2.5 0 0 1 0 5z"/></svg>',
  doc: '<svg viewBox="0 0 24 24" width="30" height="30"><path fill="#e2574c" d="M6 2h9l5 5v15a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V3a1 1 0 0 1 1-1z"/><path fill="#f7c3bf" d="M15 2v5h5z"/></svg>',
  reply: '<svg viewBox="0 0 24 24" width="16" height="16"><path fill="currentColor" d="M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z"/></svg>',
  person: '<svg viewBox="0 0 24 24" width="30" height="30"><path fill="currentColor" d="M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zm0 2.2c-3 0-9 1.5-9 4.5V21h18v-2.3c0-3-6-4.5-9-4.5z"/></svg>',
  group: '<svg viewBox="0 0 24 24" width="22" height="22"><path fill="currentColor" d="M16 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm-8 0a3 3 0 1 0 0-6 3 3 0 0 0 0 6zm0 2c-2.33 0-7 1.17-7 3.5V19h14v-2.5C15 14.17 10.33 13 8 13zm8 0c-.29 0-.62.02-.97.05A4.2 4.2 0 0 1 17 16.5V19h6v-2.5c0-2.33-4.67-3.5-7-3.5z"/></svg>',
};

export function clock(ts) {
  return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((p) => p[0].toUpperCase()).join("");
}

export function formatPhone(number) {
  const n = String(number || "");
  if (n.startsWith("55") && n.length === 13) return `+55 ${n.slice(2, 4)} ${n.slice(4, 9)}-${n.slice(9)}`;
  if (n.startsWith("1") && n.length === 11) return `+1 ${n.slice(1, 4)}-${n.slice(4, 7)}-${n.slice(7)}`;
  return `+${n}`;
}

// WhatsApp formatting: *bold* _italic_ ~strike~ ```mono``` and clickable links; text stays escaped.
// Markers count only at word boundaries, as in WhatsApp ("snake_case_name" stays as it is).
const FORMAT = /(```[\s\S]+?```)|(https?:\/\/[^\s<]+)|(?<![\p{L}\p{N}*_~])([*_~])(?!\s)([^\n]*?\S)\3(?![\p{L}\p{N}*_~])/gu;
const STYLE = { "*": "strong", _: "em", "~": "s" };

export function richText(text) {
  const frag = document.createDocumentFragment();
  text = String(text);
  let last = 0;
  for (const match of text.matchAll(FORMAT)) {
    if (match.index > last) frag.append(text.slice(last, match.index));
    if (match[1]) frag.append(h("code", { text: match[1].slice(3, -3) }));
    else if (match[2]) frag.append(h("a", { href: match[2], target: "_blank", rel: "noopener noreferrer", text: match[2] }));
    else frag.append(h(STYLE[match[3]], { text: match[4] }));
    last = match.index + match[0].length;
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}

// The contact list shows text as WhatsApp does: without the formatting markers.
export function plain(text) {
  return String(text || "").replace(FORMAT, (all, mono, url, marker, inner) => mono ? mono.slice(3, -3) : url || inner);
}

// A bot image sent by link may not load (offline machine, dead link): show a local placeholder.
export function imageFallback(event) {
  const img = event.target;
  if (!img.src.endsWith("/static/image-missing.svg")) img.src = "/static/image-missing.svg";
}

export function mediaUrl(media) {
  if (!media) return "";
  if (media.id) return `/_sandbox/media/${encodeURIComponent(media.id)}`;
  return media.link || "";
}

export function showError(error) {
  const toast = h("div", { class: "toast", role: "alert", text: String(error.message || error) });
  document.body.append(toast);
  setTimeout(() => toast.remove(), 5000);
}
