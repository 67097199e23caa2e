// Who may come in, and from where: invite links ("Add friends": create, copy, list, revoke) and the
// devices signed in as this person ("Devices": list, sign one out, sign out everywhere).
import { h, longTime } from "./dom.js";
import { describe } from "./errors.js";

const DAY = 24 * 3600;
const VALIDITY = [[DAY, "1 day"], [7 * DAY, "7 days"], [30 * DAY, "30 days"], [90 * DAY, "90 days"]];
const STATUS = { active: "active", expired: "expired", used_up: "used up", revoked: "revoked" };

/** A short name for this browser, sent with a sign-in so the Devices list says something readable. */
export function deviceName() {
  const agent = navigator.userAgent;
  const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox" : /Chrom(e|ium)\//.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : "A browser";
  const system = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS" : /Mac OS/.test(agent) ? "macOS" : /Windows/.test(agent) ? "Windows" : /Linux/.test(agent) ? "Linux" : "";
  return system ? `${browser} on ${system}` : browser;
}

/** "Add friends": make an invite link, copy it, see and revoke the links made before. */
export function openInvites(dialog, store, toast) {
  const error = h("p.form-error", { role: "alert" });
  const list = h("ul.access-list", { "aria-label": "Links made before" });
  const made = h("div.invite-made");
  const uses = h("input", { id: "invite-uses", type: "number", min: "1", max: "1000", value: "1", required: true });
  const validity = h("select", { id: "invite-validity" }, VALIDITY.map(([seconds, label]) => h("option", { value: String(seconds), selected: seconds === 7 * DAY }, label)));
  const refresh = async () => {
    try {
      const { invites } = await store.request("list_invites");
      list.replaceChildren(...(invites.length ? invites.map((invite) => inviteRow(invite)) : [h("li.empty", {}, "No invite links yet.")]));
    } catch (failure) {
      error.textContent = describe(failure);
    }
  };
  const inviteRow = (invite) =>
    h(
      "li.access-row",
      { dataset: { code: invite.code, status: invite.status } },
      h("div.access-text", {}, h("code", {}, invite.link), h("small", {}, `${invite.uses} of ${invite.max_uses} used · ${STATUS[invite.status]} · until ${longTime(invite.expires_at)}`)),
      invite.status === "active"
        ? h("button.small.quiet.danger", {
            type: "button",
            "aria-label": `Revoke ${invite.link}`,
            onclick: () => store.request("revoke_invite", { code: invite.code }).then(refresh, (failure) => (error.textContent = describe(failure))),
          }, "Revoke")
        : null,
    );
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", {}, "Invite people"),
    h("p.hint", {}, "Whoever opens the link picks a name and joins this Boochat."),
    h("div.field", {}, h("label", { for: "invite-uses" }, "How many people"), uses),
    h("div.field", {}, h("label", { for: "invite-validity" }, "Valid for"), validity),
    h("div.actions", {}, h("button.primary", { type: "submit" }, "Create link")),
    made,
    error,
    h("h3.access-heading", {}, "Links you made"),
    list,
    h("div.actions", {}, h("button.quiet", { type: "button", onclick: () => dialog.close() }, "Close")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const { invite } = await store.request("create_invite", { max_uses: Number(uses.value), expires_in: Number(validity.value) });
      const link = h("input", { type: "text", readonly: true, value: invite.link, "aria-label": "The new link" });
      const copy = h("button.small", { type: "button" }, "Copy link");
      copy.addEventListener("click", async () => {
        link.select();
        try {
          await navigator.clipboard.writeText(invite.link);
          toast("The link is copied: send it to whoever you invite.");
        } catch {
          toast("Copy the selected link by hand (this page may not use the clipboard).");
        }
      });
      made.replaceChildren(link, copy);
      await refresh();
    } catch (failure) {
      error.textContent = describe(failure);
    }
  });
  dialog.replaceChildren(form);
  dialog.showModal();
  refresh();
}

/** "Devices": the sessions signed in as this person; sign one out, or every one. */
export function openDevices(dialog, store, currentSessionId, signedOut) {
  const error = h("p.form-error", { role: "alert" });
  const list = h("ul.access-list", { "aria-label": "Your devices" });
  const refresh = async () => {
    try {
      const { sessions } = await store.request("list_sessions");
      list.replaceChildren(...(sessions.length ? sessions.map((session) => deviceRow(session)) : [h("li.empty", {}, "No device sessions.")]));
    } catch (failure) {
      error.textContent = describe(failure);
    }
  };
  const deviceRow = (session) => {
    const here = session.id === currentSessionId;
    return h(
      "li.access-row",
      { dataset: { session: session.id } },
      h("div.access-text", {}, h("strong", {}, session.device, here ? " (this device)" : ""), h("small", {}, `Signed in ${longTime(session.created_at)} · last used ${longTime(session.last_used_at)}`)),
      h("button.small.quiet.danger", {
        type: "button",
        "aria-label": `Revoke ${session.device}${here ? " (this device)" : ""}`,
        onclick: async () => {
          if (here) return signOutHere(store.request("revoke_session", { session_id: session.id }));
          try {
            await store.request("revoke_session", { session_id: session.id });
            await refresh();
          } catch (failure) {
            error.textContent = describe(failure);
          }
        },
      }, "Revoke"),
    );
  };
  const everywhere = h("button.danger", { type: "button" }, "Sign out everywhere");
  // Revoking this device's own session closes its connection, maybe before the reply comes: the
  // page signs out either way (the server has the request; a retry with its id would act once).
  const signOutHere = (revoking) =>
    revoking.catch(() => {}).finally(() => {
      dialog.close();
      signedOut();
    });
  everywhere.addEventListener("click", () => signOutHere(store.request("revoke_sessions", {})));
  dialog.replaceChildren(
    h(
      "div",
      {},
      h("h2", {}, "Devices"),
      h("p.hint", {}, "Where you are signed in. Revoking a device signs it out at once."),
      list,
      error,
      h("div.actions", {}, everywhere, h("button.quiet", { type: "button", onclick: () => dialog.close() }, "Close")),
    ),
  );
  dialog.showModal();
  refresh();
}
