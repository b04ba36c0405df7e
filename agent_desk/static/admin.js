/* Administration: users and the audit log; seats (SIP credentials shown once, skills, region,
   disable); queues (read-only); the IVR flow (upload with FILE:LINE problems, history, roll-back);
   business hours and holiday files. Auditors get the same page read-only; the server refuses
   their changes in any case. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let readonly = true;
  let flowFileName = null;

  function showPassword(username, password) {
    $("pw-user").textContent = username;
    $("pw-value").textContent = password;
    $("pw-dialog").showModal();
  }

  /* Problems (FILE:LINE: message) under a result line; an empty list hides them. */
  function showResult(prefix, kind, text, problems) {
    const box = $(prefix + "-result"), list = $(prefix + "-problems");
    box.className = "alert " + (kind === "ok" ? "ok" : kind === "info" ? "info" : "");
    box.textContent = text;
    list.replaceChildren(...(problems || []).map((p) => Desk.el("li", { text: p })));
    list.classList.toggle("hidden", !(problems && problems.length));
  }

  function hideResult(prefix) {
    $(prefix + "-result").className = "alert hidden";
    $(prefix + "-problems").classList.add("hidden");
  }

  // --- tabs ------------------------------------------------------------------------------
  const loaders = {};
  function showTab(name) {
    for (const b of document.querySelectorAll("#tabs [data-tab]")) {
      const on = b.dataset.tab === name;
      b.classList.toggle("primary", on);
      b.setAttribute("aria-selected", on ? "true" : "false");
    }
    for (const t of document.querySelectorAll(".tab")) t.classList.toggle("hidden", t.id !== "tab-" + name);
    history.replaceState(null, "", "#" + name);
    if (loaders[name]) loaders[name]().catch((err) => Desk.toast(err.message));
  }

  // --- users and audit ----------------------------------------------------------------------
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
  loaders.users = () => Promise.all([loadUsers(), loadAudit()]);

  // --- seats ------------------------------------------------------------------------------
  const skillsText = (skills) => Object.entries(skills || {}).map(([k, v]) => `${k}:${v}`).join(",");

  function acdNote(acd) {
    return acd ? Desk.t("acd_" + acd) : "";
  }

  async function loadSeats() {
    const data = await Desk.api("GET", "/api/admin/seats");
    const body = $("seats"); body.replaceChildren();
    for (const s of data.seats) {
      const live = s.live ? s.live.state : "offline";
      const actions = Desk.el("td", { class: "admin-only" });
      if (!readonly) {
        const id = encodeURIComponent(s.seat_id);
        actions.append(Desk.el("div", { class: "row" },
          Desk.el("button", { class: "btn small", type: "button", text: Desk.t("adm_edit"), onclick: () => editSeat(s) }),
          Desk.el("button", { class: "btn small", type: "button", text: Desk.t("sip_reset"), onclick: () => resetSip(s.seat_id) }),
          s.active
            ? Desk.el("button", { class: "btn small danger", type: "button", text: Desk.t("adm_disable"),
                onclick: () => seatAction(`/api/admin/seats/${id}/disable`, "confirm_disable_seat") })
            : Desk.el("button", { class: "btn small", type: "button", text: Desk.t("adm_enable"),
                onclick: () => seatAction(`/api/admin/seats/${id}/enable`) })));
      }
      body.append(Desk.el("tr", { "data-seat": s.seat_id },
        Desk.el("td", { class: "mono", text: s.seat_id }), Desk.el("td", { text: s.display_name }),
        Desk.el("td", { class: "mono", text: skillsText(s.skills) || "—" }), Desk.el("td", { text: s.region }),
        Desk.el("td", {}, Desk.el("span", { class: `badge s-${live}`, text: Desk.t("state_" + live) })),
        Desk.el("td", {}, Desk.el("span", { class: `badge ${s.active ? "s-available" : "s-offline"}`,
          text: Desk.t(s.active ? (s.pending ? "seat_pending" : "active") : "adm_disabled") })),
        actions));
    }
  }
  loaders.seats = loadSeats;

  async function seatAction(path, confirmKey) {
    if (confirmKey && !confirm(Desk.t(confirmKey))) return;
    try {
      const data = await Desk.api("POST", path);
      Desk.toast(`${data.seat.seat_id}: ${acdNote(data.acd)}`);
      await loadSeats();
    } catch (err) { Desk.toast(err.message); }
  }

  function showSip(data) {
    $("sip-user").textContent = data.sip.user;
    $("sip-password").textContent = data.sip.password;
    $("sip-registrar").textContent = `${data.sip.registrar || "—"}  realm ${data.sip.realm}`;
    $("sip-note").textContent = data.asterisk.message;
    $("sip-dialog").showModal();
  }

  async function resetSip(seatId) {
    if (!confirm(Desk.t("confirm_sip_reset"))) return;
    try {
      showSip(await Desk.api("POST", `/api/admin/seats/${encodeURIComponent(seatId)}/reset-sip`));
    } catch (err) { Desk.toast(err.message); }
  }

  let editing = null;
  function editSeat(seat) {
    editing = seat.seat_id;
    $("edit-seat-id").textContent = seat.seat_id;
    $("edit-name").value = seat.display_name;
    $("edit-skills").value = skillsText(seat.skills);
    $("edit-region").value = seat.region;
    $("seat-edit-error").classList.add("hidden");
    $("seat-dialog").showModal();
  }

  function wireSeats() {
    $("seat-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("seat-error").classList.add("hidden");
      try {
        const data = await Desk.api("POST", "/api/admin/seats", {
          seat_id: $("seat-id").value.trim(), display_name: $("seat-name").value.trim(),
          skills: $("seat-skills").value.trim(), region: $("seat-region").value.trim() || "default",
        });
        showSip(data);
        $("seat-form").reset();
        await loadSeats();
      } catch (err) {
        $("seat-error").textContent = err.message; $("seat-error").classList.remove("hidden");
      }
    });
    // The password is shown once: clear it from the page when the dialog closes.
    $("sip-dialog").addEventListener("close", () => { $("sip-password").textContent = ""; });
    $("seat-edit-cancel").addEventListener("click", () => $("seat-dialog").close());
    $("seat-edit-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const data = await Desk.api("POST", `/api/admin/seats/${encodeURIComponent(editing)}`, {
          display_name: $("edit-name").value.trim(), skills: $("edit-skills").value.trim(),
          region: $("edit-region").value.trim(),
        });
        $("seat-dialog").close();
        Desk.toast(`${data.seat.seat_id}: ${acdNote(data.acd)}`);
        await loadSeats();
      } catch (err) {
        $("seat-edit-error").textContent = err.message; $("seat-edit-error").classList.remove("hidden");
      }
    });
  }

  // --- queues -----------------------------------------------------------------------------
  async function loadQueues() {
    const data = await Desk.api("GET", "/api/admin/queues");
    const body = $("queues"); body.replaceChildren();
    const num = (v) => (v === null || v === undefined ? "—" : String(v));
    for (const q of data.queues) {
      body.append(Desk.el("tr", { "data-queue": q.name },
        Desk.el("td", { class: "mono", text: q.origin === "partner" ? `${q.name} · ${Desk.t("q_partner")}` : q.name }),
        Desk.el("td", { class: "mono", text: `${q.skill} ≥ ${q.min_level}` }),
        Desk.el("td", { class: "mono", text: q.strategy }), Desk.el("td", { class: "mono", text: num(q.ring_timeout_s) }),
        Desk.el("td", { class: "mono", text: q.max_wait_s ? `${q.max_wait_s} → ${Desk.t("onmax_" + q.on_max_wait)}` : "—" }),
        Desk.el("td", { class: "mono", text: q.overflow ? `${q.overflow.after_s}s → ${q.overflow.to_queue}` : "—" }),
        Desk.el("td", { class: "mono", text: num(q.aging_s_per_level) }), Desk.el("td", { class: "mono", text: num(q.wrap_up_s) })));
    }
    $("queues-source").textContent = `${Desk.t("flow_file")}: ${data.source.flow_file || "—"} · ${data.source.settings}`;
    const prio = Object.entries(data.origin_priority).map(([k, v]) => `${k} → ${v}`).join(", ");
    $("queues-priority").textContent = `${Desk.t("origin_priority")}: ${prio || "—"}`;
  }
  loaders.queues = loadQueues;

  // --- IVR flow ---------------------------------------------------------------------------
  function historyRows(tbody, entries, onView, onRollback, withFlowId) {
    tbody.replaceChildren();
    for (const h of [...entries].reverse()) {
      const actions = Desk.el("td", {}, Desk.el("div", { class: "row" },
        Desk.el("button", { class: "btn small", type: "button", text: Desk.t("adm_view"), onclick: () => onView(h.version) }),
        readonly ? null : Desk.el("button", { class: "btn small warn", type: "button", text: Desk.t("adm_rollback"),
          onclick: () => onRollback(h.version) })));
      const cells = [Desk.el("td", { class: "mono", text: "v" + h.version }), Desk.el("td", { class: "mono", text: Desk.fmtDateTime(h.saved_at) }),
        Desk.el("td", { text: h.actor || "—" })];
      if (withFlowId) cells.push(Desk.el("td", { class: "mono", text: h.flow_id || "—" }));
      cells.push(Desk.el("td", { text: h.note || "" }), actions);
      tbody.append(Desk.el("tr", { "data-version": h.version }, ...cells));
    }
  }

  async function loadFlow() {
    const data = await Desk.api("GET", "/api/admin/flow");
    $("flow-live").textContent = `${data.live.flow_id} · ${data.live.nodes} ${Desk.t("adm_nodes")}`;
    $("flow-live").dataset.flowId = data.live.flow_id;
    $("flow-path").textContent = `${Desk.t("flow_file")}: ${data.path}`;
    $("flow-text").value = data.text;
    flowFileName = null;
    historyRows($("flow-history"), data.history, async (v) => {
      const ver = await Desk.api("GET", `/api/admin/flow/versions/${v}`);
      $("flow-text").value = ver.text; flowFileName = `flow-v${v}.yaml`;
      showResult("flow", "info", `${Desk.t("viewing_version")} v${v}`, []);
    }, async (v) => {
      if (!confirm(Desk.t("confirm_rollback"))) return;
      try {
        const res = await Desk.api("POST", "/api/admin/flow/rollback", { version: v });
        await loadFlow();
        showResult("flow", "ok", `${Desk.t("flow_saved")} v${res.version} · ${res.live.flow_id}`, []);
      } catch (err) { showResult("flow", "error", err.message, []); }
    }, true);
  }
  loaders.flow = loadFlow;

  async function sendFlow(path) {
    const body = { text: $("flow-text").value, filename: flowFileName || "flow.yaml" };
    try {
      const res = await Desk.api("POST", path, body);
      if (path.endsWith("/validate")) {
        if (res.ok) showResult("flow", "ok", `${Desk.t("flow_valid")} · ${res.flow_id}`, res.warnings);
        else showResult("flow", "error", Desk.t("flow_invalid"), res.problems);
        return;
      }
      await loadFlow();
      const restart = res.restart_needed ? ` · ${Desk.t("flow_restart")} (${res.queues_changed.join(", ")})` : "";
      showResult("flow", "ok", `${Desk.t("flow_saved")} v${res.version} · ${res.live.flow_id}${restart}`, res.live.warnings);
    } catch (err) {
      const problems = (err.data && err.data.problems) || [];
      showResult("flow", "error", err.message, problems);
    }
  }

  function wireFlow() {
    $("flow-file").addEventListener("change", async () => {
      const file = $("flow-file").files[0];
      if (!file) return;
      $("flow-text").value = await file.text();
      flowFileName = file.name;
      hideResult("flow");
    });
    $("flow-validate").addEventListener("click", () => sendFlow("/api/admin/flow/validate"));
    $("flow-save").addEventListener("click", () => sendFlow("/api/admin/flow"));
  }

  // --- business hours and holidays --------------------------------------------------------------
  async function loadHours() {
    const data = await Desk.api("GET", "/api/admin/calendar");
    const body = $("hours"); body.replaceChildren();
    if (data.hours) {
      for (const [day, spans] of Object.entries(data.hours.weekly)) {
        body.append(Desk.el("tr", { "data-day": day }, Desk.el("th", { text: Desk.t("day_" + day) }),
          Desk.el("td", { class: "mono", text: spans.length ? spans.join(", ") : Desk.t("adm_closed") })));
      }
      if (data.hours.makeup_hours) {
        body.append(Desk.el("tr", {}, Desk.el("th", { text: Desk.t("makeup_hours") }),
          Desk.el("td", { class: "mono", text: data.hours.makeup_hours.join(", ") })));
      }
      $("hours-open").textContent = `${data.hours.tz} · ${Desk.t(data.hours.open_now ? "open_now" : "closed_now")}`;
    } else {
      $("hours-open").textContent = Desk.t("always_open");
    }
    const hol = $("holidays"); hol.replaceChildren();
    for (const f of data.holiday_files) {
      for (const kind of ["holidays", "workdays"]) {
        for (const e of f[kind]) {
          hol.append(Desk.el("tr", {}, Desk.el("td", { class: "mono", text: f.name }),
            Desk.el("td", { text: Desk.t("hol_" + kind) }), Desk.el("td", { class: "mono", text: e.dates }),
            Desk.el("td", { text: e.name || "" })));
        }
      }
    }
    if (!$("hol-name").value && data.holiday_files.length) {
      $("hol-name").value = data.holiday_files[data.holiday_files.length - 1].name;
      await loadHolidayFile();
    }
  }
  loaders.hours = loadHours;

  async function loadHolidayFile() {
    const name = $("hol-name").value.trim();
    if (!name) return;
    try {
      const data = await Desk.api("GET", `/api/admin/holidays/${encodeURIComponent(name)}`);
      $("hol-text").value = data.text;
      hideResult("hol");
      if (!data.exists) showResult("hol", "info", Desk.t("hol_new"), []);
      historyRows($("hol-history"), data.history, async (v) => {
        const hist = data.history.find((h) => h.version === v);
        showResult("hol", "info", `${Desk.t("viewing_version")} v${v} (${hist ? hist.sha256.slice(0, 12) : ""})`, []);
      }, async (v) => {
        if (!confirm(Desk.t("confirm_rollback"))) return;
        try {
          const res = await Desk.api("POST", `/api/admin/holidays/${encodeURIComponent(name)}/rollback`, { version: v });
          await loadHours(); await loadHolidayFile();
          showResult("hol", "ok", `${Desk.t("flow_saved")} v${res.version}`, []);
        } catch (err) { showResult("hol", "error", err.message, (err.data && err.data.problems) || []); }
      }, false);
    } catch (err) { showResult("hol", "error", err.message, []); }
  }

  function wireHolidays() {
    $("hol-load").addEventListener("click", loadHolidayFile);
    $("hol-save").addEventListener("click", async () => {
      const name = $("hol-name").value.trim();
      try {
        const res = await Desk.api("POST", `/api/admin/holidays/${encodeURIComponent(name)}`, { text: $("hol-text").value });
        await loadHours(); await loadHolidayFile();
        showResult("hol", "ok", `${Desk.t("flow_saved")} ${res.name} v${res.version}`, []);
      } catch (err) { showResult("hol", "error", err.message, (err.data && err.data.problems) || []); }
    });
  }

  /* Desk.api keeps only the message; the admin API puts FILE:LINE problems beside it. */
  function keepErrorDetails() {
    const api = Desk.api.bind(Desk);
    Desk.api = async (method, path, body) => {
      if (!path.startsWith("/api/admin/flow") && !path.startsWith("/api/admin/holidays")) return api(method, path, body);
      const headers = { "Accept": "application/json", "Content-Type": "application/json" };
      if (method !== "GET" && Desk.csrf) headers["X-CSRF-Token"] = Desk.csrf;
      const resp = await fetch(path, { method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body) });
      let data = null;
      try { data = await resp.json(); } catch (_) { data = null; }
      if (resp.status === 401) { location.assign("/"); throw new Error("unauthenticated"); }
      if (!resp.ok) {
        const err = new Error((data && data.error && data.error.message) || resp.statusText);
        err.status = resp.status; err.code = data && data.error && data.error.code;
        err.data = data && data.error;
        throw err;
      }
      return data;
    };
  }

  async function start() {
    keepErrorDetails();
    const me = await Desk.loadMe();
    readonly = me.user.role !== "administrator";
    document.body.classList.toggle("readonly", readonly);
    $("flow-text").readOnly = readonly;
    $("hol-text").readOnly = readonly;
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
    wireSeats(); wireFlow(); wireHolidays();
    for (const b of document.querySelectorAll("#tabs [data-tab]")) b.addEventListener("click", () => showTab(b.dataset.tab));
    document.addEventListener("desk:lang", () => {
      const current = (location.hash || "#users").slice(1);
      // The flow and holiday editors keep what the administrator is typing.
      if (["users", "seats", "queues"].includes(current)) loaders[current]().catch(() => {});
    });
    const first = (location.hash || "#users").slice(1);
    showTab(loaders[first] ? first : "users");
  }
  start().catch((err) => console.error(err));
})();
