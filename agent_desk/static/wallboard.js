/* The supervisor wallboard: live queues, calls and seats from the event WebSocket. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const SL_SECONDS = 15;
  const calls = new Map();   // call_id -> summary (masked)
  const seats = new Map();   // seat_id -> {state, since, ...}
  const samples = [];        // [time ms, waiting] for the chart
  const STATES = ["available", "offered", "on_call", "wrap_up", "paused", "offline"];

  function waitOf(c) {
    const start = c.waiting_since || c.entered_at;
    if (!start) return 0;
    const end = c.connected_at ? Date.parse(c.connected_at) : Date.now();
    return (end - Date.parse(start)) / 1000;
  }

  function render() {
    const live = [...calls.values()].filter((c) => c.state !== "ended");
    const waiting = live.filter((c) => c.state === "waiting" || c.state === "offered");
    const talking = live.filter((c) => c.state === "talking");
    const longest = waiting.reduce((m, c) => Math.max(m, waitOf(c)), 0);
    $("k-waiting").textContent = waiting.length;
    $("k-longest").textContent = Desk.fmtDuration(longest);
    $("k-talking").textContent = talking.length;
    const seatList = [...seats.values()].sort((a, b) => a.seat_id.localeCompare(b.seat_id));
    $("k-available").textContent = seatList.filter((s) => s.state === "available").length;
    $("k-seats-total").textContent = `/ ${seatList.filter((s) => s.state !== "offline").length}`;
    $("tile-longest").className = "tile " + (longest > SL_SECONDS * 2 ? "bad" : longest > SL_SECONDS ? "warn" : "ok");
    $("tile-waiting").className = "tile " + (waiting.length > 5 ? "bad" : waiting.length > 0 ? "warn" : "ok");

    // Queues
    const byQueue = new Map();
    for (const c of live) {
      if (!c.queue) continue;
      const q = byQueue.get(c.queue) || { waiting: 0, longest: 0, talking: 0 };
      if (c.state === "waiting" || c.state === "offered") { q.waiting += 1; q.longest = Math.max(q.longest, waitOf(c)); }
      if (c.state === "talking") q.talking += 1;
      byQueue.set(c.queue, q);
    }
    const qBody = $("queues"); qBody.replaceChildren();
    if (!byQueue.size) qBody.append(Desk.el("tr", {}, Desk.el("td", { colspan: "4", class: "empty", text: Desk.t("no_queues") })));
    for (const [name, q] of [...byQueue.entries()].sort()) {
      const cls = q.longest > SL_SECONDS * 2 ? "s-waiting badge" : "";
      qBody.append(Desk.el("tr", {},
        Desk.el("td", { text: name }), Desk.el("td", { class: "num", text: q.waiting }),
        Desk.el("td", { class: "num" }, Desk.el("span", { class: cls, text: Desk.fmtDuration(q.longest) })),
        Desk.el("td", { class: "num", text: q.talking })));
    }

    // Calls
    const cBody = $("calls"); cBody.replaceChildren();
    if (!live.length) cBody.append(Desk.el("tr", {}, Desk.el("td", { colspan: "6", class: "empty", text: Desk.t("no_calls") })));
    for (const c of live.slice(-8).reverse()) {
      cBody.append(Desk.el("tr", { "data-call": c.call_id },
        Desk.el("td", { class: "mono", text: c.caller }), Desk.el("td", { text: c.source }),
        Desk.el("td", { text: c.topic || "—" }),
        Desk.el("td", {}, Desk.el("span", { class: `badge s-${c.state}`, text: Desk.t(`state_${c.state}`) })),
        Desk.el("td", { class: "mono", text: c.seat_id || "—" }),
        Desk.el("td", { class: "num mono", text: Desk.fmtDuration(c.state === "talking" ? Desk.since(c.connected_at) : waitOf(c)) })));
    }

    // Seats
    const grid = $("seats"); grid.replaceChildren();
    if (!seatList.length) grid.append(Desk.el("div", { class: "empty", text: Desk.t("no_seats") }));
    for (const s of seatList) {
      grid.append(Desk.el("div", { class: `seat s-${s.state}`, "data-seat": s.seat_id },
        Desk.el("div", { class: "id mono", text: s.seat_id }),
        Desk.el("span", { class: `badge s-${s.state}`, text: Desk.t(`state_${s.state}`) + (s.state === "paused" && s.reason ? ` · ${s.reason}` : "") }),
        Desk.el("div", { class: "t mono", text: Desk.fmtDuration(Desk.since(s.since)) })));
    }
    const legend = $("legend"); legend.replaceChildren();
    for (const st of STATES.slice(0, 5)) {
      const n = seatList.filter((s) => s.state === st).length;
      legend.append(Desk.el("span", { class: `badge s-${st}`, text: `${Desk.t("state_" + st)} ${n}` }));
    }
    drawChart(waiting.length);
  }

  function drawChart(current) {
    const now = Date.now();
    if (!samples.length || now - samples[samples.length - 1][0] >= 5000) samples.push([now, current]);
    else samples[samples.length - 1][1] = Math.max(samples[samples.length - 1][1], current);
    while (samples.length && samples[0][0] < now - 600000) samples.shift();
    const cv = $("chart"), ctx = cv.getContext("2d");
    const W = cv.width = cv.clientWidth * (window.devicePixelRatio || 1);
    const H = cv.height = cv.clientHeight * (window.devicePixelRatio || 1);
    const pad = 28 * (window.devicePixelRatio || 1);
    ctx.clearRect(0, 0, W, H);
    const max = Math.max(4, ...samples.map((s) => s[1]));
    ctx.strokeStyle = "#dde3ea"; ctx.fillStyle = "#5b6878"; ctx.lineWidth = 1;
    ctx.font = `${11 * (window.devicePixelRatio || 1)}px sans-serif`;
    for (let i = 0; i <= 4; i++) {
      const y = H - pad / 2 - (H - pad) * i / 4;
      ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(W - 8, y); ctx.stroke();
      ctx.fillText(String(Math.round(max * i / 4)), 4, y + 4);
    }
    if (!samples.length) return;
    const x = (t) => pad + (W - pad - 8) * (1 - (now - t) / 600000);
    const y = (v) => H - pad / 2 - (H - pad) * v / max;
    ctx.beginPath(); ctx.moveTo(x(samples[0][0]), y(0));
    for (const [t, v] of samples) ctx.lineTo(x(t), y(v));
    ctx.lineTo(x(samples[samples.length - 1][0]), y(0)); ctx.closePath();
    ctx.fillStyle = "rgba(11, 74, 139, .12)"; ctx.fill();
    ctx.beginPath();
    samples.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
    ctx.strokeStyle = "#0b4a8b"; ctx.lineWidth = 2 * (window.devicePixelRatio || 1); ctx.stroke();
  }

  function ticker(ev) {
    const list = $("ticker");
    const text = `${ev.type} ${ev.data.seat_id || ""} ${ev.data.queue || ""}`.trim();
    list.prepend(Desk.el("li", {}, Desk.el("span", { class: "time", text: Desk.fmtTime(ev.ts) }),
      Desk.el("span", { class: "mono", text: ev.call_id && !ev.type.startsWith("seat.") ? ev.call_id.slice(0, 8) : "" }),
      Desk.el("span", { text })));
    while (list.children.length > 40) list.lastChild.remove();
  }

  function onMessage(msg) {
    if (msg.kind === "snapshot") {
      calls.clear(); seats.clear();
      for (const c of msg.calls) calls.set(c.call_id, c);
      for (const [id, s] of Object.entries(msg.seats)) seats.set(id, s);
    } else if (msg.kind === "event") {
      if (msg.call) calls.set(msg.call.call_id, msg.call);
      if (msg.seat) seats.set(msg.seat.seat_id, msg.seat);
      ticker(msg.event);
      for (const [id, c] of calls) if (c.state === "ended" && Date.now() - Date.parse(c.ended_at || 0) > 60000) calls.delete(id);
    }
    render();
  }

  async function refreshOnline() {
    try {
      const data = await Desk.api("GET", "/api/desk/sessions");
      const names = [...new Set(data.sessions.map((s) => s.display_name))];
      $("online").textContent = `${Desk.t("signed_in")}: ${names.length}`;
      $("online").title = names.join("、");
    } catch (_) { /* shown again on the next refresh */ }
  }

  async function refreshKpi() {
    // Today's answer rate and service level: the KPI feature's live figures (kpi/http.py).
    try {
      const k = (await Desk.api("GET", "/api/kpi/live")).today.kpis;
      const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
      $("k-answer").textContent = pct(k.answer_rate);
      $("k-sl").textContent = pct(k.service_level);
      if (k.answer_rate !== null && k.answer_rate !== undefined) {
        $("tile-answer").className = "tile " + (k.answer_rate >= 0.95 ? "ok" : "bad");
      }
      if (k.service_level !== null && k.service_level !== undefined) {
        $("tile-sl").className = "tile " + (k.service_level >= 0.8 ? "ok" : "warn");
      }
    } catch (_) { /* the KPI feature is not installed in this service */ }
  }

  async function start() {
    await Desk.loadMe();
    Desk.wireTopbar();
    document.addEventListener("desk:lang", render);
    const clock = () => { $("clock").textContent = Desk.fmtTime(new Date().toISOString()); };
    clock(); setInterval(() => { clock(); render(); }, 1000);
    refreshOnline(); setInterval(refreshOnline, 30000);
    refreshKpi(); setInterval(refreshKpi, 15000);
    render();
    new LiveSocket(onMessage).connect();
  }
  start().catch((err) => console.error(err));
})();
