// The sandbox's control API (/_sandbox/...), as the page uses it. Every call returns a promise;
// errors carry the server's message. docs/sandbox.md documents the same routes.

async function request(method, url, body) {
  const init = { method };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

const post = (url, body) => request("POST", url, body);
const path = encodeURIComponent;

// What a user does: in a private chat (`key` = phone or BSUID), or as `member` of a group.
export function userSends(conversation, action) {
  if (conversation.group) {
    return post(`/_sandbox/groups/${path(conversation.id)}/messages`, { ...action, member: conversation.member });
  }
  return post(`/_sandbox/contacts/${path(conversation.id)}/messages`, action);
}

export function userSendsFile(conversation, form) {
  if (conversation.group) {
    form.append("member", conversation.member);
    return post(`/_sandbox/groups/${path(conversation.id)}/media`, form);
  }
  return post(`/_sandbox/contacts/${path(conversation.id)}/media`, form);
}

export const addContact = (contact) => post("/_sandbox/contacts", contact);
export const skipTime = (chat, hours) => post(`/_sandbox/conversations/${path(chat)}/skip`, { hours });
export const changeSettings = (settings) => post("/_sandbox/settings", settings);
export const addFault = (fault) => post("/_sandbox/faults", fault);
export const clearFaults = () => request("DELETE", "/_sandbox/faults");
export const verifyWebhook = () => post("/_sandbox/verify");
export const resetConversations = () => post("/_sandbox/reset");

// Live updates: a snapshot first, then one event per change (server-sent events).
export function subscribe(onEvent, onConnection) {
  const source = new EventSource("/_sandbox/events");
  source.onopen = () => onConnection(true);
  source.onerror = () => onConnection(false);
  source.onmessage = (event) => onEvent(JSON.parse(event.data));
  return source;
}
