// What the client knows, kept up to date from replies and events. Room items are kept by seq, so an
// item that arrives twice (an event and a page of history) is one item; a hole in a room's seq is
// filled with get_room_items. While catching up after a (re)connection, events wait in a buffer and
// are applied once the replies are in, so a fresh event is never overwritten by an older snapshot.
// Every page is asked for with its change entries (edits, deletes, reactions: PROTOCOL.md, Everyday
// chat): they are kept by seq like the items, so a room's seqs have no holes, but never shown.

const PAGE = 50;
const SHOWN = new Set(["message", "announcement"]);
const TYPING_MS = 6000; // how long "Ann is typing…" lasts after her last signal

export class Store extends EventTarget {
  constructor(connection) {
    super();
    this.connection = connection;
    this.reset();
    connection.addEventListener("event", (event) => this.receive(event.detail));
    connection.addEventListener("online", () => this.catchUp());
  }

  reset() {
    this.me = null;
    this.users = new Map();
    this.usersAsked = new Set(); // ids met before their user was known, already asked about
    this.online = new Set();
    this.rooms = new Map(); // id -> RoomSummary
    this.timelines = new Map(); // room id -> {items: Map seq -> item or change entry, changedBy, hasOlder, fetching}
    this.meetups = new Map();
    this.held = null; // events received while catching up
    this.early = new Map(); // room id -> the newest item seen before the room itself (other worker)
    this.typing = new Map(); // room id -> Map user id -> when their "is typing" expires (ms)
    this.calendar = null; // {url, webcal_url, reminders}: get_calendar_feed's answer, once asked
    this.calendarAsked = null; // the get_calendar_feed on its way
    this.reminded = new Map(); // meetup id -> the latest meetup.reminder's {kind, lead_seconds}
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  request(type, data) {
    return this.connection.request(type, data);
  }

  // Catching up ---------------------------------------------------------------------------------

  async catchUp() {
    const held = [];
    this.held = held;
    try {
      const [me, rooms, users, online, meetups] = await Promise.all([
        this.request("get_me"),
        this.request("list_rooms"),
        this.request("list_users"),
        this.request("list_online_users"),
        this.request("list_meetups"),
      ]);
      this.me = me.user;
      this.users = new Map(users.users.map((user) => [user.id, user]));
      this.online = new Set(online.user_ids);
      this.rooms = new Map(rooms.rooms.map((summary) => [summary.room.id, summary]));
      this.meetups = new Map(meetups.meetups.map((meetup) => [meetup.id, meetup]));
      for (const roomId of this.timelines.keys()) {
        if (this.rooms.has(roomId)) this.fetchNewer(roomId);
        else this.timelines.delete(roomId);
      }
    } finally {
      if (this.held === held) this.held = null; // else a newer catch-up (another reconnection) holds on
      for (const frame of held) this.apply(frame);
      this.changed();
    }
  }

  /** Items after the newest one known, page by page (after a reconnection, or to fill a hole). */
  async fetchNewer(roomId, beforeSeq = undefined) {
    const timeline = this.timelines.get(roomId);
    if (!timeline || timeline.fetching) return;
    timeline.fetching = true;
    try {
      let after = contiguousEnd(timeline);
      for (;;) {
        const query = { room_id: roomId, after_seq: after, before_seq: beforeSeq, limit: 100, with_changes: true };
        const page = await this.request("get_room_items", query);
        this.applyPage(roomId, page);
        if (!page.has_more || page.items.length === 0) break;
        after = page.items.at(-1).seq;
      }
    } finally {
      timeline.fetching = false;
      this.changed();
    }
    this.fillHole(roomId);
  }

  /** The newest page of a room, the first time it is opened. */
  async openTimeline(roomId) {
    if (this.timelines.has(roomId)) return this.fetchNewer(roomId);
    // changedBy: item seq -> the seq of the latest change entry applied to it (events may come late).
    const timeline = { items: new Map(), changedBy: new Map(), hasOlder: false, fetching: true, loaded: false, older: null };
    this.timelines.set(roomId, timeline); // events that arrive meanwhile land in it
    try {
      const page = await this.request("get_room_items", { room_id: roomId, limit: PAGE, with_changes: true });
      this.applyPage(roomId, page);
      timeline.hasOlder = page.has_more;
      timeline.loaded = true;
    } finally {
      timeline.fetching = false;
      this.changed();
    }
    this.fillHole(roomId);
  }

  /** The page before the oldest item known (one load at a time; a caller during one gets it too). */
  loadOlder(roomId) {
    const timeline = this.timelines.get(roomId);
    if (!timeline?.hasOlder) return Promise.resolve();
    timeline.older ??= this.fetchOlder(roomId, timeline).finally(() => {
      timeline.older = null;
      this.changed();
    });
    return timeline.older;
  }

  async fetchOlder(roomId, timeline) {
    // A page of change entries only shows nothing: go on until something shows, or nothing is left.
    for (;;) {
      const oldest = Math.min(...timeline.items.keys());
      const page = await this.request("get_room_items", { room_id: roomId, before_seq: oldest, limit: PAGE, with_changes: true });
      this.applyPage(roomId, page);
      timeline.hasOlder = page.has_more;
      if (!page.has_more || page.items.some((item) => SHOWN.has(item.kind))) return;
    }
  }

  /** Older pages until the item `seq` is known (a reply's quote was clicked). */
  async loadUntil(roomId, seq) {
    const timeline = this.timelines.get(roomId);
    while (timeline && !timeline.items.has(seq) && timeline.hasOlder && this.timelines.get(roomId) === timeline) {
      await this.loadOlder(roomId);
    }
  }

  /** An item arrived with a seq beyond the next one expected: fetch the missing ones. */
  fillHole(roomId) {
    const timeline = this.timelines.get(roomId);
    if (!timeline?.loaded || timeline.fetching) return;
    const end = contiguousEnd(timeline);
    const newest = Math.max(0, ...timeline.items.keys());
    if (newest > end) this.fetchNewer(roomId, newest);
  }

  // Events --------------------------------------------------------------------------------------

  receive(frame) {
    if (this.held) this.held.push(frame);
    else {
      this.apply(frame);
      this.changed();
    }
  }

  apply({ event, data }) {
    const handler = EVENTS[event];
    if (handler) handler(this, data);
  }

  /**
   * A page of get_room_items (with_changes): its items show every change made so far, so they
   * replace what is known, unless an event already applied a change newer than the page's end
   * (the events still to come bring the rest). `targets` refresh the items already known only.
   */
  applyPage(roomId, page) {
    const upTo = Math.max(0, ...page.items.map((item) => item.seq));
    // Holes are looked for once the whole page is in: its oldest item alone would look like one.
    page.items.forEach((item) => this.addItem(item, upTo, false));
    for (const target of page.targets ?? []) this.refreshItem(target, upTo);
    this.fillHole(roomId);
  }

  /** A new item or change entry; `upTo`: the newest change the item may already show. */
  addItem(item, upTo = item.seq, fill = true) {
    if (!SHOWN.has(item.kind)) return this.addChangeEntry(item, fill);
    this.learnUsers([item.sender_id]);
    const summary = this.rooms.get(item.room_id);
    if (!summary && item.seq > (this.early.get(item.room_id)?.seq ?? 0)) this.early.set(item.room_id, item);
    // Only an item newer than the summary's last one is news to the unread count.
    if (summary && item.seq > (summary.last_item?.seq ?? 0)) {
      summary.last_item = item;
      summary.room = { ...summary.room, last_seq: Math.max(summary.room.last_seq, item.seq) };
      if (item.sender_id === this.me?.id) {
        summary.last_read_seq = Math.max(summary.last_read_seq, item.seq); // sending reads the room
        summary.unread_count = 0;
        summary.mention_count = 0;
      } else if (item.kind === "message" && item.seq > summary.last_read_seq) {
        summary.unread_count += 1;
        if (this.mentionsMe(item)) summary.mention_count = (summary.mention_count ?? 0) + 1;
      }
      if (item.sender_id) this.typing.get(item.room_id)?.delete(item.sender_id); // they stopped typing
    }
    this.refreshItem(item, upTo, true);
    if (fill) this.fillHole(item.room_id);
  }

  /** An edit, delete or reaction: kept for its seq (no hole), and remembered as its target's latest change. */
  addChangeEntry(entry, fill = true) {
    const summary = this.rooms.get(entry.room_id);
    if (summary) summary.room = { ...summary.room, last_seq: Math.max(summary.room.last_seq, entry.seq) };
    const timeline = this.timelines.get(entry.room_id);
    if (!timeline) return;
    timeline.items.set(entry.seq, entry);
    timeline.changedBy.set(entry.target_seq, Math.max(entry.seq, timeline.changedBy.get(entry.target_seq) ?? 0));
    if (fill) this.fillHole(entry.room_id);
  }

  /** room.item_changed: the change entry takes its seq; the item is replaced where it is known. */
  changeItem(item, change) {
    const timeline = this.timelines.get(item.room_id);
    const newer = (timeline?.changedBy.get(item.seq) ?? 0) > change.seq;
    this.addChangeEntry(change);
    const summary = this.rooms.get(item.room_id);
    if (summary?.last_item?.seq === item.seq && !newer) summary.last_item = item;
    if (!timeline?.items.has(item.seq) || newer) return;
    timeline.changedBy.set(item.seq, change.seq); // a reply whose quote changed: the original's change
    timeline.items.set(item.seq, item);
  }

  /** The item as a command's reply gave it, unless something changed it meanwhile (`before` is gone). */
  replaceItem(item, before) {
    const timeline = this.timelines.get(item.room_id);
    if (timeline?.items.get(item.seq) === before) timeline.items.set(item.seq, item);
  }

  /** Replace (or, with `add`, insert) an item unless a change newer than `upTo` is shown already. */
  refreshItem(item, upTo, add = false) {
    const timeline = this.timelines.get(item.room_id);
    if (!timeline || (!add && !timeline.items.has(item.seq))) return;
    if ((timeline.changedBy.get(item.seq) ?? 0) > upTo && timeline.items.has(item.seq)) return;
    timeline.items.set(item.seq, item);
  }

  mentionsMe(item) {
    return item.sender_id !== this.me?.id && (item.mentions_room || item.mentions?.includes(this.me?.id));
  }

  /** room.typing: someone is typing (for a few seconds), or stopped. */
  setTyping(roomId, userId, active) {
    if (!this.typing.has(roomId)) this.typing.set(roomId, new Map());
    const typers = this.typing.get(roomId);
    if (!active) return typers.delete(userId);
    typers.set(userId, Date.now() + TYPING_MS);
    setTimeout(() => this.changed(), TYPING_MS + 100); // to take the line away once it expires
  }

  /** The read mark moved (here or on another device): recount what is left unread. */
  markedRead(roomId, seq) {
    const summary = this.rooms.get(roomId);
    if (!summary || seq < summary.last_read_seq) return;
    summary.last_read_seq = seq;
    const timeline = this.timelines.get(roomId);
    if (seq >= summary.room.last_seq) {
      summary.unread_count = 0;
      summary.mention_count = 0;
    } else if (timeline?.loaded && contiguousEnd(timeline) >= summary.room.last_seq) {
      const unread = [...timeline.items.values()].filter(
        (item) => item.seq > seq && item.kind === "message" && item.sender_id !== this.me?.id,
      );
      summary.unread_count = unread.length;
      summary.mention_count = unread.filter((item) => !item.deleted_at && this.mentionsMe(item)).length;
    }
  }

  /** A room from an event or a reply; items seen before it (another worker's events) count. */
  upsertRoom(room) {
    this.learnUsers(room.participant_ids);
    const summary = this.rooms.get(room.id);
    if (summary) {
      summary.room = { ...room, last_seq: Math.max(room.last_seq, summary.room.last_seq) };
      return;
    }
    this.rooms.set(room.id, { room, last_item: null, last_read_seq: 0, unread_count: 0, mention_count: 0, notifications: "all" });
    const early = this.early.get(room.id);
    this.early.delete(room.id);
    if (early) this.addItem(early);
  }

  addPoll(poll) {
    const meetup = this.meetups.get(poll.meetup_id);
    if (meetup && !meetup.polls.some((known) => known.id === poll.id)) {
      this.meetups.set(meetup.id, { ...meetup, polls: [...meetup.polls, poll] });
    }
  }

  updatePoll(meetupId, pollId, change) {
    const meetup = this.meetups.get(meetupId);
    if (!meetup) return;
    const polls = meetup.polls.map((poll) => (poll.id === pollId ? change(poll) : poll));
    this.meetups.set(meetupId, { ...meetup, polls });
  }

  /** The user's calendar feed (asked once; the first get_calendar_feed makes its address). */
  loadCalendar() {
    this.calendarAsked ??= this.request("get_calendar_feed").then(
      (feed) => {
        this.calendar = feed;
        this.changed();
        return feed;
      },
      (error) => {
        this.calendarAsked = null; // asked again next time
        throw error;
      },
    );
    return this.calendarAsked;
  }

  /** Everyone who has signed in, again (for choosing people: they are told of users who share a room only). */
  async refreshUsers() {
    const { users } = await this.request("list_users");
    for (const user of users) this.users.set(user.id, user);
    this.changed();
  }

  /** Who is online among those who share a room with us: asked again on joining a room (PROTOCOL.md). */
  refreshPresence() {
    this.request("list_online_users").then(({ user_ids: ids }) => {
      for (const id of ids) this.online.add(id);
      this.changed();
    }, () => {}); // presence is a nicety: the next presence.changed will do
  }

  /** Someone met in a room or an item but not known (their user.updated was missed): list the users again. */
  learnUsers(ids) {
    const unknown = ids.filter((id) => id && !this.users.has(id) && !this.usersAsked.has(id));
    if (!unknown.length || !this.me) return;
    unknown.forEach((id) => this.usersAsked.add(id));
    this.refreshUsers().catch(() => unknown.forEach((id) => this.usersAsked.delete(id))); // asked again when next met
  }

  // Reading -------------------------------------------------------------------------------------

  user(id) {
    return this.users.get(id) ?? { id, name: id, image_url: null };
  }

  /** Room summaries, latest activity first (the last item's time, else the room's creation). */
  sortedRooms() {
    const activity = (summary) => Date.parse(summary.last_item?.sent_at ?? summary.room.created_at);
    return [...this.rooms.values()].sort((a, b) => activity(b) - activity(a));
  }

  sortedMeetups() {
    return [...this.meetups.values()].sort((a, b) => Date.parse(a.takes_place_on) - Date.parse(b.takes_place_on));
  }

  meetupOfRoom(roomId) {
    return [...this.meetups.values()].find((meetup) => meetup.room_id === roomId) ?? null;
  }

  /** A room's messages and announcements, by seq (change entries are not shown). */
  items(roomId) {
    const timeline = this.timelines.get(roomId);
    if (!timeline) return [];
    return [...timeline.items.values()].filter((item) => SHOWN.has(item.kind)).sort((a, b) => a.seq - b.seq);
  }

  item(roomId, seq) {
    return this.timelines.get(roomId)?.items.get(seq) ?? null;
  }

  /** Who is typing in a room now (ids, in the order they began). */
  typers(roomId) {
    const now = Date.now();
    return [...(this.typing.get(roomId) ?? new Map())].filter(([, until]) => until > now).map(([id]) => id);
  }
}

/** The highest seq up to which a timeline has every item (from its oldest one). */
function contiguousEnd(timeline) {
  if (timeline.items.size === 0) return 0;
  let seq = Math.min(...timeline.items.keys());
  while (timeline.items.has(seq + 1)) seq += 1;
  return seq;
}


const EVENTS = {
  "room.created": (store, { room }) => {
    store.upsertRoom(room);
    store.refreshPresence();
  },
  "room.updated": (store, { room }) => store.upsertRoom(room),
  "room.member_joined": (store, { user_id, room }) => {
    store.upsertRoom(room);
    if (user_id === store.me?.id) {
      store.refreshPresence();
      // Our read mark starts at the item before our arrival: the server knows it.
      store.request("list_rooms").then(({ rooms }) => {
        const fresh = rooms.find((summary) => summary.room.id === room.id);
        if (fresh) store.rooms.set(room.id, fresh);
        store.changed();
      });
    }
  },
  "room.member_left": (store, { room_id, user_id }) => {
    const summary = store.rooms.get(room_id);
    if (!summary) return;
    if (user_id === store.me?.id) {
      store.rooms.delete(room_id);
      store.timelines.delete(room_id);
      for (const meetup of store.meetups.values()) if (meetup.room_id === room_id) store.meetups.delete(meetup.id);
    } else {
      summary.room = { ...summary.room, participant_ids: summary.room.participant_ids.filter((id) => id !== user_id) };
    }
  },
  "room.read": (store, { room_id, last_read_seq }) => store.markedRead(room_id, last_read_seq),
  "room.item_added": (store, { item }) => store.addItem(item),
  "room.item_changed": (store, { item, change }) => store.changeItem(item, change),
  "room.typing": (store, { room_id, user_id, active }) => store.setTyping(room_id, user_id, active),
  "room.notifications_changed": (store, { room_id, level }) => {
    const summary = store.rooms.get(room_id);
    if (summary) summary.notifications = level;
  },
  "meetup.created": (store, { meetup }) => store.meetups.set(meetup.id, meetup),
  "meetup.updated": (store, { meetup }) => {
    if (meetup.attendees.some((attendee) => attendee.user_id === store.me?.id)) store.meetups.set(meetup.id, meetup);
    else store.meetups.delete(meetup.id); // we left its room
  },
  "meetup.reminder": (store, { meetup, kind, lead_seconds }) => {
    store.meetups.set(meetup.id, meetup);
    store.reminded.set(meetup.id, { kind, lead_seconds });
    store.dispatchEvent(new CustomEvent("reminder", { detail: { meetup, kind, lead_seconds } }));
  },
  "poll.created": (store, { poll }) => store.addPoll(poll),
  "poll.vote_cast": (store, { poll_id, meetup_id, user_id, choice_index }) =>
    store.updatePoll(meetup_id, poll_id, (poll) =>
      poll.votes.some((vote) => vote.user_id === user_id)
        ? poll
        : { ...poll, votes: [...poll.votes, { user_id, choice_index }] },
    ),
  "poll.closed": (store, { poll }) => store.updatePoll(poll.meetup_id, poll.id, () => poll),
  "presence.changed": (store, { user_id, online }) => {
    if (online) store.online.add(user_id);
    else store.online.delete(user_id);
  },
  "user.updated": (store, { user }) => {
    store.users.set(user.id, user);
    if (user.id === store.me?.id) store.me = user;
  },
};
