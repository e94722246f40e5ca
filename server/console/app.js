// The web console of `cairn serve`: a view of the /v1 API (docs/api.md).
//
// Everything shown comes from the API, and much of it from whoever started
// a run or sent an alert (inputs, outputs, step ids, error messages): it is
// put in the page only as text nodes and attribute values, never as markup
// (no innerHTML anywhere).  The token is kept in sessionStorage (gone with
// the tab) and sent as Authorization: Bearer; the event stream is read
// with fetch() so that it carries the same header: no token in a URL.
"use strict";

const TOKEN_KEY = "cairn.token";
const AS_KEY = "cairn.as";          // who decides, with no tokens file
const POLL_MS = 3000;               // runs list and approvals refresh
const ENDS = new Set(["run_succeeded", "run_failed", "run_cancelled"]);
const SVG_NS = "http://www.w3.org/2000/svg";

let me = null;                      // {tokens, name, role} from GET /v1/me
let view = null;                    // the current view's stop(), if any
let counting = null;                // the open approvals' count in the bar, kept fresh

// ---- the DOM, as text only -------------------------------------------------

// el("td", {class: "x"}, "text", node, ...): children that are strings become
// text nodes.  Attributes are set one by one: nothing is parsed as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  setAttrs(e, attrs);
  append(e, children);
  return e;
}

function setAttrs(e, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) throw new Error("no event handler attributes: " + k);
    if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, String(v));
  }
}

function append(e, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function clear(e) {
  while (e.firstChild) e.removeChild(e.firstChild);
  return e;
}

// A status as a class name: only the statuses this console knows.
function statusClass(prefix, s) {
  return prefix + (/^[a-z_]{1,32}$/.test(String(s)) ? s : "other");
}

function badge(s) {
  return el("span", {class: "status " + statusClass("st-", s)}, String(s));
}

function json(v) {
  return el("pre", {}, typeof v === "string" ? v : JSON.stringify(v, null, 2));
}

function runLink(id) {
  return el("a", {href: "#/run/" + encodeURIComponent(id), class: "mono"}, id);
}

// ---- times -----------------------------------------------------------------

function ms(t) { return t ? Date.parse(t) : NaN; }

function when(t) {
  return t ? String(t).replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
}

function duration(d) {
  if (!isFinite(d) || d < 0) return "";
  if (d < 1000) return Math.round(d) + " ms";
  if (d < 60000) return (d / 1000).toFixed(1) + " s";
  if (d < 3600000) return Math.floor(d / 60000) + " min " + Math.floor(d / 1000 % 60) + " s";
  return Math.floor(d / 3600000) + " h " + Math.floor(d / 60000 % 60) + " min";
}

function ended(status) {
  return ["succeeded", "failed", "cancelled"].includes(status);
}

// ---- the API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || "HTTP " + status);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const h = {Accept: "application/json"};
  const t = sessionStorage.getItem(TOKEN_KEY);
  if (t) h.Authorization = "Bearer " + t;
  return h;
}

async function api(method, path, body) {
  const init = {method, headers: authHeaders(), cache: "no-store", credentials: "omit"};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    if (res.status === 401 && path !== "/v1/me") signIn("The server asked for a token again: " +
                                                        (err.message || "401"));
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

// A run's events, from the first, then live: the Server-Sent Events of
// GET /v1/runs/ID/events?follow=1, read from fetch()'s stream so that the
// Authorization header goes with it.  A dropped stream is taken up again
// with Last-Event-ID.  Ends with the run's last event, or when stopped.
async function follow(runId, onEvents, onState, signal) {
  let last = 0;
  while (!signal.aborted) {
    try {
      const headers = authHeaders();
      headers.Accept = "text/event-stream";
      if (last) headers["Last-Event-ID"] = String(last);
      const res = await fetch("/v1/runs/" + encodeURIComponent(runId) + "/events?follow=1",
                              {headers, signal, cache: "no-store", credentials: "omit"});
      if (!res.ok) {
        let e = {};
        try { e = (await res.json()).error || {}; } catch (x) { e = {}; }
        if (res.status === 401) signIn("The server asked for a token again: " + (e.message || "401"));
        throw new ApiError(res.status, e.code, e.message);
      }
      onState(true);
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true}).replace(/\r\n?/g, "\n");
        const got = [];
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const data = block.split("\n").filter(l => l.startsWith("data:"))
                            .map(l => l.slice(5).replace(/^ /, "")).join("\n");
          if (!data) continue;   // a keepalive comment
          const ev = JSON.parse(data);
          last = ev.seq;
          got.push(ev);
        }
        if (got.length) onEvents(got);
        if (got.some(ev => ENDS.has(ev.type))) { onState(false); return; }
      }
    } catch (e) {
      if (signal.aborted) return;
      if (e instanceof ApiError && e.status < 500) { onState(false, e); return; }
      onState(false, e);
      await new Promise(r => setTimeout(r, 1000));
    }
  }
}

// ---- notices and identity ----------------------------------------------------------

function notice(text, info) {
  const n = document.getElementById("notice");
  n.textContent = text || "";
  n.hidden = !text;
  n.className = "notice" + (info ? " info" : "");
}

function signIn(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  stopView();
  identityBar();
  const input = el("input", {type: "password", id: "token", autocomplete: "off", size: 50,
                             placeholder: "cairn_...", "aria-label": "API token"});
  const form = el("form", {id: "signin", class: "panel"},
    el("h1", {}, "Sign in"),
    el("p", {}, "This server checks tokens. Paste a token made by ",
       el("code", {}, "cairn token add NAME --role ROLE"),
       ". It is kept in this tab only (sessionStorage) and sent as ",
       el("code", {}, "Authorization: Bearer"), "."),
    el("p", {class: "decide"}, input, el("button", {type: "submit", id: "signin-button"}, "Sign in")));
  if (why) form.append(el("p", {class: "refused", id: "signin-error"}, why));
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    await start();
  });
  clear(document.getElementById("main")).append(form);
  input.focus();
}

function identityBar() {
  const box = clear(document.getElementById("identity"));
  if (me && me.tokens) {
    const out = el("button", {type: "button", id: "signout"}, "Sign out");
    out.addEventListener("click", () => signIn(""));
    box.append(el("span", {id: "whoami"}, me.name, " ", el("span", {class: "muted", id: "role"},
                                                              "(" + me.role + ")")), out);
  } else if (me) {
    const as = el("input", {id: "decide-as", placeholder: "your name", "aria-label": "decide as",
                            value: sessionStorage.getItem(AS_KEY) || ""});
    as.addEventListener("input", () => sessionStorage.setItem(AS_KEY, as.value.trim()));
    box.append(el("span", {id: "whoami", class: "muted",
                           title: "no tokens file: the server listens on loopback only"},
                  "loopback, no tokens"), el("label", {}, "decide as ", as));
  }
}

// ---- views ----------------------------------------------------------------------------

function stopView() {
  if (view) view();
  view = null;
}

// Repeat fn every POLL_MS while the view lasts; returns the stopper.
function every(fn) {
  let on = true, timer = null;
  const tick = async () => {
    try { await fn(); } catch (e) { if (on) notice(e.message); }
    if (on) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => { on = false; clearTimeout(timer); };
}

function route() {
  if (!me) return;
  stopView();
  notice("");
  const hash = location.hash || "#/runs";
  const [path, query] = hash.slice(1).split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll(".bar nav a")) a.classList.remove("here");
  const main = clear(document.getElementById("main"));
  if (parts[0] === "run" && parts[1]) view = runView(main, parts[1]);
  else if (parts[0] === "approvals") view = approvalsView(main);
  else view = runsView(main, params);
}

// -- the runs --

const STATUSES = ["running", "succeeded", "failed", "compensating", "cancelled"];

function runsView(main, params) {
  document.getElementById("nav-runs").classList.add("here");
  const status = params.get("status") || "", workflow = params.get("workflow") || "";
  const cursor = params.get("cursor") || "";
  const statusSel = el("select", {name: "status", id: "filter-status"},
    el("option", {value: ""}, "any status"),
    STATUSES.map(s => el("option", {value: s, selected: s === status}, s)));
  const wfSel = el("select", {name: "workflow", id: "filter-workflow"},
                   el("option", {value: ""}, "any workflow"));
  if (workflow) wfSel.append(el("option", {value: workflow, selected: true}, workflow));
  const form = el("form", {class: "filters", id: "filters"}, el("label", {}, "Status ", statusSel),
                  el("label", {}, "Workflow ", wfSel));
  const go = () => {
    const q = new URLSearchParams();
    if (statusSel.value) q.set("status", statusSel.value);
    if (wfSel.value) q.set("workflow", wfSel.value);
    location.hash = "#/runs" + (q.toString() ? "?" + q : "");
  };
  statusSel.addEventListener("change", go);
  wfSel.addEventListener("change", go);
  form.addEventListener("submit", ev => { ev.preventDefault(); go(); });
  api("GET", "/v1/workflows").then(d => {
    for (const w of d.workflows)
      if (w.name !== workflow) wfSel.append(el("option", {value: w.name}, w.name));
  }).catch(e => notice(e.message));

  const body = el("tbody", {});
  const pager = el("div", {class: "pager"});
  main.append(el("h1", {}, "Runs"), form,
              el("table", {id: "runs"},
                 el("thead", {}, el("tr", {}, ["Run", "Workflow", "Status", "Started", "Duration"]
                                    .map(h => el("th", {}, h)))), body), pager);
  let seen = "";
  const load = async () => {
    const q = new URLSearchParams({limit: "50"});
    if (status) q.set("status", status);
    if (workflow) q.set("workflow", workflow);
    if (cursor) q.set("cursor", cursor);
    const d = await api("GET", "/v1/runs?" + q);
    // the same page of ended runs is left as it is (a row stays put under the pointer)
    const text = JSON.stringify(d);
    if (text === seen && d.runs.every(r => ended(r.status))) return;
    seen = text;
    clear(body);
    const now = Date.now();
    for (const r of d.runs) {
      const end = ended(r.status) ? ms(r.updated_at) : now;
      body.append(el("tr", {dataset: {run: r.id}}, el("td", {}, runLink(r.id)),
                     el("td", {}, r.workflow), el("td", {}, badge(r.status)),
                     el("td", {}, when(r.created_at)),
                     el("td", {}, duration(end - ms(r.created_at)))));
    }
    if (!d.runs.length) body.append(el("tr", {}, el("td", {colspan: 5, class: "muted"}, "No runs.")));
    clear(pager);
    if (cursor) {
      const first = new URLSearchParams(params);
      first.delete("cursor");
      pager.append(el("a", {href: "#/runs" + (first.toString() ? "?" + first : ""), id: "page-first"},
                      "\u2190 Newest"));
    }
    if (d.next_cursor) {
      const next = new URLSearchParams(params);
      next.set("cursor", d.next_cursor);
      pager.append(el("a", {href: "#/runs?" + next, id: "page-next"}, "Older \u2192"));
    }
  };
  // the first page follows new runs; an older page stays as it was read
  if (cursor) { load().catch(e => notice(e.message)); return null; }
  return every(load);
}

// -- approvals --

// The Approve and Reject buttons of one open approval, and where a refusal
// is said.  done() is called after a decision the server took.
function decideControls(a, done) {
  const comment = el("input", {placeholder: "comment (optional)", class: "comment",
                               "aria-label": "comment"});
  const said = el("span", {class: "said"});
  const data = {run: a.run, step: a.step};
  const approve = el("button", {type: "button", class: "approve", dataset: data}, "Approve");
  const reject = el("button", {type: "button", class: "reject", dataset: data}, "Reject");
  const decide = async decision => {
    const body = {decision};
    if (comment.value.trim()) body.comment = comment.value.trim();
    if (!me.tokens) {
      body.by = sessionStorage.getItem(AS_KEY) || "";
      if (!body.by) {
        said.className = "said refused";
        said.textContent = "Name who decides (\u201cdecide as\u201d, at the top) first.";
        return;
      }
    }
    approve.disabled = reject.disabled = true;
    said.className = "said muted";
    said.textContent = "sending\u2026";
    try {
      await api("POST", "/v1/runs/" + encodeURIComponent(a.run) + "/steps/" +
                encodeURIComponent(a.step) + "/approval", body);
      said.className = "said";
      said.textContent = decision === "approve" ? "Approved." : "Rejected.";
      if (done) done();
    } catch (e) {
      approve.disabled = reject.disabled = false;
      said.className = "said refused";
      said.textContent = (e.status === 403 ? "Refused (403): " : "Failed: ") + e.message;
      notice((e.status === 403 ? "The server refused the decision: " : "") + e.message);
    }
  };
  approve.addEventListener("click", () => decide("approve"));
  reject.addEventListener("click", () => decide("reject"));
  return el("div", {class: "decide"}, comment, approve, reject, said);
}

function approvalsView(main) {
  document.getElementById("nav-approvals").classList.add("here");
  const body = el("tbody", {});
  main.append(el("h1", {}, "Pending approvals"),
              el("table", {id: "approvals"},
                 el("thead", {}, el("tr", {}, ["Run", "Workflow", "Step", "Prompt", "Approvers",
                                               "Approved", "Deadline", "Decide"]
                                    .map(h => el("th", {}, h)))), body));
  const shown = new Map();   // run/step -> row: a row being decided stays as it is
  return every(async () => {
    const d = await api("GET", "/v1/approvals");
    setCount(d.approvals.length);
    const keep = new Set();
    for (const a of d.approvals) {
      const key = a.run + "/" + a.step;
      keep.add(key);
      if (shown.has(key)) continue;
      let row = null;
      const decided = () => { row.dataset.decided = String(Date.now()); };
      row = el("tr", {dataset: {run: a.run, step: a.step}},
        el("td", {}, runLink(a.run)), el("td", {}, a.workflow), el("td", {class: "mono"}, a.step),
        el("td", {class: "prompt"}, a.prompt),
        el("td", {}, (a.approvers || []).join(", ")),
        el("td", {}, (a.approvals || []).length + " of " + a.quorum),
        el("td", {}, a.deadline ? when(a.deadline) : "none"),
        el("td", {}, decideControls(a, decided)));
      shown.set(key, row);
      body.append(row);
    }
    // a row decided here stays a moment, to say so; others go when closed
    for (const [key, row] of shown)
      if (!keep.has(key) && !(Date.now() - Number(row.dataset.decided || 0) < 2 * POLL_MS)) {
        row.remove();
        shown.delete(key);
      }
    const empty = body.querySelector("tr.empty");
    if (!shown.size && !empty)
      body.append(el("tr", {class: "empty"}, el("td", {colspan: 8, class: "muted"}, "None open.")));
    if (shown.size && empty) empty.remove();
  });
}

function setCount(n) {
  document.getElementById("approval-count").textContent = n ? String(n) : "";
}

// -- one run --

function runView(main, id) {
  const stop = new AbortController();
  const live = el("span", {class: "live", id: "live"}, "");
  const facts = el("div", {class: "panel", id: "run-facts"}, "Loading\u2026");
  const pending = el("div", {id: "run-approvals"});
  const timeline = el("div", {class: "panel", id: "timeline"});
  const graph = el("div", {class: "panel", id: "graph"});
  const steps = el("div", {id: "steps"});
  main.append(el("h1", {}, "Run ", el("span", {class: "mono"}, id), " ", live), facts, pending,
              el("h2", {}, "Timeline"), timeline, el("h2", {}, "Steps"), graph, steps);
  const events = [];
  let run = null, shape = null, refreshing = null, again = false;

  const draw = () => {
    if (!run) return;
    drawFacts(facts, run);
    drawPending(pending, id, run, refresh);
    drawTimeline(timeline, events, run);
    if (shape) drawGraph(graph, shape, run);
    drawSteps(steps, run, shape);
  };
  // Read the run again (once at a time; a change meanwhile reads again).
  const refresh = async () => {
    if (refreshing) { again = true; return; }
    refreshing = (async () => {
      do {
        again = false;
        try { run = await api("GET", "/v1/runs/" + encodeURIComponent(id)); } catch (e) {
          if (!stop.signal.aborted) notice(e.message);
        }
        if (!stop.signal.aborted) draw();
      } while (again && !stop.signal.aborted);
    })();
    await refreshing;
    refreshing = null;
  };
  api("GET", "/v1/runs/" + encodeURIComponent(id) + "/graph").then(g => { shape = g; draw(); })
    .catch(e => { clear(graph).append(el("p", {class: "muted"}, "No step graph: " + e.message)); });
  refresh();
  follow(id, got => { events.push(...got); refresh(); }, (on, err) => {
    live.className = "live" + (on ? " on" : "");
    live.textContent = on ? "live" : err ? "stream: " + err.message : "";
  }, stop.signal);
  // an unfinished run's open bars and duration grow between its events
  const clock = setInterval(() => {
    if (run && !ended(run.status)) { drawFacts(facts, run); drawTimeline(timeline, events, run); }
  }, 1000);
  return () => { stop.abort(); clearInterval(clock); };
}

function drawFacts(box, run) {
  const start = ms(run.created_at);
  const end = ended(run.status) ? ms(run.updated_at) : Date.now();
  const dl = el("dl", {class: "facts"},
    el("dt", {}, "Workflow"), el("dd", {}, run.workflow),
    el("dt", {}, "Status"), el("dd", {id: "run-status"}, badge(run.status),
                               run.paused ? [" ", badge("paused")] : null),
    el("dt", {}, "Started"), el("dd", {}, when(run.created_at)),
    el("dt", {}, "Duration"), el("dd", {}, duration(end - start)),
    el("dt", {}, "Inputs"), el("dd", {id: "run-inputs"}, json(run.inputs || {})));
  if (run.outputs) dl.append(el("dt", {}, "Outputs"), el("dd", {id: "run-outputs"}, json(run.outputs)));
  if (run.error) dl.append(el("dt", {}, "Error"), el("dd", {id: "run-error", class: "refused"},
                                                   errorText(run.error)));
  clear(box).append(dl);
}

function errorText(e) {
  if (e === null || e === undefined) return "";
  if (typeof e !== "object") return String(e);
  return (e.kind ? e.kind + ": " : "") + (e.message !== undefined ? e.message : JSON.stringify(e)) +
         (e.step ? " (step " + e.step + ")" : "");
}

function drawPending(box, id, run, refresh) {
  clear(box);
  for (const [step, s] of Object.entries(run.steps || {})) {
    if (s.status !== "waiting" || !s.approval) continue;
    const a = Object.assign({run: id, step}, s.approval);
    box.append(el("div", {class: "panel pending", dataset: {step}},
      el("strong", {}, "Waiting for approval: "), el("span", {class: "mono"}, step), " \u2014 ",
      el("span", {class: "prompt"}, a.prompt || ""),
      el("p", {class: "muted"}, "Approvers: " + (a.approvers || []).join(", ") + "; " +
                                (a.approvals || []).length + " of " + a.quorum + " approved"),
      decideControls(a, refresh)));
  }
}

// The attempts of each step (and foreach item) as bars from their start to
// their end, over the run's time; approvals as marks when they were asked
// and decided.
function attemptsOf(events) {
  const rows = new Map(), marks = [];
  const key = ev => ev.step + (ev.data && ev.data.index !== undefined ? "[" + ev.data.index + "]" : "");
  const row = ev => {
    const k = key(ev);
    if (!rows.has(k)) rows.set(k, {label: k, step: ev.step, bars: []});
    return rows.get(k);
  };
  const waiting = ev => {   // an open attempt that waits (a timer, people)
    const b = row(ev).bars.find(x => x.end === null);
    if (b) b.status = "waiting";
  };
  const close = {step_succeeded: "succeeded", step_failed: "failed", step_retrying: "retrying",
                 step_crashed: "crashed", step_interrupted: "interrupted"};
  for (const ev of events) {
    if (!ev.step) continue;
    const t = ms(ev.time);
    if (ev.type === "step_started") {
      row(ev).bars.push({attempt: ev.attempt, start: t, end: null, status: "running"});
    } else if (close[ev.type]) {
      const bars = row(ev).bars;
      const b = bars.slice().reverse().find(x => x.attempt === ev.attempt && x.end === null);
      if (b) { b.end = t; b.status = close[ev.type]; b.error = ev.data && ev.data.error; }
    } else if (ev.type === "step_waiting") {
      waiting(ev);
    } else if (ev.type === "step_skipped") {
      row(ev).bars.push({attempt: 0, start: t, end: t, status: "skipped"});
    } else if (ev.type === "approval_requested") {
      marks.push({row: key(ev), t, kind: "request", text: "approval asked of " +
                  ((ev.data && ev.data.approvers) || []).join(", ")});
      waiting(ev);
    } else if (ev.type === "approval_decided") {
      const d = ev.data || {};
      marks.push({row: key(ev), t, kind: d.decision === "approve" ? "approve" : "reject",
                  text: (d.decision === "approve" ? "approved" : "rejected") + " by " + d.by});
    }
  }
  return {rows: [...rows.values()], marks};
}

function drawTimeline(box, events, run) {
  clear(box);
  if (!events.length) { box.append(el("p", {class: "muted"}, "No events yet.")); return; }
  const {rows, marks} = attemptsOf(events);
  const t0 = ms(events[0].time);
  const last = ms(events[events.length - 1].time);
  const t1 = Math.max(ended(run.status) ? last : Date.now(), t0 + 1);
  const W = 960, L = 170, R = 20, H = 24, top = 24;
  const x = t => L + (t - t0) / (t1 - t0) * (W - L - R);
  const pic = svg("svg", {viewBox: "0 0 " + W + " " + (top + rows.length * H + 8), role: "img",
                          "aria-label": "timeline"});
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4;
    pic.append(svg("line", {class: "axis", x1: x(t), x2: x(t), y1: top - 6,
                            y2: top + rows.length * H}),
               svg("text", {class: "tick", x: x(t), y: 12,
                            "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle"},
                   "+" + duration(t - t0)));
  }
  rows.forEach((r, i) => {
    const y = top + i * H;
    pic.append(svg("text", {x: 4, y: y + 16}, r.label.length > 24 ? r.label.slice(0, 23) + "\u2026"
                                                                : r.label));
    for (const b of r.bars) {
      const end = b.end === null ? t1 : b.end;
      const w = Math.max(x(end) - x(b.start), 3);
      pic.append(svg("rect", {class: statusClass("bar-", b.status), x: x(b.start), y: y + 4,
                              width: w, height: H - 8, rx: 2, dataset: {step: r.step}},
                     svg("title", {}, r.label + " attempt " + b.attempt + ": " + b.status + ", " +
                         duration(end - b.start) + (b.error ? " \u2014 " + errorText(b.error) : ""))));
    }
    for (const m of marks.filter(m => m.row === r.label))
      pic.append(svg("circle", {class: "marker-" + m.kind, cx: x(m.t), cy: y + H / 2, r: 6},
                     svg("title", {}, m.text + " at " + new Date(m.t).toISOString())));
  });
  box.append(pic);
  const decided = events.filter(ev => ev.type === "approval_decided");
  if (decided.length)
    box.append(el("ul", {class: "decisions"}, decided.map(ev => {
      const d = ev.data || {};
      return el("li", {class: "decision", dataset: {step: ev.step}},
        el("span", {class: "mono"}, ev.step), ": ",
        el("strong", {}, d.decision === "approve" ? "approved" : "rejected"), " by ",
        el("span", {class: "by"}, d.by), " at " + when(ev.time),
        d.comment ? [" \u2014 \u201c", d.comment, "\u201d"] : null);
    })));
}

// The steps and their `needs` as a drawing: each step in the column after
// the last step it needs, edges from a need to the step that waits on it.
function drawGraph(box, shape, run) {
  clear(box);
  const steps = shape.steps || [];
  const col = new Map(), index = new Map(steps.map((s, i) => [s.id, i]));
  const depth = (s, seen) => {
    if (col.has(s.id)) return col.get(s.id);
    if (seen.has(s.id)) return 0;
    seen.add(s.id);
    let d = 0;
    for (const n of s.needs || []) if (index.has(n)) d = Math.max(d, depth(steps[index.get(n)], seen) + 1);
    col.set(s.id, d);
    return d;
  };
  steps.forEach(s => depth(s, new Set()));
  const rowsIn = [];
  const pos = new Map();
  for (const s of steps) {
    const c = col.get(s.id);
    rowsIn[c] = (rowsIn[c] || 0) + 1;
    pos.set(s.id, {c, r: rowsIn[c] - 1});
  }
  const NW = 150, NH = 30, GX = 60, GY = 16, P = 10;
  const height = P * 2 + Math.max(1, ...rowsIn.map(n => n || 0)) * (NH + GY);
  const width = P * 2 + (rowsIn.length || 1) * (NW + GX);
  const pic = svg("svg", {viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "step graph",
                          id: "graph-svg", style: null});
  pic.setAttribute("width", String(width));
  const at = id => { const p = pos.get(id); return {x: P + p.c * (NW + GX), y: P + p.r * (NH + GY)}; };
  for (const s of steps)
    for (const n of s.needs || []) {
      if (!pos.has(n)) continue;
      const a = at(n), b = at(s.id);
      const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, mid = (x1 + x2) / 2;
      pic.append(svg("path", {class: "edge", d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " +
                              mid + "," + y2 + " " + x2 + "," + y2, dataset: {from: n, to: s.id}}));
    }
  for (const s of steps) {
    const p = at(s.id), st = (run.steps && run.steps[s.id] && run.steps[s.id].status) || "pending";
    const label = s.id.length > 20 ? s.id.slice(0, 19) + "\u2026" : s.id;
    pic.append(svg("g", {class: "step", dataset: {step: s.id, status: st}},
      svg("rect", {class: "node " + statusClass("node-", st), x: p.x, y: p.y, width: NW, height: NH, rx: 5}),
      svg("text", {class: st === "pending" ? "label-dark" : "node-label", x: p.x + 8, y: p.y + 19}, label),
      svg("title", {}, s.id + " (" + s.uses + "): " + st +
          (s.needs && s.needs.length ? "; needs " + s.needs.join(", ") : ""))));
  }
  box.append(pic);
  if ((shape.on_failure || []).length)
    box.append(el("p", {class: "muted"}, "On failure: " + shape.on_failure.map(s => s.id).join(", ")));
}

function drawSteps(box, run, shape) {
  const order = shape ? shape.steps.map(s => s.id) : [];
  const ids = Object.keys(run.steps || {}).sort((a, b) => {
    const i = order.indexOf(a), j = order.indexOf(b);
    return (i < 0 ? 1e9 : i) - (j < 0 ? 1e9 : j) || (a < b ? -1 : a > b ? 1 : 0);
  });
  const body = el("tbody", {});
  for (const id of ids) {
    const s = run.steps[id];
    const decisions = s.approval && s.approval.decisions ? s.approval.decisions : [];
    body.append(el("tr", {dataset: {step: id}},
      el("td", {class: "mono"}, id, s.child ? [el("br", {}), el("span", {class: "muted"}, "child "),
                                               runLink(s.child)] : null),
      el("td", {}, badge(s.status)), el("td", {}, String(s.attempts)),
      el("td", {class: "output"}, s.output === null || s.output === undefined ? "" : json(s.output)),
      el("td", {class: "error refused"}, errorText(s.error)),
      el("td", {}, decisions.map(d => el("div", {class: "decision"},
        (d.decision === "approve" ? "approved" : "rejected") + " by ", el("span", {class: "by"}, d.by),
        d.at ? " at " + when(typeof d.at === "number" ? new Date(d.at).toISOString() : d.at) : "",
        d.comment ? [" \u2014 \u201c", d.comment, "\u201d"] : null)))));
  }
  clear(box).append(el("table", {class: "steps"},
    el("thead", {}, el("tr", {}, ["Step", "Status", "Attempts", "Output", "Error", "Decided"]
                       .map(h => el("th", {}, h)))), body));
}

// ---- start -----------------------------------------------------------------------------

async function start() {
  try {
    me = await api("GET", "/v1/me");
  } catch (e) {
    if (e.status === 401) {
      signIn(sessionStorage.getItem(TOKEN_KEY) ? "That token was refused: " + e.message : "");
      return;
    }
    notice("The server did not answer: " + e.message);
    return;
  }
  identityBar();
  route();
  if (!counting) counting = every(async () => {
    if (me) setCount((await api("GET", "/v1/approvals")).approvals.length);
  });
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", start);
