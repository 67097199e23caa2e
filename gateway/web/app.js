// The Boochat web client: signs in, keeps the session token for the next visit, and wires the store
// to the views. Where you are is in the address (#/room/ID, #/room/ID/meetup), so Back works on phones.
import { deviceName, openDevices, openInvites } from "./access.js";
import { zonedTime } from "./announcements.js";
import { openCalendar } from "./calendar.js";
import { Composer } from "./composer.js";
import { Connection } from "./connection.js";
import { openForm } from "./dialogs.js";
import { localInDays, localToIso } from "./dom.js";
import { describe } from "./errors.js";
import { renderTray, Uploads } from "./files.js";
import { Store } from "./store.js";
import { closeMenus, renderTimeline } from "./timeline.js";
import { inWords, renderMeetup, renderRoomHeader, renderSidebar, renderTyping } from "./views.js";

const TOKEN_KEY = "boochat.token";
const INVITE_PATH = /^\/invite\/([^/]+)$/;
const $ = (selector) => document.querySelector(selector);

const connection = new Connection();
const store = new Store(connection);
const composer = new Composer(document);
const uploads = new Uploads(store);
const ui = {
  roomId: null,
  meetupOpen: false,
  online: false, // signed in on a live connection (else what is sent waits for one)
  sending: new Map(), // messages on their way: key -> the composer's Message
  readSent: new Map(), // room id -> the seq last marked read from here
  divider: null, // "New messages": {roomId, after (the read mark when opened), seq (above which), scrolled}
  jumpTo: null, // a seq to scroll to and flash once it is drawn
  focusComposer: false, // a room was opened: the cursor goes to its message box once it shows
  open(roomId, meetup = false) {
    location.hash = `#/room/${encodeURIComponent(roomId)}${meetup ? "/meetup" : ""}`;
  },
};

// Signing in -------------------------------------------------------------------------------------

async function boot() {
  let config = { dev_login: false, google_client_id: null };
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    config = await response.json();
  } catch (error) {
    toast(`Could not read this server's settings: ${error.message}.`);
  }
  setUpSignIn(config);
  const invite = location.pathname.match(INVITE_PATH);
  const token = localStorage.getItem(TOKEN_KEY);
  if (invite) showJoin(decodeURIComponent(invite[1]));
  else if (token) {
    showShell();
    connection.resume(token);
  } else showSignIn("");
}

function setUpSignIn(config) {
  const form = $("#dev-login");
  form.hidden = !config.dev_login;
  $("#no-login").hidden = Boolean(config.dev_login || config.google_client_id);
  const name = $("#dev-name");
  const id = $("#dev-id");
  name.addEventListener("input", () => {
    if (!id.dataset.edited) id.value = name.value.trim().toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  });
  id.addEventListener("input", () => (id.dataset.edited = "yes"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn({ dev_user: { id: id.value.trim(), name: name.value.trim() } });
  });
  if (config.google_client_id) loadGoogleButton(config.google_client_id);
}

/** An invite link: pick a name and join; the new session's token is kept like any other. */
function showJoin(code) {
  $("#shell").hidden = true;
  $("#signin").hidden = false;
  for (const other of ["#dev-login", "#google-login", "#no-login"]) $(other).hidden = true;
  const form = $("#join-form");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const joined = await signIn({ invite: code, name: $("#join-name").value.trim() });
    if (joined) {
      form.hidden = true;
      history.replaceState(null, "", "/");
    }
  });
  $("#join-name").focus();
}

function loadGoogleButton(clientId) {
  const box = $("#google-login");
  const script = document.createElement("script");
  script.src = "https://accounts.google.com/gsi/client";
  script.onload = () => {
    google.accounts.id.initialize({ client_id: clientId, callback: (answer) => signIn({ google_id_token: answer.credential }) });
    google.accounts.id.renderButton(box, { theme: "outline", size: "large", text: "signin_with" });
    box.hidden = !$("#join-form").hidden; // not on an invite's page
  };
  script.onerror = () => toast("Google sign-in could not be loaded (is this device offline?).");
  document.head.append(script);
}

async function signIn(credentials) {
  $("#signin-reason").textContent = "";
  try {
    const answer = await connection.signIn({ ...credentials, device: deviceName() });
    localStorage.setItem(TOKEN_KEY, answer.token);
    showShell();
    return true;
  } catch (error) {
    $("#signin-reason").textContent = describe(error);
    return false;
  }
}

function signOut(reason) {
  connection.signOut();
  localStorage.removeItem(TOKEN_KEY);
  store.reset();
  composer.forgetDrafts();
  uploads.forget();
  ui.readSent.clear();
  history.replaceState(null, "", "/");
  $("#join-form").hidden = true;
  showSignIn(reason);
}

function showSignIn(reason) {
  $("#shell").hidden = true;
  $("#signin").hidden = false;
  $("#signin-reason").textContent = reason;
  $("#dev-name").focus();
}

function showShell() {
  $("#signin").hidden = true;
  $("#shell").hidden = false;
  route();
}

connection.addEventListener("signed-out", (event) => signOut(event.detail));
connection.addEventListener("online", () => {
  if (connection.credentials) localStorage.setItem(TOKEN_KEY, connection.credentials.token);
});

// Connection status ------------------------------------------------------------------------------

let countdown = null;
connection.addEventListener("status", ({ detail }) => {
  const bar = $("#status");
  clearInterval(countdown);
  ui.online = detail.state === "online";
  render(); // messages waiting say why
  bar.hidden = detail.state === "online" || detail.state === "signed-out";
  if (detail.state === "connecting") bar.replaceChildren("Connecting…");
  if (detail.state !== "offline") return;
  const retry = document.createElement("button");
  retry.className = "small";
  retry.textContent = "Retry now";
  retry.onclick = () => connection.retryNow();
  const text = document.createElement("span");
  const tick = () => {
    const seconds = Math.max(0, Math.ceil((detail.retryAt - Date.now()) / 1000));
    text.textContent = navigator.onLine
      ? `Connection lost. Trying again in ${seconds} s. `
      : "You are offline. What you send goes once you are back. ";
  };
  tick();
  countdown = setInterval(tick, 1000);
  bar.replaceChildren(text, retry);
});

/** A note in the corner: an error, or (`kind` "info") news such as a reminder. */
function toast(text, kind = "error") {
  const note = document.createElement("div");
  note.className = kind === "info" ? "toast info" : "toast";
  note.setAttribute("role", kind === "info" ? "status" : "alert");
  const close = document.createElement("button");
  close.className = "icon";
  close.setAttribute("aria-label", "Dismiss");
  close.textContent = "×";
  close.onclick = () => note.remove();
  note.append(text, close);
  $("#toasts").append(note);
  setTimeout(() => note.remove(), 10000);
}

// Nothing fails silently: a request that no code path handled still reaches the person.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  toast(describe(event.reason));
});
const failed = (error) => toast(describe(error));

// Where we are, and drawing it -------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/room\/([^/]+)(\/meetup)?$/);
  const roomId = match ? decodeURIComponent(match[1]) : null;
  if (roomId !== ui.roomId) {
    composer.open(roomId);
    ui.divider = null;
    ui.focusComposer = Boolean(roomId);
  }
  ui.roomId = roomId;
  ui.meetupOpen = Boolean(match?.[2]);
  document.body.dataset.view = !roomId ? "list" : ui.meetupOpen ? "meetup" : "room";
  render();
}
window.addEventListener("hashchange", route);

let scheduled = false;
function render() {
  if (scheduled) return;
  scheduled = true;
  setTimeout(() => {
    scheduled = false;
    draw();
  });
}
store.addEventListener("change", render);
uploads.addEventListener("change", render);
// A reminder (or a nudge to answer) while the page is open: said in a note, and the meetup highlighted.
store.addEventListener("reminder", ({ detail: { meetup, kind, lead_seconds } }) => {
  const text =
    kind === "nudge"
      ? `${meetup.name} (${zonedTime(meetup.takes_place_on)}): will you come? Answer in its meetup.`
      : `Reminder: ${meetup.name} starts ${inWords(lead_seconds)} (${zonedTime(meetup.takes_place_on)}), at ${meetup.location}.`;
  toast(text, "info");
});
document.addEventListener("visibilitychange", render);

function draw() {
  if ($("#shell").hidden) return;
  const summary = store.rooms.get(ui.roomId);
  document.body.dataset.hasRoom = summary ? "yes" : "no";
  $("#no-room").textContent = !ui.roomId
    ? "Pick a room, or start one."
    : store.me
      ? "This room is not (or not yet) one of yours."
      : "Loading…";
  noteUnread(summary);
  renderSidebar(document, store, ui);
  renderRoomHeader(document, store, ui);
  renderTimeline(document, store, ui, actions);
  renderTyping(document, store, ui);
  renderTray(document, uploads, ui.roomId);
  composer.setFiles(uploads.of(ui.roomId).filter((entry) => !entry.claimed).length);
  renderMeetup(document, store, ui, actions);
  composer.setMembers((summary?.room.participant_ids ?? []).filter((id) => id !== store.me?.id).map((id) => store.user(id)));
  // The timeline is fetched once the room's first item is known: then its worker knows the room too.
  if (summary?.last_item && !store.timelines.has(ui.roomId)) store.openTimeline(ui.roomId).catch(failed);
  markRead(summary);
  focusComposer(summary);
}

/** "New messages" goes above the first message from others after the read mark the room had when opened. */
function noteUnread(summary) {
  if (!summary) return;
  if (ui.divider?.roomId !== summary.room.id) {
    ui.divider = { roomId: summary.room.id, after: summary.last_read_seq, seq: undefined, scrolled: false };
  }
  if (ui.divider.seq !== undefined || !store.timelines.get(summary.room.id)?.loaded) return;
  const first = store.items(summary.room.id).find(
    (item) => item.seq > ui.divider.after && item.kind === "message" && item.sender_id !== store.me?.id,
  );
  ui.divider.seq = first?.seq ?? null;
}

/** Opening a room puts the cursor in its message box, once the box shows (not on a phone: its keyboard would cover the room). */
function focusComposer(summary) {
  if (!ui.focusComposer || !summary || ui.meetupOpen || dialog.open) return;
  ui.focusComposer = false;
  if (matchMedia("(min-width: 761px)").matches) composer.focus();
}

/** The open room, seen by the person: its read mark moves to the newest item shown. */
function markRead(summary) {
  if (!summary || document.visibilityState !== "visible" || !connection.authenticated) return;
  const newest = store.items(summary.room.id).at(-1)?.seq ?? 0; // a message or announcement, not a change entry
  if (newest <= summary.last_read_seq || newest <= (ui.readSent.get(summary.room.id) ?? 0)) return;
  ui.readSent.set(summary.room.id, newest);
  store.markedRead(summary.room.id, newest);
  store.request("mark_room_read", { room_id: summary.room.id, seq: newest }).catch(failed);
}

// Writing ----------------------------------------------------------------------------------------

composer.addEventListener("send", async ({ detail: message }) => {
  const key = Symbol(message.content);
  const batch = uploads.claim(message.roomId); // the files in the tray go with it, once all are ready
  message.files = batch.length;
  ui.sending.set(key, message);
  render();
  const data = { room_id: message.roomId };
  if (message.content) data.content = message.content;
  if (message.reply) data.reply_to = message.reply.seq;
  if (message.mentions.length) data.mentions = message.mentions;
  if (message.mentionsRoom) data.mentions_room = true;
  try {
    const attachments = await uploads.whenReady(batch);
    if (attachments.length) data.attachments = attachments.map((attachment) => attachment.id);
    if (!data.content && !data.attachments) return; // its files were all cancelled
    // Offline, the request waits in the connection and goes, with its id, once it is back.
    const { item } = await store.request("send_message", data);
    store.addItem(item);
    uploads.done(batch);
  } catch (error) {
    for (const entry of batch) entry.claimed = false; // they wait in the tray for the next try
    composer.restore(message); // nothing typed is lost
    failed(error);
  } finally {
    ui.sending.delete(key);
    render();
  }
});
// "Is typing" is a hint: it is not worth waiting for a connection, nor an error message.
composer.addEventListener("typing", ({ detail }) => {
  if (connection.authenticated) store.request("typing", { room_id: detail.roomId, active: detail.active }).catch(() => {});
});

// Files: the attach button, images pasted into the message box, files dropped on the room.
$("#attach").addEventListener("click", () => $("#attach-input").click());
$("#attach-input").addEventListener("change", (event) => {
  if (ui.roomId) uploads.add(ui.roomId, [...event.target.files]);
  event.target.value = ""; // the same file may be chosen again
});
$("#composer-input").addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.files ?? [])];
  if (!files.length || !ui.roomId) return; // text is pasted as usual
  event.preventDefault();
  uploads.add(ui.roomId, files);
});
const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
$("#room").addEventListener("dragover", (event) => {
  if (!carriesFiles(event) || !ui.roomId) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  $("#room").classList.add("dropping");
});
$("#room").addEventListener("dragleave", (event) => {
  if (!$("#room").contains(event.relatedTarget)) $("#room").classList.remove("dropping");
});
$("#room").addEventListener("drop", (event) => {
  $("#room").classList.remove("dropping");
  if (!carriesFiles(event) || !ui.roomId) return;
  event.preventDefault();
  uploads.add(ui.roomId, [...event.dataTransfer.files]);
});

$("#load-older").addEventListener("click", () => store.loadOlder(ui.roomId).catch(failed));
$("#timeline-scroll").addEventListener("scroll", (event) => {
  if (event.target.scrollTop < 40) store.loadOlder(ui.roomId).catch(failed);
});

const HERE = Intl.DateTimeFormat().resolvedOptions().timeZone;
/** The time zones this browser knows, its own first (a meetup is lived where its organizer is, mostly). */
const timeZones = () => [...new Set([HERE, "UTC", ...(Intl.supportedValuesOf?.("timeZone") ?? [])])];
const others = () => [...store.users.values()].filter((user) => user.id !== store.me?.id);
const dialog = $("#dialog");

const actions = {
  redraw: render,
  loadCalendar() {
    store.loadCalendar().catch(failed);
  },
  reply(item) {
    composer.answer(item, store.user(item.sender_id).name);
  },
  react(item, emoji, add) {
    const request = add ? "add_reaction" : "remove_reaction";
    store
      .request(request, { room_id: item.room_id, seq: item.seq, emoji })
      .then(({ item: changed }) => {
        store.replaceItem(changed, item);
        render();
      })
      .catch(failed);
  },
  /** Resolves once edited; rejects with the server's refusal (the edit box shows it). */
  async edit(item, content) {
    const { item: edited } = await store.request("edit_message", { room_id: item.room_id, seq: item.seq, content });
    store.replaceItem(edited, item);
    render();
  },
  remove(item) {
    const mine = item.sender_id === store.me?.id;
    openForm(dialog, {
      title: "Delete this message?",
      submit: "Delete",
      fields: [],
      note: mine ? "Everyone in the room will see “Message deleted” instead." : `As the room's creator, you delete ${store.user(item.sender_id).name}'s message for everyone.`,
      action: async () => {
        const { item: tombstone } = await store.request("delete_message", { room_id: item.room_id, seq: item.seq });
        store.replaceItem(tombstone, store.item(item.room_id, item.seq)); // nothing comes after a delete
        render();
      },
    });
  },
  /** A reply's quote was clicked: the original, fetched with older pages if need be, is shown. */
  async jumpTo(seq) {
    const roomId = ui.roomId;
    try {
      await store.loadUntil(roomId, seq);
    } catch (error) {
      return failed(error);
    }
    if (ui.roomId !== roomId) return;
    ui.jumpTo = seq;
    render();
  },
  setNotifications(level) {
    const summary = store.rooms.get(ui.roomId);
    if (!summary || summary.notifications === level) return;
    const before = summary.notifications;
    summary.notifications = level;
    store.request("set_room_notifications", { room_id: summary.room.id, level }).catch((error) => {
      summary.notifications = before;
      render();
      failed(error);
    });
    render();
  },
  async newRoom() {
    await store.refreshUsers().catch(failed); // who signed in since, without sharing a room yet
    openForm(dialog, {
      title: "New room",
      submit: "Create room",
      fields: [
        { name: "name", label: "Name", maxlength: 100 },
        { name: "people", label: "People", type: "people", users: others() },
      ],
      action: async ({ name, people }) => {
        const { room } = await store.request("create_room", { name, participant_ids: people });
        store.upsertRoom(room);
        ui.open(room.id);
      },
    });
  },
  async newMeetup() {
    await store.refreshUsers().catch(failed);
    openForm(dialog, {
      title: "New meetup",
      submit: "Plan it",
      fields: [
        { name: "name", label: "What", maxlength: 100 },
        { name: "location", label: "Where", maxlength: 200 },
        { name: "when", label: "When", type: "datetime-local", value: localInDays(7) },
        { name: "ends", label: "Until (optional)", type: "datetime-local", required: false },
        { name: "time_zone", label: "Time zone", type: "select", options: timeZones().map((zone) => [zone, zone.replaceAll("_", " ")]), value: HERE },
        { name: "people", label: "Who", type: "people", users: others() },
      ],
      action: async ({ name, location, when, ends, time_zone, people }) => {
        const data = { name, location, takes_place_on: localToIso(when), time_zone, attendee_ids: people };
        if (ends) data.ends_on = localToIso(ends);
        const { meetup } = await store.request("create_meetup", data);
        store.meetups.set(meetup.id, meetup);
        ui.open(meetup.room_id, true);
      },
    });
  },
  async invite() {
    await store.refreshUsers().catch(failed);
    const room = store.rooms.get(ui.roomId)?.room;
    const candidates = others().filter((user) => !room.participant_ids.includes(user.id));
    if (!candidates.length) return toast("Everyone who has signed in is already in this room.");
    openForm(dialog, {
      title: `Invite to ${room.name}`,
      submit: "Invite",
      fields: [{ name: "user", label: "Person", type: "select", options: candidates.map((user) => [user.id, user.name]) }],
      action: ({ user }) => store.request("invite_to_room", { room_id: room.id, user_id: user }),
    });
  },
  rename() {
    const room = store.rooms.get(ui.roomId)?.room;
    openForm(dialog, {
      title: "Rename the room",
      submit: "Rename",
      fields: [{ name: "name", label: "New name", value: room.name, maxlength: 100 }],
      action: ({ name }) => store.request("rename_room", { room_id: room.id, name }),
    });
  },
  leave() {
    const room = store.rooms.get(ui.roomId)?.room;
    openForm(dialog, {
      title: `Leave ${room.name}?`,
      submit: "Leave",
      fields: [],
      action: async () => {
        await store.request("leave_room", { room_id: room.id });
        location.hash = "";
      },
    });
  },
  rsvp(meetup, rsvp) {
    store.request("change_rsvp", { meetup_id: meetup.id, rsvp }).catch(failed);
  },
  vote(poll, index) {
    store.request("vote_poll", { poll_id: poll.id, choice_index: index }).catch(failed);
  },
  closePoll(poll) {
    store.request("close_poll", { poll_id: poll.id }).catch(failed);
  },
  cancelMeetup(meetup) {
    openForm(dialog, {
      title: `Cancel ${meetup.name}?`,
      submit: "Cancel the meetup",
      fields: [],
      note: "Everyone invited is told, and their calendars show it as cancelled. This cannot be undone.",
      action: () => store.request("cancel_meetup", { meetup_id: meetup.id }),
    });
  },
  newPoll(meetup) {
    openForm(dialog, {
      title: "New poll",
      submit: "Ask",
      fields: [
        {
          name: "poll_type",
          label: "Kind",
          type: "select",
          options: [["generic", "A question"], ["reschedule", "Move it to another time"], ["relocate", "Move it to another place"]],
        },
        { name: "description", label: "Question", maxlength: 500 },
        { name: "choices", label: "Choices", type: "choices", after: meetup.takes_place_on },
      ],
      action: async ({ poll_type, description, choices }) => {
        const values = poll_type === "reschedule" ? choices.map(localToIso) : choices;
        const { poll } = await store.request("create_poll", { meetup_id: meetup.id, poll_type, description, choices: values });
        store.addPoll(poll);
      },
    });
  },
};

$("#new-room").addEventListener("click", actions.newRoom);
$("#new-meetup").addEventListener("click", actions.newMeetup);
$("#invite").addEventListener("click", actions.invite);
$("#rename").addEventListener("click", actions.rename);
$("#leave").addEventListener("click", actions.leave);
$("#sign-out").addEventListener("click", () => signOut(""));
$("#add-friends").addEventListener("click", () => openInvites(dialog, store, toast));
$("#calendar").addEventListener("click", () => openCalendar(dialog, store, toast));
$("#devices").addEventListener("click", () => openDevices(dialog, store, connection.sessionId, () => signOut("You have signed out.")));
$("#back").addEventListener("click", () => (location.hash = ""));
$("#meetup-toggle").addEventListener("click", () => ui.open(ui.roomId, !ui.meetupOpen));
$("#meetup-back").addEventListener("click", () => ui.open(ui.roomId));
$("#meetup-close").addEventListener("click", () => ui.open(ui.roomId));
$("#notifications").addEventListener("change", (event) => actions.setNotifications(event.target.value));
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || dialog.open) return;
  if (document.querySelector("#timeline .menu-open")) closeMenus(actions);
  else if (ui.meetupOpen) ui.open(ui.roomId);
});
// A message's menu closes on a click anywhere else.
document.addEventListener("click", (event) => {
  if (!event.target.closest?.(".item-menu, .item-more")) closeMenus(actions);
});

boot();
