/* The seat lawyer's desk: my state, the screen pop of my call, the work order form.
   Live data comes from the event WebSocket (only my seat's and my calls' events reach me). */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  // Seat and call commands: the ACD's HTTP API (acd/api.py). One place to adjust the paths.
  const seatPath = (seat, action) => `/api/acd/seats/${encodeURIComponent(seat)}/${action}`;
  const SEAT_API = {
    login: (seat) => ["POST", seatPath(seat, "login"), {}],
    ready: (seat) => ["POST", seatPath(seat, "ready"), {}],
    pause: (seat, reason) => ["POST", seatPath(seat, "pause"), { reason }],
    wrapup: (seat) => ["POST", seatPath(seat, "wrapup-done"), {}],
    logout: (seat) => ["POST", seatPath(seat, "logout"), {}],
    call: (seat, action) => ["POST", `/api/acd/seats/${encodeURIComponent(seat)}/call/${action}`, {}],
    workorder: (body) => ["POST", "/api/workorders", body],
  };
  const WRAP_UP_DEFAULT_S = 30;
  const state = { seat: null, seatState: "offline", since: null, call: null, wrapUntil: null,
    answered: new Set(), orders: 0 };

  async function command([method, path, body]) {
    try {
      await Desk.api(method, path, body);
      return true;
    } catch (err) {
      Desk.toast(err.status === 404 || err.status === 405 ? Desk.t("not_available") : err.message);
      return false;
    }
  }

  function renderState() {
    const badge = $("state-badge");
    badge.className = `badge s-${state.seatState}`;
    badge.dataset.i18n = `state_${state.seatState}`;
    badge.textContent = Desk.t(badge.dataset.i18n);
    badge.dataset.state = state.seatState;
    $("wrapup").classList.toggle("hidden", state.seatState !== "wrap_up");
    $("btn-wrapup").disabled = state.seatState !== "wrap_up";
    $("btn-ready").disabled = ["available", "on_call", "offline"].includes(state.seatState);
    const inout = $("btn-seat-out");
    inout.dataset.i18n = state.seatState === "offline" ? "btn_signin_seat" : "btn_signout_seat";
    inout.textContent = Desk.t(inout.dataset.i18n);
    inout.className = state.seatState === "offline" ? "btn primary" : "btn danger";
  }

  function renderCall() {
    const c = state.call;
    $("pop-empty").classList.toggle("hidden", !!c);
    $("pop").classList.toggle("hidden", !c);
    $("pop-state").classList.toggle("hidden", !c);
    if (!c) return;
    $("pop").dataset.callId = c.call_id;
    $("pop-caller").textContent = c.caller;
    $("pop-state").className = `badge right s-${c.state}`;
    $("pop-state").textContent = Desk.t(`state_${c.state}`);
    $("pop-source").textContent = c.source + (c.dialled && c.dialled !== c.source ? ` (${c.dialled})` : "");
    $("pop-topic").textContent = c.topic || "—";
    $("pop-queue").textContent = c.queue || "—";
    $("pop-entered").textContent = Desk.fmtTime(c.entered_at);
    const tags = $("pop-tags"); tags.replaceChildren();
    if (c.is_repeat) tags.append(Desk.el("span", { class: "tag", text: Desk.t("repeat") }));
    if (c.special_group) tags.append(Desk.el("span", { class: "tag hot", text: Desk.t("special") }));
    if (c.source !== "12348") tags.append(Desk.el("span", { class: "tag hot", text: c.source }));
    const path = $("pop-path"); path.replaceChildren();
    (c.ivr_path || []).forEach((step, i) => {
      if (i) path.append(Desk.el("span", { class: "arrow", text: "›" }));
      path.append(Desk.el("span", { class: "step", text: `${step.node}: ${step.choice}` }));
    });
    if (!(c.ivr_path || []).length) path.append(Desk.el("span", { class: "muted", text: "—" }));
    if (c.topic && !$("wo-topic").value) $("wo-topic").value = c.topic;
    tick();
  }

  function tick() {
    const c = state.call;
    if (c) {
      const start = c.waiting_since || c.entered_at;
      const end = c.connected_at ? Date.parse(c.connected_at) : Date.now();
      $("pop-wait").textContent = start ? Desk.fmtDuration((end - Date.parse(start)) / 1000) : "—";
    }
    if (state.seatState === "wrap_up" && state.wrapUntil) {
      $("wrapup-left").textContent = Desk.fmtDuration((state.wrapUntil - Date.now()) / 1000);
    }
  }

  function applySeat(seat) {
    if (!seat || seat.seat_id !== state.seat) return;
    const before = state.seatState;
    state.seatState = seat.state || "offline";
    state.since = seat.since;
    if (state.seatState === "wrap_up" && before !== "wrap_up") {
      state.wrapUntil = Date.now() + (seat.wrap_up_s || WRAP_UP_DEFAULT_S) * 1000;
    }
    renderState();
  }

  function applyCall(call) {
    if (!call) return;
    if (call.seat_id && call.seat_id !== state.seat && state.call && state.call.call_id === call.call_id) {
      state.call = null;  // went to another seat (no answer, transfer)
    } else if (!state.call || state.call.call_id === call.call_id || call.state !== "ended") {
      state.call = call;
    }
    if (call.state === "talking" && call.seat_id === state.seat) state.answered.add(call.call_id);
    $("f-answered").textContent = state.answered.size;
    renderCall();
  }

  function onMessage(msg) {
    if (msg.kind === "snapshot") {
      applySeat(msg.seats[state.seat]);
      const mine = msg.calls.filter((c) => c.state !== "ended");
      state.call = mine.length ? mine[mine.length - 1] : state.call;
      renderCall();
    } else if (msg.kind === "event") {
      if (msg.seat) applySeat(msg.seat);
      if (msg.call) applyCall(msg.call);
      if (msg.event.type.startsWith("transcript.") && msg.event.data.text) {
        const box = $("transcript");
        if (box.querySelector(".muted")) box.replaceChildren();
        box.append(Desk.el("div", { text: `${msg.event.data.speaker || ""} ${msg.event.data.text}` }));
        box.scrollTop = box.scrollHeight;
      }
    }
  }

  async function start() {
    const me = await Desk.loadMe();
    Desk.wireTopbar();
    state.seat = me.user.seat_id;
    $("seat-id").textContent = state.seat || "—";
    renderState(); renderCall();
    $("btn-ready").addEventListener("click", () => command(SEAT_API.ready(state.seat)));
    $("btn-pause").addEventListener("click", () => command(SEAT_API.pause(state.seat, $("pause-reason").value)));
    $("btn-wrapup").addEventListener("click", () => command(SEAT_API.wrapup(state.seat)));
    $("btn-seat-out").addEventListener("click", () => command(
      state.seatState === "offline" ? SEAT_API.login(state.seat) : SEAT_API.logout(state.seat)));
    document.querySelectorAll("[data-action]").forEach((b) =>
      b.addEventListener("click", () => command(SEAT_API.call(state.seat, b.dataset.action))));
    $("wo-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const ok = await command(SEAT_API.workorder({
        call_id: state.call && state.call.call_id, type: $("wo-type").value, topic: $("wo-topic").value,
        summary: $("wo-summary").value, reply: $("wo-reply").value, dispatch_to: $("wo-dispatch").value,
      }));
      if (ok) { state.orders += 1; $("f-orders").textContent = state.orders; Desk.toast(Desk.t("done")); }
    });
    document.addEventListener("keydown", (ev) => {
      if (!ev.altKey) return;
      const key = ev.key.toLowerCase();
      if (key === "r") { ev.preventDefault(); $("btn-ready").click(); }
      if (key === "p") { ev.preventDefault(); $("btn-pause").click(); }
      if (key === "w") { ev.preventDefault(); $("btn-wrapup").click(); }
    });
    document.addEventListener("desk:lang", () => { renderState(); renderCall(); });
    setInterval(tick, 1000);
    new LiveSocket(onMessage).connect();
  }
  start().catch((err) => console.error(err));
})();
