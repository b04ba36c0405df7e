/* The supervisor wallboard: live queues, calls and seats from the event WebSocket; today's
   answer rate and service level from the KPI feature's snapshots (kpi.snapshot on the stream),
   warning colours from its alerts (kpi.alert_raised / kpi.alert_cleared); a live SVG chart;
   a supervisor forces a seat's state through the ACD's seat API (with a reason, logged), and
   listens to a talking call on their own phone: monitor, whisper to the seat, or barge in
   (acd/supervision.py rings the phone linked to the supervisor's account). */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  const calls = new Map();   // call_id -> summary (masked)
  const seats = new Map();   // seat_id -> {state, since, today, ...}
  const alerts = new Map();  // "<alert>:<scope>" -> alert
  const samples = [];        // [time ms, waiting, talking] for the chart
  const STATES = ["available", "offered", "on_call", "wrap_up", "paused", "offline"];
  let kpi = null;            // the last KPI snapshot
  let targets = { answer_rate: 0.95, service_level: 0.8, longest_wait_s: 120, service_level_s: 15 };
  let canForce = false;
  let me = null;
  const supervised = new Map();  // call_id -> {mode, supervisor} from supervision.* events
  let supBusy = false;
  let pending = false;

  const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
  const alerted = (alert, scope) => alerts.has(`${alert}:${scope}`);

  function waitOf(c) {
    const start = c.waiting_since || c.entered_at;
    if (!start) return 0;
    const end = c.connected_at ? Date.parse(c.connected_at) : Date.now();
    return (end - Date.parse(start)) / 1000;
  }

  function tileClass(id, cls) { $(id).className = `tile ${cls}`; }

  function render() {
    pending = false;
    const live = [...calls.values()].filter((c) => c.state !== "ended");
    const waiting = live.filter((c) => c.state === "waiting" || c.state === "offered");
    const talking = live.filter((c) => c.state === "talking");
    const longest = waiting.reduce((m, c) => Math.max(m, waitOf(c)), 0);
    const slS = targets.service_level_s || 15;
    $("k-waiting").textContent = waiting.length;
    $("k-longest").textContent = Desk.fmtDuration(longest);
    $("k-talking").textContent = talking.length;
    const seatList = [...seats.values()].sort((a, b) => a.seat_id.localeCompare(b.seat_id));
    $("k-available").textContent = seatList.filter((s) => s.state === "available").length;
    $("k-seats-total").textContent = `/ ${seatList.filter((s) => s.state !== "offline").length}`;
    tileClass("tile-longest", alerted("longest_wait", "hotline") || longest > targets.longest_wait_s ? "bad" : longest > slS ? "warn" : "ok");
    tileClass("tile-waiting", waiting.length > 5 ? "bad" : waiting.length > 0 ? "warn" : "ok");

    // Today's figures and their targets (the KPI feature's definitions).
    const today = kpi && kpi.today ? kpi.today.kpis || {} : {};
    $("k-answer").textContent = pct(today.answer_rate);
    $("k-sl").textContent = pct(today.service_level);
    const judge = (value, alert, target) => alerted(alert, "hotline") ? "bad"
      : value === null || value === undefined ? "" : value >= target ? "ok" : "warn";
    tileClass("tile-answer", judge(today.answer_rate, "answer_rate", targets.answer_rate));
    tileClass("tile-sl", judge(today.service_level, "service_level", targets.service_level));

    renderAlerts();
    renderQueues(live);
    renderCalls(live);
    renderSeats(seatList);
    sample(waiting.length, talking.length);
    drawChart();
  }

  function schedule() { if (!pending) { pending = true; requestAnimationFrame(render); } }

  function renderAlerts() {
    const box = $("alerts"); box.replaceChildren();
    box.classList.toggle("hidden", !alerts.size);
    if (!alerts.size) return;
    box.append(Desk.el("b", { text: Desk.t("alerts") }));
    for (const a of [...alerts.values()].sort((x, y) => x.name.localeCompare(y.name))) {
      const scope = a.scope === "hotline" ? Desk.t("scope_hotline") : a.scope;
      const value = typeof a.value === "number" ? (a.alert === "longest_wait" ? Desk.fmtDuration(a.value) : pct(a.value)) : "";
      box.append(Desk.el("span", { class: "alert-chip", "data-alert": a.name,
        text: `${Desk.t("alert_" + a.alert)} · ${scope}${value ? " · " + value : ""}` }));
    }
  }

  function renderQueues(live) {
    const byQueue = new Map();
    const get = (name) => {
      if (!byQueue.has(name)) byQueue.set(name, { waiting: 0, longest: 0, talking: 0 });
      return byQueue.get(name);
    };
    for (const c of live) {
      if (!c.queue) continue;
      const q = get(c.queue);
      if (c.state === "waiting" || c.state === "offered") { q.waiting += 1; q.longest = Math.max(q.longest, waitOf(c)); }
      if (c.state === "talking") q.talking += 1;
    }
    const qk = (kpi && kpi.today && kpi.today.queue_kpis) || {};
    for (const name of Object.keys(qk)) if (name) get(name);
    const body = $("queues"); body.replaceChildren();
    if (!byQueue.size) body.append(Desk.el("tr", {}, Desk.el("td", { colspan: "6", class: "empty", text: Desk.t("no_queues") })));
    const slS = targets.service_level_s || 15;
    for (const [name, q] of [...byQueue.entries()].sort()) {
      const k = qk[name] || {};
      const cell = (value, alert, target) => Desk.el("td", { class: `num ${alerted(alert, name) ? "cell-bad" : value !== null && value !== undefined && value < target ? "cell-warn" : ""}`, text: pct(value) });
      const waitCls = alerted("longest_wait", name) || q.longest > targets.longest_wait_s ? "cell-bad" : q.longest > slS ? "cell-warn" : "";
      body.append(Desk.el("tr", { "data-queue": name },
        Desk.el("td", { text: name }), Desk.el("td", { class: "num", text: q.waiting }),
        Desk.el("td", { class: `num mono ${waitCls}`, text: Desk.fmtDuration(q.longest) }),
        Desk.el("td", { class: "num", text: q.talking }),
        cell(k.answer_rate, "answer_rate", targets.answer_rate),
        cell(k.service_level, "service_level", targets.service_level)));
    }
  }

  function renderCalls(live) {
    const body = $("calls"); body.replaceChildren();
    if (!live.length) body.append(Desk.el("tr", {}, Desk.el("td", { colspan: "7", class: "empty", text: Desk.t("no_calls") })));
    for (const c of live.slice(-8).reverse()) {
      body.append(Desk.el("tr", { "data-call": c.call_id },
        Desk.el("td", { class: "mono", text: c.caller }), Desk.el("td", { text: c.source }),
        Desk.el("td", { text: c.topic || "—" }),
        Desk.el("td", {}, Desk.el("span", { class: `badge s-${c.state}`, text: Desk.t(`state_${c.state}`) }),
          c.on_hold && c.state === "talking" ? Desk.el("span", { class: "badge s-paused held", text: Desk.t("on_hold") }) : null,
          // 疑似紧急: the caller's speech named a danger (integrations/emergency.py).
          c.emergency ? Desk.el("span", { class: "tag emg", title: (c.emergency.words || []).join("、"), text: Desk.t("emg_badge") }) : null),
        Desk.el("td", { class: "mono", text: c.seat_id || "—" }),
        Desk.el("td", { class: "num mono", text: Desk.fmtDuration(c.state === "talking" ? Desk.since(c.connected_at) : waitOf(c)) }),
        supervisionCell(c)));
    }
  }

  // --- supervising a talking call (supervisors and administrators) -----------------------
  function supervisionCell(c) {
    const cell = Desk.el("td", { class: "sup-actions", "data-sup-call": c.call_id });
    const sup = supervised.get(c.call_id);
    if (sup) {
      cell.dataset.mode = sup.mode;
      cell.append(Desk.el("span", { class: "sup-on", text: `${Desk.t("sup_" + sup.mode)} · ${sup.supervisor}` }));
    }
    if (!canForce || c.state !== "talking") return cell;
    const mine = sup && me && sup.supervisor === me.username;
    if (sup && !mine) return cell;
    for (const mode of ["monitor", "whisper", "barge"]) {
      if (sup && sup.mode === mode) continue;
      const b = Desk.el("button", { class: "btn small", type: "button", "data-sup": mode, text: Desk.t("sup_" + mode) });
      b.disabled = supBusy;
      b.addEventListener("click", () => supervise(c.call_id, mode));
      cell.append(b);
    }
    if (mine) {
      const stop = Desk.el("button", { class: "btn small danger", type: "button", "data-sup": "stop", text: Desk.t("sup_stop") });
      stop.addEventListener("click", () => supervise(c.call_id, null));
      cell.append(stop);
    }
    return cell;
  }

  async function supervise(callId, mode) {
    supBusy = true; schedule();
    if (mode && !supervised.has(callId)) Desk.toast(Desk.t("sup_ringing"));
    try {
      const path = `/api/acd/calls/${encodeURIComponent(callId)}/supervise${mode ? "" : "/stop"}`;
      const done = await Desk.api("POST", path, mode ? { mode } : {});
      if (mode) supervised.set(callId, { mode: done.mode, supervisor: done.supervisor });
      else supervised.delete(callId);
    } catch (err) {
      Desk.toast(err.status === 404 || err.status === 405 ? Desk.t("not_available") : err.message);
    } finally { supBusy = false; schedule(); }
  }

  function supervisionEvent(ev) {
    const d = ev.data || {};
    if (ev.type === "supervision.started" || ev.type === "supervision.mode_changed") {
      supervised.set(ev.call_id, { mode: d.mode, supervisor: d.supervisor });
    } else if (ev.type === "supervision.ended" || ev.type === "supervision.failed") {
      supervised.delete(ev.call_id);
    } else if (ev.type === "call.ended" || ev.type === "queue.completed") {
      supervised.delete(ev.call_id);
    }
  }

  function renderSeats(seatList) {
    const grid = $("seats");
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.seat : null;
    grid.replaceChildren();
    if (!seatList.length) grid.append(Desk.el("div", { class: "empty", text: Desk.t("no_seats") }));
    for (const s of seatList) {
      const label = Desk.t(`state_${s.state}`) + (s.state === "paused" && s.reason ? ` · ${s.reason}` : "");
      const answered = s.today ? s.today.answered : 0;
      const tile = Desk.el(canForce ? "button" : "div", {
        class: `seat s-${s.state}`, "data-seat": s.seat_id, "data-state": s.state, role: "listitem",
        title: canForce ? Desk.t("force_title") : "",
      },
      Desk.el("div", { class: "id mono", text: s.seat_id }),
      Desk.el("span", { class: `badge s-${s.state}`, text: label }),
      Desk.el("div", { class: "t mono" },
        Desk.el("span", { text: Desk.fmtDuration(Desk.since(s.since)) }),
        Desk.el("span", { class: "handled", text: `${answered} ${Desk.t("handled_short")}` })));
      if (canForce) { tile.type = "button"; tile.addEventListener("click", () => openForce(s.seat_id)); }
      grid.append(tile);
    }
    if (focused) { const again = grid.querySelector(`[data-seat="${CSS.escape(focused)}"]`); if (again) again.focus(); }
    const legend = $("legend"); legend.replaceChildren();
    for (const st of STATES.slice(0, 5)) {
      const n = seatList.filter((s) => s.state === st).length;
      legend.append(Desk.el("span", { class: `badge s-${st}`, text: `${Desk.t("state_" + st)} ${n}` }));
    }
  }

  // --- the live chart: inline SVG, no library --------------------------------------------
  function sample(w, t) {
    const now = Date.now();
    const last = samples[samples.length - 1];
    if (!last || now - last[0] >= 5000) samples.push([now, w, t]);
    else { last[1] = Math.max(last[1], w); last[2] = Math.max(last[2], t); }
    while (samples.length && samples[0][0] < now - 600000) samples.shift();
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  }

  function drawChart() {
    const chart = $("chart");
    const W = 600, H = 120, left = 26, right = 6, top = 6, bottom = 6;
    const now = Date.now();
    const max = Math.max(4, ...samples.map((s) => Math.max(s[1], s[2])));
    const x = (t) => left + (W - left - right) * (1 - (now - t) / 600000);
    const y = (v) => H - bottom - (H - top - bottom) * v / max;
    chart.replaceChildren();
    for (let i = 0; i <= 4; i++) {
      const v = max * i / 4;
      chart.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), stroke: "#dde3ea", "stroke-width": 1 }));
      const label = svg("text", { x: 2, y: y(v) + 4, fill: "#5b6878", "font-size": 11 });
      label.textContent = String(Math.round(v));
      chart.append(label);
    }
    if (!samples.length) return;
    const points = (i) => samples.map((s) => `${x(s[0]).toFixed(1)},${y(s[i]).toFixed(1)}`);
    const w = points(1);
    chart.append(svg("polygon", { points: [`${x(samples[0][0]).toFixed(1)},${y(0)}`, ...w, `${x(samples[samples.length - 1][0]).toFixed(1)},${y(0)}`].join(" "),
      fill: "rgba(198, 47, 47, .12)", stroke: "none" }));
    chart.append(svg("polyline", { id: "chart-waiting", points: w.join(" "), fill: "none", stroke: "#c62f2f", "stroke-width": 2, "data-last": samples[samples.length - 1][1] }));
    chart.append(svg("polyline", { id: "chart-talking", points: points(2).join(" "), fill: "none", stroke: "#1d6fd1", "stroke-width": 2, "data-last": samples[samples.length - 1][2] }));
  }

  // --- forcing a seat's state (supervisors and administrators) ---------------------------
  function openForce(seatId) {
    const s = seats.get(seatId);
    const dialog = $("force-dialog");
    dialog.dataset.seat = seatId;
    $("force-seat").textContent = seatId;
    $("force-now").textContent = s ? Desk.t(`state_${s.state}`) + (s.reason ? ` · ${s.reason}` : "") : "—";
    $("force-action").value = s && s.state === "paused" ? "ready" : "pause";
    $("force-note").value = "";
    syncReason();
    dialog.showModal();
    $("force-action").focus();
  }

  function syncReason() { $("force-reason").disabled = $("force-action").value !== "pause"; }

  async function applyForce() {
    const dialog = $("force-dialog");
    const seatId = dialog.dataset.seat, action = $("force-action").value;
    try {
      // A pause takes one of the pause reasons; any other forced change says why in the note.
      const reason = action === "pause" ? $("force-reason").value : $("force-note").value.trim() || Desk.t("force_default");
      await Desk.api("POST", `/api/acd/seats/${encodeURIComponent(seatId)}/${action}`, { reason });
      dialog.close();
      Desk.toast(`${Desk.t("force_done")}: ${seatId} → ${Desk.t("force_" + action)}`);
    } catch (err) {
      Desk.toast(err.status === 404 || err.status === 405 ? Desk.t("not_available") : err.message);
    }
  }

  // --- the stream -------------------------------------------------------------------------
  function ticker(ev) {
    if (ev.type === "kpi.snapshot") return;
    const list = $("ticker");
    const text = `${ev.type} ${ev.data.seat_id || ""} ${ev.data.queue || ev.data.to || ""}`.trim();
    list.prepend(Desk.el("li", {}, Desk.el("span", { class: "time", text: Desk.fmtTime(ev.ts || new Date().toISOString()) }),
      Desk.el("span", { class: "mono", text: ev.call_id && !ev.call_id.includes(":") ? ev.call_id.slice(0, 8) : "" }),
      Desk.el("span", { text })));
    while (list.children.length > 40) list.lastChild.remove();
  }

  function setAlerts(list) {
    alerts.clear();
    for (const a of list || []) alerts.set(a.name, a);
  }

  function onMessage(msg) {
    if (msg.kind === "snapshot") {
      calls.clear(); seats.clear();
      for (const c of msg.calls) calls.set(c.call_id, c);
      for (const [id, s] of Object.entries(msg.seats)) seats.set(id, s);
      if (msg.kpi) kpi = msg.kpi;
      if (msg.targets && Object.keys(msg.targets).length) { targets = { ...targets, ...msg.targets }; showTargets(); }
      setAlerts(msg.alerts);
    } else if (msg.kind === "event") {
      const ev = msg.event;
      if (msg.call) calls.set(msg.call.call_id, msg.call);
      if (msg.seat) seats.set(msg.seat.seat_id, msg.seat);
      if (ev.type === "kpi.snapshot") {
        kpi = ev.data;
        if (Array.isArray(ev.data.alerts)) {
          const names = new Set(ev.data.alerts);
          for (const name of [...alerts.keys()]) if (!names.has(name)) alerts.delete(name);
          for (const name of names) if (!alerts.has(name)) {
            const [alert, scope] = name.split(":");
            alerts.set(name, { name, alert, scope });
          }
        }
      } else if (ev.type === "kpi.alert_raised") {
        const name = `${ev.data.alert}:${ev.data.scope}`;
        alerts.set(name, { name, ...ev.data });
      } else if (ev.type === "kpi.alert_cleared") {
        alerts.delete(`${ev.data.alert}:${ev.data.scope}`);
      }
      supervisionEvent(ev);
      if (ev.type.startsWith("workorder.") || ev.type === "callback.booked") cbReload();
      ticker(ev);
      for (const [id, c] of calls) if (c.state === "ended" && Date.now() - Date.parse(c.ended_at || 0) > 60000) calls.delete(id);
    }
    schedule();
  }

  // --- callbacks to make (预约回拨与留言): supervisors assign each to a seat -----------------------
  let cbSeats = [];
  let cbTimer = null;
  function cbReload() { if (!cbTimer) cbTimer = setTimeout(() => { cbTimer = null; loadCallbackOrders(); }, 300); }

  // Month, day and time (Beijing): the year is this year's for anything on this list.
  const cbFmt = new Intl.DateTimeFormat("zh-CN", { timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false });
  const cbTime = (iso) => (iso ? cbFmt.format(new Date(iso)) : "—");

  async function loadCallbackOrders() {
    let items;
    try {
      const data = await Desk.api("GET", "/api/workorders/callbacks?scope=open");
      items = data.items || [];
      if (data.seats) cbSeats = data.seats.map((s) => s.seat_id);
    } catch (_) { return; }
    const body = $("wb-callbacks");
    body.replaceChildren();
    if (!items.length) {
      body.append(Desk.el("tr", {}, Desk.el("td", { colspan: "8", class: "empty", text: Desk.t("wb_cb_none") })));
      return;
    }
    const seatIds = [...new Set([...cbSeats, ...seats.keys()])].sort();
    for (const o of items) {
      const actions = Desk.el("td", { class: "cb-assign" });
      if (o.audio_url) {
        actions.append(Desk.el("a", { class: "btn small", target: "_blank", rel: "noopener",
          href: `${o.audio_url}?reason=${encodeURIComponent("班长分配回拨")}`, text: Desk.t("wb_cb_listen") }));
      }
      if (canForce && (o.allowed_actions || []).includes("assign")) {
        const pick = Desk.el("select", { "aria-label": Desk.t("wb_cb_seat"), class: "cb-seat" },
          ...seatIds.map((id) => Desk.el("option", { value: id, text: id })));
        if (o.seat_id) pick.value = o.seat_id;
        const go = Desk.el("button", { class: "btn small cb-assign-btn", type: "button", text: Desk.t("wb_cb_assign") });
        go.addEventListener("click", async () => {
          try {
            await Desk.api("POST", `/api/workorders/${encodeURIComponent(o.id)}/actions/assign`, { seat_id: pick.value });
            Desk.toast(`${Desk.t("wb_cb_assigned")} → ${pick.value}`);
          } catch (err) { Desk.toast(err.message); }
          loadCallbackOrders();
        });
        actions.append(pick, go);
      }
      const outcome = o.last_outcome;
      body.append(Desk.el("tr", { "data-order": o.id },
        Desk.el("td", {}, Desk.el("div", { class: "mono", text: o.number }),
          Desk.el("div", { class: "muted small", text: o.source_label })),
        Desk.el("td", { class: "mono", text: o.caller || "—" }),
        Desk.el("td", { text: o.topic }),
        Desk.el("td", { text: cbTime(o.booked_at) }),
        Desk.el("td", { class: o.warning === "overdue" ? "cell-bad" : o.warning ? "cell-warn" : "",
          title: o.warning_label || "", text: cbTime(o.due_at) }),
        Desk.el("td", { class: "mono cb-seat-now", text: o.seat_id || "—" }),
        Desk.el("td", { text: outcome ? outcome.label : "—" }),
        actions));
    }
  }

  function showTargets() {
    $("t-answer").textContent = `${Math.round(targets.answer_rate * 100)}%`;
    $("t-sl").textContent = `${Math.round(targets.service_level * 100)}%`;
    $("t-sl-s").textContent = targets.service_level_s;
    $("t-longest").textContent = Desk.fmtDuration(targets.longest_wait_s);
  }

  async function refreshOnline() {
    try {
      const data = await Desk.api("GET", "/api/desk/sessions");
      const names = [...new Set(data.sessions.map((s) => s.display_name))];
      $("online").textContent = `${Desk.t("signed_in")}: ${names.length}`;
      $("online").title = names.join("、");
    } catch (_) { /* shown again on the next refresh */ }
  }

  async function loadKpi() {
    // The first figures before the next kpi.snapshot arrives (every few seconds).
    try {
      const snap = await Desk.api("GET", "/api/kpi/live");
      if (!kpi) kpi = snap;
      schedule();
    } catch (_) { /* the KPI feature is not installed in this service */ }
  }

  async function start() {
    const mine = await Desk.loadMe();
    me = mine.user;
    canForce = ["supervisor", "administrator"].includes(me.role);
    Desk.wireTopbar();
    document.addEventListener("desk:lang", schedule);
    $("force-action").addEventListener("change", syncReason);
    $("force-cancel").addEventListener("click", () => $("force-dialog").close());
    $("force-form").addEventListener("submit", (ev) => { ev.preventDefault(); applyForce(); });
    const clock = () => { $("clock").textContent = Desk.fmtTime(new Date().toISOString()); };
    clock(); setInterval(() => { clock(); schedule(); }, 1000);
    refreshOnline(); setInterval(refreshOnline, 30000);
    showTargets();
    loadKpi();
    loadCallbackOrders(); setInterval(loadCallbackOrders, 20000);
    render();
    new LiveSocket(onMessage).connect();
  }
  start().catch((err) => console.error(err));
})();
