// One WebSocket to the gateway, speaking PROTOCOL.md: authenticate first, one reply per request id,
// reconnect with backoff, and every request still waiting is sent again, with the same id, on the
// next connection (for a command the id is its idempotency key: the server acts once).
import { uuid } from "./dom.js";

// Errors that are not outcomes (PROTOCOL.md): the same id is tried again.
const RETRYABLE = new Set(["timeout", "unavailable", "internal", "rate_limited"]);
const MAX_ATTEMPTS = 5;
const REPLY_WAIT_MS = 15000; // a reply this late means a dead connection: reconnect and resend
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
const SESSION_ENDED = 4401;

export class ProtocolError extends Error {
  constructor(error) {
    super(error.message || error.code);
    this.code = error.code;
    this.details = error.details;
  }
}

/**
 * Events dispatched: "status" (detail {state, retryAt?}: connecting, online, offline, signed-out),
 * "online" (authenticated, after every (re)connection: time to catch up), "event" (detail: the
 * event frame), "signed-out" (detail: reason in words).
 */
export class Connection extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.credentials = null; // {token} once signed in
    this.sessionId = null;
    this.pending = new Map(); // id -> {frame, resolve, reject, attempts, sentAt}
    this.failures = 0;
    this.timer = null;
    this.stopped = true;
    setInterval(() => this.watch(), 2000);
    window.addEventListener("online", () => this.retryNow());
    window.addEventListener("offline", () => this.drop());
  }

  /** Sign in with {dev_user} or {google_id_token}; resolves with authenticate's reply. */
  signIn(credentials) {
    this.stopped = false;
    return new Promise((resolve, reject) => this.open(credentials, resolve, reject));
  }

  /** Sign in again with a kept session token, retrying until the server answers ("online" or "signed-out"). */
  resume(token) {
    this.stopped = false;
    this.credentials = { token };
    this.open(this.credentials);
  }

  signOut() {
    this.stopped = true;
    this.credentials = null;
    clearTimeout(this.timer);
    for (const entry of this.pending.values()) entry.reject(new ProtocolError({ code: "unauthenticated", message: "signed out" }));
    this.pending.clear();
    this.ws?.close(1000, "signed out");
    this.ws = null;
  }

  /** Send a request; resolves with the reply's data, rejects with a ProtocolError. */
  request(type, data = {}) {
    const frame = { type, id: uuid(), data };
    return new Promise((resolve, reject) => {
      const entry = { frame, resolve, reject, attempts: 0, sentAt: null };
      this.pending.set(frame.id, entry);
      if (this.authenticated) this.send(entry);
    });
  }

  retryNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.open(this.credentials);
  }

  /** The device lost its network: a socket may take minutes to notice, so it is let go now. */
  drop() {
    const ws = this.ws;
    if (!ws?.authenticated) return; // one still signing in fails by itself
    this.ws = null;
    ws.onclose = null;
    ws.close();
    this.lost();
  }

  get authenticated() {
    return this.ws !== null && this.ws.authenticated === true;
  }

  open(credentials, resolve = () => {}, reject = (error) => this.lost(error)) {
    this.status({ state: "connecting" });
    const ws = new WebSocket(new URL("/ws", location.href.replace(/^http/, "ws")));
    this.ws = ws;
    const id = uuid();
    ws.onopen = () => ws.send(JSON.stringify({ type: "authenticate", id, data: credentials }));
    ws.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.re === id) this.authenticatedAs(ws, frame, resolve, reject);
      else if (frame.type === "event") this.dispatchEvent(new CustomEvent("event", { detail: frame }));
      else this.reply(frame);
    };
    ws.onclose = (close) => {
      if (this.ws === ws) this.ws = null;
      if (!ws.authenticated) reject(new ProtocolError({ code: "unavailable", message: "could not reach the server" }));
      else if (close.code === SESSION_ENDED) this.ended("Your session has ended: please sign in again.");
      else this.lost();
    };
  }

  authenticatedAs(ws, frame, resolve, reject) {
    if (frame.type !== "ok") {
      const error = new ProtocolError(frame.error);
      ws.onclose = null;
      ws.close();
      if (this.ws === ws) this.ws = null;
      if (RETRYABLE.has(error.code) && this.credentials) this.lost();
      else if (this.credentials) this.ended("Your session has ended: please sign in again.");
      else reject(error);
      return;
    }
    ws.authenticated = true;
    this.credentials = { token: frame.data.token };
    this.sessionId = frame.data.session_id ?? null; // this device's session (the Devices list marks it)
    this.failures = 0;
    // What waited (sent on a lost connection, or never) goes first, with its id; then the catch-up.
    for (const entry of this.pending.values()) this.send(entry);
    this.status({ state: "online" });
    resolve(frame.data);
    this.dispatchEvent(new Event("online"));
  }

  send(entry) {
    entry.attempts += 1;
    entry.sentAt = Date.now();
    this.ws.send(JSON.stringify(entry.frame));
  }

  reply(frame) {
    const entry = this.pending.get(frame.re);
    if (!entry) return; // a reply to a request already answered (sent twice across a reconnection)
    if (frame.type === "ok") {
      this.pending.delete(frame.re);
      entry.resolve(frame.data);
    } else if (RETRYABLE.has(frame.error.code) && entry.attempts < MAX_ATTEMPTS) {
      entry.sentAt = null;
      setTimeout(() => this.authenticated && this.pending.has(frame.re) && this.send(entry), backoff(entry.attempts));
    } else {
      this.pending.delete(frame.re);
      entry.reject(new ProtocolError(frame.error));
    }
  }

  /** A request without a reply for too long: the connection is dead even if the socket says not. */
  watch() {
    if (!this.authenticated) return;
    const now = Date.now();
    if ([...this.pending.values()].some((entry) => entry.sentAt && now - entry.sentAt > REPLY_WAIT_MS)) {
      this.ws.close(4000, "no reply");
    }
  }

  lost() {
    if (this.stopped) return;
    const delay = backoff(this.failures);
    this.failures += 1;
    this.status({ state: "offline", retryAt: Date.now() + delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.retryNow(), delay);
  }

  ended(reason) {
    this.signOut();
    this.status({ state: "signed-out" });
    this.dispatchEvent(new CustomEvent("signed-out", { detail: reason }));
  }

  status(detail) {
    this.state = detail.state;
    this.dispatchEvent(new CustomEvent("status", { detail }));
  }
}

/** Exponential backoff with jitter (half to all of the step), so clients do not all return at once. */
function backoff(failures) {
  const step = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)];
  return Math.round(step / 2 + (Math.random() * step) / 2);
}
