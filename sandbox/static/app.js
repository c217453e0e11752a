// The sandbox chat page: you are a WhatsApp user (pick one on the left) talking to the bot.
// Live updates come from /_sandbox/events (server-sent events); actions are small JSON POSTs.
"use strict";

const PLACES = [
  { name: "Avenida Paulista", address: "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200",
    latitude: -23.561414, longitude: -46.655881 },
  { name: "Praia de Copacabana", address: "Av. Atlântica - Copacabana, Rio de Janeiro - RJ",
    latitude: -22.971177, longitude: -43.182543 },
  { name: "Praça da Liberdade", address: "Praça da Liberdade - Funcionários, Belo Horizonte - MG",
    latitude: -19.932, longitude: -43.9378 },
];
const TYPING_SECONDS = 25;

const app = {
  contacts: [],
  messages: new Map(),   // id -> entry (both directions, every contact)
  current: null,         // wa_id of the contact you are
  typing: new Map(),     // wa_id -> timeout id
  unread: new Map(),     // wa_id -> count of bot messages not seen
  info: {},
  listMessage: null,     // the bot message whose list sheet is open
  listChoice: null,
  locationContext: null,
};

// ---------- small DOM helpers

function h(tag, attrs, ...children) {
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

const $ = (id) => document.getElementById(id);

function svg(markup, cls) {
  const span = h("span", { class: cls || "svg" });
  span.innerHTML = markup; // constant markup only, never user content
  return span;
}

const ICONS = {
  check: '<svg viewBox="0 0 16 11" width="16" height="11"><path fill="currentColor" d="M11.07.65 10.4.1a.5.5 0 0 0-.7.07L4.35 6.98 1.97 4.6a.5.5 0 0 0-.7 0l-.6.6a.5.5 0 0 0 0 .7l3.4 3.4a.5.5 0 0 0 .74-.04l6.33-7.9a.5.5 0 0 0-.07-.7z"/></svg>',
  double: '<svg viewBox="0 0 16 11" width="16" height="11"><path fill="currentColor" d="M11.07.65 10.4.1a.5.5 0 0 0-.7.07L4.35 6.98 1.97 4.6a.5.5 0 0 0-.7 0l-.6.6a.5.5 0 0 0 0 .7l3.4 3.4a.5.5 0 0 0 .74-.04l6.33-7.9a.5.5 0 0 0-.07-.7zm4 0L14.4.1a.5.5 0 0 0-.7.07L8.35 6.98l-.6-.6-.95 1.18 1.2 1.2a.5.5 0 0 0 .74-.04l6.33-7.9a.5.5 0 0 0-.07-.7z"/></svg>',
  clock: '<svg viewBox="0 0 16 15" width="14" height="14"><path fill="currentColor" d="M8 1.5a6 6 0 1 0 0 12 6 6 0 0 0 0-12zm0 1.2a4.8 4.8 0 1 1 0 9.6 4.8 4.8 0 0 1 0-9.6zM7.4 4v4.2l3.2 1.9.6-1-2.6-1.5V4z"/></svg>',
  link: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M14 3v2h3.6l-9.8 9.8 1.4 1.4L19 6.4V10h2V3h-7zm5 16H5V5h7V3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2v-7h-2v7z"/></svg>',
  list: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M3 13h2v-2H3v2zm0 4h2v-2H3v2zm0-8h2V7H3v2zm4 4h14v-2H7v2zm0 4h14v-2H7v2zM7 7v2h14V7H7z"/></svg>',
  pin: '<svg viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M12 2a7 7 0 0 0-7 7c0 5.25 7 13 7 13s7-7.75 7-13a7 7 0 0 0-7-7zm0 9.5a2.5 2.5 0 1 1 0-5 2.5 2.5 0 0 1 0 5z"/></svg>',
  doc: '<svg viewBox="0 0 24 24" width="30" height="30"><path fill="#e2574c" d="M6 2h9l5 5v15a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1V3a1 1 0 0 1 1-1z"/><path fill="#f7c3bf" d="M15 2v5h5z"/></svg>',
  reply: '<svg viewBox="0 0 24 24" width="16" height="16"><path fill="currentColor" d="M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11z"/></svg>',
  person: '<svg viewBox="0 0 24 24" width="30" height="30"><path fill="currentColor" d="M12 12a4.5 4.5 0 1 0 0-9 4.5 4.5 0 0 0 0 9zm0 2.2c-3 0-9 1.5-9 4.5V21h18v-2.3c0-3-6-4.5-9-4.5z"/></svg>',
};

function clock(ts) {
  const d = new Date(ts * 1000);
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((p) => p[0].toUpperCase()).join("");
}

function formatPhone(number) {
  const n = String(number || "");
  if (n.startsWith("55") && n.length === 13) return `+55 ${n.slice(2, 4)} ${n.slice(4, 9)}-${n.slice(9)}`;
  if (n.startsWith("1") && n.length === 11) return `+1 ${n.slice(1, 4)}-${n.slice(4, 7)}-${n.slice(7)}`;
  return `+${n}`;
}

// WhatsApp formatting: *bold* _italic_ ~strike~ ```mono``` and clickable links; text stays escaped.
// Markers count only at word boundaries, as in WhatsApp ("snake_case_name" stays as it is).
const FORMAT = /(```[\s\S]+?```)|(https?:\/\/[^\s<]+)|(?<![\p{L}\p{N}*_~])([*_~])(?!\s)([^\n]*?\S)\3(?![\p{L}\p{N}*_~])/gu;
const STYLE = { "*": "strong", _: "em", "~": "s" };

function richText(text) {
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

// A bot image sent by link may not load (offline machine, dead link): show a local placeholder.
function imageFallback(event) {
  const img = event.target;
  if (!img.src.endsWith("/static/image-missing.svg")) img.src = "/static/image-missing.svg";
}

function mediaUrl(media) {
  if (!media) return "";
  if (media.id) return `/_sandbox/media/${encodeURIComponent(media.id)}`;
  return media.link || "";
}

// ---------- server calls

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function act(action) {
  if (!app.current) return Promise.resolve();
  return post(`/_sandbox/contacts/${app.current}/messages`, action).catch(showError);
}

function showError(error) {
  const toast = h("div", { class: "toast", role: "alert", text: String(error.message || error) });
  document.body.append(toast);
  setTimeout(() => toast.remove(), 5000);
}

// ---------- live updates

function connect() {
  const source = new EventSource("/_sandbox/events");
  source.onopen = () => setConnection(true);
  source.onerror = () => setConnection(false);
  source.onmessage = (event) => handle(JSON.parse(event.data));
}

function setConnection(ok) {
  const el = $("connection");
  el.classList.toggle("offline", !ok);
  const number = app.info.display_phone_number ? formatPhone(app.info.display_phone_number) : "";
  el.textContent = ok ? `Bot number ${number}` : "Sandbox not reachable, reconnecting…";
}

function handle(event) {
  switch (event.type) {
    case "snapshot":
      app.info = event.info || app.info;
      app.contacts = event.contacts;
      app.messages = new Map(event.messages.map((m) => [m.id, m]));
      if (!app.current || !app.contacts.some((c) => c.wa_id === app.current)) {
        app.current = app.contacts.length ? app.contacts[0].wa_id : null;
      }
      for (const waId of event.typing || []) startTyping(waId, TYPING_SECONDS);
      renderInfo();
      renderLog(event.log || []);
      renderFaults(app.info.faults || []);
      renderContacts();
      renderChat();
      setConnection(true);
      break;
    case "contact":
      app.contacts.push(event.contact);
      renderContacts();
      break;
    case "message":
      onMessage(event.message);
      break;
    case "status":
      onStatus(event);
      break;
    case "typing":
      startTyping(event.wa_id, event.seconds);
      break;
    case "log":
      appendLog(event.item);
      break;
    case "faults":
      renderFaults(event.faults);
      break;
    default:
      break;
  }
}

function onMessage(entry) {
  app.messages.set(entry.id, entry);
  if (entry.direction === "bot") {
    stopTyping(entry.wa_id);
    if (entry.wa_id !== app.current) app.unread.set(entry.wa_id, (app.unread.get(entry.wa_id) || 0) + 1);
  }
  if (entry.wa_id === app.current) {
    if (entry.type === "reaction") renderReactions();
    else appendMessage(entry);
  }
  renderContacts();
}

function onStatus(event) {
  const entry = app.messages.get(event.id);
  if (!entry) return;
  entry.status = event.status;
  entry.error = event.error;
  const row = document.querySelector(`[data-id="${CSS.escape(event.id)}"]`);
  if (!row) return;
  row.dataset.status = event.status;
  const ticks = row.querySelector("[data-testid=ticks]");
  if (ticks) ticks.replaceWith(renderTicks(entry));
}

function startTyping(waId, seconds) {
  stopTyping(waId);
  app.typing.set(waId, setTimeout(() => stopTyping(waId), seconds * 1000));
  renderTyping();
}

function stopTyping(waId) {
  clearTimeout(app.typing.get(waId));
  app.typing.delete(waId);
  renderTyping();
}

// ---------- rendering: sidebar, header, developer drawer

function renderContacts() {
  const list = $("contacts");
  list.replaceChildren(...app.contacts.map((contact) => {
    const conversation = [...app.messages.values()].filter((m) => m.wa_id === contact.wa_id && m.type !== "reaction");
    const last = conversation[conversation.length - 1];
    const unread = app.unread.get(contact.wa_id) || 0;
    return h("li", {
      class: contact.wa_id === app.current ? "contact active" : "contact",
      "data-testid": "contact-item",
      "data-wa-id": contact.wa_id,
      onclick: () => selectContact(contact.wa_id),
    },
    h("div", { class: "avatar", text: initials(contact.name) }),
    h("div", { class: "contact-main" },
      h("div", { class: "contact-line" },
        h("span", { class: "contact-name", text: contact.name }),
        last ? h("span", { class: "contact-time", text: clock(last.timestamp) }) : null),
      h("div", { class: "contact-line" },
        h("span", { class: "contact-preview", text: last ? preview(last) : formatPhone(contact.wa_id) }),
        unread ? h("span", { class: "unread", text: String(unread) }) : null)));
  }));
}

function selectContact(waId) {
  app.current = waId;
  app.unread.delete(waId);
  renderContacts();
  renderChat();
  $("composer-input").focus();
}

function renderInfo() {
  $("chat-title").textContent = app.info.business_name || "Bot";
  $("webhook-url").textContent = app.info.webhook_url || "";
  const badge = $("verified-badge");
  badge.textContent = app.info.verified ? "verified" : "not verified";
  badge.classList.toggle("ok", Boolean(app.info.verified));
  renderTyping();
}

function renderTyping() {
  const typing = app.current && app.typing.has(app.current);
  const subtitle = $("chat-subtitle");
  subtitle.textContent = typing ? "digitando…" : formatPhone(app.info.display_phone_number || "");
  subtitle.classList.toggle("typing", Boolean(typing));
  const messages = $("messages");
  let bubble = messages.querySelector("[data-testid=typing-indicator]");
  if (typing && !bubble) {
    bubble = h("div", { class: "row bot typing-row", "data-testid": "typing-indicator" },
      h("div", { class: "bubble typing-bubble" }, h("span"), h("span"), h("span")));
    messages.append(bubble);
    scrollToEnd();
  } else if (!typing && bubble) {
    bubble.remove();
  }
}

function renderLog(items) {
  $("event-log").replaceChildren();
  items.forEach(appendLog);
}

function appendLog(item) {
  const log = $("event-log");
  log.prepend(h("li", { class: item.ok ? "" : "bad" },
    h("time", { text: clock(item.time) }), h("b", { text: item.kind }), " ", item.text));
  while (log.children.length > 300) log.lastChild.remove();
  if (item.kind === "verify" && item.ok) { app.info.verified = true; renderInfo(); }
}

function renderFaults(faults) {
  $("pending-faults").replaceChildren(...faults.map((f) => h("li", {
    text: f.kind === "slow"
      ? `slow ${f.seconds} s × ${f.count} (${f.target})`
      : `${f.kind} #${f.code} HTTP ${f.status} × ${f.count} (${f.target})`,
  })));
}

// ---------- rendering: the conversation

function renderChat() {
  const contact = app.contacts.find((c) => c.wa_id === app.current);
  $("you-are").textContent = contact ? `You are ${contact.name} (${formatPhone(contact.wa_id)})` : "";
  const messages = $("messages");
  messages.replaceChildren();
  for (const entry of app.messages.values()) {
    if (entry.wa_id === app.current && entry.type !== "reaction") messages.append(renderMessage(entry));
  }
  renderReactions();
  renderTyping();
  scrollToEnd();
}

function appendMessage(entry) {
  const messages = $("messages");
  const typingRow = messages.querySelector("[data-testid=typing-indicator]");
  const row = renderMessage(entry);
  if (typingRow) messages.insertBefore(row, typingRow);
  else messages.append(row);
  scrollToEnd();
}

function scrollToEnd() {
  const messages = $("messages");
  requestAnimationFrame(() => { messages.scrollTop = messages.scrollHeight; });
}

function renderReactions() {
  document.querySelectorAll(".reaction-badge").forEach((el) => el.remove());
  const latest = new Map();
  for (const entry of app.messages.values()) {
    if (entry.type === "reaction" && entry.direction === "bot" && entry.wa_id === app.current) {
      latest.set(entry.content.reaction.message_id, entry.content.reaction.emoji);
    }
  }
  for (const [target, emoji] of latest) {
    const bubble = document.querySelector(`[data-id="${CSS.escape(target)}"] .bubble`);
    if (bubble && emoji) bubble.append(h("span", { class: "reaction-badge", "data-testid": "reaction", text: emoji }));
  }
}

// The contact list shows text as WhatsApp does: without the formatting markers.
function plain(text) {
  return String(text || "").replace(FORMAT, (all, mono, url, marker, inner) => mono ? mono.slice(3, -3) : url || inner);
}

function preview(entry) {
  return plain(rawPreview(entry));
}

function rawPreview(entry) {
  const c = entry.content || {};
  if (entry.direction === "user") {
    if (c.type === "text") return c.text.body;
    if (c.type === "interactive") return (c.interactive.button_reply || c.interactive.list_reply).title;
    if (c.type === "location") return `Location: ${c.location.name || "pin"}`;
    if (c.type === "image") return c.image.caption ? `Photo: ${c.image.caption}` : "Photo";
    return c.type;
  }
  const body = c[entry.type] || {};
  switch (entry.type) {
    case "text": return body.body;
    case "interactive": return (body.body && body.body.text) || "Interactive message";
    case "image": return body.caption ? `Photo: ${body.caption}` : "Photo";
    case "document": return `Document: ${body.filename || "file"}`;
    case "location": return `Location: ${body.name || "pin"}`;
    case "template": return `Template ${body.name}`;
    default: return entry.type;
  }
}

function renderTicks(entry) {
  const status = entry.status;
  if (status === "failed") {
    return h("span", { class: "ticks failed", "data-testid": "ticks", "data-status": "failed",
      title: "The bot's webhook did not answer 200" }, "!");
  }
  const icon = status === "sent" ? ICONS.check : status === "delivered" || status === "read" ? ICONS.double : ICONS.clock;
  const el = svg(icon, `ticks ${status}`);
  el.dataset.testid = "ticks";
  el.dataset.status = status;
  el.title = status;
  return el;
}

function renderMessage(entry) {
  const fromUser = entry.direction === "user";
  const body = fromUser ? renderUserContent(entry) : renderBotContent(entry);
  const meta = h("span", { class: "meta" }, h("time", { text: clock(entry.timestamp) }), fromUser ? renderTicks(entry) : null);
  const content = h("div", { class: "content" }, quote(entry), body.content, meta);
  // Room for the time (and ticks) at the end of the last line of text, or on a line of its own.
  const texts = content.querySelectorAll(".text");
  if (texts.length) texts[texts.length - 1].append(h("span", { class: "meta-spacer" }));
  else content.insertBefore(h("div", { class: "meta-line" }), meta);
  const bubble = h("div", { class: `bubble kind-${entry.type}` }, content);
  if (body.inside) bubble.append(body.inside);
  if (!fromUser && entry.status === "failed" && entry.error) {
    const error = entry.error;
    const details = error.error_data ? error.error_data.details : error.details || "";
    bubble.append(h("div", { class: "delivery-error", "data-testid": "delivery-error",
      text: `Not delivered: #${error.code} ${error.title || ""}. ${details}` }));
  }
  const kindOf = (type, object) => (type === "interactive" ? object.interactive.type : type);
  return h("div", {
    class: `row ${fromUser ? "user" : "bot"}${entry.status === "failed" ? " failed" : ""}`,
    "data-testid": fromUser ? "message-out" : "message-in",
    "data-id": entry.id,
    "data-kind": fromUser ? kindOf(entry.content.type, entry.content) : kindOf(entry.type, entry.content),
    "data-status": entry.status,
  }, bubble, body.below || null);
}

function quote(entry) {
  const contextId = entry.direction === "user"
    ? entry.content.context && entry.content.context.id
    : entry.content.context && entry.content.context.message_id;
  if (!contextId) return null;
  const quoted = app.messages.get(contextId);
  if (!quoted) return null;
  return h("div", { class: "quote" },
    h("div", { class: "quote-author", text: quoted.direction === "bot" ? app.info.business_name || "Bot" : "You" }),
    h("div", { class: "quote-text", text: preview(quoted) || "" }));
}

function renderUserContent(entry) {
  const c = entry.content;
  switch (c.type) {
    case "text":
      return { content: h("div", { class: "text" }, richText(c.text.body)) };
    case "interactive": {
      const reply = c.interactive.button_reply || c.interactive.list_reply;
      return { content: h("div", { class: "text" }, reply.title,
        reply.description ? h("div", { class: "row-description", text: reply.description }) : null) };
    }
    case "location":
      return { content: locationCard(c.location) };
    case "image":
      return { content: h("div", {}, h("img", { class: "photo", src: mediaUrl(c.image), alt: c.image.caption || "photo" }),
        c.image.caption ? h("div", { class: "text caption" }, richText(c.image.caption)) : null) };
    case "audio":
      return { content: h("audio", { controls: true, src: mediaUrl(c.audio) }) };
    case "video":
      return { content: h("video", { controls: true, class: "photo", src: mediaUrl(c.video) }) };
    case "document":
      return { content: documentCard(c.document) };
    default:
      return { content: h("pre", { text: JSON.stringify(c, null, 2) }) };
  }
}

function renderBotContent(entry) {
  const body = entry.content[entry.type] || entry.content;
  switch (entry.type) {
    case "text":
      return { content: h("div", { class: "text" }, richText(body.body || "")) };
    case "image":
    case "sticker":
      return { content: h("div", {},
        h("img", { class: entry.type === "sticker" ? "sticker" : "photo", src: mediaUrl(body), alt: body.caption || entry.type, "data-testid": "bot-image", onerror: imageFallback }),
        body.caption ? h("div", { class: "text caption" }, richText(body.caption)) : null) };
    case "video":
      return { content: h("div", {}, h("video", { class: "photo", controls: true, src: mediaUrl(body) }),
        body.caption ? h("div", { class: "text caption" }, richText(body.caption)) : null) };
    case "audio":
      return { content: h("audio", { controls: true, src: mediaUrl(body) }) };
    case "document":
      return { content: documentCard(body) };
    case "location":
      return { content: locationCard(body) };
    case "contacts":
      return { content: h("div", { class: "contact-cards" }, body.map((card) => contactCard(card))) };
    case "interactive":
      return renderInteractive(entry, body);
    case "template":
      return { content: templateCard(body) };
    default:
      return { content: h("pre", { text: JSON.stringify(entry.content, null, 2) }) };
  }
}

function renderInteractive(entry, interactive) {
  const parts = [];
  const header = interactive.header;
  if (header) {
    if (header.type === "text") parts.push(h("div", { class: "int-header", text: header.text }));
    else if (header.type === "image") parts.push(h("img", { class: "photo", src: mediaUrl(header.image), alt: "", onerror: imageFallback }));
    else if (header.type === "video") parts.push(h("video", { class: "photo", controls: true, src: mediaUrl(header.video) }));
    else if (header.type === "document") parts.push(documentCard(header.document));
  }
  if (interactive.body) parts.push(h("div", { class: "text" }, richText(interactive.body.text || "")));
  if (interactive.footer) parts.push(h("div", { class: "text int-footer", text: interactive.footer.text }));
  const content = h("div", {}, parts);
  const action = interactive.action || {};
  switch (interactive.type) {
    case "button":
      return { content, below: h("div", { class: "reply-buttons" }, (action.buttons || []).map((button) =>
        h("button", {
          class: "reply-button", "data-testid": "reply-button", "data-id": button.reply.id,
          onclick: () => act({ type: "button_reply", id: button.reply.id, title: button.reply.title, context: entry.id }),
        }, svg(ICONS.reply, "svg small"), button.reply.title))) };
    case "list":
      return { content, inside: h("button", {
        class: "inside-button", "data-testid": "list-open-button", onclick: () => openList(entry),
      }, svg(ICONS.list), action.button) };
    case "cta_url": {
      const params = action.parameters || {};
      return { content, inside: h("a", {
        class: "inside-button", "data-testid": "cta-button", href: params.url, target: "_blank", rel: "noopener noreferrer",
      }, svg(ICONS.link), params.display_text) };
    }
    case "location_request_message":
      return { content, inside: h("button", {
        class: "inside-button", "data-testid": "location-request-button", onclick: () => openLocation(entry.id),
      }, svg(ICONS.pin), "Send location") };
    case "flow":
      return { content, inside: h("button", { class: "inside-button", disabled: true, title: "Flows are not simulated" },
        (action.parameters || {}).flow_cta || "Open") };
    default:
      return { content };
  }
}

function documentCard(doc) {
  const name = doc.filename || "Document";
  return h("div", {},
    h("a", { class: "document", "data-testid": "document", href: mediaUrl(doc), target: "_blank", rel: "noopener noreferrer", download: name },
      svg(ICONS.doc), h("span", { class: "doc-name", text: name })),
    doc.caption ? h("div", { class: "text caption" }, richText(doc.caption)) : null);
}

function locationCard(location) {
  const lat = Number(location.latitude);
  const lng = Number(location.longitude);
  const osm = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lng}#map=16/${lat}/${lng}`;
  return h("a", { class: "location-card", "data-testid": "location-card", href: osm, target: "_blank", rel: "noopener noreferrer" },
    h("div", { class: "map" }, svg(ICONS.pin, "map-pin")),
    location.name ? h("div", { class: "place-name", text: location.name }) : null,
    location.address ? h("div", { class: "place-address", text: location.address }) : null,
    h("div", { class: "coords", text: `${lat.toFixed(5)}, ${lng.toFixed(5)}` }));
}

function contactCard(card) {
  const phones = (card.phones || []).map((p) => p.phone).filter(Boolean).join(" · ");
  return h("div", { class: "contact-card" }, svg(ICONS.person, "svg avatar-small"),
    h("div", {}, h("div", { class: "place-name", text: (card.name || {}).formatted_name || "Contact" }),
      phones ? h("div", { class: "place-address", text: phones }) : null));
}

function templateCard(template) {
  const params = [];
  for (const component of template.components || []) {
    for (const p of component.parameters || []) if (p.type === "text") params.push(p.text);
  }
  return h("div", { class: "template" },
    h("div", { class: "int-header", text: `Template "${template.name}" (${(template.language || {}).code || "?"})` }),
    params.length ? h("div", { class: "text", text: params.join(" · ") }) : null);
}

// ---------- sheets: list, location, photo, new contact

function openSheet(id) { $(id).hidden = false; }
function closeSheets() { document.querySelectorAll(".sheet-backdrop").forEach((el) => { el.hidden = true; }); }

function openList(entry) {
  app.listMessage = entry;
  app.listChoice = null;
  const action = entry.content.interactive.action;
  $("list-title").textContent = action.button;
  $("list-send").disabled = true;
  $("list-body").replaceChildren(...(action.sections || []).map((section) => h("section", {},
    section.title ? h("h3", { text: section.title }) : null,
    (section.rows || []).map((row) => h("label", { class: "list-row", "data-testid": "list-row", "data-id": row.id },
      h("div", { class: "row-text" }, h("div", { class: "row-title", text: row.title }),
        row.description ? h("div", { class: "row-description", text: row.description }) : null),
      h("input", { type: "radio", name: "list-choice", value: row.id,
        onchange: () => { app.listChoice = row; $("list-send").disabled = false; } }))))));
  openSheet("list-backdrop");
}

function sendListChoice() {
  const row = app.listChoice;
  if (!row || !app.listMessage) return;
  act({ type: "list_reply", id: row.id, title: row.title, description: row.description, context: app.listMessage.id });
  closeSheets();
}

function openLocation(contextId) {
  app.locationContext = contextId || null;
  $("places").replaceChildren(...PLACES.map((place, index) => h("li", {},
    h("label", { class: "list-row", "data-testid": "location-option", "data-name": place.name },
      svg(ICONS.pin, "svg pin-green"),
      h("div", { class: "row-text" }, h("div", { class: "row-title", text: place.name }),
        h("div", { class: "row-description", text: place.address })),
      h("input", { type: "radio", name: "place", value: String(index), checked: index === 0 })))));
  openSheet("location-backdrop");
}

function sendLocation() {
  const custom = document.querySelector(".custom-place").open;
  let location;
  if (custom) {
    location = { latitude: Number($("custom-lat").value), longitude: Number($("custom-lng").value) };
    if ($("custom-name").value.trim()) location.name = $("custom-name").value.trim();
  } else {
    const checked = document.querySelector("input[name=place]:checked");
    location = { ...PLACES[checked ? Number(checked.value) : 0] };
  }
  act({ type: "location", ...location });
  closeSheets();
}

function choosePhoto(file) {
  if (!file) return;
  app.photo = file;
  $("photo-preview").src = URL.createObjectURL(file);
  $("photo-caption").value = $("composer-input").value;
  openSheet("photo-backdrop");
  $("photo-caption").focus();
}

async function sendPhoto() {
  if (!app.photo || !app.current) return;
  const form = new FormData();
  form.append("file", app.photo, app.photo.name);
  if ($("photo-caption").value.trim()) form.append("caption", $("photo-caption").value.trim());
  closeSheets();
  $("composer-input").value = "";
  $("photo-input").value = "";
  const response = await fetch(`/_sandbox/contacts/${app.current}/media`, { method: "POST", body: form });
  if (!response.ok) showError(new Error((await response.json().catch(() => ({}))).error || `HTTP ${response.status}`));
}

async function addContact(event) {
  event.preventDefault();
  try {
    const contact = await post("/_sandbox/contacts", { name: $("contact-name").value, wa_id: $("contact-phone").value });
    closeSheets();
    $("contact-form").reset();
    $("contact-error").textContent = "";
    setTimeout(() => selectContact(contact.wa_id), 50);
  } catch (error) {
    $("contact-error").textContent = error.message;
  }
}

// ---------- composer and wiring

function sendText() {
  const input = $("composer-input");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  autosize();
  act({ type: "text", text });
}

function autosize() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 140)}px`;
}

function wire() {
  $("send-button").addEventListener("click", sendText);
  $("composer-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); sendText(); }
  });
  $("composer-input").addEventListener("input", autosize);
  $("attach-button").addEventListener("click", (event) => {
    event.stopPropagation();
    $("attach-menu").hidden = !$("attach-menu").hidden;
  });
  document.addEventListener("click", () => { $("attach-menu").hidden = true; });
  $("attach-photo").addEventListener("click", () => $("photo-input").click());
  $("photo-input").addEventListener("change", (event) => choosePhoto(event.target.files[0]));
  $("attach-location").addEventListener("click", () => openLocation(null));
  $("photo-send").addEventListener("click", sendPhoto);
  $("photo-caption").addEventListener("keydown", (event) => { if (event.key === "Enter") sendPhoto(); });
  $("list-send").addEventListener("click", sendListChoice);
  $("location-send").addEventListener("click", sendLocation);
  $("add-contact").addEventListener("click", () => { openSheet("contact-backdrop"); $("contact-name").focus(); });
  $("contact-form").addEventListener("submit", addContact);
  document.querySelectorAll(".sheet-backdrop").forEach((backdrop) => {
    backdrop.addEventListener("click", (event) => { if (event.target === backdrop) closeSheets(); });
  });
  document.querySelectorAll("[data-close]").forEach((button) => button.addEventListener("click", closeSheets));
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeSheets(); });

  const toggleDev = (open) => {
    $("dev-drawer").hidden = !open;
    $("dev-toggle").setAttribute("aria-expanded", String(open));
  };
  $("dev-toggle").addEventListener("click", () => toggleDev($("dev-drawer").hidden));
  $("dev-close").addEventListener("click", () => toggleDev(false));
  document.querySelectorAll("[data-fault]").forEach((button) => button.addEventListener("click", () => {
    const fault = { ...JSON.parse(button.dataset.fault), target: $("fault-target").value };
    post("/_sandbox/faults", fault).catch(showError);
  }));
  $("fault-clear").addEventListener("click", () => fetch("/_sandbox/faults", { method: "DELETE" }));
  $("verify-now").addEventListener("click", async () => {
    const result = await post("/_sandbox/verify").catch(showError);
    if (result) { app.info.verified = result.verified; renderInfo(); }
  });
  $("reset").addEventListener("click", () => post("/_sandbox/reset").catch(showError));
}

wire();
connect();
