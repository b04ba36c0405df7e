/* The seat lawyer's desk: my state (the ACD's seat API), the screen pop of my call with its
   controls (hold / resume, transfer blind or after a consultation, hang up: the ACD's call API),
   the live transcript, the work order of the call (the work-order API), the callbacks waiting in
   my queues, the party archive, my figures. Live data comes from the event WebSocket (only my
   seat's and my calls' events reach me). */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  // The ACD's seat API (acd/api.py): a seat lawyer may change only their own seat.
  const seatPath = (seat, action) => `/api/acd/seats/${enc(seat)}/${action}`;
  const WRAP_UP_DEFAULT_S = 30;  // only when neither the event nor the ACD config says
  const ORDER_POLL_MS = [300, 1000, 2000, 3500, 6000, 10000];  // after the call connects
  const ORDER_REFRESH_MS = [2000, 6000, 15000];  // after it ends: transcript, summary land
  const FIELDS = ["topic", "summary", "details"];

  const state = {
    seat: null, seatState: "offline", since: null, wrapUntil: null,
    call: null,            // the call summary on the screen pop
    order: null,           // the work order of that call
    dirty: new Set(),      // form fields the lawyer edited (never overwritten by a refresh)
    timers: [],            // pending order polls
    archiveFor: null,      // the call whose archive is shown
    submitted: 0,
    onHold: false,         // my caller hears music on hold
    consult: null,         // {to, state} while I consult a transfer target
    consultPoll: null,
    // Calls whose emergency banner the lawyer dismissed or acted on (kept over a reload).
    emgDone: new Set(JSON.parse(sessionStorage.getItem("desk.emgDone") || "[]")),
  };
  const callPath = (id, action) => `/api/acd/calls/${enc(id)}${action ? "/" + action : ""}`;

  function toastError(err) {
    Desk.toast(err.status === 404 || err.status === 405 ? Desk.t("not_available") : err.message);
  }

  async function seatCommand(action, body) {
    if (!state.seat) return false;
    try {
      const seat = await Desk.api("POST", seatPath(state.seat, action), body || {});
      // The event follows over the socket; the answer makes the buttons right at once.
      if (seat && seat.state && seat.state !== state.seatState) {
        applySeat({ seat_id: state.seat, state: seat.state, reason: seat.reason,
          since: new Date().toISOString() });
      }
      return true;
    } catch (err) { toastError(err); return false; }
  }

  // --- my state ---------------------------------------------------------------------------
  function renderState() {
    const st = state.seatState;
    const badge = $("state-badge");
    badge.className = `badge s-${st}`;
    badge.dataset.state = st;
    badge.textContent = Desk.t(`state_${st}`) + (st === "paused" && state.reason ? ` · ${state.reason}` : "");
    $("wrapup").classList.toggle("hidden", st !== "wrap_up");
    $("btn-wrapup").disabled = st !== "wrap_up";
    $("btn-ready").disabled = !["paused", "wrap_up"].includes(st);
    $("btn-pause").disabled = st === "offline";
    const inout = $("btn-seat-out");
    inout.dataset.i18n = st === "offline" ? "btn_signin_seat" : "btn_signout_seat";
    inout.textContent = Desk.t(inout.dataset.i18n);
    inout.className = st === "offline" ? "btn primary" : "btn danger";
    inout.disabled = st === "on_call";
    tick();
  }

  function applySeat(seat) {
    if (!seat || seat.seat_id !== state.seat) return;
    const before = state.seatState;
    state.seatState = seat.state || "offline";
    state.reason = seat.reason;
    state.since = seat.since || state.since;
    if (state.seatState === "wrap_up") {
      if (seat.wrap_up_until) state.wrapUntil = Date.parse(seat.wrap_up_until);
      else if (before !== "wrap_up" || !state.wrapUntil) {
        state.wrapUntil = Date.now() + (seat.wrap_up_s || WRAP_UP_DEFAULT_S) * 1000;
      }
    } else state.wrapUntil = null;
    if (seat.today) renderFigures(seat.today);
    renderState();
  }

  function renderFigures(f) {
    $("f-answered").textContent = f.answered;
    $("f-aht").textContent = f.aht_s === null || f.aht_s === undefined ? "—" : Desk.fmtDuration(f.aht_s);
    $("f-sat").textContent = f.satisfaction === null || f.satisfaction === undefined ? "—" : `${Math.round(f.satisfaction * 100)}%`;
    $("f-rated").textContent = f.rated ? `(${f.rated} ${Desk.t("f_rated")})` : "";
  }

  // --- the screen pop ------------------------------------------------------------------------
  const ATTACHED_LABELS = {
    zh: { partner: "转入热线", partner_name: "转入单位", case_id: "对方工单号", summary: "摘要", original_caller: "原来电号码" },
    en: { partner: "from line", partner_name: "from", case_id: "their case", summary: "summary", original_caller: "original caller" },
  };
  function sourceText(c) {
    const key = `origin_${c.source}`;
    const label = Desk.t(key) === key ? c.source : Desk.t(key);
    return label + (c.dialled && c.dialled !== c.source ? ` (${c.dialled})` : "");
  }

  function renderCall() {
    const c = state.call;
    $("pop-empty").classList.toggle("hidden", !!c);
    $("pop").classList.toggle("hidden", !c);
    $("pop-state").classList.toggle("hidden", !c);
    if (!c) { $("pop").dataset.callId = ""; renderOrder(); return; }
    $("pop-caller").textContent = c.caller;
    $("pop-state").className = `badge right s-${c.state}`;
    $("pop-state").textContent = Desk.t(`state_${c.state}`);
    $("pop-source").textContent = sourceText(c);
    $("pop-topic").textContent = c.topic || "—";
    $("pop-queue").textContent = c.queue || "—";
    $("pop-entered").textContent = Desk.fmtTime(c.entered_at);
    const att = Object.entries(c.attached || {});
    // A partner line's transferred call (110/12345: integrations/trunks.py) names its fields.
    const label = (k) => (ATTACHED_LABELS[Desk.lang] || ATTACHED_LABELS.zh)[k] || k;
    $("pop-attached").textContent = att.length ? att.map(([k, v]) => `${label(k)}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join("；") : "—";
    const tags = $("pop-tags"); tags.replaceChildren();
    if (c.is_repeat) tags.append(Desk.el("span", { class: "tag", text: Desk.t("repeat") }));
    if (c.special_group) tags.append(Desk.el("span", { class: "tag hot", text: Desk.t("special") }));
    if (c.source && c.source !== "12348") tags.append(Desk.el("span", { class: "tag hot", text: c.source }));
    if (c.emergency) tags.append(Desk.el("span", { class: "tag emg", text: Desk.t("emg_badge") }));
    const path = $("pop-path"); path.replaceChildren();
    (c.ivr_path || []).forEach((step, i) => {
      if (i) path.append(Desk.el("span", { class: "arrow", text: "›" }));
      path.append(Desk.el("span", { class: "step", title: step.target ? `→ ${step.target}` : "", text: `${step.node}: ${step.choice}` }));
    });
    if (!(c.ivr_path || []).length) path.append(Desk.el("span", { class: "muted", text: "—" }));
    renderControls();
    renderEmergency();
    // Set last: the test and the latency probe wait for this attribute.
    $("pop").dataset.callId = c.call_id;
    renderOrder();
    tick();
  }

  // --- 疑似紧急情况: the caller said an emergency word (integrations/emergency.py) ------------
  function renderEmergency() {
    const c = state.call;
    const e = c && c.emergency;
    const show = !!e && c.state !== "ended" && !state.emgDone.has(c.call_id);
    $("emergency").classList.toggle("hidden", !show);
    if (!show) return;
    const partner = e.partner || "110";
    $("emg-said").textContent = e.text ? `“${e.text}”` : "…";
    $("emg-words").textContent = (e.words || []).join("、");
    const go = $("emg-transfer");
    go.textContent = Desk.t("emg_transfer") + (Desk.lang === "en" ? " " : "") + partner;
    go.dataset.partner = partner;
    go.disabled = !talking();
  }

  function emergencyDone(callId) {
    state.emgDone.add(callId);
    sessionStorage.setItem("desk.emgDone", JSON.stringify([...state.emgDone].slice(-50)));
    renderEmergency();
  }

  async function emergencyTransfer() {
    const c = state.call;
    if (!c || !c.emergency) return;
    const partner = $("emg-transfer").dataset.partner || "110";
    $("emg-transfer").disabled = true;
    // Blind, through the partner's trunk: the ACD adds our work order number and a summary.
    const done = await callCommand("transfer", { to: `number:${partner}`, mode: "blind" });
    if (!done) { renderEmergency(); return; }
    state.onHold = false;
    Desk.toast(`${Desk.t("emg_done")} → ${partner}`);
    emergencyDone(c.call_id);
    renderControls();
  }

  // --- call controls: hold, transfer, consultation, hang up (acd/api.py) ------------------
  function talking() { return !!state.call && state.call.state === "talking" && state.call.seat_id === state.seat; }

  function renderControls() {
    const live = talking(), consulting = !!state.consult;
    $("btn-hold").disabled = !live || state.onHold || consulting;
    $("btn-resume").disabled = !live || !state.onHold || consulting;
    $("btn-transfer").disabled = !live || consulting;
    $("btn-hangup").disabled = !live;
    $("xfer-consult").disabled = consulting;
    if (!live) $("xfer").classList.add("hidden");
    const note = $("call-note");
    note.dataset.i18n = !live ? "not_connected" : state.onHold ? "on_hold" : "state_talking";
    note.textContent = Desk.t(note.dataset.i18n);
    note.dataset.hold = state.onHold ? "1" : "";
    document.querySelector(".pop-card").classList.toggle("on-hold", live && state.onHold);
    $("consult-bar").classList.toggle("hidden", !(live && consulting));
    if (consulting) {
      const answered = state.consult.state === "answered";
      $("consult-text").textContent = `${Desk.t(answered ? "consult_answered" : "consult_ringing")} ${state.consult.to || ""}`;
      $("consult-bar").dataset.state = state.consult.state;
      $("consult-complete").disabled = !answered;
    }
  }

  function setConsult(consult) {
    state.consult = consult;
    if (state.consultPoll) { clearInterval(state.consultPoll); state.consultPoll = null; }
    if (consult && consult.state !== "answered") {
      // The target's answer is not a call event of mine: ask the ACD until it is on the line.
      const callId = state.call && state.call.call_id;
      state.consultPoll = setInterval(async () => {
        if (!state.call || state.call.call_id !== callId || !state.consult) { setConsult(state.consult); return; }
        try {
          const view = await Desk.api("GET", callPath(callId));
          if (!state.consult) return;
          if (!view.consult) setConsult(null);
          else if (view.consult.state !== state.consult.state) setConsult({ ...state.consult, state: view.consult.state });
          renderControls();
        } catch (_) { /* the next tick asks again */ }
      }, 700);
    }
  }

  async function callCommand(action, body) {
    if (!state.call) return null;
    try {
      return await Desk.api("POST", callPath(state.call.call_id, action), body || {});
    } catch (err) { toastError(err); return null; }
  }

  async function hold(on) {
    const done = await callCommand(on ? "hold" : "resume");
    if (done) { state.onHold = !!done.on_hold; renderControls(); Desk.toast(Desk.t(on ? "held" : "resumed")); }
  }

  function transferTarget() {
    const to = $("xfer-to").value.trim();
    if (!to) { $("xfer-to").focus(); return null; }
    return `${$("xfer-kind").value}:${to}`;
  }

  async function transfer(mode) {
    const to = transferTarget();
    if (!to) return;
    const done = await callCommand("transfer", { to, mode });
    if (!done) return;
    $("xfer").classList.add("hidden");
    state.onHold = false;
    if (mode === "consult") setConsult({ to: $("xfer-to").value.trim(), state: done.status === "ringing" ? "ringing" : "answered" });
    else Desk.toast(`${Desk.t("xfer_done")} → ${to}`);
    renderControls();
  }

  async function consultEnd(action) {
    const done = await callCommand(`transfer/${action}`);
    if (!done) return;
    setConsult(null);
    Desk.toast(Desk.t(action === "complete" ? "xfer_done" : "resumed"));
    renderControls();
  }

  async function loadQueues() {
    try {
      const queues = await Desk.api("GET", "/api/acd/queues");
      $("xfer-queues").replaceChildren(...queues.map((q) => Desk.el("option", { value: q.name })));
    } catch (_) { /* typed by hand */ }
  }

  function callEvent(ev) {
    if (!state.call || ev.call_id !== state.call.call_id) return;
    if (ev.type === "call.held") state.onHold = true;
    else if (ev.type === "call.resumed") state.onHold = false;
    else if (ev.type === "transfer.consult_started") { state.onHold = false; if (!state.consult) setConsult({ to: ev.data.to, state: "ringing" }); }
    else if (ev.type === "transfer.consult_ended") setConsult(null);
    else return;
    renderControls();
  }

  // --- the callback list (回拨列表) ----------------------------------------------------------
  // My callback requests and voice messages (work orders held at my seat, with 回拨 / 完成),
  // the ones I may claim from my skills' pool (认领), then the callers the ACD keeps a place
  // for in my queues. Numbers are masked by the server; the clear number never reaches here.
  let cbPoll = null;
  let cbLoading = false;

  function cbItem(o, pool) {
    const due = Desk.el("span", { class: `muted small ${o.warning ? "warn-" + o.warning : ""}`,
      title: o.warning_label || "" }, `${Desk.t("cb_due_at")} ${Desk.fmtDateTime(o.due_at)}`);
    const li = Desk.el("li", { class: "cb-order", "data-order": o.id, "data-state": o.state },
      Desk.el("div", { class: "row" },
        Desk.el("span", { class: "badge", text: o.source_label }), " ",
        Desk.el("span", { class: "mono cb-caller", text: o.caller || "—" }), " ",
        Desk.el("span", { text: o.topic }), " ",
        Desk.el("span", { class: "muted small mono", text: o.number })),
      Desk.el("div", { class: "row small" },
        Desk.el("span", { class: "muted", text: `${Desk.t("cb_booked")} ${Desk.fmtDateTime(o.booked_at)}` }), " ", due,
        o.warning_label ? Desk.el("span", { class: "badge warn", text: o.warning_label }) : null));
    if (o.audio_url) {
      li.append(Desk.el("audio", { controls: "", preload: "none", class: "cb-audio",
        src: `${o.audio_url}?reason=${encodeURIComponent("回拨留言")}` }));
    }
    const row = Desk.el("div", { class: "row cb-actions" });
    const outcome = o.last_outcome;
    if (outcome) {
      row.append(Desk.el("span", { class: `badge cb-outcome o-${outcome.outcome}`, "data-outcome": outcome.outcome,
        text: Desk.t(`cbo_${outcome.outcome}`) !== `cbo_${outcome.outcome}` ? Desk.t(`cbo_${outcome.outcome}`) : outcome.label }));
    }
    row.append(Desk.el("span", { class: "spacer" }));
    const acts = o.allowed_actions || [];
    if (pool && acts.includes("assign")) {
      row.append(Desk.el("button", { class: "btn cb-claim", type: "button", text: Desk.t("cb_claim"),
        onclick: () => cbAct(o, "assign") }));
    }
    if (!pool && acts.includes("callback")) {
      const busy = outcome && outcome.outcome === "dialing";
      const b = Desk.el("button", { class: "btn primary cb-call", type: "button",
        text: outcome && !busy ? Desk.t("cb_retry") : Desk.t("cb_call"), onclick: () => cbAct(o, "callback") });
      b.disabled = !!busy;
      row.append(b);
    }
    if (!pool && acts.includes("resolve")) {
      row.append(Desk.el("button", { class: "btn cb-done", type: "button", text: Desk.t("cb_done"),
        onclick: () => cbAct(o, "resolve", { note: Desk.t("cb_done_note") }) }));
    }
    li.append(row);
    return li;
  }

  async function cbAct(o, action, body = {}) {
    try {
      await Desk.api("POST", `/api/workorders/${encodeURIComponent(o.id)}/actions/${action}`, body);
      Desk.toast(Desk.t(`cb_toast_${action}`));
    } catch (err) {
      Desk.toast(err.code === "already_assigned" ? Desk.t("cb_taken") : err.message);
    }
    loadCallbacks();
  }

  let cbAgain = false;
  async function loadCallbacks() {
    // One load at a time; a change announced meanwhile is loaded right after (never dropped).
    if (cbLoading) { cbAgain = true; return; }
    cbLoading = true;
    try {
      do { cbAgain = false; await renderCallbacks(); } while (cbAgain);
    } finally { cbLoading = false; }
  }

  async function renderCallbacks() {
    const list = $("callbacks");
    let kept = [], mine = [], pool = [];
    const [a, b, c] = await Promise.allSettled([
      Desk.api("GET", "/api/workorders/callbacks?scope=mine"),
      Desk.api("GET", "/api/workorders/callbacks?scope=pool"),
      Desk.api("GET", "/api/acd/callbacks"),
    ]);
    if (a.status === "fulfilled") mine = a.value.items || [];
    if (b.status === "fulfilled") pool = b.value.items || [];
    if (c.status === "fulfilled") kept = c.value.callbacks || [];
    if (a.status === "rejected" && c.status === "rejected") return;
    list.replaceChildren();
    if (!kept.length && !mine.length && !pool.length) {
      list.append(Desk.el("li", { class: "muted small", text: Desk.t("callbacks_empty") }));
    }
    for (const o of mine) list.append(cbItem(o, false));
    if (pool.length) {
      list.append(Desk.el("li", { class: "muted small cb-head", text: Desk.t("cb_pool") }));
      for (const o of pool) list.append(cbItem(o, true));
    }
    if (kept.length) list.append(Desk.el("li", { class: "muted small cb-head", text: Desk.t("cb_kept") }));
    for (const cb of kept) {
      list.append(Desk.el("li", { "data-call": cb.call_id },
        Desk.el("span", { class: "mono", text: cb.caller }), " ",
        Desk.el("span", { text: cb.topic || cb.queue }), " ",
        Desk.el("span", { class: "badge", text: cb.dialing ? Desk.t("cb_call") : `#${cb.position || "—"}` }), " ",
        Desk.el("span", { class: "muted mono", text: Desk.fmtDuration(cb.waiting_s || 0) })));
    }
    // While the phones ring, the outcome comes back as an event; poll too in case it is missed.
    const dialing = mine.some((o) => o.last_outcome && o.last_outcome.outcome === "dialing");
    if (dialing && !cbPoll) cbPoll = setInterval(loadCallbacks, 3000);
    if (!dialing && cbPoll) { clearInterval(cbPoll); cbPoll = null; }
  }

  function tick() {
    const c = state.call;
    if (c) {
      const start = c.waiting_since || c.entered_at;
      const end = c.connected_at ? Date.parse(c.connected_at) : c.ended_at ? Date.parse(c.ended_at) : Date.now();
      $("pop-wait").textContent = start ? Desk.fmtDuration((end - Date.parse(start)) / 1000) : "—";
    }
    $("state-since").textContent = state.since ? Desk.fmtDuration(Desk.since(state.since)) : "—";
    if (state.seatState === "wrap_up" && state.wrapUntil) {
      const left = Math.max(0, (state.wrapUntil - Date.now()) / 1000);
      $("wrapup-left").textContent = Desk.fmtDuration(Math.ceil(left));
      $("wrapup-left").classList.toggle("urgent", left <= 10);
    }
  }

  function newCall(call) {
    // A new call replaces the last one: keep the lawyer's unsaved edits on the old order.
    if (state.order && state.dirty.size && !isFinal(state.order)) saveOrder(true);
    clearTimers();
    state.call = call;
    state.order = null;
    state.onHold = false;
    setConsult(null);
    state.dirty.clear();
    for (const f of FIELDS) $(`wo-${f}`).value = "";
    $("wo-topic").value = call.topic || "";
    $("transcript").replaceChildren(Desk.el("span", { class: "muted", "data-i18n": "transcript_empty", text: Desk.t("transcript_empty") }));
    loadArchive(call);
    if (call.state === "talking") { pollOrder(ORDER_POLL_MS); syncControls(); }
  }

  async function syncControls() {
    // After a page reload mid-call: is my caller on hold, am I consulting?
    const callId = state.call && state.call.call_id;
    try {
      const view = await Desk.api("GET", callPath(callId));
      if (!state.call || state.call.call_id !== callId) return;
      state.onHold = !!view.on_hold && !view.consult;
      if (view.consult) setConsult({ to: view.consult.to, state: view.consult.state });
      renderControls();
    } catch (_) { /* not a live ACD call (any more) */ }
  }

  function applyCall(call, event) {
    if (!call) return;
    const mine = state.call && state.call.call_id === call.call_id;
    if (mine && call.seat_id && call.seat_id !== state.seat) {
      state.call = null;  // went to another seat (no answer, transfer)
      renderCall();
      return;
    }
    if (!mine) {
      if (call.state === "ended" || (call.seat_id && call.seat_id !== state.seat)) return;
      newCall(call);
    } else {
      const wasTalking = state.call.state === "talking";
      state.call = call;
      if (call.state === "talking" && !wasTalking) pollOrder(ORDER_POLL_MS);
    }
    const type = event && event.type;
    if (type === "call.ended" || type === "queue.completed" || type === "transcript.completed") {
      pollOrder(ORDER_REFRESH_MS, true);
    }
    if (type && type.startsWith("workorder.")) fetchOrder();
    renderCall();
  }

  // --- live transcript ----------------------------------------------------------------------
  function speakerLabel(sp) { return Desk.t(`sp_${sp}`) === `sp_${sp}` ? sp || "" : Desk.t(`sp_${sp}`); }

  function transcript(ev) {
    if (!state.call || ev.call_id !== state.call.call_id) return;
    const d = ev.data;
    if (!d.text && ev.type !== "transcript.segment") return;
    const box = $("transcript");
    if (box.querySelector(":scope > .muted")) box.replaceChildren();
    const sp = d.speaker || "mixed";
    let partial = box.querySelector(`.line.partial[data-speaker="${sp}"]`);
    if (ev.type === "transcript.partial") {
      if (!partial) {
        partial = Desk.el("div", { class: `line partial sp-${sp}`, "data-speaker": sp },
          Desk.el("b", { text: speakerLabel(sp) }), Desk.el("span", {}));
        box.append(partial);
      }
      partial.lastChild.textContent = d.text;
    } else {
      if (partial) partial.remove();
      if (!d.text) return;
      box.append(Desk.el("div", { class: `line sp-${sp}`, "data-speaker": sp },
        Desk.el("b", { text: speakerLabel(sp) }), Desk.el("span", { text: d.text })));
    }
    box.scrollTop = box.scrollHeight;
  }

  // --- party archive ------------------------------------------------------------------------
  async function loadArchive(call) {
    const box = $("archive");
    state.archiveFor = call.call_id;
    if (!call.caller_key) {
      box.replaceChildren(Desk.el("p", { class: "muted small", id: "archive-none", text: Desk.t("archive_none") }));
      return;
    }
    box.replaceChildren(Desk.el("p", { class: "muted small", text: Desk.t("archive_loading") }));
    let data = null;
    try {
      data = await Desk.api("GET", `/api/parties/${enc(call.caller_key)}/archive`);
    } catch (err) {
      if (state.archiveFor !== call.call_id) return;
      box.replaceChildren(Desk.el("p", { class: "muted small", id: err.status === 404 ? "archive-none" : "archive-error",
        text: Desk.t(err.status === 404 ? "archive_none" : "archive_error") }));
      return;
    }
    if (state.archiveFor !== call.call_id) return;
    const calls = (data.calls || []).filter((c) => c.call_id !== call.call_id);
    const orders = (data.orders || []).filter((o) => o.call_id !== call.call_id);
    box.replaceChildren();
    if (!calls.length && !orders.length) {
      box.append(Desk.el("p", { class: "muted small", id: "archive-none", text: Desk.t("archive_none") }));
      return;
    }
    if (calls.length) {
      box.append(Desk.el("h3", { class: "mini", text: `${Desk.t("archive_calls")} (${calls.length})` }));
      const ul = Desk.el("ul", { class: "plain archive-list", id: "archive-calls" });
      for (const c of calls.slice(0, 6)) {
        ul.append(Desk.el("li", {},
          Desk.el("span", { class: "mono", text: Desk.fmtDateTime(c.started_at) }), " ",
          Desk.el("span", { text: c.topic || c.queue || "—" }), " ",
          Desk.el("span", { class: "muted", text: [c.outcome ? label("outcome_" + c.outcome, c.outcome) : null,
            c.satisfaction ? label(c.satisfaction, c.satisfaction) : null].filter(Boolean).join(" · ") })));
      }
      box.append(ul);
    }
    if (orders.length) {
      box.append(Desk.el("h3", { class: "mini", text: `${Desk.t("archive_orders")} (${orders.length})` }));
      const ul = Desk.el("ul", { class: "plain archive-list", id: "archive-orders" });
      for (const o of orders.slice(0, 6)) {
        ul.append(Desk.el("li", { title: o.summary || "" },
          Desk.el("span", { class: "mono", text: o.number }), " ",
          Desk.el("span", { text: o.topic || "—" }), " ",
          Desk.el("span", { class: "badge", text: Desk.lang === "zh" && o.state_label ? o.state_label : orderStateText(o.state) })));
      }
      box.append(ul);
    }
  }

  // --- the work order -----------------------------------------------------------------------
  function orderStateText(s) { const k = `wo_state_${s}`; return Desk.t(k) === k ? s : Desk.t(k); }
  function isFinal(order) { return !order || !(order.allowed_actions || []).includes("submit") && order.state !== "draft"; }

  function clearTimers() { state.timers.forEach(clearTimeout); state.timers = []; }

  function pollOrder(delays, always) {
    const callId = state.call && state.call.call_id;
    clearTimers();
    for (const ms of delays) {
      state.timers.push(setTimeout(() => {
        if (!state.call || state.call.call_id !== callId) return;
        if (state.order && !always) return;  // found: the workorder.* events keep it fresh
        fetchOrder();
      }, ms));
    }
  }

  async function fetchOrder() {
    const call = state.call;
    if (!call) return;
    try {
      const list = await Desk.api("GET", `/api/workorders?call_id=${enc(call.call_id)}&limit=5`);
      const found = (list.items || []).find((o) => o.call_id === call.call_id) || (list.items || [])[0];
      if (!found || !state.call || state.call.call_id !== call.call_id) return;
      // The single order has what this principal may do with it.
      const order = await Desk.api("GET", `/api/workorders/${enc(found.id)}`);
      if (!state.call || state.call.call_id !== call.call_id) return;
      setOrder(order);
    } catch (err) {
      if (err.status !== 404) console.warn("work order", err);
    }
  }

  function setOrder(order) {
    state.order = order;
    for (const f of FIELDS) {
      if (state.dirty.has(f)) continue;  // the lawyer's words win over the machine's
      const value = f === "topic" ? order.topic || order.ivr_topic || (state.call && state.call.topic) || "" : order[f] || "";
      $(`wo-${f}`).value = value;
    }
    renderOrder();
  }

  function renderOrder() {
    const o = state.order, c = state.call;
    const status = $("wo-status");
    const can = (a) => !!o && (o.allowed_actions || []).includes(a);
    const editable = !!o && (o.state === "draft" || can("submit"));
    $("wo-number").textContent = o ? o.number || "" : "";
    $("wo-state").classList.toggle("hidden", !o);
    if (o) { $("wo-state").textContent = orderStateText(o.state); $("wo-state").className = `badge right wo-${o.state}`; }
    $("wo-form").dataset.orderId = o ? o.id : "";
    $("wo-form").dataset.state = o ? o.state : "";
    status.dataset.i18n = !c ? "wo_none" : !o ? "wo_waiting" : editable ? "wo_prefilled" : "wo_submitted";
    status.textContent = Desk.t(status.dataset.i18n);
    for (const f of FIELDS) $(`wo-${f}`).readOnly = !!o && !editable;
    $("wo-save").disabled = !editable;
    $("wo-submit").disabled = !can("submit");
    $("wo-dispatch-btn").classList.toggle("hidden", !can("dispatch"));
    $("wo-confidence").textContent = o && typeof o.confidence === "number" ? `${Desk.t("wo_confidence")} ${Math.round(o.confidence * 100)}%` : "";
    const box = $("wo-fields-box"); box.replaceChildren();
    const fields = Object.entries((o && o.fields) || {}).filter(([, v]) => v !== null && v !== "" && !(Array.isArray(v) && !v.length));
    if (!fields.length) box.append(Desk.el("span", { class: "muted", text: "—" }));
    for (const [k, v] of fields) {
      const items = (Array.isArray(v) ? v : [v]).map(fieldText).join("、");
      box.append(Desk.el("span", { class: "tag", "data-field": k, text: `${label("fld_" + k, k)}: ${items}` }));
    }
  }

  function label(key, fallback) { return Desk.t(key) === key ? fallback : Desk.t(key); }

  // One extracted item (workorders: phones masked, amounts in yuan, dates, masked id cards).
  function fieldText(item) {
    if (item === null || typeof item !== "object") return String(item);
    if ("value" in item && "approximate" in item) return `${item.value} ${Desk.t("yuan")}${item.approximate ? "+" : ""}`;
    if (item.iso) return item.iso;
    return item.masked || item.text || item.value || JSON.stringify(item);
  }

  function formBody() {
    const body = {};
    for (const f of FIELDS) if (state.dirty.has(f)) body[f] = $(`wo-${f}`).value.trim();
    return body;
  }

  async function saveOrder(quiet) {
    const o = state.order;
    if (!o || !state.dirty.size) return true;
    try {
      const updated = await Desk.api("PATCH", `/api/workorders/${enc(o.id)}`, formBody());
      if (state.order && state.order.id === o.id) {
        state.dirty.clear();
        setOrder({ ...o, ...updated, allowed_actions: updated.allowed_actions || o.allowed_actions });
        if (!quiet) Desk.toast(Desk.t("wo_saved"));
      }
      return true;
    } catch (err) { if (!quiet) toastError(err); return false; }
  }

  async function orderAction(action) {
    const o = state.order;
    if (!o) return;
    const body = {};
    if (action === "dispatch") {
      const unit = window.prompt(Desk.t("wo_dispatch"));  // the unit to send it to, by name
      if (!unit || !unit.trim()) return;
      body.target = unit.trim();
    }
    $("wo-submit").disabled = true;
    if (!(await saveOrder(true))) { renderOrder(); return; }
    try {
      const updated = await Desk.api("POST", `/api/workorders/${enc(o.id)}/actions/${action}`, body);
      let order = updated;
      if (!order.allowed_actions) {
        try { order = await Desk.api("GET", `/api/workorders/${enc(o.id)}`); } catch (_) { /* keep */ }
      }
      if (state.order && state.order.id === o.id) setOrder(order);
      if (action === "submit") {
        state.submitted += 1;
        $("f-orders").textContent = state.submitted;
        Desk.toast(`${Desk.t("wo_submitted")} ${o.number || ""}`);
      } else Desk.toast(Desk.t("done"));
    } catch (err) { toastError(err); renderOrder(); }
  }

  async function countSubmittedToday() {
    // Orders of my calls already past draft today (the count survives a page reload).
    try {
      const data = await Desk.api("GET", `/api/workorders?seat=${enc(state.seat)}&limit=200`);
      const today = Desk.fmtDateTime(new Date().toISOString()).slice(0, 10);
      state.submitted = (data.items || []).filter((o) => o.state !== "draft" && o.created_at &&
        Desk.fmtDateTime(o.created_at).slice(0, 10) === today).length;
      $("f-orders").textContent = state.submitted;
    } catch (_) { /* the work-order feature is not installed */ }
  }

  // --- the live stream ----------------------------------------------------------------------
  function onMessage(msg) {
    if (msg.kind === "snapshot") {
      applySeat(msg.seats[state.seat]);
      const mine = msg.calls.filter((c) => c.state !== "ended" && c.seat_id === state.seat);
      const latest = mine[mine.length - 1];
      if (latest && (!state.call || state.call.call_id !== latest.call_id)) newCall(latest);
      else if (latest) state.call = latest;
      renderCall();
    } else if (msg.kind === "event") {
      const ev = msg.event;
      if (msg.seat) applySeat(msg.seat);
      if (ev.type.startsWith("transcript.")) transcript(ev);
      // A work-order event of an old call (an assigned callback) is for the list, not a screen pop.
      const current = state.call && msg.call && state.call.call_id === msg.call.call_id;
      if (msg.call && (current || !ev.type.startsWith("workorder."))) applyCall(msg.call, ev);
      callEvent(ev);
      if (ev.type.startsWith("callback.") || ev.type.startsWith("workorder.") || ev.type === "seat.state_changed") loadCallbacks();
    }
  }

  function wire() {
    $("btn-ready").addEventListener("click", () => seatCommand("ready"));
    $("btn-pause").addEventListener("click", () => seatCommand("pause", { reason: $("pause-reason").value }));
    $("btn-wrapup").addEventListener("click", () => seatCommand("wrapup-done"));
    $("btn-seat-out").addEventListener("click", () => seatCommand(state.seatState === "offline" ? "login" : "logout"));
    for (const f of FIELDS) $(`wo-${f}`).addEventListener("input", () => { state.dirty.add(f); });
    $("wo-save").addEventListener("click", () => saveOrder(false));
    $("btn-hold").addEventListener("click", () => hold(true));
    $("btn-resume").addEventListener("click", () => hold(false));
    $("btn-hangup").addEventListener("click", () => callCommand("hangup"));
    $("btn-transfer").addEventListener("click", () => { $("xfer").classList.toggle("hidden"); $("xfer-to").focus(); });
    $("xfer").addEventListener("submit", (ev) => { ev.preventDefault(); transfer("blind"); });
    $("xfer-consult").addEventListener("click", () => transfer("consult"));
    $("xfer-close").addEventListener("click", () => $("xfer").classList.add("hidden"));
    $("emg-transfer").addEventListener("click", emergencyTransfer);
    $("emg-dismiss").addEventListener("click", () => { if (state.call) emergencyDone(state.call.call_id); });
    $("consult-complete").addEventListener("click", () => consultEnd("complete"));
    $("consult-cancel").addEventListener("click", () => consultEnd("cancel"));
    $("wo-dispatch-btn").addEventListener("click", () => orderAction("dispatch"));
    $("wo-form").addEventListener("submit", (ev) => { ev.preventDefault(); if (!$("wo-submit").disabled) orderAction("submit"); });
    document.addEventListener("keydown", (ev) => {
      if (!ev.altKey || ev.ctrlKey || ev.metaKey) return;
      const button = { r: "btn-ready", p: "btn-pause", w: "btn-wrapup", s: "wo-submit" }[ev.key.toLowerCase()];
      if (!button) return;
      ev.preventDefault();
      if (button === "wo-submit") { if (!$("wo-submit").disabled) orderAction("submit"); return; }
      if (!$(button).disabled) $(button).click();
    });
    document.addEventListener("desk:lang", () => { renderState(); renderCall(); });
  }

  async function start() {
    const me = await Desk.loadMe();
    Desk.wireTopbar();
    state.seat = me.user.seat_id;
    $("seat-id").textContent = state.seat || "—";
    wire();
    renderState(); renderCall();
    setInterval(tick, 1000);
    new LiveSocket(onMessage).connect();
    if (state.seat) { countSubmittedToday(); loadQueues(); loadCallbacks(); setInterval(loadCallbacks, 15000); }
  }
  start().catch((err) => console.error(err));
})();
