// Rendering of the three panes from the store: the sidebar (rooms, meetups), the open room's header
// and who is typing there, and the meetup panel (the timeline is timeline.js). Each function
// rebuilds its part.
import { announcementText, zonedTime } from "./announcements.js";
import { meetupFileUrl } from "./calendar.js";
import { avatar, h, longTime, replaceKeepingFocus, shortTime } from "./dom.js";

const RSVPS = [["yes", "Going"], ["maybe", "Maybe"], ["no", "Not going"]];
const RSVP_WORDS = { yes: "going", maybe: "maybe", no: "not going", not_responded: "no answer yet" };
const POLL_KINDS = { generic: "Poll", reschedule: "New time?", relocate: "New place?" };

const LEVELS = { all: "All messages", mentions: "Mentions only", none: "Nothing" };
const HERE = Intl.DateTimeFormat().resolvedOptions().timeZone;

export function renderSidebar(root, store, ui) {
  const rooms = store.sortedRooms().map((summary) => {
    const { room, last_item: last, unread_count: unread, mention_count: mentions, notifications } = summary;
    const text = last?.deleted_at ? "Message deleted" : last?.kind === "announcement" ? announcementText(last) : last?.content || attachedWords(last);
    const preview = last ? `${last.kind === "message" ? `${store.user(last.sender_id).name}: ` : ""}${text}` : "";
    return h(
      "li",
      {},
      h(
        "button.room-link",
        {
          type: "button",
          dataset: { key: `room-${room.id}` },
          "aria-current": room.id === ui.roomId ? "page" : null,
          onclick: () => ui.open(room.id),
        },
        h("span.room-name", {}, room.name),
        h("span.room-time", {}, last ? shortTime(last.sent_at) : ""),
        h("span.room-preview", {}, preview),
        h(
          "span.badges",
          {},
          notifications && notifications !== "all" ? levelMark(notifications) : null,
          mentions ? h("span.badge.mention", { "aria-label": `${mentions} ${mentions === 1 ? "mention" : "mentions"}` }, `@${mentions}`) : null,
          unread ? h("span.badge.unread", { "aria-label": `${unread} unread` }, String(unread)) : null,
        ),
      ),
    );
  });
  replaceKeepingFocus(
    root.querySelector("#room-list"),
    rooms.length ? rooms : [h("li.empty", {}, "No rooms yet: start one with New room.")],
  );
  const meetups = store.sortedMeetups().map((meetup) =>
    h(
      "li",
      {},
      h(
        `button.room-link${meetup.cancelled_at ? ".cancelled" : ""}${store.reminded.has(meetup.id) ? ".reminded" : ""}`,
        { type: "button", dataset: { key: `meetup-${meetup.id}` }, onclick: () => ui.open(meetup.room_id, true) },
        h("span.room-name", {}, meetup.name),
        h("span.room-time", {}, shortTime(meetup.takes_place_on)),
        h("span.room-preview", {}, meetup.cancelled_at ? `Cancelled · ${meetup.location}` : meetup.location),
        meetup.alerts.length ? h("span.badge.alert", { "aria-label": `${meetup.alerts.length} polls to answer` }, String(meetup.alerts.length)) : null,
      ),
    ),
  );
  replaceKeepingFocus(root.querySelector("#meetup-list"), meetups.length ? meetups : [h("li.empty", {}, "No meetups planned.")]);
  const me = store.me;
  root.querySelector("#me").replaceChildren(...(me ? [avatar(me), h("span", {}, me.name)] : []));
}

/** A message of files only, in the list: "📷 Photo", "📎 2 files". */
function attachedWords(item) {
  const files = item?.attachments ?? [];
  if (!files.length) return "";
  const photos = files.every((file) => file.kind === "image");
  const noun = photos ? "photo" : "file";
  return `${photos ? "📷" : "📎"} ${files.length === 1 ? noun[0].toUpperCase() + noun.slice(1) : `${files.length} ${noun}s`}`;
}

/** A room whose level is not "all" says so in the list: 🔕 for nothing, @ for mentions only. */
function levelMark(level) {
  const words = `Notifications: ${LEVELS[level].toLowerCase()}`;
  return h("span.level", { title: words, "aria-label": words, dataset: { level } }, level === "none" ? "🔕" : "@");
}

export function renderRoomHeader(root, store, ui) {
  const summary = store.rooms.get(ui.roomId);
  root.querySelector("#room-title").textContent = summary?.room.name ?? "";
  root.title = summary ? `${summary.room.name} · Boochat` : "Boochat";
  const level = root.querySelector("#notifications");
  if (summary) level.value = summary.notifications ?? "all";
  const people = (summary?.room.participant_ids ?? []).map((id) => {
    const online = store.online.has(id);
    return h(
      "li",
      { title: `${store.user(id).name}${online ? " (online)" : ""}` },
      avatar(store.user(id), ".small"),
      h("span.presence", { "data-online": online ? "yes" : "no", "aria-label": online ? "online" : "offline" }),
      h("span.person-name", {}, store.user(id).name),
    );
  });
  root.querySelector("#room-people").replaceChildren(...people);
  const meetup = summary ? store.meetupOfRoom(summary.room.id) : null;
  const toggle = root.querySelector("#meetup-toggle");
  toggle.hidden = !meetup;
  toggle.setAttribute("aria-expanded", String(ui.meetupOpen));
  toggle.querySelector(".badge")?.remove();
  if (meetup?.alerts.length) toggle.append(h("span.badge.alert", {}, String(meetup.alerts.length)));
}

/** "Ann is typing…", "Ann and Bob are typing…", "Ann, Bob and 2 others are typing…". */
export function renderTyping(root, store, ui) {
  const names = store.typers(ui.roomId).map((id) => store.user(id).name);
  const who =
    names.length <= 2
      ? names.join(" and ")
      : `${names.slice(0, 2).join(", ")} and ${names.length - 2} ${names.length === 3 ? "other" : "others"}`;
  const line = root.querySelector("#typing");
  const text = names.length ? `${who} ${names.length === 1 ? "is" : "are"} typing…` : "";
  if (line.textContent !== text) line.textContent = text;
}

export function renderMeetup(root, store, ui, actions) {
  const panel = root.querySelector("#meetup-body");
  const meetup = ui.roomId ? store.meetupOfRoom(ui.roomId) : null;
  if (!meetup) {
    panel.replaceChildren(h("p.empty", {}, "This room has no meetup."));
    return;
  }
  const me = store.me?.id;
  const mine = meetup.attendees.find((attendee) => attendee.user_id === me);
  const waiting = new Set(meetup.alerts.map((alert) => alert.poll_id));
  if (!store.calendar) actions.loadCalendar();
  replaceKeepingFocus(panel, [
    h(`h2${meetup.cancelled_at ? ".cancelled" : ""}`, {}, meetup.name),
    meetup.cancelled_at
      ? h("p.notice.cancelled", { role: "note", dataset: { testid: "meetup-cancelled" } }, `Cancelled (${longTime(meetup.cancelled_at)}).`)
      : null,
    reminderView(meetup, store.reminded.get(meetup.id)),
    h(
      "dl.facts",
      {},
      h("dt", {}, "When"),
      h("dd", { dataset: { testid: "meetup-when" } }, h("time", { datetime: meetup.takes_place_on }, longTime(meetup.takes_place_on))),
      meetup.ends_on ? h("dt", {}, "Until") : null,
      meetup.ends_on ? h("dd", { dataset: { testid: "meetup-ends" } }, h("time", { datetime: meetup.ends_on }, longTime(meetup.ends_on))) : null,
      meetup.time_zone && meetup.time_zone !== HERE ? h("dt", {}, "Its time zone") : null,
      meetup.time_zone && meetup.time_zone !== HERE
        ? h("dd", { dataset: { testid: "meetup-zone" } }, `${meetup.time_zone}: ${inZone(meetup.takes_place_on, meetup.time_zone)}`)
        : null,
      h("dt", {}, "Where"),
      h("dd", { dataset: { testid: "meetup-where" } }, meetup.location),
      h("dt", {}, "Organizer"),
      h("dd", {}, store.user(meetup.organizer_id).name),
    ),
    h(
      "div.meetup-actions",
      {},
      store.calendar
        ? h("a.button.small", { href: meetupFileUrl(store.calendar, meetup.id), download: "meetup.ics", dataset: { key: "add-to-calendar" } }, "Add to calendar")
        : null,
      meetup.organizer_id === me && !meetup.cancelled_at
        ? h("button.small.quiet.danger", { type: "button", dataset: { key: "cancel-meetup" }, onclick: () => actions.cancelMeetup(meetup) }, "Cancel meetup")
        : null,
    ),
    meetup.alerts.length
      ? h("p.notice", { role: "note" }, `${meetup.alerts.length === 1 ? "A poll is" : `${meetup.alerts.length} polls are`} waiting for your vote.`)
      : null,
    h(
      "div.rsvp",
      { role: "group", "aria-label": "Your answer" },
      RSVPS.map(([value, label]) =>
        h(
          "button.chip",
          {
            type: "button",
            dataset: { key: `rsvp-${value}` },
            "aria-pressed": String(mine?.rsvp === value),
            onclick: () => actions.rsvp(meetup, value),
          },
          label,
        ),
      ),
    ),
    h("h3", {}, `Attendees (${meetup.attendees.length})`),
    h(
      "ul.attendees",
      {},
      meetup.attendees.map(({ user_id: id, rsvp }) =>
        h(
          "li",
          { dataset: { rsvp } },
          avatar(store.user(id), ".small"),
          h("span.presence", { "data-online": store.online.has(id) ? "yes" : "no" }),
          h("span.person-name", {}, store.user(id).name),
          h("span.rsvp-word", {}, RSVP_WORDS[rsvp]),
        ),
      ),
    ),
    h("div.section-head", {}, h("h3", {}, "Polls"), h("button.small", { type: "button", dataset: { key: "new-poll" }, onclick: () => actions.newPoll(meetup) }, "New poll")),
    meetup.polls.length ? null : h("p.empty", {}, "No polls yet."),
    [...meetup.polls].reverse().map((poll) => pollView(poll, meetup, store, waiting.has(poll.id), actions)),
  ]);
}

/** A reminder that came while the page was open: when it starts, or (a nudge) that an answer is awaited. */
function reminderView(meetup, reminder) {
  if (!reminder || meetup.cancelled_at) return null;
  const text =
    reminder.kind === "nudge"
      ? "Will you come? Everyone would like to know: answer below."
      : `Reminder: it starts ${inWords(reminder.lead_seconds)} (${zonedTime(meetup.takes_place_on)}).`;
  return h("p.notice.reminder", { role: "note", dataset: { testid: "meetup-reminder" } }, text);
}

/** 7200 -> "in 2 hours", 86400 -> "in 1 day", 1800 -> "in 30 minutes". */
export function inWords(seconds) {
  const [count, unit] = seconds >= 86400 ? [Math.round(seconds / 86400), "day"] : seconds >= 3600 ? [Math.round(seconds / 3600), "hour"] : [Math.max(1, Math.round(seconds / 60)), "minute"];
  return `in ${count} ${unit}${count === 1 ? "" : "s"}`;
}

/** A time as it is where the meetup is lived (its IANA zone). */
function inZone(iso, timeZone) {
  try {
    return new Intl.DateTimeFormat(undefined, { weekday: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short", timeZone }).format(new Date(iso));
  } catch {
    return timeZone; // a zone this browser does not know
  }
}

function pollView(poll, meetup, store, waiting, actions) {
  const me = store.me?.id;
  const voted = poll.votes.find((vote) => vote.user_id === me);
  const canVote = poll.status === "open" && poll.participant_ids.includes(me) && !voted;
  const canClose = poll.status === "open" && (poll.creator_id === me || meetup.organizer_id === me);
  const total = Math.max(poll.votes.length, 1);
  const label = (choice) => (poll.poll_type === "reschedule" ? longTime(choice) : choice);
  return h(
    `article.poll${poll.status === "closed" ? ".closed" : ""}`,
    { dataset: { poll: poll.id } },
    h(
      "header",
      {},
      h("span.tag", {}, POLL_KINDS[poll.poll_type]),
      h("span.poll-status", {}, poll.status === "open" ? `${poll.votes.length} of ${poll.participant_ids.length} voted` : "Closed"),
      waiting ? h("span.badge.alert", {}, "Your vote") : null,
    ),
    h("p.poll-question", {}, poll.description),
    h(
      "ol.choices",
      {},
      poll.choices.map((choice, index) => {
        const count = poll.votes.filter((vote) => vote.choice_index === index).length;
        const winner = poll.status === "closed" && poll.winner_index === index;
        return h(
          `li${winner ? ".winner" : ""}`,
          { style: { "--share": `${(100 * count) / total}%` } },
          h("span.choice", {}, label(choice)),
          h("span.count", {}, `${count} ${count === 1 ? "vote" : "votes"}${voted?.choice_index === index ? " · yours" : ""}${winner ? " · chosen" : ""}`),
          canVote
            ? h("button.small", { type: "button", dataset: { key: `vote-${poll.id}-${index}` }, onclick: () => actions.vote(poll, index) }, "Vote")
            : null,
        );
      }),
    ),
    canClose ? h("button.small.quiet", { type: "button", dataset: { key: `close-${poll.id}` }, onclick: () => actions.closePoll(poll) }, "Close poll") : null,
  );
}
