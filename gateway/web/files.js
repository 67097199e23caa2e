// Photos and files (PROTOCOL.md, Photos and files). Uploads: each file asks for a slot
// (create_upload), then its bytes go by XMLHttpRequest (whose upload progress Chromium reports) to
// the files listener (or a bucket), another origin; its answer is the checked attachment or the
// reason it was refused. Links: an item's signed addresses (get_attachment_links), fetched when it is shown and
// again once they expire or fail. Views: the tray of files to send, thumbnails, cards, the viewer.
import { h, uuid } from "./dom.js";
import { describe } from "./errors.js";

const EARLY_MS = 60_000; // links this close to their expiry are fetched again before use
const THUMBNAIL = 320;
const FULL = 1280;
const FINAL = new Set(["too_large", "bad_request", "forbidden", "not_found"]); // no use retrying

/**
 * A file on its way: `state` is uploading, ready or failed; `claimed` once a message waits for it.
 * @typedef {{key: string, roomId: string, file: File, name: string, state: string, loaded: number,
 *   error: string, final: boolean, attachment: object | null, xhr: XMLHttpRequest | null, claimed: boolean}} Upload
 */

/** The files being sent, per room; dispatches "change" whenever one moves on. */
export class Uploads extends EventTarget {
  constructor(store) {
    super();
    this.store = store;
    this.entries = []; // Upload, in the order chosen
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }

  of(roomId) {
    return this.entries.filter((entry) => entry.roomId === roomId);
  }

  add(roomId, files) {
    for (const file of files) {
      const entry = { key: uuid(), roomId, file, name: file.name || "pasted image", state: "uploading", loaded: 0, error: "", final: false, attachment: null, xhr: null, claimed: false };
      this.entries.push(entry);
      this.start(entry);
    }
    this.changed();
  }

  async start(entry) {
    Object.assign(entry, { state: "uploading", loaded: 0, error: "", final: false });
    this.changed();
    const { file } = entry;
    try {
      const data = { room_id: entry.roomId, name: entry.name, content_type: file.type || "application/octet-stream", size: file.size };
      const slot = await this.store.request("create_upload", data);
      if (!this.entries.includes(entry)) return; // cancelled meanwhile
      // The local store answers the PUT with the checked attachment; a bucket (S3) answers nothing
      // of the checks, so they are asked for (complete_upload, idempotent).
      entry.attachment = (await this.put(entry, slot)) ?? (await this.store.request("complete_upload", { upload_id: slot.upload_id })).attachment;
      entry.state = "ready";
    } catch (error) {
      if (error?.name === "AbortError") return;
      entry.state = "failed";
      entry.error = describe(error);
      entry.final = FINAL.has(error?.code); // the same bytes would get the same answer
    }
    this.changed();
  }

  /** The bytes to the slot's address; resolves with the attachment (null: not checked yet), rejects with the reason. */
  put(entry, slot) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      entry.xhr = xhr;
      xhr.open(slot.method ?? "PUT", slot.url);
      xhr.responseType = "json";
      xhr.upload.onprogress = (event) => {
        entry.loaded = event.loaded;
        this.changed();
      };
      xhr.onload = () => {
        entry.xhr = null;
        const body = xhr.response;
        if (xhr.status === 201 && body?.attachment) return resolve(body.attachment);
        if (xhr.status >= 200 && xhr.status < 300) return resolve(null); // a bucket's answer: checks to ask for
        if (body?.error) return reject(body.error); // too_large, bad_request: the check's reason
        const why = xhr.status === 403 ? "the upload address expired: retry" : `the file server answered ${xhr.status}`;
        reject({ code: xhr.status === 503 ? "unavailable" : "bad_request", message: why });
      };
      xhr.onerror = () => reject({ code: "unavailable", message: "the file server could not be reached" });
      xhr.onabort = () => reject(new DOMException("cancelled", "AbortError"));
      xhr.send(entry.file);
    });
  }

  /** Cancel (abort) an upload, or take a finished or failed one off the list. */
  cancel(entry) {
    this.entries = this.entries.filter((other) => other !== entry);
    entry.xhr?.abort();
    this.changed();
  }

  retry(entry) {
    this.start(entry);
  }

  /** The room's files not yet promised to a message: a message being sent now waits for them. */
  claim(roomId) {
    const batch = this.of(roomId).filter((entry) => !entry.claimed);
    for (const entry of batch) entry.claimed = true;
    if (batch.length) this.changed();
    return batch;
  }

  /** Resolves with the attachments of `batch` once each is ready or cancelled (a failed one waits for a retry). */
  whenReady(batch) {
    return new Promise((resolve) => {
      const check = () => {
        const left = batch.filter((entry) => this.entries.includes(entry));
        if (left.some((entry) => entry.state !== "ready")) return;
        this.removeEventListener("change", check);
        resolve(left.map((entry) => entry.attachment));
      };
      this.addEventListener("change", check);
      check();
    });
  }

  /** Sent: these leave the tray. */
  done(batch) {
    this.entries = this.entries.filter((entry) => !batch.includes(entry));
    this.changed();
  }

  forget() {
    for (const entry of this.entries) entry.xhr?.abort();
    this.entries = [];
    this.changed();
  }
}

/** The tray above the message box: each file of the open room with its progress, Cancel and Retry. */
export function renderTray(root, uploads, roomId) {
  const tray = root.querySelector("#upload-tray");
  const entries = uploads.of(roomId);
  tray.hidden = !entries.length;
  const rows = entries.map((entry) => {
    let row = tray.querySelector(`[data-upload="${entry.key}"]`);
    if (!row) row = h("li.upload", { dataset: { upload: entry.key } });
    const size = entry.file.size;
    const words =
      entry.state === "failed"
        ? entry.error
        : entry.state === "ready"
          ? entry.claimed ? "Ready: sending" : "Ready"
          : entry.loaded >= size && size > 0 ? "Checking…" : `${humanSize(entry.loaded)} of ${humanSize(size)}`;
    row.dataset.state = entry.state;
    const progress = h("progress", { max: String(size || 1), value: String(entry.state === "ready" ? size || 1 : entry.loaded), "aria-label": `Upload of ${entry.name}` });
    const parts = [
      h("span.upload-name", { title: entry.name }, entry.name),
      entry.state === "failed" ? null : progress,
      h(`span.upload-state${entry.state === "failed" ? ".form-error" : ""}`, entry.state === "failed" ? { role: "alert" } : {}, words),
      entry.state === "failed" && !entry.final ? h("button.small", { type: "button", onclick: () => uploads.retry(entry) }, "Retry") : null,
      h("button.small.quiet", { type: "button", onclick: () => uploads.cancel(entry) }, entry.state === "uploading" ? "Cancel" : "Remove"),
    ];
    row.replaceChildren(...parts.filter(Boolean));
    return row;
  });
  if (rows.length !== tray.children.length || rows.some((row, index) => tray.children[index] !== row)) tray.replaceChildren(...rows);
}

/** 1536 -> "1.5 KB", 2_500_000 -> "2.4 MB". */
export function humanSize(bytes) {
  const units = ["bytes", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} ${bytes === 1 ? "byte" : "bytes"}` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

// Links ------------------------------------------------------------------------------------------

const links = new Map(); // "room:seq" -> {expires (ms), promise of the links by attachment id}

/** An item's links, by attachment id; fetched again once they are near their expiry, or with `fresh`. */
function linksOf(store, item, fresh = false) {
  const key = `${item.room_id}:${item.seq}`;
  const known = links.get(key);
  if (known && !fresh && known.expires - EARLY_MS > Date.now()) return known.promise;
  const entry = { expires: Infinity, promise: null };
  entry.promise = store.request("get_attachment_links", { room_id: item.room_id, seq: item.seq }).then(
    ({ links: found }) => {
      entry.expires = Math.min(...found.map((link) => expiryOf(link.url)));
      return new Map(found.map((link) => [link.id, link]));
    },
    (error) => {
      links.delete(key); // asked again next time
      throw error;
    },
  );
  links.set(key, entry);
  return entry.promise;
}

function expiryOf(url) {
  const seconds = Number(new URL(url).searchParams.get("expires"));
  return seconds ? seconds * 1000 : Date.now() + 10 * 60_000;
}

// Views ------------------------------------------------------------------------------------------

/** A message's attachments: photos as thumbnails (their placeholder first), other files as cards. */
export function attachmentsView(item, store) {
  const views = item.attachments.map((attachment) =>
    attachment.kind === "image" && attachment.status === "ready" && attachment.width ? photoView(item, attachment, store) : cardView(item, attachment, store),
  );
  return h("div.attachments", {}, views);
}

function photoView(item, attachment, store) {
  const { width, height, placeholder, name } = attachment;
  const image = h("img", { alt: name, width: String(width), height: String(height), decoding: "async", referrerpolicy: "no-referrer" });
  const button = h(
    "button.photo",
    {
      type: "button",
      "aria-label": `Open the photo ${name}`,
      dataset: { state: "placeholder", id: attachment.id },
      style: { "--width": `${width}px`, "aspect-ratio": `${width} / ${height}`, ...(placeholder ? { "background-image": `url("${placeholder}")` } : {}) },
      onclick: () => openViewer(item, attachment, store),
    },
    image,
  );
  let retried = false;
  const show = (fresh) =>
    linksOf(store, item, fresh).then((found) => {
      const link = found.get(attachment.id);
      if (!link) return;
      image.removeAttribute("src"); // the same address again still loads again
      image.src = link.thumbnails[THUMBNAIL] ?? link.url; // narrower than 320: the original
    }, () => (button.dataset.state = "failed"));
  image.addEventListener("load", () => (button.dataset.state = "loaded"));
  image.addEventListener("error", () => {
    if (!image.getAttribute("src")) return;
    if (retried) return (button.dataset.state = "failed");
    retried = true; // expired, most likely: fresh links, once
    show(true);
  });
  show(false);
  return button;
}

function cardView(item, attachment, store) {
  const link = h("a.file-card", { dataset: { id: attachment.id }, rel: "noopener", "aria-disabled": "true" },
    h("span.file-icon", { "aria-hidden": "true" }, "📄"),
    h("span.file-text", {}, h("span.file-name", {}, attachment.name), h("span.file-size", {}, humanSize(attachment.size))),
    h("span.file-download", {}, "Download"),
  );
  const fill = (fresh) =>
    linksOf(store, item, fresh).then((found) => {
      const url = found.get(attachment.id)?.url;
      if (!url) return;
      link.href = url;
      link.download = attachment.name; // another origin: the server's Content-Disposition names it
      link.removeAttribute("aria-disabled");
    }, () => {});
  link.addEventListener("click", (event) => {
    const known = links.get(`${item.room_id}:${item.seq}`);
    if (link.href && known && known.expires - EARLY_MS > Date.now()) return;
    event.preventDefault(); // expired or not there yet: fresh links, then the download
    fill(true).then(() => link.href && link.click());
  });
  fill(false);
  return link;
}

let viewer = null;

/** The photo at full size (the 1280 px thumbnail, else the original); Escape or a click closes it. */
async function openViewer(item, attachment, store) {
  if (!viewer) {
    viewer = h("dialog.viewer", { "aria-label": "Photo" });
    viewer.addEventListener("click", () => viewer.close());
    viewer.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.stopPropagation(); // not the page's Escape (closing the meetup panel, say)
      event.preventDefault();
      viewer.close();
    });
    document.body.append(viewer);
  }
  const image = h("img", { alt: attachment.name, width: String(attachment.width), height: String(attachment.height), referrerpolicy: "no-referrer" });
  if (attachment.placeholder) image.style.setProperty("background-image", `url("${attachment.placeholder}")`);
  viewer.replaceChildren(image, h("p.viewer-name", {}, attachment.name));
  viewer.showModal();
  try {
    const link = (await linksOf(store, item)).get(attachment.id);
    if (link) image.src = link.thumbnails[FULL] ?? link.url;
  } catch (error) {
    viewer.append(h("p.form-error", { role: "alert" }, describe(error)));
  }
}
