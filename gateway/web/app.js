// The Boochat web client: signs in, keeps the session token for the next visit, and wires the store
// to the views. Where you are is in the address (#/room/ID, #/room/ID/meetup), so Back works on phones.
import { deviceName, openDevices, openInvites } from "./access.js";
import { Connection } from "./connection.js";
import { openForm } from "./dialogs.js";
import { localInDays, localToIso } from "./dom.js";
import { describe } from "./errors.js";
import { Store } from "./store.js";
import { renderMeetup, renderRoomHeader, renderSidebar, renderTimeline } from "./views.js";

const TOKEN_KEY = "boochat.token";
const INVITE_PATH = /^\/invite\/([^/]+)$/;
const $ = (selector) => document.querySelector(selector);

const connection = new Connection();
const store = new Store(connection);
const ui = {
  roomId: null,
  meetupOpen: false,
  sending: new Map(), // messages on their way: key -> {roomId, content}
  readSent: new Map(), // room id -> the seq last marked read from here
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
    text.textContent = `Connection lost. Trying again in ${seconds} s. `;
  };
  tick();
  countdown = setInterval(tick, 1000);
  bar.replaceChildren(text, retry);
});

function toast(text) {
  const note = document.createElement("div");
  note.className = "toast";
  note.setAttribute("role", "alert");
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
  if (roomId !== ui.roomId) $("#composer-input").value = "";
  ui.roomId = roomId;
  ui.meetupOpen = Boolean(match?.[2]);
  document.body.dataset.view = !roomId ? "list" : ui.meetupOpen ? "meetup" : "room";
  render();
  if (roomId && !ui.meetupOpen && matchMedia("(min-width: 761px)").matches) $("#composer-input").focus();
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
  renderSidebar(document, store, ui);
  renderRoomHeader(document, store, ui);
  renderTimeline(document, store, ui);
  renderMeetup(document, store, ui, actions);
  // The timeline is fetched once the room's first item is known: then its worker knows the room too.
  if (summary?.last_item && !store.timelines.has(ui.roomId)) store.openTimeline(ui.roomId).catch(failed);
  markRead(summary);
}

/** The open room, seen by the person: its read mark moves to the newest item shown. */
function markRead(summary) {
  if (!summary || document.visibilityState !== "visible" || !connection.authenticated) return;
  const newest = Math.max(0, ...(store.timelines.get(summary.room.id)?.items.keys() ?? []));
  if (newest <= summary.last_read_seq || newest <= (ui.readSent.get(summary.room.id) ?? 0)) return;
  ui.readSent.set(summary.room.id, newest);
  store.markedRead(summary.room.id, newest);
  store.request("mark_room_read", { room_id: summary.room.id, seq: newest }).catch(failed);
}

// Writing ----------------------------------------------------------------------------------------

const composer = $("#composer-input");
composer.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("#composer").requestSubmit();
  }
});
composer.addEventListener("input", () => {
  composer.style.height = "auto";
  composer.style.height = `${Math.min(composer.scrollHeight, 160)}px`;
});
$("#composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const content = composer.value.trim();
  if (!content || !ui.roomId) return;
  const key = Symbol(content);
  const roomId = ui.roomId;
  ui.sending.set(key, { roomId, content });
  composer.value = "";
  composer.style.height = "auto";
  render();
  try {
    const { item } = await store.request("send_message", { room_id: roomId, content });
    store.addItem(item);
  } catch (error) {
    if (!composer.value) composer.value = content; // nothing typed is lost
    failed(error);
  } finally {
    ui.sending.delete(key);
    render();
  }
});

$("#load-older").addEventListener("click", () => store.loadOlder(ui.roomId).catch(failed));
$("#timeline-scroll").addEventListener("scroll", (event) => {
  if (event.target.scrollTop < 40) store.loadOlder(ui.roomId).catch(failed);
});

const others = () => [...store.users.values()].filter((user) => user.id !== store.me?.id);
const dialog = $("#dialog");

const actions = {
  newRoom() {
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
  newMeetup() {
    openForm(dialog, {
      title: "New meetup",
      submit: "Plan it",
      fields: [
        { name: "name", label: "What", maxlength: 100 },
        { name: "location", label: "Where", maxlength: 200 },
        { name: "when", label: "When", type: "datetime-local", value: localInDays(7) },
        { name: "people", label: "Who", type: "people", users: others() },
      ],
      action: async ({ name, location, when, people }) => {
        const data = { name, location, takes_place_on: localToIso(when), attendee_ids: people };
        const { meetup } = await store.request("create_meetup", data);
        store.meetups.set(meetup.id, meetup);
        ui.open(meetup.room_id, true);
      },
    });
  },
  invite() {
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
        { name: "choices", label: "Choices", type: "choices" },
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
$("#devices").addEventListener("click", () => openDevices(dialog, store, connection.sessionId, () => signOut("You have signed out.")));
$("#back").addEventListener("click", () => (location.hash = ""));
$("#meetup-toggle").addEventListener("click", () => ui.open(ui.roomId, !ui.meetupOpen));
$("#meetup-back").addEventListener("click", () => ui.open(ui.roomId));
$("#meetup-close").addEventListener("click", () => ui.open(ui.roomId));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && ui.meetupOpen && !dialog.open) ui.open(ui.roomId);
});

boot();
