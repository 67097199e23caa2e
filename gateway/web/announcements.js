// What an announcement says, worded here from its facts (PROTOCOL.md, Calendars and reminders), so
// its times read in the viewer's own time zone. Announcements stored before v1.2 have no facts, and
// a kind this page does not know is shown as the server wrote it: its text.

const meetupTime = new Intl.DateTimeFormat(undefined, {
  weekday: "short", day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
});

/** A meetup's time in the viewer's time zone, named (the zone may not be the meetup's). */
export const zonedTime = (iso) => meetupTime.format(new Date(iso));

/** "Saturday instead?" stays as it is; "Pick one" becomes "Pick one." */
const sentence = (text) => (/[.?!…]$/.test(text) ? text : `${text}.`);

const WORDING = {
  room_created: (f) => `${f.by_name ?? "Someone"} created the room ${f.room_name}`,
  member_joined: (f) => `${f.by_name} added ${f.user_name}`,
  member_left: (f) => `${f.user_name} left`,
  room_renamed: (f) => `${f.by_name} renamed the room to ${f.room_name}`,
  meetup_created: (f) => `${f.by_name} planned ${f.meetup_name} at ${f.location} on ${zonedTime(f.takes_place_on)}`,
  meetup_moved: (f) => `${f.meetup_name} moved to ${f.moved === "location" ? f.location : zonedTime(f.takes_place_on)}`,
  meetup_cancelled: (f) => `${f.by_name} cancelled ${f.meetup_name} (${zonedTime(f.takes_place_on)})`,
  poll_created: (f) => `${f.by_name} started a poll: ${f.question} (${f.choices.map((c) => choice(f, c)).join(", ")})`,
  poll_closed: (f) =>
    f.chosen === null ? `Poll closed without votes: ${f.question}` : `Poll closed: ${sentence(f.question)} Chosen: ${choice(f, f.chosen)}`,
};

const choice = (facts, value) => (facts.poll_type === "reschedule" ? zonedTime(value) : value);

/** An announcement's words for this viewer: from its facts when it has them, else its text. */
export function announcementText(item) {
  const word = item.facts ? WORDING[item.facts.kind] : undefined;
  return word ? word(item.facts) : item.content;
}
