// The message box of the open room: a draft per room (kept in sessionStorage: switching rooms, or
// reloading the page, keeps what was typed), the message being answered, @-completion of the room's
// members, and when the person is typing. It sends nothing itself: it dispatches "send" (detail: a
// Message) and "typing" (detail: {roomId, active}), and the page does the talking.
import { h } from "./dom.js";

const DRAFT_PREFIX = "boochat.draft.";
const TYPING_EVERY_MS = 3000; // the gateway drops more frequent signals anyway
const EXCERPT = 200;
const MENTION_QUERY = /(?:^|\s)@([^\s@]{0,40})$/; // "@" and the letters typed after it, at the caret
const ROOM_MENTION = /(?:^|\s)@room(?![\p{L}\p{N}_])/u;

/**
 * What the person sends: `reply` ({seq, name, excerpt}) and `chosen` ([["@Name", id]]) let the
 * composer put it back as it was when sending fails.
 * @typedef {{roomId: string, content: string, reply: object | null, chosen: Array, mentions: string[], mentionsRoom: boolean}} Message
 */

export class Composer extends EventTarget {
  constructor(root) {
    super();
    this.form = root.querySelector("#composer");
    this.input = root.querySelector("#composer-input");
    this.replyBox = root.querySelector("#reply-preview");
    this.list = root.querySelector("#mention-list");
    this.roomId = null;
    this.reply = null; // the message answered: {seq, name, excerpt}
    this.chosen = new Map(); // "@Name" -> user id, for the names picked from the completion
    this.members = []; // who may be mentioned here: [{id, name}]
    this.options = []; // the completion shown: [{label, id}] (id null for @room)
    this.active = 0; // the option Enter would choose
    this.typingSince = 0; // when the last "typing" went out (0: none since the box was last empty)
    this.files = 0; // files waiting in the open room's tray: a message may then have no text
    this.input.addEventListener("keydown", (event) => this.keydown(event));
    this.input.addEventListener("input", () => this.edited());
    this.input.addEventListener("click", () => this.complete());
    this.input.addEventListener("blur", () => this.closeCompletion());
    this.replyBox.querySelector("button").addEventListener("click", () => this.answer(null));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  /** The room whose box this is now: the old room's draft is kept, the new one's comes back. */
  open(roomId) {
    if (roomId === this.roomId) return;
    this.stopTyping();
    this.roomId = roomId;
    const draft = roomId ? readDraft(roomId) : null;
    this.input.value = draft?.text ?? "";
    this.chosen = new Map(draft?.chosen ?? []);
    this.reply = draft?.reply ?? null;
    this.closeCompletion();
    this.showReply();
    this.resize();
  }

  /** The room's members other than the person, for @-completion. */
  setMembers(users) {
    this.members = users;
  }

  /** How many files the open room's tray holds (set by the page, as it draws the tray). */
  setFiles(count) {
    this.files = count;
  }

  focus() {
    this.input.focus();
  }

  /** Answer `item` (null: answer nothing); `name`: its sender's name. */
  answer(item, name = "") {
    this.reply = item ? { seq: item.seq, name, excerpt: item.content.slice(0, EXCERPT) } : null;
    this.showReply();
    this.saveDraft();
    this.focus();
  }

  /** A message that could not be sent comes back, unless something new was typed meanwhile. */
  restore(message) {
    if (message.roomId !== this.roomId || this.input.value.trim()) return;
    this.input.value = message.content;
    this.chosen = new Map(message.chosen);
    this.reply = message.reply;
    this.showReply();
    this.saveDraft();
  }

  /** Signing out: the drafts go too. */
  forgetDrafts() {
    for (const key of Object.keys(sessionStorage)) if (key.startsWith(DRAFT_PREFIX)) sessionStorage.removeItem(key);
    this.roomId = null;
    this.open(null);
  }

  // Sending ------------------------------------------------------------------------------------

  send() {
    const content = this.input.value.trim();
    if ((!content && !this.files) || !this.roomId) return;
    const members = new Set(this.members.map((user) => user.id));
    // The names picked still in the text, of people still here.
    const chosen = [...this.chosen].filter(([tag, id]) => content.includes(tag) && members.has(id));
    const message = {
      roomId: this.roomId,
      content,
      reply: this.reply,
      chosen,
      mentions: [...new Set(chosen.map(([, id]) => id))],
      mentionsRoom: ROOM_MENTION.test(content),
    };
    this.typingSince = 0; // sending says "stopped typing" (PROTOCOL.md)
    this.input.value = "";
    this.chosen = new Map();
    this.reply = null;
    this.showReply();
    this.closeCompletion();
    this.saveDraft();
    this.resize();
    this.dispatchEvent(new CustomEvent("send", { detail: message }));
  }

  keydown(event) {
    if (this.options.length) {
      const moves = { ArrowDown: 1, ArrowUp: -1 };
      if (event.key in moves) {
        event.preventDefault();
        this.active = (this.active + moves[event.key] + this.options.length) % this.options.length;
        return this.drawCompletion();
      }
      if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        return this.choose(this.options[this.active]);
      }
      if (event.key === "Escape") {
        event.preventDefault();
        return this.closeCompletion();
      }
    }
    if (event.key === "Escape" && this.reply) {
      event.preventDefault();
      this.answer(null);
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.form.requestSubmit();
    }
  }

  edited() {
    this.resize();
    this.saveDraft();
    this.complete();
    this.signalTyping();
  }

  /** "typing" at most every 3 s while there is text; "stopped" once when the box is emptied. */
  signalTyping() {
    if (!this.input.value.trim()) return this.stopTyping();
    if (Date.now() - this.typingSince < TYPING_EVERY_MS) return;
    this.typingSince = Date.now();
    this.dispatchEvent(new CustomEvent("typing", { detail: { roomId: this.roomId, active: true } }));
  }

  stopTyping() {
    if (!this.typingSince || !this.roomId) return;
    this.typingSince = 0;
    this.dispatchEvent(new CustomEvent("typing", { detail: { roomId: this.roomId, active: false } }));
  }

  resize() {
    this.input.style.height = "auto";
    if (this.input.value) this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  // The draft and the reply ----------------------------------------------------------------------

  saveDraft() {
    if (!this.roomId) return;
    const text = this.input.value;
    if (!text.trim() && !this.reply) return sessionStorage.removeItem(DRAFT_PREFIX + this.roomId);
    const draft = { text, chosen: [...this.chosen], reply: this.reply };
    sessionStorage.setItem(DRAFT_PREFIX + this.roomId, JSON.stringify(draft));
  }

  showReply() {
    this.replyBox.hidden = !this.reply;
    if (!this.reply) return;
    this.replyBox.querySelector(".reply-name").textContent = this.reply.name;
    this.replyBox.querySelector(".reply-excerpt").textContent = this.reply.excerpt;
  }

  // @-completion -------------------------------------------------------------------------------

  /** Offer the members whose name (or a word of it) begins with what follows the "@" at the caret. */
  complete() {
    const before = this.input.value.slice(0, this.input.selectionStart);
    const found = before.match(MENTION_QUERY);
    if (!found) return this.closeCompletion();
    const query = found[1].toLowerCase();
    const fits = (name) => name.toLowerCase().startsWith(query) || name.toLowerCase().split(/\s+/).some((word) => word.startsWith(query));
    this.options = [
      ...this.members.filter((user) => fits(user.name)).map((user) => ({ label: user.name, id: user.id })),
      ...("room".startsWith(query) ? [{ label: "room", id: null }] : []),
    ].slice(0, 8);
    this.query = { start: before.length - found[1].length - 1, end: before.length };
    this.active = 0;
    this.drawCompletion();
  }

  choose(option) {
    const { start, end } = this.query;
    const tag = `@${option.label}`;
    const value = this.input.value;
    this.input.value = `${value.slice(0, start)}${tag} ${value.slice(end)}`;
    const caret = start + tag.length + 1;
    this.input.setSelectionRange(caret, caret);
    if (option.id) this.chosen.set(tag, option.id);
    this.closeCompletion();
    this.edited();
  }

  closeCompletion() {
    this.options = [];
    this.drawCompletion();
  }

  drawCompletion() {
    this.list.hidden = !this.options.length;
    this.list.replaceChildren(
      ...this.options.map((option, index) =>
        h(
          "li",
          {
            id: `mention-option-${index}`,
            role: "option",
            "aria-selected": String(index === this.active),
            // mousedown, not click: the box keeps the focus (and its caret) while choosing.
            onmousedown: (event) => {
              event.preventDefault();
              this.choose(option);
            },
          },
          h("strong", {}, `@${option.label}`),
          option.id ? null : h("span.hint", {}, " everyone in this room"),
        ),
      ),
    );
    if (this.options.length) this.input.setAttribute("aria-activedescendant", `mention-option-${this.active}`);
    else this.input.removeAttribute("aria-activedescendant");
  }
}

function readDraft(roomId) {
  try {
    return JSON.parse(sessionStorage.getItem(DRAFT_PREFIX + roomId));
  } catch {
    return null; // a draft this page cannot read is no draft
  }
}
