// The open conversation: its header (who you are, the "25 hours later" control), its messages,
// the bot's reactions and typing indicator.

import { $, h, formatPhone } from "./dom.js";
import { state, entriesOf, contactByKey, groupById, memberOf } from "./state.js";
import { renderMessage, renderTicks } from "./messages.js";
import { identity } from "./sidebar.js";

const TYPING_SECONDS = 25;

export function renderHeader() {
  $("chat-title").textContent = state.info.business_name || "Bot";
  const youAre = $("you-are");
  const group = groupById(state.current);
  if (group) {
    const select = h("select", { "data-testid": "member-select", "aria-label": "Write as",
      onchange: (event) => state.members.set(group.group_id, event.target.value) },
    group.members.map((key) => h("option", { value: key, selected: key === memberOf(group),
      text: (contactByKey(key) || {}).name || key })));
    youAre.replaceChildren(`In ${group.subject}, you are `, select);
  } else {
    const contact = contactByKey(state.current);
    youAre.textContent = contact ? `You are ${contact.name} (${identity(contact)})` : "";
  }
  $("skip-time").hidden = !state.current;
  renderTyping();
}

export function renderChat() {
  renderHeader();
  const messages = $("messages");
  messages.replaceChildren();
  for (const entry of entriesOf(state.current)) {
    if (entry.type !== "reaction") messages.append(renderMessage(entry));
  }
  renderReactions();
  renderTyping();
  scrollToEnd();
}

export function onMessage(entry) {
  if (entry.direction === "bot") stopTyping(entry.chat);
  if (entry.chat !== state.current) return;
  if (entry.type === "reaction") { renderReactions(); return; }
  const messages = $("messages");
  const typingRow = messages.querySelector("[data-testid=typing-indicator]");
  const row = renderMessage(entry);
  if (typingRow) messages.insertBefore(row, typingRow);
  else messages.append(row);
  scrollToEnd();
}

export function onStatus(entry) {
  if (!entry) return;
  const row = document.querySelector(`[data-id="${CSS.escape(entry.id)}"]`);
  if (!row) return;
  if (entry.direction === "bot" && entry.status === "failed") { row.replaceWith(renderMessage(entry)); return; }
  row.dataset.status = entry.status;
  const ticks = row.querySelector("[data-testid=ticks]");
  if (ticks) ticks.replaceWith(renderTicks(entry));
}

function scrollToEnd() {
  const messages = $("messages");
  requestAnimationFrame(() => { messages.scrollTop = messages.scrollHeight; });
}

function renderReactions() {
  document.querySelectorAll(".reaction-badge").forEach((el) => el.remove());
  const latest = new Map();
  for (const entry of entriesOf(state.current)) {
    if (entry.type === "reaction" && entry.direction === "bot") {
      latest.set(entry.content.reaction.message_id, entry.content.reaction.emoji);
    }
  }
  for (const [target, emoji] of latest) {
    const bubble = document.querySelector(`[data-id="${CSS.escape(target)}"] .bubble`);
    if (bubble && emoji) bubble.append(h("span", { class: "reaction-badge", "data-testid": "reaction", text: emoji }));
  }
}

export function startTyping(chat, seconds = TYPING_SECONDS) {
  stopTyping(chat);
  state.typing.set(chat, setTimeout(() => stopTyping(chat), seconds * 1000));
  renderTyping();
}

export function stopTyping(chat) {
  clearTimeout(state.typing.get(chat));
  state.typing.delete(chat);
  renderTyping();
}

function renderTyping() {
  const typing = state.current && state.typing.has(state.current);
  const subtitle = $("chat-subtitle");
  subtitle.textContent = typing ? "digitando…" : formatPhone(state.info.display_phone_number || "");
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
