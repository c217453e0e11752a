// The sheets the user opens: a list's rows, a location to share, a photo to send, a new contact.

import { $, h, svg, ICONS, showError } from "./dom.js";
import { conversation } from "./state.js";
import * as api from "./api.js";

const PLACES = [
  { name: "Avenida Paulista", address: "Av. Paulista, 1578 - Bela Vista, São Paulo - SP, 01310-200",
    latitude: -23.561414, longitude: -46.655881 },
  { name: "Praia de Copacabana", address: "Av. Atlântica - Copacabana, Rio de Janeiro - RJ",
    latitude: -22.971177, longitude: -43.182543 },
  { name: "Praça da Liberdade", address: "Praça da Liberdade - Funcionários, Belo Horizonte - MG",
    latitude: -19.932, longitude: -43.9378 },
];

const sheet = { listMessage: null, listChoice: null, locationContext: null, photo: null };
let act = () => {};
let onContactAdded = () => {};

function openSheet(id) { $(id).hidden = false; }
export function closeSheets() { document.querySelectorAll(".sheet-backdrop").forEach((el) => { el.hidden = true; }); }

export function openList(entry) {
  sheet.listMessage = entry;
  sheet.listChoice = null;
  const action = entry.content.interactive.action;
  $("list-title").textContent = action.button;
  $("list-send").disabled = true;
  $("list-body").replaceChildren(...(action.sections || []).map((section) => h("section", {},
    section.title ? h("h3", { text: section.title }) : null,
    (section.rows || []).map((row) => h("label", { class: "list-row", "data-testid": "list-row", "data-id": row.id },
      h("div", { class: "row-text" }, h("div", { class: "row-title", text: row.title }),
        row.description ? h("div", { class: "row-description", text: row.description }) : null),
      h("input", { type: "radio", name: "list-choice", value: row.id,
        onchange: () => { sheet.listChoice = row; $("list-send").disabled = false; } }))))));
  openSheet("list-backdrop");
}

function sendListChoice() {
  const row = sheet.listChoice;
  if (!row || !sheet.listMessage) return;
  act({ type: "list_reply", id: row.id, title: row.title, description: row.description, context: sheet.listMessage.id });
  closeSheets();
}

export function openLocation(contextId) {
  sheet.locationContext = contextId || null;
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
  sheet.photo = file;
  $("photo-preview").src = URL.createObjectURL(file);
  $("photo-caption").value = $("composer-input").value;
  openSheet("photo-backdrop");
  $("photo-caption").focus();
}

async function sendPhoto() {
  const chat = conversation();
  if (!sheet.photo || !chat) return;
  const form = new FormData();
  form.append("file", sheet.photo, sheet.photo.name);
  if ($("photo-caption").value.trim()) form.append("caption", $("photo-caption").value.trim());
  closeSheets();
  $("composer-input").value = "";
  $("photo-input").value = "";
  await api.userSendsFile(chat, form).catch(showError);
}

async function addContact(event) {
  event.preventDefault();
  const username = $("contact-username").value.trim();
  const phone = $("contact-phone").value;
  try {
    const contact = await api.addContact({ name: $("contact-name").value, wa_id: phone, username });
    closeSheets();
    $("contact-form").reset();
    $("contact-error").textContent = "";
    setTimeout(() => onContactAdded(contact.key), 50);
  } catch (error) {
    $("contact-error").textContent = error.message;
  }
}

export function wireSheets(handlers) {
  act = handlers.act;
  onContactAdded = handlers.onContactAdded;
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
}
