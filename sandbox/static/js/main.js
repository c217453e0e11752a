// The sandbox chat page: you are a WhatsApp user (pick a contact or a group on the left) talking
// to the bot. Live updates come from /_sandbox/events; actions are small JSON POSTs (api.js).
// Modules: dom (helpers), api (server calls), state (what the page knows), messages (how each
// kind of message looks), sidebar, chat (the open conversation), controls (developer drawer),
// sheets (list, location, photo, new contact). No build step.

import { $, showError } from "./dom.js";
import * as api from "./api.js";
import { state, apply, conversation, select } from "./state.js";
import { setHandlers } from "./messages.js";
import { renderContacts, renderConnection, setOnSelect } from "./sidebar.js";
import { renderChat, onMessage, onStatus, startTyping } from "./chat.js";
import { renderInfo, renderSettings, renderLog, appendLog, renderFaults, wireControls } from "./controls.js";
import { openList, openLocation, wireSheets } from "./sheets.js";

function act(action) {
  const chat = conversation();
  if (!chat) return Promise.resolve();
  return api.userSends(chat, action).catch(showError);
}

function selectChat(chat) {
  select(chat);
  renderContacts();
  renderChat();
  $("composer-input").focus();
}

function handle(event) {
  const change = apply(event);
  switch (change.redraw) {
    case "all":
      for (const chat of change.typing) startTyping(chat);
      renderInfo();
      renderLog(change.log);
      renderFaults();
      renderContacts();
      renderChat();
      renderConnection(true);
      break;
    case "contacts":
      renderContacts();
      break;
    case "message":
      onMessage(change.entry);
      renderContacts();
      break;
    case "status":
      onStatus(change.entry);
      break;
    case "typing":
      startTyping(change.chat, change.seconds);
      break;
    case "log":
      appendLog(change.item);
      break;
    case "faults":
      renderFaults();
      break;
    case "settings":
      renderSettings();
      break;
    default:
      break;
  }
}

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

function wireComposer() {
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
}

setHandlers({ act, openList, openLocation });
setOnSelect(selectChat);
wireComposer();
wireSheets({ act, onContactAdded: selectChat });
wireControls();
api.subscribe(handle, renderConnection);
window.sandboxState = state; // for a look from the browser's console
