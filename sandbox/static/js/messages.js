// How each kind of message looks: the user's (Meta's inbound objects) and the bot's (the Graph API
// request bodies as sent), plus the sandbox's own notes ("25 hours later").

import { h, svg, ICONS, clock, richText, plain, imageFallback, mediaUrl } from "./dom.js";
import { state, contactByKey, groupById } from "./state.js";

// What buttons inside messages do: set once by main.js.
const handlers = { act: () => {}, openList: () => {}, openLocation: () => {} };
export function setHandlers(given) { Object.assign(handlers, given); }

export function preview(entry) {
  return plain(rawPreview(entry));
}

function rawPreview(entry) {
  const c = entry.content || {};
  if (entry.direction === "system") return "25 hours later";
  if (entry.direction === "user") {
    const author = entry.author ? `${(contactByKey(entry.author) || {}).name || entry.author}: ` : "";
    return author + userPreview(c);
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

function userPreview(c) {
  if (c.type === "text") return c.text.body;
  if (c.type === "interactive") return (c.interactive.button_reply || c.interactive.list_reply).title;
  if (c.type === "location") return `Location: ${c.location.name || "pin"}`;
  if (c.type === "image") return c.image.caption ? `Photo: ${c.image.caption}` : "Photo";
  return c.type;
}

export function renderTicks(entry) {
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

export function renderMessage(entry) {
  if (entry.direction === "system") return renderNote(entry);
  const fromUser = entry.direction === "user";
  const body = fromUser ? renderUserContent(entry) : renderBotContent(entry);
  const meta = h("span", { class: "meta" }, h("time", { text: clock(entry.timestamp) }), fromUser ? renderTicks(entry) : null);
  const author = fromUser && entry.author
    ? h("div", { class: "author", "data-testid": "author", text: (contactByKey(entry.author) || {}).name || entry.author })
    : null;
  const content = h("div", { class: "content" }, author, quote(entry), body.content, meta);
  // Room for the time (and ticks) at the end of the last line of text, or on a line of its own.
  const texts = content.querySelectorAll(".text");
  if (texts.length) texts[texts.length - 1].append(h("span", { class: "meta-spacer" }));
  else content.insertBefore(h("div", { class: "meta-line" }), meta);
  const bubble = h("div", { class: `bubble kind-${entry.type}` }, content);
  if (body.inside) bubble.append(body.inside);
  const problem = fromUser ? null : deliveryProblem(entry);
  if (problem) bubble.append(problem);
  const kindOf = (type, object) => (type === "interactive" ? object.interactive.type : type);
  return h("div", {
    class: `row ${fromUser ? "user" : "bot"}${["failed", "refused", "dropped"].includes(entry.status) ? " failed" : ""}`,
    "data-testid": fromUser ? "message-out" : "message-in",
    "data-id": entry.id,
    "data-kind": fromUser ? kindOf(entry.content.type, entry.content) : kindOf(entry.type, entry.content),
    "data-status": entry.status,
  }, bubble, body.below || null);
}

// Why a bot message did not arrive: failed later (a status), refused at once (an HTTP error),
// or dropped silently (a BSUID in `to`, answered 200 by Meta).
function deliveryProblem(entry) {
  const error = entry.error;
  if (!error) return null;
  const details = error.error_data ? error.error_data.details : error.details || "";
  const label = { failed: "Not delivered", refused: "Refused by the API", dropped: "Silently dropped" }[entry.status];
  if (!label) return null;
  const title = [error.code ? `#${error.code}` : "", error.title || ""].filter(Boolean).join(" ");
  return h("div", { class: "delivery-error", "data-testid": "delivery-error", "data-status": entry.status,
    text: `${label}: ${title ? `${title}. ` : ""}${details}` });
}

function renderNote(entry) {
  const hours = (entry.content || {}).hours || 25;
  return h("div", { class: "row note", "data-testid": "time-skip", "data-id": entry.id },
    h("div", { class: "note-pill", text: `${hours} hours later: the 24-hour window is closed until the user writes` }));
}

function quote(entry) {
  const contextId = entry.direction === "user"
    ? entry.content.context && entry.content.context.id
    : entry.content.context && entry.content.context.message_id;
  if (!contextId) return null;
  const quoted = state.messages.get(contextId);
  if (!quoted) return null;
  return h("div", { class: "quote" },
    h("div", { class: "quote-author", text: quoted.direction === "bot" ? state.info.business_name || "Bot" : "You" }),
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
          onclick: () => handlers.act({ type: "button_reply", id: button.reply.id, title: button.reply.title, context: entry.id }),
        }, svg(ICONS.reply, "svg small"), button.reply.title))) };
    case "list":
      return { content, inside: h("button", {
        class: "inside-button", "data-testid": "list-open-button", onclick: () => handlers.openList(entry),
      }, svg(ICONS.list), action.button) };
    case "cta_url": {
      const params = action.parameters || {};
      return { content, inside: h("a", {
        class: "inside-button", "data-testid": "cta-button", href: params.url, target: "_blank", rel: "noopener noreferrer",
      }, svg(ICONS.link), params.display_text) };
    }
    case "location_request_message":
      return { content, inside: h("button", {
        class: "inside-button", "data-testid": "location-request-button", onclick: () => handlers.openLocation(entry.id),
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

// A template as the sandbox knows it: its name, language and parameters (the text of an approved
// template lives in Meta's WhatsApp Manager, not in the request).
function parameterText(p) {
  switch (p.type) {
    case "text": return p.text;
    case "currency": return (p.currency || {}).fallback_value || "";
    case "date_time": return (p.date_time || {}).fallback_value || "";
    case "payload": return `payload ${p.payload}`;
    default: return p.type;
  }
}

function templateCard(template) {
  const sections = [];
  for (const component of template.components || []) {
    const params = (component.parameters || []).map((p) => h("li", { "data-testid": "template-param",
      "data-component": component.type, text: parameterText(p) }));
    if (!params.length) continue;
    const label = component.type === "button" ? `button ${component.index ?? ""}`.trim() : component.type;
    sections.push(h("div", { class: "template-component" }, h("div", { class: "template-label", text: label }), h("ol", {}, params)));
  }
  return h("div", { class: "template", "data-testid": "template" },
    h("div", { class: "int-header" }, "Template ",
      h("span", { "data-testid": "template-name", text: template.name }), " ",
      h("span", { class: "template-language", "data-testid": "template-language", text: (template.language || {}).code || "?" })),
    sections.length ? sections : h("div", { class: "text", text: "(no parameters)" }));
}

export function chatTitle(chat) {
  const group = groupById(chat);
  if (group) return group.subject;
  const contact = contactByKey(chat);
  return contact ? contact.name : "";
}
