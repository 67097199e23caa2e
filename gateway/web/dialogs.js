// One modal form for every "new room / meetup / poll, invite, rename" action. The browser's <dialog>
// gives focus handling and Escape; the form stays open with the server's words when a request fails.
import { avatar, h, localInDays, localInput } from "./dom.js";
import { describe } from "./errors.js";

const MAX_CHOICES = 10;

/**
 * Show a form; `action(values)` runs on submit (a promise): the dialog closes when it resolves and
 * shows the error when it rejects. Fields: {name, label, type: text | datetime-local | select |
 * people | choices, value?, options?, users?, required?, maxlength?, after?}; `note`: a line under the
 * title. A reschedule poll's choices start the day after `after` (the meetup's time: not a choice).
 */
export function openForm(dialog, { title, fields, submit, action, note = null }) {
  const error = h("p.form-error", { role: "alert" });
  const inputs = fields.map((field) => fieldView(field));
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", {}, title),
    note ? h("p.hint", {}, note) : null,
    inputs.map((input) => input.el),
    error,
    h(
      "div.actions",
      {},
      h("button.quiet", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      h("button.primary", { type: "submit" }, submit),
    ),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = Object.fromEntries(inputs.map((input) => [input.name, input.value()]));
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    error.textContent = "";
    try {
      await action(values);
      dialog.close();
    } catch (failure) {
      error.textContent = describe(failure);
    } finally {
      button.disabled = false;
    }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
  form.querySelector("input:not([type=checkbox]), select")?.focus();
}

function fieldView(field) {
  const id = `field-${field.name}`;
  if (field.type === "people") return peopleView(field);
  if (field.type === "choices") return choicesView(field);
  const input =
    field.type === "select"
      ? h("select", { id, name: field.name }, field.options.map(([value, label]) => h("option", { value, selected: value === field.value }, label)))
      : h("input", {
          id,
          name: field.name,
          type: field.type ?? "text",
          value: field.value ?? "",
          required: field.required ?? true,
          maxlength: field.maxlength ? String(field.maxlength) : null,
          autocomplete: "off",
        });
  const el = h("div.field", {}, h("label", { for: id }, field.label), input);
  return { name: field.name, el, value: () => input.value.trim() };
}

/** Check boxes of users with a filter box, for choosing room members and meetup attendees. */
function peopleView(field) {
  const filter = h("input", { type: "search", placeholder: "Filter people", "aria-label": "Filter people" });
  const boxes = field.users.map((user) => {
    const box = h("input", { type: "checkbox", value: user.id, checked: (field.selected ?? []).includes(user.id) });
    return { user, row: h("label.person", {}, box, avatar(user, ".small"), h("span", {}, user.name)), box };
  });
  filter.addEventListener("input", () => {
    const words = filter.value.trim().toLowerCase();
    for (const { user, row } of boxes) row.hidden = words !== "" && !user.name.toLowerCase().includes(words);
  });
  const el = h(
    "fieldset.field.people",
    {},
    h("legend", {}, field.label),
    boxes.length > 6 ? filter : null,
    boxes.length ? h("div.people-list", {}, boxes.map(({ row }) => row)) : h("p.empty", {}, "Nobody else has signed in yet."),
  );
  return { name: field.name, el, value: () => boxes.filter(({ box }) => box.checked).map(({ user }) => user.id) };
}

/** Two to ten choices; dates and times when the form's poll_type says reschedule: then, prefilled,
 * one, two, ... days after `field.after` (the meetup's current time is never offered), else a week on. */
function choicesView(field) {
  const list = h("div.choices-list");
  const add = h("button.small.quiet", { type: "button" }, "Add a choice");
  const el = h("fieldset.field", {}, h("legend", {}, field.label), list, add);
  const kind = () => (el.closest("form")?.elements.poll_type?.value === "reschedule" ? "datetime-local" : "text");
  const addChoice = () => {
    const index = list.children.length;
    const value = kind() === "datetime-local" ? suggested(field.after, index) : "";
    list.append(h("input", { type: kind(), value, required: true, "aria-label": `Choice ${index + 1}` }));
    add.hidden = list.children.length >= MAX_CHOICES;
  };
  add.addEventListener("click", addChoice);
  addChoice();
  addChoice();
  // The kind of every input follows the poll type (picked above this field in the same form).
  queueMicrotask(() =>
    el.closest("form")?.elements.poll_type?.addEventListener("change", () => {
      for (const [index, input] of [...list.children].entries()) {
        input.type = kind();
        input.value = kind() === "datetime-local" ? suggested(field.after, index) : "";
      }
    }),
  );
  return { name: field.name, el, value: () => [...list.children].map((input) => input.value.trim()) };
}

/** The `index`-th time a reschedule poll offers: `index + 1` days after `after` at its clock time. */
function suggested(after, index) {
  if (!after) return localInDays(index + 7);
  const date = new Date(after);
  date.setDate(date.getDate() + index + 1);
  return localInput(date);
}
