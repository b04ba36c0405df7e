/* Administration: users (create with a generated password, reset, lock/unlock) and the audit log.
   Auditors get the same page read-only; the server refuses their changes in any case. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let readonly = true;

  function showPassword(username, password) {
    $("pw-user").textContent = username;
    $("pw-value").textContent = password;
    $("pw-dialog").showModal();
  }

  async function act(path, confirmKey) {
    if (confirmKey && !confirm(Desk.t(confirmKey))) return;
    try {
      const data = await Desk.api("POST", path);
      if (data.password) showPassword(data.username, data.password);
      await Promise.all([loadUsers(), loadAudit()]);
    } catch (err) { Desk.toast(err.message); }
  }

  async function loadUsers() {
    const data = await Desk.api("GET", "/api/admin/users");
    const body = $("users"); body.replaceChildren();
    for (const u of data.users) {
      const status = u.locked ? ["s-waiting", "locked"] : u.must_change_password ? ["s-offered", "must_change"] : ["s-available", "active"];
      const actions = Desk.el("td", { class: "admin-only" });
      if (!readonly) {
        const name = encodeURIComponent(u.username);
        actions.append(Desk.el("div", { class: "row" },
          Desk.el("button", { class: "btn small", type: "button", text: Desk.t("reset_pw"),
            onclick: () => act(`/api/admin/users/${name}/reset-password`, "confirm_reset") }),
          u.locked
            ? Desk.el("button", { class: "btn small", type: "button", text: Desk.t("unlock"), onclick: () => act(`/api/admin/users/${name}/unlock`) })
            : Desk.el("button", { class: "btn small danger", type: "button", text: Desk.t("lock"),
                onclick: () => act(`/api/admin/users/${name}/lock`, "confirm_lock") })));
      }
      body.append(Desk.el("tr", { "data-user": u.username },
        Desk.el("td", { class: "mono", text: u.username }), Desk.el("td", { text: u.display_name }),
        Desk.el("td", { text: Desk.t("role_" + u.role) }), Desk.el("td", { class: "mono", text: u.seat_id || "—" }),
        Desk.el("td", {}, Desk.el("span", { class: `badge ${status[0]}`, text: Desk.t(status[1]) })),
        Desk.el("td", { class: "mono", text: Desk.fmtDateTime(u.last_login_at) }), actions));
    }
  }

  async function loadAudit() {
    const data = await Desk.api("GET", "/api/admin/audit?limit=100");
    const body = $("audit"); body.replaceChildren();
    for (const a of data.entries) {
      const cls = a.outcome === "ok" ? "s-available" : a.outcome === "denied" ? "s-waiting" : "s-offered";
      body.append(Desk.el("tr", {},
        Desk.el("td", { class: "mono", text: Desk.fmtDateTime(a.ts) }), Desk.el("td", { text: a.actor || "—" }),
        Desk.el("td", { class: "mono", text: a.action }), Desk.el("td", { text: a.target || "—" }),
        Desk.el("td", {}, Desk.el("span", { class: `badge ${cls}`, text: a.outcome })),
        Desk.el("td", { class: "mono", text: a.client_addr })));
    }
  }

  async function start() {
    const me = await Desk.loadMe();
    readonly = me.user.role !== "administrator";
    document.body.classList.toggle("readonly", readonly);
    Desk.wireTopbar();
    $("create-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("create-error").classList.add("hidden");
      try {
        const data = await Desk.api("POST", "/api/admin/users", {
          username: $("new-username").value.trim(), display_name: $("new-name").value.trim(),
          role: $("new-role").value, seat_id: $("new-seat").value.trim() || null,
        });
        showPassword(data.user.username, data.password);
        $("create-form").reset();
        await Promise.all([loadUsers(), loadAudit()]);
      } catch (err) {
        $("create-error").textContent = err.message; $("create-error").classList.remove("hidden");
      }
    });
    document.addEventListener("desk:lang", () => { loadUsers(); loadAudit(); });
    await Promise.all([loadUsers(), loadAudit()]);
  }
  start().catch((err) => console.error(err));
})();
