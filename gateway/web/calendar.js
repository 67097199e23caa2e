// Meetups in the person's own calendar (PROTOCOL.md, Calendars and reminders): the address of their
// feed to subscribe to, with a reset that revokes it; reminders on or off; one meetup as a file.
import { h } from "./dom.js";
import { describe } from "./errors.js";

/** "Add to calendar": the feed's url with its final ".ics" replaced by "/<meetup id>.ics". */
export const meetupFileUrl = (feed, meetupId) => `${feed.url.replace(/\.ics$/, "")}/${encodeURIComponent(meetupId)}.ics`;

/** "Calendar": the feed's addresses with copy buttons, a reset (confirmed), the reminders switch. */
export function openCalendar(dialog, store, toast) {
  const error = h("p.form-error", { role: "alert" });
  const addresses = h("div.calendar-addresses", {}, h("p.hint", {}, "Loading…"));
  const reminders = h("input", { id: "calendar-reminders", type: "checkbox", disabled: true });
  const reset = h("button.small.quiet.danger", { type: "button", disabled: true }, "Reset the address");
  const confirmBox = h("div.confirm", { hidden: true });
  const show = (feed) => {
    addresses.replaceChildren(
      address("calendar-url", "Address (https)", feed.url, toast),
      address("calendar-webcal", "Open in a calendar app (webcal)", feed.webcal_url, toast),
    );
    reminders.checked = feed.reminders;
    reminders.disabled = false;
    reset.disabled = false;
  };
  reminders.addEventListener("change", async () => {
    const enabled = reminders.checked;
    reminders.disabled = true;
    error.textContent = "";
    try {
      await store.request("set_reminders", { enabled });
      store.calendar = { ...store.calendar, reminders: enabled };
    } catch (failure) {
      reminders.checked = !enabled;
      error.textContent = describe(failure);
    } finally {
      reminders.disabled = false;
    }
  });
  // A reset breaks every calendar subscribed with the old address: asked for twice.
  reset.addEventListener("click", () => {
    confirmBox.hidden = false;
    confirmBox.replaceChildren(
      h("p", {}, "Calendars subscribed with the current address stop updating. Subscribe again with the new one."),
      h("button.small.danger", { type: "button", onclick: resetNow }, "Reset it"),
      h("button.small.quiet", { type: "button", onclick: () => (confirmBox.hidden = true) }, "Keep it"),
    );
  });
  async function resetNow() {
    confirmBox.hidden = true;
    error.textContent = "";
    try {
      const feed = await store.request("reset_calendar_feed", {});
      store.calendar = feed;
      show(feed);
      toast("Your calendar has a new address: the old one no longer works.", "info");
    } catch (failure) {
      error.textContent = describe(failure);
    }
  }
  dialog.replaceChildren(
    h(
      "div.calendar",
      {},
      h("h2", {}, "Your calendar"),
      h("p.hint", {}, "Subscribe to this address in your calendar app: your meetups appear there and follow every change. Keep it to yourself: whoever has it can read your meetups."),
      addresses,
      h("div.actions.start", {}, reset),
      confirmBox,
      h("div.field.switch", {}, reminders, h("label", { for: "calendar-reminders" }, "Remind me before my meetups")),
      error,
      h("div.actions", {}, h("button.quiet", { type: "button", onclick: () => dialog.close() }, "Close")),
    ),
  );
  dialog.showModal();
  store.loadCalendar().then(show, (failure) => (error.textContent = describe(failure)));
}

function address(id, label, value, toast) {
  const input = h("input", { id, type: "text", readonly: true, value, spellcheck: "false" });
  const copy = h("button.small", { type: "button", "aria-label": `Copy: ${label}` }, "Copy");
  copy.addEventListener("click", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(value);
      toast("Copied.", "info");
    } catch {
      toast("Copy the selected address by hand (this page may not use the clipboard).");
    }
  });
  return h("div.field", {}, h("label", { for: id }, label), h("div.copy-row", {}, input, copy));
}
