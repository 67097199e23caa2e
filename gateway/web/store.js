// What the client knows, kept up to date from replies and events. Room items are kept by seq, so an
// item that arrives twice (an event and a page of history) is one item; a hole in a room's seq is
// filled with get_room_items. While catching up after a (re)connection, events wait in a buffer and
// are applied once the replies are in, so a fresh event is never overwritten by an older snapshot.

const PAGE = 50;

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
    this.online = new Set();
    this.rooms = new Map(); // id -> RoomSummary
    this.timelines = new Map(); // room id -> {items: Map seq -> item, hasOlder, fetching}
    this.meetups = new Map();
    this.held = null; // events received while catching up
    this.early = new Map(); // room id -> the newest item seen before the room itself (other worker)
    this.openRoomId = null;
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
        const page = await this.request("get_room_items", { room_id: roomId, after_seq: after, before_seq: beforeSeq, limit: 100 });
        page.items.forEach((item) => this.addItem(item));
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
    const timeline = { items: new Map(), hasOlder: false, fetching: true, loaded: false };
    this.timelines.set(roomId, timeline); // events that arrive meanwhile land in it
    try {
      const page = await this.request("get_room_items", { room_id: roomId, limit: PAGE });
      page.items.forEach((item) => this.addItem(item));
      timeline.hasOlder = page.has_more;
      timeline.loaded = true;
    } finally {
      timeline.fetching = false;
      this.changed();
    }
    this.fillHole(roomId);
  }

  async loadOlder(roomId) {
    const timeline = this.timelines.get(roomId);
    if (!timeline?.hasOlder || timeline.loadingOlder) return;
    timeline.loadingOlder = true;
    try {
      const oldest = Math.min(...timeline.items.keys());
      const page = await this.request("get_room_items", { room_id: roomId, before_seq: oldest, limit: PAGE });
      page.items.forEach((item) => this.addItem(item));
      timeline.hasOlder = page.has_more;
    } finally {
      timeline.loadingOlder = false;
      this.changed();
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

  addItem(item) {
    const summary = this.rooms.get(item.room_id);
    if (!summary && item.seq > (this.early.get(item.room_id)?.seq ?? 0)) this.early.set(item.room_id, item);
    // Only an item newer than the summary's last one is news to the unread count.
    if (summary && item.seq > (summary.last_item?.seq ?? 0)) {
      summary.last_item = item;
      summary.room = { ...summary.room, last_seq: Math.max(summary.room.last_seq, item.seq) };
      if (item.sender_id === this.me?.id) {
        summary.last_read_seq = Math.max(summary.last_read_seq, item.seq); // sending reads the room
        summary.unread_count = 0;
      } else if (item.kind === "message" && item.seq > summary.last_read_seq) summary.unread_count += 1;
    }
    const timeline = this.timelines.get(item.room_id);
    if (!timeline) return;
    timeline.items.set(item.seq, item);
    this.fillHole(item.room_id);
  }

  /** The read mark moved (here or on another device): recount what is left unread. */
  markedRead(roomId, seq) {
    const summary = this.rooms.get(roomId);
    if (!summary || seq < summary.last_read_seq) return;
    summary.last_read_seq = seq;
    const timeline = this.timelines.get(roomId);
    if (seq >= summary.room.last_seq) summary.unread_count = 0;
    else if (timeline?.loaded && contiguousEnd(timeline) >= summary.room.last_seq) {
      summary.unread_count = [...timeline.items.values()].filter(
        (item) => item.seq > seq && item.kind === "message" && item.sender_id !== this.me?.id,
      ).length;
    }
  }

  /** A room from an event or a reply; items seen before it (another worker's events) count. */
  upsertRoom(room) {
    const summary = this.rooms.get(room.id);
    if (summary) {
      summary.room = { ...room, last_seq: Math.max(room.last_seq, summary.room.last_seq) };
      return;
    }
    this.rooms.set(room.id, { room, last_item: null, last_read_seq: 0, unread_count: 0 });
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

  items(roomId) {
    const timeline = this.timelines.get(roomId);
    return timeline ? [...timeline.items.values()].sort((a, b) => a.seq - b.seq) : [];
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
  "room.created": (store, { room }) => store.upsertRoom(room),
  "room.updated": (store, { room }) => store.upsertRoom(room),
  "room.member_joined": (store, { user_id, room }) => {
    store.upsertRoom(room);
    if (user_id === store.me?.id) {
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
  "meetup.created": (store, { meetup }) => store.meetups.set(meetup.id, meetup),
  "meetup.updated": (store, { meetup }) => {
    if (meetup.attendees.some((attendee) => attendee.user_id === store.me?.id)) store.meetups.set(meetup.id, meetup);
    else store.meetups.delete(meetup.id); // we left its room
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
