/* Shared by every desk page: language switch, API calls with the CSRF token, the live socket.
   No build step, no library. Chinese is the default language; English is a switch away. */
"use strict";

const I18N = {
  zh: {
    app_title: "12348 公共法律服务热线",
    desk_title: "坐席工作台",
    wallboard_title: "班长监控大屏",
    admin_title: "系统管理",
    signin: "登录", signout: "退出", username: "用户名", password: "密码",
    signin_sub: "坐席工作台 · 请使用分配的账户登录",
    hero_1: "7×24 小时热线服务 · 接通率 ≥ 95%",
    hero_2: "来电号码全程脱敏，访问全程留痕",
    hero_3: "坐席、班长、管理员、审计员分级授权",
    lang_switch: "English", skip: "跳到主要内容",
    change_pw_title: "请修改初始密码", change_pw_hint: "首次登录须设置新密码：至少 10 位，包含大写、小写、数字、符号中的三类。",
    current_pw: "当前密码", new_pw: "新密码", new_pw2: "再次输入新密码", save: "保存",
    pw_mismatch: "两次输入的新密码不一致", cancel: "取消", close: "关闭",
    conn_up: "实时连接正常", conn_down: "连接中断，正在重连…", conn_wait: "正在连接…",
    my_state: "我的状态", seat: "坐席", state_offline: "离线", state_available: "就绪",
    state_offered: "振铃", state_on_call: "通话中", state_wrap_up: "话后处理", state_paused: "小休",
    state_talking: "通话中", state_waiting: "排队中", state_ivr: "语音导航", state_ended: "已结束",
    btn_ready: "就绪", btn_pause: "小休", btn_signin_seat: "签入", btn_signout_seat: "签出",
    btn_wrapup_done: "结束话后处理", pause_reason: "小休原因",
    reason_break: "小休", reason_meal: "就餐", reason_training: "培训", reason_meeting: "会议",
    wrapup_left: "话后处理剩余",
    screen_pop: "来电弹屏", no_call: "当前没有来电", waiting_calls: "等待来电",
    caller: "来电号码", source: "来源", ivr_path: "导航路径", topic: "咨询类别", queue: "队列",
    wait: "等待时长", entered: "来电时间", repeat: "再次来电", special: "绿色通道",
    attached: "附带信息", transcript: "实时转写", transcript_empty: "通话开始后显示转写内容",
    work_order: "工单", wo_type: "诉求类型", wo_summary: "诉求摘要", wo_reply: "答复意见",
    wo_dispatch: "转办单位", wo_submit: "提交工单", wo_dispatch_btn: "转办",
    wo_consult: "法律咨询", wo_help: "法律援助申请", wo_complaint: "投诉建议", wo_other: "其他",
    call_controls: "通话控制", hold: "保持", resume: "恢复", transfer: "转接", consult: "咨询",
    hangup: "挂断", callbacks: "回拨列表", callbacks_empty: "暂无回拨任务",
    archive: "当事人档案", archive_empty: "来电后显示历史来电与工单",
    figures_today: "今日数据", f_answered: "已接来电", f_aht: "平均处理时长",
    f_satisfaction: "满意率", f_orders: "已提交工单",
    not_available: "该功能尚未接通（等待 ACD 接口）", done: "已完成",
    tiles_waiting: "排队来电", tiles_longest: "最长等待", tiles_talking: "通话中",
    tiles_available: "就绪坐席", tiles_answer_rate: "今日接通率", tiles_sl: "服务水平",
    target: "目标", queues: "队列实况", q_name: "队列", q_waiting: "排队",
    q_longest: "最长等待", q_talking: "通话", seats_by_state: "坐席状态",
    no_seats: "尚无坐席签入", no_queues: "暂无排队来电", live_calls: "实时来电",
    chart_waiting: "排队与通话趋势（近 10 分钟）", events: "实时事件", signed_in: "在线人员",
    c_caller: "来电", c_source: "来源", c_state: "状态", c_seat: "坐席", c_wait: "时长",
    no_calls: "暂无来电", now: "现在",
    users: "用户", create_user: "新建用户", display_name: "姓名", role: "角色",
    seat_id: "坐席号", create: "创建", reset_pw: "重置密码", lock: "锁定", unlock: "解锁",
    role_seat_lawyer: "坐席律师", role_supervisor: "班长", role_administrator: "管理员",
    role_auditor: "审计员", status: "状态", last_login: "最近登录", actions: "操作",
    active: "正常", locked: "已锁定", must_change: "待改密",
    audit: "安全审计日志", a_time: "时间", a_actor: "操作人", a_action: "操作", a_target: "对象",
    a_outcome: "结果", a_addr: "来源地址",
    new_password_title: "初始密码（仅显示一次）",
    new_password_hint: "请将密码安全地交给本人；首次登录时必须修改。",
    readonly_note: "审计员为只读访问：可查看用户与审计日志，不能修改。",
    confirm_lock: "确定锁定该用户？其所有会话将立即失效。",
    confirm_reset: "确定重置该用户的密码？其所有会话将立即失效。",
    forbidden_title: "无权访问", forbidden_text: "您的角色不能访问此页面。",
    back: "返回我的页面", session_ended: "会话已结束，请重新登录",
    in_state: "本状态已持续", wrapup_auto: "到时自动就绪", sp_caller: "来电人", sp_seat: "律师", sp_mixed: "通话",
    transcript_live: "识别中…", origin_12348: "12348 直拨", origin_110: "110 转入", origin_12345: "12345 转入",
    archive_none: "无历史来电", archive_error: "档案暂不可用", archive_calls: "历史来电", archive_orders: "历史工单",
    archive_loading: "正在查询档案…", satisfied: "满意", basically_satisfied: "基本满意", dissatisfied: "不满意",
    wo_number: "工单号", wo_state: "状态", wo_details: "详细情况", wo_fields: "提取信息", wo_save: "保存",
    wo_waiting: "通话接通后自动生成工单草稿…", wo_none: "没有通话时不能填写工单", wo_prefilled: "已根据转写自动预填，可修改",
    wo_confidence: "分类置信度", wo_submitted: "工单已提交", wo_saved: "已保存", wo_not_found: "暂未生成工单",
    wo_state_draft: "草稿", wo_state_submitted: "已提交", wo_state_dispatched: "已转办", wo_state_claimed: "已认领",
    wo_state_in_progress: "办理中", wo_state_resolved: "已办结", wo_state_reviewed: "已审核", wo_state_closed: "已关闭",
    wo_state_reopened: "已重开", seq_hint: "快捷键", f_rated: "评价",
    force_title: "强制设置坐席状态", force_action: "设置为", force_reason: "原因", force_apply: "确定",
    force_ready: "就绪", force_pause: "小休", force_logout: "签出", force_done: "已设置坐席状态",
    alerts: "告警", alert_answer_rate: "接通率低于目标", alert_service_level: "服务水平低于目标",
    alert_satisfaction: "满意率低于目标", alert_longest_wait: "等待时间过长", scope_hotline: "全热线",
    q_answer: "今日接通率", q_sl: "服务水平", chart_talking: "通话中", today_answered: "今日接通",
    not_connected: "尚未接通", handled_short: "接",
    yuan: "元", fld_phones: "电话", fld_amounts: "金额", fld_dates: "日期", fld_id_cards: "身份证",
    on_hold: "保持中", held: "已保持，来电人正在听等待音乐", resumed: "已恢复通话", xfer_to: "转接目标",
    xfer_kind_queue: "队列", xfer_kind_seat: "坐席", xfer_kind_number: "外线号码", xfer_blind: "直接转接",
    xfer_consult: "咨询转接", xfer_complete: "完成转接", xfer_cancel: "取回通话", xfer_close: "收起",
    consult_ringing: "正在呼叫", consult_answered: "咨询通话中", xfer_done: "已转接", hung_up: "已挂断",
    c_supervise: "班长操作", sup_monitor: "监听", sup_whisper: "密语", sup_barge: "强插", sup_stop: "结束",
    sup_ringing: "正在呼叫您的话机…", sup_active: "监听中", sup_by: "监听人",
    force_note: "说明（强制置态的原因，记入日志）", force_default: "班长调度",
    cb_due: "预约时间", cb_empty: "暂无回拨任务", cb_order: "工单", cb_call: "回拨",
    outcome_answered: "已接通", outcome_message: "留言", outcome_callback: "预约回拨", outcome_transferred: "已转接",
    outcome_abandoned: "放弃", outcome_rejected: "拒接",
    emg_title: "疑似紧急情况", emg_heard: "识别到", emg_transfer: "转接", emg_dismiss: "忽略",
    emg_hint: "来电人可能身处危险：请核实情况，必要时一键转接（直接转接，随附工单号与摘要）。",
    emg_badge: "疑似紧急", emg_done: "已转接报警台",
  },
  en: {
    app_title: "12348 Public Legal Service Hotline",
    desk_title: "Agent desk",
    wallboard_title: "Supervisor wallboard",
    admin_title: "Administration",
    signin: "Sign in", signout: "Sign out", username: "Username", password: "Password",
    signin_sub: "Agent desk · sign in with the account you were given",
    hero_1: "24/7 hotline service · answer rate ≥ 95%",
    hero_2: "Caller numbers masked everywhere, every access audited",
    hero_3: "Seat lawyer, supervisor, administrator, auditor roles",
    lang_switch: "中文", skip: "Skip to main content",
    change_pw_title: "Change your first password", change_pw_hint: "Set a new password: at least 10 characters, three of upper, lower, digit, symbol.",
    current_pw: "Current password", new_pw: "New password", new_pw2: "New password again", save: "Save",
    pw_mismatch: "The new passwords differ", cancel: "Cancel", close: "Close",
    conn_up: "Live", conn_down: "Disconnected, reconnecting…", conn_wait: "Connecting…",
    my_state: "My state", seat: "Seat", state_offline: "Offline", state_available: "Ready",
    state_offered: "Ringing", state_on_call: "On call", state_wrap_up: "Wrap-up", state_paused: "Paused",
    state_talking: "Talking", state_waiting: "Waiting", state_ivr: "IVR", state_ended: "Ended",
    btn_ready: "Ready", btn_pause: "Pause", btn_signin_seat: "Log in seat", btn_signout_seat: "Log out seat",
    btn_wrapup_done: "End wrap-up", pause_reason: "Pause reason",
    reason_break: "Break", reason_meal: "Meal", reason_training: "Training", reason_meeting: "Meeting",
    wrapup_left: "Wrap-up left",
    screen_pop: "Screen pop", no_call: "No call right now", waiting_calls: "Waiting for calls",
    caller: "Caller", source: "Source", ivr_path: "IVR path", topic: "Topic", queue: "Queue",
    wait: "Waited", entered: "Called at", repeat: "Repeat caller", special: "Priority group",
    attached: "Attached data", transcript: "Live transcript", transcript_empty: "The transcript appears once the call is answered",
    work_order: "Work order", wo_type: "Request type", wo_summary: "Summary", wo_reply: "Answer given",
    wo_dispatch: "Dispatch to", wo_submit: "Submit", wo_dispatch_btn: "Dispatch",
    wo_consult: "Legal advice", wo_help: "Legal aid", wo_complaint: "Complaint", wo_other: "Other",
    call_controls: "Call controls", hold: "Hold", resume: "Resume", transfer: "Transfer", consult: "Consult",
    hangup: "Hang up", callbacks: "Callbacks", callbacks_empty: "No callbacks",
    archive: "Party archive", archive_empty: "Earlier calls and orders show here during a call",
    figures_today: "My figures today", f_answered: "Answered", f_aht: "Avg handle time",
    f_satisfaction: "Satisfaction", f_orders: "Orders submitted",
    not_available: "Not connected yet (waiting for the ACD API)", done: "Done",
    tiles_waiting: "Waiting", tiles_longest: "Longest wait", tiles_talking: "Talking",
    tiles_available: "Ready seats", tiles_answer_rate: "Answer rate today", tiles_sl: "Service level",
    target: "target", queues: "Queues", q_name: "Queue", q_waiting: "Waiting",
    q_longest: "Longest", q_talking: "Talking", seats_by_state: "Seats",
    no_seats: "No seat logged in", no_queues: "No calls waiting", live_calls: "Live calls",
    chart_waiting: "Waiting and talking (last 10 minutes)", events: "Live events", signed_in: "Signed in",
    c_caller: "Caller", c_source: "Source", c_state: "State", c_seat: "Seat", c_wait: "Time",
    no_calls: "No calls", now: "now",
    users: "Users", create_user: "New user", display_name: "Name", role: "Role",
    seat_id: "Seat", create: "Create", reset_pw: "Reset password", lock: "Lock", unlock: "Unlock",
    role_seat_lawyer: "Seat lawyer", role_supervisor: "Supervisor", role_administrator: "Administrator",
    role_auditor: "Auditor", status: "Status", last_login: "Last sign-in", actions: "Actions",
    active: "Active", locked: "Locked", must_change: "Must change password",
    audit: "Security audit log", a_time: "Time", a_actor: "Actor", a_action: "Action", a_target: "Target",
    a_outcome: "Outcome", a_addr: "Address",
    new_password_title: "First password (shown once)",
    new_password_hint: "Hand it over safely; it must be changed at first sign-in.",
    readonly_note: "Auditors have read-only access: users and the audit log, no changes.",
    confirm_lock: "Lock this user? All their sessions end at once.",
    confirm_reset: "Reset this user's password? All their sessions end at once.",
    forbidden_title: "Access denied", forbidden_text: "Your role may not open this page.",
    back: "Back to my page", session_ended: "Your session ended: sign in again",
    in_state: "In this state for", wrapup_auto: "ready again automatically", sp_caller: "Caller", sp_seat: "Lawyer", sp_mixed: "Call",
    transcript_live: "recognising…", origin_12348: "12348 direct", origin_110: "from 110", origin_12345: "from 12345",
    archive_none: "No earlier calls", archive_error: "Archive not available", archive_calls: "Earlier calls", archive_orders: "Earlier orders",
    archive_loading: "Looking up the archive…", satisfied: "Satisfied", basically_satisfied: "Fairly satisfied", dissatisfied: "Dissatisfied",
    wo_number: "Order no.", wo_state: "State", wo_details: "Details", wo_fields: "Extracted", wo_save: "Save",
    wo_waiting: "A draft order is made when the call is answered…", wo_none: "No call: no work order to fill", wo_prefilled: "Prefilled from the transcript: edit as needed",
    wo_confidence: "Topic confidence", wo_submitted: "Work order submitted", wo_saved: "Saved", wo_not_found: "No order yet",
    wo_state_draft: "Draft", wo_state_submitted: "Submitted", wo_state_dispatched: "Dispatched", wo_state_claimed: "Claimed",
    wo_state_in_progress: "In progress", wo_state_resolved: "Resolved", wo_state_reviewed: "Reviewed", wo_state_closed: "Closed",
    wo_state_reopened: "Reopened", seq_hint: "Shortcut", f_rated: "rated",
    force_title: "Force a seat's state", force_action: "Set to", force_reason: "Reason", force_apply: "Apply",
    force_ready: "Ready", force_pause: "Pause", force_logout: "Log out", force_done: "Seat state set",
    alerts: "Alerts", alert_answer_rate: "Answer rate below target", alert_service_level: "Service level below target",
    alert_satisfaction: "Satisfaction below target", alert_longest_wait: "Wait too long", scope_hotline: "hotline",
    q_answer: "Answer rate", q_sl: "Service level", chart_talking: "Talking", today_answered: "answered today",
    not_connected: "Not connected yet", handled_short: "ans.",
    yuan: "yuan", fld_phones: "Phones", fld_amounts: "Amounts", fld_dates: "Dates", fld_id_cards: "ID cards",
    on_hold: "On hold", held: "On hold: the caller hears music", resumed: "Call resumed", xfer_to: "Transfer to",
    xfer_kind_queue: "Queue", xfer_kind_seat: "Seat", xfer_kind_number: "Number", xfer_blind: "Transfer now",
    xfer_consult: "Consult first", xfer_complete: "Complete transfer", xfer_cancel: "Back to caller", xfer_close: "Close",
    consult_ringing: "Calling", consult_answered: "Consulting", xfer_done: "Transferred", hung_up: "Hung up",
    c_supervise: "Supervise", sup_monitor: "Monitor", sup_whisper: "Whisper", sup_barge: "Barge in", sup_stop: "Stop",
    sup_ringing: "Calling your phone…", sup_active: "Supervising", sup_by: "by",
    force_note: "Note (why: logged)", force_default: "supervisor's decision",
    cb_due: "Due", cb_empty: "No callbacks", cb_order: "Order", cb_call: "Call back",
    outcome_answered: "answered", outcome_message: "message", outcome_callback: "callback", outcome_transferred: "transferred",
    outcome_abandoned: "abandoned", outcome_rejected: "rejected",
    emg_title: "Possible emergency", emg_heard: "heard", emg_transfer: "Transfer to", emg_dismiss: "Dismiss",
    emg_hint: "The caller may be in danger: check, and if needed transfer at once (blind, with the work order number and summary).",
    emg_badge: "Emergency?", emg_done: "Transferred to the police",
  },
};

const Desk = {
  lang: localStorage.getItem("desk.lang") === "en" ? "en" : "zh",
  csrf: null,
  me: null,

  t(key) { return (I18N[this.lang] && I18N[this.lang][key]) || I18N.zh[key] || key; },

  applyLang(root = document) {
    document.documentElement.lang = this.lang === "zh" ? "zh-CN" : "en";
    root.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = this.t(el.dataset.i18n); });
    root.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
      el.placeholder = this.t(el.dataset.i18nPlaceholder);
    });
    root.querySelectorAll("[data-i18n-title]").forEach((el) => {
      el.title = this.t(el.dataset.i18nTitle);
      el.setAttribute("aria-label", el.title);
    });
    document.dispatchEvent(new Event("desk:lang"));
  },

  toggleLang() {
    this.lang = this.lang === "zh" ? "en" : "zh";
    localStorage.setItem("desk.lang", this.lang);
    this.applyLang();
  },

  /* JSON API call; state-changing methods carry the session's CSRF token. */
  async api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && this.csrf) headers["X-CSRF-Token"] = this.csrf;
    const resp = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (resp.status === 401 && !path.startsWith("/api/auth/login")) {
      location.assign("/");
      throw new Error("unauthenticated");
    }
    if (!resp.ok) {
      const err = new Error((data && data.error && data.error.message) || resp.statusText);
      err.status = resp.status; err.code = data && data.error && data.error.code;
      throw err;
    }
    return data;
  },

  /* For pages behind sign-in: who am I (and the CSRF token); fills the top bar. */
  async loadMe() {
    const me = await this.api("GET", "/api/auth/me");
    this.me = me.user; this.csrf = me.csrf_token;
    this.renderWho();
    document.addEventListener("desk:lang", () => this.renderWho());
    return me;
  },

  renderWho() {
    const who = document.getElementById("who");
    if (!who || !this.me) return;
    const u = this.me;
    who.textContent = `${u.display_name} · ${this.t("role_" + u.role)}` + (u.seat_id ? ` · ${this.t("seat")} ${u.seat_id}` : "");
  },

  async signOut() {
    try { await this.api("POST", "/api/auth/logout"); } finally { location.assign("/"); }
  },

  wireTopbar() {
    const lang = document.getElementById("lang");
    if (lang) lang.addEventListener("click", () => this.toggleLang());
    const out = document.getElementById("signout");
    if (out) out.addEventListener("click", () => this.signOut());
    this.applyLang();
  },

  toast(text, ms = 3500) {
    const el = document.createElement("div");
    el.className = "toast"; el.setAttribute("role", "status"); el.textContent = text;
    document.body.appendChild(el);
    setTimeout(() => el.remove(), ms);
  },

  /* Times are stored in UTC and shown in Beijing time. */
  fmtTime(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat("zh-CN", {
      timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    }).format(new Date(iso));
  },
  fmtDateTime(iso) {
    if (!iso) return "—";
    return new Intl.DateTimeFormat("zh-CN", {
      timeZone: "Asia/Shanghai", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hour12: false,
    }).format(new Date(iso));
  },
  fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "—";
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60), r = s % 60;
    return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(r).padStart(2, "0")}`
      : `${m}:${String(r).padStart(2, "0")}`;
  },
  since(iso) { return iso ? (Date.now() - Date.parse(iso)) / 1000 : null; },

  el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  },
};

/* The live event stream: reconnects with backoff; a snapshot arrives on every (re)connect. */
class LiveSocket {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.delay = 1000;
    this.ws = null;
    this.stopped = false;
    this.status = document.getElementById("conn");
  }
  setStatus(kind) {
    if (!this.status) return;
    this.status.className = "conn " + (kind === "up" ? "up" : kind === "down" ? "down" : "");
    this.status.dataset.i18n = kind === "up" ? "conn_up" : kind === "down" ? "conn_down" : "conn_wait";
    this.status.textContent = Desk.t(this.status.dataset.i18n);
    this.status.dataset.state = kind;
  }
  connect() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.setStatus("wait");
    const ws = new WebSocket(`${proto}//${location.host}/api/events/ws`);
    this.ws = ws;
    ws.onopen = () => { this.delay = 1000; this.setStatus("up"); };
    ws.onmessage = (m) => {
      let msg; try { msg = JSON.parse(m.data); } catch (_) { return; }
      if (msg.kind === "resync") { ws.send("snapshot"); return; }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      this.setStatus("down");
      if (ev.code === 4401) { Desk.toast(Desk.t("session_ended")); setTimeout(() => location.assign("/"), 800); return; }
      if (this.stopped) return;
      const wait = this.delay * (0.75 + Math.random() * 0.5);
      this.delay = Math.min(this.delay * 2, 30000);
      setTimeout(() => this.connect(), wait);
    };
  }
}
window.Desk = Desk;
window.LiveSocket = LiveSocket;

/* Administration page (admin.html): seats, queues, IVR flow, business hours and holidays. */
Object.assign(I18N.zh, {
  tab_users: "用户与审计", tab_seats: "坐席", tab_queues: "队列", tab_flow: "IVR 流程", tab_hours: "营业时间与节假日",
  seat_create: "新建坐席", seat_skills: "技能（技能:等级）", seat_skills_short: "技能", seat_region: "地区",
  seat_create_hint: "创建后生成 SIP 账号与密码（仅显示一次），Asterisk 自动重新加载。", seats_title: "坐席",
  seat_live: "实时状态", seat_edit: "编辑坐席", seat_pending: "签出后生效", adm_disabled: "已停用",
  adm_edit: "编辑", adm_disable: "停用", adm_enable: "启用", sip_reset: "重置 SIP 密码",
  confirm_sip_reset: "确定重置该坐席的 SIP 密码？旧密码立即失效，话机需重新配置。", confirm_disable_seat: "确定停用该坐席？已签入的将被签出，话机将无法注册。",
  sip_title: "坐席 SIP 账号（密码仅显示一次）", sip_user: "SIP 用户名", sip_password: "SIP 密码", sip_registrar: "注册服务器",
  sip_hint: "请立即配置到坐席话机；系统只保存摘要，关闭后无法再次查看。",
  acd_applied: "已生效", acd_after_logout: "坐席签出后生效", acd_signed_out: "已签出", acd_in_call: "通话结束后签出",
  acd_no_acd: "已保存", acd_disabled: "已保存（坐席已停用）",
  queues_title: "队列", queues_note: "队列由 IVR 流程的 queue 节点与配置文件 acd 部分决定（只读）；修改流程或配置后重启服务，ACD 生效。",
  q_name: "队列", q_skill: "技能", q_strategy: "策略", q_ring: "振铃(秒)", q_max_wait: "最长等待(秒)", q_overflow: "溢出",
  q_aging: "优先级(秒/级)", q_wrap: "话后(秒)", onmax_message: "留言", onmax_callback: "回拨", q_partner: "转入专线",
  origin_priority: "来源优先级", flow_file: "流程文件",
  flow_title: "IVR 流程", flow_choose: "选择 YAML 文件", flow_validate: "校验", flow_save: "保存并生效", flow_text: "流程 YAML",
  flow_id: "流程", flow_valid: "校验通过", flow_invalid: "流程有问题，未保存", flow_saved: "已保存并生效",
  flow_restart: "队列有变化，重启服务后 ACD 生效", adm_nodes: "个节点", viewing_version: "正在查看版本",
  adm_history: "历史版本", adm_version: "版本", adm_note: "说明", adm_view: "查看", adm_rollback: "回滚",
  confirm_rollback: "确定回滚到该版本？新来电将立即使用它。",
  hours_title: "营业时间", hours_note: "营业时间在 IVR 流程的 calendar 部分修改。", holidays_title: "节假日安排",
  hol_file: "文件", hol_kind: "类型", hol_dates: "日期", hol_name: "名称", hol_edit: "编辑节假日文件", hol_load: "打开",
  hol_holidays: "放假", hol_workdays: "调休上班", hol_new: "新文件：填写后保存", adm_closed: "休息",
  makeup_hours: "调休日时间", open_now: "当前营业中", closed_now: "当前非营业时间", always_open: "7×24 全天服务",
  day_mon: "周一", day_tue: "周二", day_wed: "周三", day_thu: "周四", day_fri: "周五", day_sat: "周六", day_sun: "周日",
});
Object.assign(I18N.en, {
  tab_users: "Users & audit", tab_seats: "Seats", tab_queues: "Queues", tab_flow: "IVR flow", tab_hours: "Hours & holidays",
  seat_create: "New seat", seat_skills: "Skills (skill:level)", seat_skills_short: "Skills", seat_region: "Region",
  seat_create_hint: "Creates a SIP account and password (shown once); Asterisk reloads by itself.", seats_title: "Seats",
  seat_live: "Live state", seat_edit: "Edit seat", seat_pending: "applies at sign-out", adm_disabled: "disabled",
  adm_edit: "Edit", adm_disable: "Disable", adm_enable: "Enable", sip_reset: "Reset SIP password",
  confirm_sip_reset: "Reset this seat's SIP password? The old one stops working at once; the phone must be set up again.",
  confirm_disable_seat: "Disable this seat? A signed-in seat is signed out and its phone can no longer register.",
  sip_title: "Seat SIP account (password shown once)", sip_user: "SIP user", sip_password: "SIP password", sip_registrar: "Registrar",
  sip_hint: "Configure the seat's phone now: only a digest is stored, it cannot be shown again.",
  acd_applied: "applied", acd_after_logout: "applies when the seat signs out", acd_signed_out: "signed out",
  acd_in_call: "signs out when the call ends", acd_no_acd: "saved", acd_disabled: "saved (seat disabled)",
  queues_title: "Queues", queues_note: "Queues come from the IVR flow's queue nodes and the acd: section of the configuration file (read-only); the ACD takes changes after a restart.",
  q_name: "Queue", q_skill: "Skill", q_strategy: "Strategy", q_ring: "Ring (s)", q_max_wait: "Max wait (s)", q_overflow: "Overflow",
  q_aging: "Priority (s/level)", q_wrap: "Wrap-up (s)", onmax_message: "message", onmax_callback: "callback", q_partner: "partner trunk",
  origin_priority: "Priority by origin", flow_file: "Flow file",
  flow_title: "IVR flow", flow_choose: "Choose a YAML file", flow_validate: "Validate", flow_save: "Save and go live", flow_text: "Flow YAML",
  flow_id: "Flow", flow_valid: "Valid", flow_invalid: "The flow has problems; nothing was saved", flow_saved: "Saved and live",
  flow_restart: "queues changed: the ACD takes them after a restart", adm_nodes: "nodes", viewing_version: "Viewing version",
  adm_history: "History", adm_version: "Version", adm_note: "Note", adm_view: "View", adm_rollback: "Roll back",
  confirm_rollback: "Roll back to this version? New calls use it at once.",
  hours_title: "Business hours", hours_note: "Hours are edited in the IVR flow's calendar section.", holidays_title: "Holidays",
  hol_file: "File", hol_kind: "Kind", hol_dates: "Dates", hol_name: "Name", hol_edit: "Edit a holiday file", hol_load: "Open",
  hol_holidays: "holiday", hol_workdays: "make-up workday", hol_new: "New file: fill it in and save", adm_closed: "closed",
  makeup_hours: "Make-up day hours", open_now: "open now", closed_now: "closed now", always_open: "open 24/7",
  day_mon: "Mon", day_tue: "Tue", day_wed: "Wed", day_thu: "Thu", day_fri: "Fri", day_sat: "Sat", day_sun: "Sun",
});

/* The callback list (回拨列表): callback requests and voice messages on the desk and the wallboard. */
Object.assign(I18N.zh, {
  cb_due_at: "回拨时限", cb_booked: "预约于", cb_claim: "认领", cb_retry: "再次回拨", cb_done: "完成",
  cb_done_note: "已回拨处理", cb_pool: "可认领（我的技能）", cb_kept: "排队保留位置", cb_taken: "已被其他坐席认领",
  cb_toast_assign: "已认领", cb_toast_callback: "正在呼叫您的话机，接起后将接通来电人…", cb_toast_resolve: "已完成",
  cbo_dialing: "呼叫中", cbo_answered: "已接通", cbo_no_answer: "无人接听", cbo_busy: "忙线",
  cbo_seat_no_answer: "坐席未接", cbo_seat_hung_up: "坐席挂断", cbo_seat_busy: "坐席忙", cbo_no_route: "无外呼线路",
  wb_callbacks: "待回拨（预约回拨与留言）", wb_cb_source: "类型", wb_cb_booked: "预约时间", wb_cb_due: "回拨时限",
  wb_cb_seat: "坐席", wb_cb_outcome: "回拨结果", wb_cb_assign: "分配", wb_cb_listen: "听留言", wb_cb_none: "暂无待回拨",
  wb_cb_assigned: "已分配",
});
Object.assign(I18N.en, {
  cb_due_at: "Due", cb_booked: "Booked", cb_claim: "Claim", cb_retry: "Call again", cb_done: "Done",
  cb_done_note: "Called back", cb_pool: "To claim (my skills)", cb_kept: "Kept places in queue", cb_taken: "Another seat claimed it",
  cb_toast_assign: "Claimed", cb_toast_callback: "Ringing your phone; the caller is dialled when you answer…", cb_toast_resolve: "Done",
  cbo_dialing: "dialling", cbo_answered: "answered", cbo_no_answer: "no answer", cbo_busy: "busy",
  cbo_seat_no_answer: "seat did not answer", cbo_seat_hung_up: "seat hung up", cbo_seat_busy: "seat busy", cbo_no_route: "no outbound route",
  wb_callbacks: "To call back (bookings and messages)", wb_cb_source: "Kind", wb_cb_booked: "Booked", wb_cb_due: "Due",
  wb_cb_seat: "Seat", wb_cb_outcome: "Outcome", wb_cb_assign: "Assign", wb_cb_listen: "Listen", wb_cb_none: "Nothing to call back",
  wb_cb_assigned: "Assigned",
});
