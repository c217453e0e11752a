// The page's state: contacts, groups, every message, who you are, typing and unread counts.
// `apply(event)` folds one server event in and says what the views must redraw.

export const state = {
  info: {},
  contacts: [],
  groups: [],
  messages: new Map(), // id -> entry (every conversation)
  current: null,       // the open conversation: a contact key or a group id
  members: new Map(),  // group id -> the member key you write as
  typing: new Map(),   // chat -> timeout id
  unread: new Map(),   // chat -> bot messages not seen
};

export const contactByKey = (key) => state.contacts.find((c) => c.key === key);
export const groupById = (id) => state.groups.find((g) => g.group_id === id);

// The open conversation, in the shape api.userSends takes.
export function conversation() {
  const group = groupById(state.current);
  if (group) return { id: group.group_id, group: true, member: memberOf(group) };
  return state.current ? { id: state.current, group: false } : null;
}

export function memberOf(group) {
  if (!state.members.has(group.group_id)) state.members.set(group.group_id, group.members[0]);
  return state.members.get(group.group_id);
}

export const entriesOf = (chat) => [...state.messages.values()].filter((m) => m.chat === chat);

// Returns the set of things to redraw: "all", "contacts", "message", "status", "typing", "log", "faults", "settings".
export function apply(event) {
  switch (event.type) {
    case "snapshot": {
      state.info = event.info || state.info;
      state.contacts = event.contacts;
      state.groups = event.groups || [];
      state.messages = new Map(event.messages.map((m) => [m.id, m]));
      const known = state.contacts.some((c) => c.key === state.current) || groupById(state.current);
      if (!known) state.current = state.contacts.length ? state.contacts[0].key : null;
      return { redraw: "all", typing: event.typing || [], log: event.log || [] };
    }
    case "contact":
      state.contacts.push(event.contact);
      return { redraw: "contacts" };
    case "message": {
      const entry = event.message;
      state.messages.set(entry.id, entry);
      if (entry.direction === "bot" && entry.chat !== state.current) {
        state.unread.set(entry.chat, (state.unread.get(entry.chat) || 0) + 1);
      }
      return { redraw: "message", entry };
    }
    case "status": {
      const entry = state.messages.get(event.id);
      if (entry) { entry.status = event.status; entry.error = event.error; }
      return { redraw: "status", entry };
    }
    case "typing":
      return { redraw: "typing", chat: event.chat, seconds: event.seconds };
    case "log":
      return { redraw: "log", item: event.item };
    case "faults":
      state.info.faults = event.faults;
      return { redraw: "faults" };
    case "settings":
      state.info.settings = event.settings;
      return { redraw: "settings" };
    default:
      return { redraw: null };
  }
}

export function select(chat) {
  state.current = chat;
  state.unread.delete(chat);
}
