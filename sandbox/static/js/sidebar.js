// The left column: the simulated contacts and groups, each with its last message and unread count.

import { $, h, svg, ICONS, clock, initials, formatPhone } from "./dom.js";
import { state, entriesOf } from "./state.js";
import { preview } from "./messages.js";

let onSelect = () => {};
export function setOnSelect(fn) { onSelect = fn; }

// How a contact is known: the phone number, else "@username", else the BSUID.
export function identity(contact) {
  if (contact.wa_id) return formatPhone(contact.wa_id);
  if (contact.username) return `@${contact.username}`;
  return contact.user_id;
}

function item(chat, { name, avatar, subtitle, attrs }) {
  const conversation = entriesOf(chat).filter((m) => m.type !== "reaction");
  const last = conversation[conversation.length - 1];
  const unread = state.unread.get(chat) || 0;
  return h("li", {
    class: chat === state.current ? "contact active" : "contact",
    onclick: () => onSelect(chat),
    ...attrs,
  },
  avatar,
  h("div", { class: "contact-main" },
    h("div", { class: "contact-line" },
      h("span", { class: "contact-name", text: name }),
      last ? h("span", { class: "contact-time", text: clock(last.timestamp) }) : null),
    h("div", { class: "contact-line" },
      h("span", { class: "contact-preview", text: last ? preview(last) : subtitle }),
      unread ? h("span", { class: "unread", text: String(unread) }) : null)));
}

export function renderContacts() {
  const contacts = state.contacts.map((contact) => item(contact.key, {
    name: contact.name,
    avatar: h("div", { class: "avatar", text: initials(contact.name) }),
    subtitle: identity(contact),
    attrs: { "data-testid": "contact-item", "data-wa-id": contact.key, "data-key": contact.key,
      "data-identity": contact.wa_id ? (contact.user_id ? "phone+bsuid" : "phone") : "bsuid" },
  }));
  const groups = state.groups.map((group) => item(group.group_id, {
    name: group.subject,
    avatar: h("div", { class: "avatar group-avatar" }, svg(ICONS.group)),
    subtitle: `Group · ${group.members.length} members`,
    attrs: { "data-testid": "group-item", "data-group-id": group.group_id },
  }));
  $("contacts").replaceChildren(...contacts, ...groups);
}

export function renderConnection(ok) {
  const el = $("connection");
  el.classList.toggle("offline", !ok);
  const number = state.info.display_phone_number ? formatPhone(state.info.display_phone_number) : "";
  el.textContent = ok ? `Bot number ${number}` : "Sandbox not reachable, reconnecting…";
}
