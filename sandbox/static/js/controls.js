// The developer drawer: the bot's webhook and its verification, faults to inject, how the
// 24-hour window answers, the rate limits, and the log of every API call and webhook.

import { $, h, clock, showError } from "./dom.js";
import { state } from "./state.js";
import * as api from "./api.js";

export function renderInfo() {
  $("webhook-url").textContent = state.info.webhook_url || "";
  const badge = $("verified-badge");
  badge.textContent = state.info.verified ? "verified" : "not verified";
  badge.classList.toggle("ok", Boolean(state.info.verified));
  renderSettings();
}

export function renderSettings() {
  const settings = state.info.settings || {};
  $("window-refusal").value = settings.window_refusal || "http";
  $("enforce-window").checked = settings.enforce_service_window !== false;
  const off = (value) => (Number(value) > 0 ? null : "off");
  $("rate-limits").textContent = [
    `throughput: ${off(settings.throughput_per_second) || `${settings.throughput_per_second} msg/s`} (130429)`,
    `pair: ${off(settings.pair_interval) || `1 per ${settings.pair_interval} s, bursts of ${settings.pair_burst}`} (131056)`,
  ].join(" · ");
}

export function renderLog(items) {
  $("event-log").replaceChildren();
  items.forEach(appendLog);
}

export function appendLog(item) {
  const log = $("event-log");
  log.prepend(h("li", { class: item.ok ? "" : "bad" },
    h("time", { text: clock(item.time) }), h("b", { text: item.kind }), " ", item.text));
  while (log.children.length > 300) log.lastChild.remove();
  if (item.kind === "verify" && item.ok) { state.info.verified = true; renderInfo(); }
}

export function renderFaults() {
  $("pending-faults").replaceChildren(...(state.info.faults || []).map((f) => h("li", {
    text: f.kind === "slow"
      ? `slow ${f.seconds} s × ${f.count} (${f.target})`
      : `${f.kind} #${f.code} HTTP ${f.status} × ${f.count} (${f.target})`,
  })));
}

export function wireControls() {
  const toggleDev = (open) => {
    $("dev-drawer").hidden = !open;
    $("dev-toggle").setAttribute("aria-expanded", String(open));
  };
  $("dev-toggle").addEventListener("click", () => toggleDev($("dev-drawer").hidden));
  $("dev-close").addEventListener("click", () => toggleDev(false));
  document.querySelectorAll("[data-fault]").forEach((button) => button.addEventListener("click", () => {
    const fault = { ...JSON.parse(button.dataset.fault), target: $("fault-target").value };
    api.addFault(fault).catch(showError);
  }));
  $("fault-clear").addEventListener("click", () => api.clearFaults().catch(showError));
  $("verify-now").addEventListener("click", async () => {
    const result = await api.verifyWebhook().catch(showError);
    if (result) { state.info.verified = result.verified; renderInfo(); }
  });
  $("reset").addEventListener("click", () => api.resetConversations().catch(showError));
  $("window-refusal").addEventListener("change", (event) =>
    api.changeSettings({ window_refusal: event.target.value }).catch(showError));
  $("enforce-window").addEventListener("change", (event) =>
    api.changeSettings({ enforce_service_window: event.target.checked }).catch(showError));
  $("skip-time").addEventListener("click", () => {
    if (state.current) api.skipTime(state.current, 25).catch(showError);
  });
}
