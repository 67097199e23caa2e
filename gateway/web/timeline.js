// The open room's timeline: messages and announcements by seq, each with what answers or marks it
// (a reply's quote, reactions, "edited", a tombstone), a "new messages" divider, the items on their
// way, and the menu of a message (react, reply, edit, delete). Items not shown yet are added where
// they belong and changed ones are redrawn, so scrolling and focus stay put.
import { announcementText } from "./announcements.js";
import { avatar, clockTime, h, longTime } from "./dom.js";
import { describe } from "./errors.js";
import { attachmentsView } from "./files.js";

export const EMOJIS = ["👍", "❤️", "😂", "😮", "😢", "🎉"];
const FLASH_MS = 2500;
const drawn = new WeakMap(); // element -> the item it shows (a changed item is a new object)

/**
 * Draws the timeline of `ui.roomId`. `ui.divider` ({roomId, seq}) puts "New messages" above that
 * item; `ui.jumpTo` (a seq) scrolls to that item and flashes it once it is drawn.
 */
export function renderTimeline(root, store, ui, actions) {
  const list = root.querySelector("#timeline");
  const scroller = root.querySelector("#timeline-scroll");
  const switched = list.dataset.room !== (ui.roomId ?? "");
  if (switched) {
    list.replaceChildren();
    list.dataset.room = ui.roomId ?? "";
  }
  const timeline = store.timelines.get(ui.roomId);
  root.querySelector("#load-older").hidden = !timeline?.hasOlder;
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;
  const shown = new Map([...list.querySelectorAll(":scope > li[data-seq]")].map((el) => [Number(el.dataset.seq), el]));
  let previous = null;
  let prepended = false;
  for (const item of store.items(ui.roomId)) {
    let el = shown.get(item.seq);
    // A message being edited or with its menu open waits: it is redrawn once that ends.
    if (el && drawn.get(el) !== item && !el.matches(".editing, .menu-open")) {
      const fresh = itemView(item, store, actions);
      const focused = el.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
      el.replaceWith(fresh);
      if (focused) fresh.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus(); // a tally just clicked, say
      el = fresh;
    }
    if (!el) {
      el = itemView(item, store, actions);
      if (previous) previous.after(el);
      else {
        list.prepend(el);
        prepended = list.children.length > 1;
      }
    }
    previous = el;
  }
  placeDivider(list, ui);
  for (const el of list.querySelectorAll(".pending")) el.remove();
  for (const pending of ui.sending.values()) if (pending.roomId === ui.roomId) list.append(pendingView(pending, store, ui));
  const divider = list.querySelector(".divider");
  if (divider && !ui.divider.scrolled) {
    ui.divider.scrolled = true;
    scroller.scrollTop = scroller.scrollHeight;
    divider.scrollIntoView({ block: "nearest" }); // the first unread item is seen, the newest if they fit
  } else if (switched || atBottom) scroller.scrollTop = scroller.scrollHeight;
  else if (prepended) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  if (ui.jumpTo) jump(list, ui);
}

function placeDivider(list, ui) {
  list.querySelector(".divider")?.remove();
  if (ui.divider?.roomId !== ui.roomId || !ui.divider.seq) return;
  const first = list.querySelector(`:scope > li[data-seq="${ui.divider.seq}"]`);
  first?.before(h("li.divider", { role: "separator" }, h("span", {}, "New messages")));
}

function jump(list, ui) {
  const target = list.querySelector(`:scope > li[data-seq="${ui.jumpTo}"]`);
  ui.jumpTo = null;
  if (!target) return;
  target.scrollIntoView({ block: "center" });
  target.classList.add("flash");
  setTimeout(() => target.classList.remove("flash"), FLASH_MS);
}

function itemView(item, store, actions) {
  const el = item.kind === "announcement" ? announcementView(item) : messageView(item, store, actions);
  drawn.set(el, item);
  return el;
}

function announcementView(item) {
  const facts = item.facts ? { kind: item.facts.kind, ...(item.facts.meetup_id ? { meetup: item.facts.meetup_id } : {}) } : {};
  return h(
    "li.announcement",
    { dataset: { seq: item.seq, ...facts } },
    h("span", {}, announcementText(item)),
    h("time", { datetime: item.sent_at }, clockTime(item.sent_at)),
  );
}

function messageView(item, store, actions) {
  const sender = store.user(item.sender_id);
  const me = store.me?.id;
  const mine = item.sender_id === me;
  const deleted = Boolean(item.deleted_at);
  const classes = `${mine ? ".mine" : ""}${deleted ? ".deleted" : ""}${!deleted && store.mentionsMe(item) ? ".mentions-me" : ""}`;
  const more = deleted
    ? null
    : h("button.item-more", { type: "button", dataset: { key: "more" }, "aria-label": "Message actions", "aria-haspopup": "menu", "aria-expanded": "false" }, "⋯");
  const el = h(
    `li.message${classes}`,
    { dataset: { seq: item.seq } },
    avatar(sender),
    h(
      "div.bubble",
      {},
      h(
        "div.meta",
        {},
        h("strong", {}, sender.name),
        h("time", { datetime: item.sent_at, title: longTime(item.sent_at) }, clockTime(item.sent_at)),
        item.edited_at && !deleted ? h("span.edited", { title: `Edited ${longTime(item.edited_at)}` }, "edited") : null,
        more,
      ),
      item.reply_to && !deleted ? quoteView(item.reply_to, store, actions) : null,
      deleted ? h("p.tombstone", {}, "Message deleted") : item.content ? h("p.content", {}, contentView(item, store)) : null,
      !deleted && item.attachments?.length ? attachmentsView(item, store) : null,
    ),
    deleted ? null : reactionsView(item, store, actions),
  );
  more?.addEventListener("click", () => toggleMenu(el, item, store, actions));
  return el;
}

/** A reply's quote: who and what it answers; a click goes to the original. */
function quoteView(quote, store, actions) {
  const name = quote.sender_id ? store.user(quote.sender_id).name : "Boochat";
  return h(
    "button.quote",
    { type: "button", title: "Show the message answered", dataset: { seq: quote.seq, key: "quote" }, onclick: () => actions.jumpTo(quote.seq) },
    h("strong", {}, name),
    quote.deleted ? h("em.quote-text", {}, "deleted") : h("span.quote-text", {}, quote.excerpt),
    quote.edited && !quote.deleted ? h("span.edited", {}, "edited") : null,
  );
}

/** The text, with each "@Name" of the people it mentions (and "@room") marked; the reader's own stand out. */
function contentView(item, store) {
  const names = new Map((item.mentions ?? []).map((id) => [`@${store.user(id).name}`, id]));
  if (item.mentions_room) names.set("@room", store.me?.id);
  if (!names.size) return [item.content];
  const longestFirst = [...names.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const parts = item.content.split(new RegExp(`(${longestFirst.join("|")})`, "g"));
  // split() with one group: odd indexes are the mentions found.
  return parts.map((part, index) =>
    index % 2 ? h(`span.mention${names.get(part) === store.me?.id ? ".me" : ""}`, {}, part) : part,
  );
}

const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function reactionsView(item, store, actions) {
  if (!item.reactions?.length) return null;
  const me = store.me?.id;
  return h(
    "div.reactions",
    {},
    item.reactions.map(({ emoji, user_ids: ids }) => {
      const mine = ids.includes(me);
      const names = ids.map((id) => (id === me ? "you" : store.user(id).name)).join(", ");
      return h(
        "button.reaction",
        {
          type: "button",
          dataset: { key: `reaction-${emoji}` },
          "aria-pressed": String(mine),
          "aria-label": `${emoji} ${ids.length}: ${names}`,
          title: names,
          onclick: () => actions.react(item, emoji, !mine),
        },
        h("span", { "aria-hidden": "true" }, emoji),
        h("span.reaction-count", { "aria-hidden": "true" }, String(ids.length)),
      );
    }),
  );
}

function pendingView(pending, store, ui) {
  const files = pending.files ? `${pending.files} ${pending.files === 1 ? "file" : "files"}` : "";
  const state = files && !pending.content ? `sending ${files}…` : files ? `sending, with ${files}…` : ui.online ? "sending…" : "not sent yet: waiting for the connection";
  return h(
    "li.message.mine.pending",
    {},
    avatar(store.me),
    h("div.bubble", {}, h("div.meta", {}, h("strong", {}, store.me?.name ?? ""), h("span.pending-state", {}, state)), h("p", {}, pending.content)),
  );
}

// A message's menu ------------------------------------------------------------------------------

/** Open (or close) the menu of a message: the reactions to pick from, Reply, and Edit or Delete when allowed. */
function toggleMenu(el, item, store, actions) {
  const open = el.classList.contains("menu-open");
  closeMenus(actions);
  if (open) return;
  const me = store.me?.id;
  const room = store.rooms.get(item.room_id)?.room;
  const mine = item.sender_id === me;
  const held = new Set(item.reactions.filter((reaction) => reaction.user_ids.includes(me)).map((reaction) => reaction.emoji));
  const choose = (action) => () => {
    closeMenus(actions);
    action();
  };
  const menu = h(
    "div.item-menu",
    { role: "menu", "aria-label": "Message actions" },
    h(
      "div.emoji-picker",
      { role: "group", "aria-label": "React" },
      EMOJIS.map((emoji) =>
        h("button.emoji", { type: "button", role: "menuitem", "aria-label": `React with ${emoji}`, "aria-pressed": String(held.has(emoji)), onclick: choose(() => actions.react(item, emoji, !held.has(emoji))) }, emoji),
      ),
    ),
    h("button.small.quiet", { type: "button", role: "menuitem", onclick: choose(() => actions.reply(item)) }, "Reply"),
    mine && item.content ? h("button.small.quiet", { type: "button", role: "menuitem", onclick: choose(() => startEdit(el, item, actions)) }, "Edit") : null,
    mine || room?.created_by === me ? h("button.small.quiet.danger", { type: "button", role: "menuitem", onclick: choose(() => actions.remove(item)) }, "Delete") : null,
  );
  el.classList.add("menu-open");
  el.querySelector(".item-more").setAttribute("aria-expanded", "true");
  el.querySelector(".bubble").after(menu);
  menu.querySelector("button").focus();
}

/** Close any open message menu (a click elsewhere, Escape, or a choice made). */
export function closeMenus(actions) {
  const open = document.querySelectorAll("#timeline .menu-open");
  for (const el of open) {
    const focused = el.querySelector(".item-menu")?.contains(document.activeElement);
    el.classList.remove("menu-open");
    el.querySelector(".item-menu")?.remove();
    el.querySelector(".item-more")?.setAttribute("aria-expanded", "false");
    if (focused) el.querySelector(".item-more")?.focus(); // back where the menu was opened from
  }
  if (open.length) actions.redraw(); // what changed meanwhile is drawn now
}

/** Edit in place: the text becomes a box; Enter saves, Escape (or Cancel) gives up. */
function startEdit(el, item, actions) {
  const text = el.querySelector("p.content");
  const box = h("textarea", { rows: "2", maxlength: "4000", "aria-label": "Edit the message" });
  box.value = item.content;
  const error = h("p.form-error", { role: "alert" });
  const stop = () => {
    el.classList.remove("editing");
    form.replaceWith(text);
    actions.redraw();
  };
  const form = h(
    "form.edit-form",
    {},
    box,
    error,
    h("div.actions", {}, h("button.small.quiet", { type: "button", onclick: stop }, "Cancel"), h("button.small.primary", { type: "submit" }, "Save")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const content = box.value.trim();
    if (!content || content === item.content) return stop();
    error.textContent = "";
    try {
      await actions.edit(item, content);
      stop();
    } catch (failure) {
      error.textContent =
        failure.code === "conflict"
          ? "This message can no longer be edited: the time for editing it is over, or it was deleted."
          : describe(failure);
    }
  });
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape") {
      event.stopPropagation();
      stop();
    }
  });
  el.classList.add("editing");
  text.replaceWith(form);
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}
