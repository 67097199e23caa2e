// Small DOM and formatting helpers shared by the views. No framework: h() builds elements.

/** h("button.primary", {onclick, type: "button"}, "Send") -> <button class="primary">. */
export function h(tag, attrs = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name);
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (key === "style") for (const [name, setting] of Object.entries(value)) el.style.setProperty(name, setting);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  el.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return el;
}

/** Replace a container's children; the element holding focus before (by data-key) keeps it. */
export function replaceKeepingFocus(container, children) {
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  container.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
  if (focused !== undefined) container.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

/** A UUID v4 from getRandomValues (crypto.randomUUID needs a secure context; a LAN address is not). */
export function uuid() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short" });
const whenFormat = new Intl.DateTimeFormat(undefined, {
  weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit",
});

/** A time of today as 18:30, an older one as its day. */
export function shortTime(iso) {
  const date = new Date(iso);
  return date.toDateString() === new Date().toDateString() ? timeFormat.format(date) : dayFormat.format(date);
}

export const longTime = (iso) => whenFormat.format(new Date(iso));
export const clockTime = (iso) => timeFormat.format(new Date(iso));

/** A datetime-local input's value (local time) as the protocol's UTC time, or "" when empty. */
export const localToIso = (value) => (value ? new Date(value).toISOString() : "");

/** A datetime-local value `days` from now at 19:00 local time, to prefill forms. */
export function localInDays(days) {
  const date = new Date();
  date.setDate(date.getDate() + days);
  date.setHours(19, 0, 0, 0);
  return localInput(date);
}

/** A Date as a datetime-local input's value, in local time, to the minute. */
export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A round picture, or the name's initials on a colour taken from the id. */
export function avatar(user, size = "") {
  const name = user?.name ?? "?";
  const initials = name.split(/\s+/).filter(Boolean).slice(0, 2).map((part) => part[0].toUpperCase()).join("");
  let hue = 0;
  for (const char of user?.id ?? name) hue = (hue * 31 + char.charCodeAt(0)) % 360;
  const drawn = h(`span.avatar${size}`, { style: { "--hue": hue }, "aria-hidden": "true" }, initials || "?");
  if (!user?.image_url) return drawn;
  // A picture that cannot be fetched (offline, say) gives way to the initials.
  return h(`img.avatar${size}`, { src: user.image_url, alt: "", referrerpolicy: "no-referrer", onerror: (event) => event.target.replaceWith(drawn) });
}
