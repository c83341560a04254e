// Orca's web view: draws the workflow graph, keeps the Tasks' states and the
// list of runs up to date from the server's event stream, shows a run's
// timeline and fires ignitions. Plain DOM and SVG; every text goes in as text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 146, NODE_H = 46, COL_GAP = 70, ROW_GAP = 30, PAD = 20, LOOP = 44;

const state = {
  graph: null,            // {namespace, nodes, edges}
  tasks: {},              // task name -> {state, run, since}
  runs: new Map(),        // run id -> run summary
  openRun: null,          // id of the run whose timeline is shown
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// ---- time formatting

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour12: false });
}

function took(ms) {
  if (!(ms >= 0)) return "";
  if (ms < 1000) return ms < 1 ? "<1 ms" : `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// offset formats the time since the run started.
function offset(ms) {
  return ms < 1000 ? `+${Math.round(ms)} ms` : `+${(ms / 1000).toFixed(1)} s`;
}

function short(id) { return id.length > 13 ? id.slice(0, 8) + "…" : id; }

// ---- the graph

function drawGraph() {
  const svg = $("graph");
  svg.replaceChildren();
  const g = state.graph;
  $("namespace").textContent = g ? g.namespace : "…";
  const nodes = g ? g.nodes : [];
  $("graph-empty").hidden = nodes.length > 0;
  if (!nodes.length) { svg.setAttribute("width", 0); svg.setAttribute("height", 0); return; }

  const rows = {};
  for (const n of nodes) rows[n.column] = Math.max(rows[n.column] || 0, n.row + 1);
  const tallest = Math.max(...Object.values(rows));
  const hasLoops = g.edges.some((e) => e.back);
  const top = PAD + (hasLoops ? LOOP : 0);
  const pos = {};
  for (const n of nodes) {
    const offset = (tallest - rows[n.column]) * (NODE_H + ROW_GAP) / 2;
    pos[n.id] = { x: PAD + n.column * (NODE_W + COL_GAP), y: top + offset + n.row * (NODE_H + ROW_GAP), node: n };
  }
  const width = PAD * 2 + (Math.max(...nodes.map((n) => n.column)) + 1) * (NODE_W + COL_GAP) - COL_GAP;
  const height = top + tallest * (NODE_H + ROW_GAP) - ROW_GAP + PAD + (hasLoops ? LOOP : 0);
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);

  const defs = el("svg:defs");
  for (const [id, color] of [["ignition", "#8a94a6"], ["success", "#2e7d32"], ["failure", "#c62828"], ["condition", "#5b6678"], ["join", "#5b6678"]]) {
    defs.append(el("svg:marker", { id: "arrow-" + id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      el("svg:path", { d: "M0,0 L10,5 L0,10 z", fill: color })));
  }
  svg.append(defs);

  const edges = el("svg:g", { class: "edges" });
  const bySource = {};
  for (const e of g.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    let d, lx, ly;
    if (e.from === e.to) {
      // A Task that starts itself (a retry loop): a loop over the node.
      const x = a.x + NODE_W / 2, y = a.y;
      d = `M${x + 22},${y} C${x + 40},${y - LOOP} ${x - 40},${y - LOOP} ${x - 22},${y}`;
      lx = x; ly = y - LOOP + 4;
    } else if (e.back) {
      // An edge back to an earlier column: around, below the nodes.
      const sx = a.x + NODE_W / 2, sy = a.y + NODE_H, tx = b.x + NODE_W / 2, ty = b.y + NODE_H;
      const dip = Math.max(sy, ty) + LOOP;
      d = `M${sx},${sy} C${sx},${dip} ${tx},${dip} ${tx},${ty}`;
      lx = (sx + tx) / 2; ly = dip - 6;
    } else {
      // Spread the edges that leave one node so that their labels do not overlap.
      const k = (bySource[e.from] = (bySource[e.from] || 0) + 1) - 1;
      const sx = a.x + NODE_W, sy = a.y + NODE_H / 2 + k * 6, tx = b.x, ty = b.y + NODE_H / 2;
      const c = Math.max(30, (tx - sx) / 2);
      d = `M${sx},${sy} C${sx + c},${sy} ${tx - c},${ty} ${tx},${ty}`;
      lx = (sx + tx) / 2; ly = (sy + ty) / 2 - 6;
    }
    // A condition edge reads one part of a Task's result: a failure is drawn as one.
    const look = e.kind === "condition" && e.label === "failed" ? "failure" : e.kind;
    edges.append(el("svg:path", { d, class: `edge ${look}`, "marker-end": `url(#arrow-${look})`, "data-from": e.from, "data-to": e.to, "data-kind": e.kind }));
    const label = { success: "on success", failure: "on failure", condition: e.label }[e.kind];
    if (label) {
      edges.append(el("svg:text", { x: lx, y: ly, "text-anchor": "middle", class: `edge-label ${look}` }, label));
    }
  }
  svg.append(edges);

  const layer = el("svg:g", { class: "nodes" });
  for (const n of nodes) {
    const p = pos[n.id];
    const round = n.kind === "ignitor" || n.kind === "ignition" ? NODE_H / 2 : 7;
    // A join (a Task's startWhen condition) is a diamond with its operator.
    const shape = n.kind === "join"
      ? el("svg:polygon", { points: `${NODE_W / 2},0 ${NODE_W},${NODE_H / 2} ${NODE_W / 2},${NODE_H} 0,${NODE_H / 2}` })
      : el("svg:rect", { width: NODE_W, height: NODE_H, rx: round, ry: round });
    const title = n.kind === "join" ? (n.op === "CEL" || n.op === "invalid" ? n.condition : n.op) : n.name;
    const grp = el("svg:g", { class: `node ${n.kind}`, "data-name": n.name, "data-kind": n.kind, transform: `translate(${p.x},${p.y})`, tabindex: 0 },
      el("svg:title", {}, titleOf(n)),
      shape,
      el("svg:text", { class: "name", x: NODE_W / 2, y: n.kind === "join" ? 27 : 19, "text-anchor": "middle" }, clip(title, n.kind === "join" ? 16 : 20)),
      el("svg:text", { class: "sub", x: NODE_W / 2, y: 35, "text-anchor": "middle" }, ""));
    grp.addEventListener("click", () => nodeClicked(n));
    layer.append(grp);
  }
  svg.append(layer);
  paintTasks();
}

function titleOf(n) {
  switch (n.kind) {
    case "ignitor": return `Ignitor ${n.name} (${n.scheduled}): click to fire it`;
    case "ignition": return `ignition ${n.name}, fired from outside (no Ignitor): click to fire it`;
    case "missing": return `${n.name}: named by a Task, but no such Task exists`;
    case "join": return `${n.name} starts when ${n.condition}${n.op === "invalid" ? " (does not compile)" : ""}`;
    default: return `Task ${n.name}`;
  }
}

function clip(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

// paintTasks sets each Task node's live state and its second line.
function paintTasks() {
  for (const grp of document.querySelectorAll("#graph .node")) {
    const name = grp.dataset.name, kind = grp.dataset.kind;
    const sub = grp.querySelector(".sub");
    if (kind === "ignitor") {
      const n = state.graph.nodes.find((x) => x.name === name && x.kind === "ignitor");
      sub.textContent = clip(n.scheduled || "", 24);
      continue;
    }
    if (kind === "ignition") { sub.textContent = "fired from outside"; continue; }
    if (kind === "missing") { sub.textContent = "no such Task"; continue; }
    if (kind === "join") continue;
    const t = state.tasks[name];
    if (!t) { grp.removeAttribute("data-state"); sub.textContent = "idle"; continue; }
    grp.setAttribute("data-state", t.state);
    const word = t.state === "started" ? "running" : t.state;
    sub.textContent = `${word} · ${clock(t.since)}`;
  }
}

function nodeClicked(n) {
  if (n.kind === "join") return;
  if (n.kind === "ignitor" || n.kind === "ignition") {
    $("fire-ignition").value = n.name;
    $("fire-data").focus();
    return;
  }
  const t = state.tasks[n.name];
  if (t) openRun(t.run);
}

function fillIgnitions() {
  const select = $("fire-ignition");
  const current = select.value;
  const names = [...new Set((state.graph ? state.graph.nodes : [])
    .filter((n) => n.kind === "ignitor" || n.kind === "ignition").map((n) => n.name))];
  select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  if (names.includes(current)) select.value = current;
  $("fire-button").disabled = names.length === 0;
}

// ---- runs

function drawRuns() {
  const body = $("runs").querySelector("tbody");
  const runs = [...state.runs.values()].sort((a, b) => (a.last < b.last ? 1 : a.last > b.last ? -1 : 0));
  $("runs-empty").hidden = runs.length > 0;
  body.replaceChildren(...runs.slice(0, 50).map((r) => {
    const tr = el("tr", { "data-run": r.id, "data-state": r.state, class: r.id === state.openRun ? "selected" : "" },
      el("td", {}, el("span", { class: `badge ${r.state}` }, r.state === "started" ? "running" : r.state)),
      el("td", { class: "mono", title: r.id }, short(r.id)),
      el("td", {}, r.initiator),
      el("td", {}, clock(r.start)),
      el("td", {}, r.state === "started" ? "" : took(Date.parse(r.last) - Date.parse(r.start))));
    tr.addEventListener("click", () => openRun(r.id));
    return tr;
  }));
}

async function openRun(id) {
  state.openRun = id;
  drawRuns();
  const resp = await fetch(`api/runs/${encodeURIComponent(id)}`);
  if (state.openRun !== id) return;
  if (!resp.ok) { $("timeline").hidden = true; return; }
  drawTimeline(await resp.json());
}

function drawTimeline(run) {
  $("timeline").hidden = false;
  $("timeline-run").textContent = run.id;
  const badge = $("timeline-state");
  badge.className = `badge ${run.state}`;
  badge.textContent = run.state === "started" ? "running" : run.state;

  const start = Date.parse(run.start);
  const running = Object.entries(run.running || {});
  const end = Math.max(Date.parse(run.last), running.length ? Date.now() : 0);
  const span = Math.max(end - start, 1);
  const pct = (t) => Math.max(0, Math.min(100, ((t - start) / span) * 100));
  const bar = (kind, from, to) => {
    const b = el("div", { class: `bar ${kind}` });
    b.style.left = `${Math.min(pct(from), 99.5)}%`;
    if (kind !== "ignited") b.style.width = `${pct(to) - pct(from)}%`;
    return el("div", { class: "bar-track" }, b);
  };

  const rows = run.steps.map((s) => {
    const at = Date.parse(s.time);
    const from = s.triggered ? Date.parse(s.triggered) : at;
    const name = el("td", {}, s.name);
    if (s.attempt > 1) name.append(el("span", { class: "retry", title: "this Task ran again in this run" }, `retry ${s.attempt - 1}`));
    const retry = s.kind === "retrying" && s.retryAt ? `attempt ${s.attempt + 1} at ${s.retryAt}` : "";
    const msg = s.kind === "ignited" ? s.data : s.kind === "deadletter" ? s.deadLetterReason : [s.reason, s.message, retry].filter(Boolean).join(": ");
    const pod = s.startedAt && s.finishedAt ? `container from ${s.startedAt} to ${s.finishedAt}` : "";
    return el("tr", { "data-kind": s.kind, "data-name": s.name },
      el("td", { title: s.time }, offset(at - start)),
      el("td", {}, el("span", { class: `badge ${s.kind}` }, s.kind)),
      name,
      el("td", { class: "mono", title: pod }, s.pod || ""),
      el("td", { title: "from the event that started it to its end" }, s.triggered ? took(at - from) : ""),
      el("td", {}, s.kind === "succeeded" || s.kind === "failed" || s.kind === "retrying" ? String(s.exitCode) : ""),
      el("td", { class: "message" }, msg || ""),
      el("td", { class: "bars" }, bar(s.kind, from, at)));
  });
  for (const [task, since] of running) {
    const at = Date.parse(since);
    rows.push(el("tr", { "data-kind": "running", "data-name": task },
      el("td", {}, offset(at - start)),
      el("td", {}, el("span", { class: "badge started" }, "running")),
      el("td", {}, task), el("td", {}), el("td", {}, took(Date.now() - at)), el("td", {}), el("td", {}),
      el("td", { class: "bars" }, bar("started", at, end))));
  }
  $("steps").replaceChildren(...rows);
}

// ---- firing

async function fire(ev) {
  ev.preventDefault();
  const result = $("fire-result"), button = $("fire-button");
  const ignition = $("fire-ignition").value;
  button.disabled = true;
  result.className = "muted";
  result.textContent = `firing ${ignition}…`;
  try {
    const resp = await fetch("api/fire", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ignition, data: $("fire-data").value }),
    });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error || resp.statusText);
    result.textContent = `fired ${ignition}: run ${body.run}`;
    openRun(body.run);
  } catch (err) {
    result.className = "error";
    result.textContent = `could not fire ${ignition}: ${err.message}`;
  } finally {
    button.disabled = false;
  }
}

// ---- the event stream

function connect() {
  const conn = $("connection");
  const es = new EventSource("api/events");
  es.onopen = () => { conn.dataset.state = "live"; conn.textContent = "live"; };
  es.onerror = () => { conn.dataset.state = "down"; conn.textContent = "reconnecting…"; };
  es.addEventListener("snapshot", (m) => {
    const snap = JSON.parse(m.data);
    state.graph = snap.graph;
    state.tasks = snap.tasks || {};
    state.runs = new Map((snap.runs || []).map((r) => [r.id, r]));
    drawGraph();
    fillIgnitions();
    drawRuns();
    if (state.openRun) openRun(state.openRun);
  });
  es.addEventListener("graph", (m) => {
    state.graph = JSON.parse(m.data);
    drawGraph();
    fillIgnitions();
  });
  es.addEventListener("tasks", (m) => {
    Object.assign(state.tasks, JSON.parse(m.data));
    paintTasks();
  });
  es.addEventListener("run", (m) => {
    const run = JSON.parse(m.data);
    state.runs.set(run.id, run);
    drawRuns();
    if (run.id === state.openRun) openRun(run.id);
  });
}

$("fire").addEventListener("submit", fire);
$("timeline-close").addEventListener("click", () => { state.openRun = null; $("timeline").hidden = true; drawRuns(); });
connect();
