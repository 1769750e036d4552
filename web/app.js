// pgpilot dashboard: polls the JSON API of the same origin and draws the cluster.
// Plain browser JavaScript, no build step and no third-party code (see docs/http.md).
// Every value from the server is put into the page as text (textContent), never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(250, Number(params.get("interval")) || 2000);
const HISTORY_MS = 5 * 60 * 1000;
const COLORS = ["#2f6fdf", "#1f9d55", "#d99a1e", "#9b51e0", "#d64545", "#00a3a3", "#7a7a7a"];

const state = {
  lastEventId: 0,
  events: [],
  lag: new Map(),       // node id -> [{t, v}]
  prevStatements: null, // {t, byNode: Map}
  nodes: [],
  busy: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

function pill(word) {
  return el("span", { class: `pill ${word}`, text: word });
}

function fmtInt(n) {
  return Number(n).toLocaleString("en-US");
}

// Replication lag: bytes, and seconds when pgpilot knows them (null: unknown).
function fmtLag(n) {
  const s = n.replication_lag_seconds;
  return fmtInt(n.replication_delay_bytes) + (s == null ? "" : ` · ${s.toFixed(1)} s`);
}

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(1)} ${units[i]}`;
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function toast(text, isError) {
  const t = $("toast");
  t.textContent = text;
  t.className = `show${isError ? " error" : ""}`;
  t.setAttribute("data-status", isError ? "error" : "ok");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.className = ""; }, 15000);
}

// ---- rendering ----

function renderStatus(st) {
  $("version").textContent = `v${st.version} · pid ${st.pid}`;
  const h = $("health");
  h.replaceChildren();
  const word = st.primary >= 0 && st.ready ? "ok" : "bad";
  h.className = `pill ${word}`;
  h.textContent = st.primary >= 0 ? (st.ready ? "healthy" : "not ready") : "no primary";
  $("primary").textContent = st.primary >= 0 ? `node ${st.primary}` : "none";
  $("sessions-count").textContent = fmtInt(st.client_sessions);
  $("failovers").textContent = fmtInt(st.failovers_total);
  $("last-failover").textContent =
    st.last_failover_ms == null ? "never" : `${(st.last_failover_ms / 1000).toFixed(2)} s`;
  $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function actionButtons(n) {
  const td = el("td");
  const add = (action, label) => td.append(el("button", {
    class: "action", text: label, "data-action": action, "data-node": String(n.id),
    "data-testid": `${action}-${n.id}`,
  }));
  if (n.status === "up") add("detach", "Detach");
  else add("attach", "Attach");
  if (n.role !== "primary") add("promote", "Promote");
  return td;
}

function renderNodes(data) {
  state.nodes = data.nodes;
  const body = $("nodes").tBodies[0];
  body.replaceChildren();
  for (const n of data.nodes) {
    const h = n.health;
    const check = h.total_count > 0
      ? `${h.last_duration_ms.toFixed(1)} ms · ${h.fail_count} failed / ${h.total_count}`
      : "–";
    const repl = [n.replication_state, n.replication_sync_state].filter(Boolean).join(" / ");
    const tr = el("tr", { "data-node": String(n.id) },
      el("td", { text: String(n.id) }),
      el("td", { text: `${n.hostname}:${n.port}` }),
      el("td", {}, pill(n.role)),
      el("td", { "data-testid": `status-${n.id}` }, pill(n.status)),
      el("td", {}, pill(n.pg_status)),
      el("td", { class: "num", text: fmtLag(n) }),
      el("td", { text: repl || "–" }),
      el("td", { class: "num", text: fmtInt(n.statements) }),
      el("td", { class: "num", text: fmtInt(n.select_cnt) }),
      el("td", { class: "num", text: String(n.server_connections) }),
      el("td", { text: check }),
      actionButtons(n));
    body.append(tr);
  }
  const sel = $("switchover-node");
  const keep = sel.value;
  sel.replaceChildren(...data.nodes.filter((n) => n.role !== "primary")
    .map((n) => el("option", { value: String(n.id), text: `node ${n.id} (${n.hostname}:${n.port})` })));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

function recordLag(data, now) {
  for (const n of data.nodes) {
    if (!state.lag.has(n.id)) state.lag.set(n.id, []);
    const series = state.lag.get(n.id);
    series.push({ t: now, v: n.replication_delay_bytes });
    while (series.length && series[0].t < now - HISTORY_MS) series.shift();
  }
}

function drawLag(now) {
  const canvas = $("lag-chart");
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 640;
  const h = canvas.clientHeight || 220;
  canvas.width = w * dpr;
  canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  const left = 64, right = 8, top = 8, bottom = 22;
  let max = 1024;
  for (const s of state.lag.values()) for (const p of s) max = Math.max(max, p.v);
  max *= 1.1;
  g.strokeStyle = "#dde1e8";
  g.fillStyle = "#6b7385";
  g.font = "11px system-ui, sans-serif";
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = top + (h - top - bottom) * (1 - i / 4);
    g.beginPath(); g.moveTo(left, y); g.lineTo(w - right, y); g.stroke();
    g.fillText(fmtBytes(Math.round(max * i / 4)), 4, y + 4);
  }
  // The window grows with the history we have: 1 min at first, up to 5 min.
  let first = now;
  for (const s of state.lag.values()) if (s.length) first = Math.min(first, s[0].t);
  const span = Math.min(HISTORY_MS, Math.max(60000, now - first));
  for (let m = 0; m <= 5; m++) {
    const x = left + (w - left - right) * (1 - m / 5);
    const secs = Math.round((span * m) / 5 / 1000);
    g.textAlign = m === 0 ? "right" : "center";
    g.fillText(m === 0 ? "now" : secs % 60 ? `-${secs}s` : `-${secs / 60}m`, x, h - 6);
  }
  g.textAlign = "left";
  const xOf = (t) => left + (w - left - right) * (1 - (now - t) / span);
  const yOf = (v) => top + (h - top - bottom) * (1 - v / max);
  const legend = $("lag-legend");
  legend.replaceChildren();
  let i = 0;
  for (const [id, s] of state.lag) {
    const color = COLORS[i++ % COLORS.length];
    g.strokeStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    s.forEach((p, k) => (k ? g.lineTo(xOf(p.t), yOf(p.v)) : g.moveTo(xOf(p.t), yOf(p.v))));
    g.stroke();
    const sw = el("i");
    sw.style.background = color;
    const last = s.length ? s[s.length - 1].v : 0;
    legend.append(el("span", {}, sw, `node ${id}: ${fmtBytes(last)}`));
  }
}

function renderLoad(data, now) {
  const byNode = new Map(data.nodes.map((n) => [n.id, n.statements]));
  const prev = state.prevStatements;
  state.prevStatements = { t: now, byNode };
  if (!prev) return;
  const dt = Math.max(0.001, (now - prev.t) / 1000);
  const rates = data.nodes.map((n) => ({
    id: n.id, rate: Math.max(0, (n.statements - (prev.byNode.get(n.id) ?? n.statements)) / dt),
  }));
  const total = rates.reduce((a, r) => a + r.rate, 0);
  $("qps").textContent = total.toFixed(1);
  const box = $("load");
  box.replaceChildren();
  for (const r of rates) {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${total > 0 ? (100 * r.rate) / total : 0}%`;
    const share = total > 0 ? ` (${((100 * r.rate) / total).toFixed(0)}%)` : "";
    box.append(el("div", { class: "bar" },
      el("span", { class: "name", text: `node ${r.id}` }),
      el("div", { class: "track" }, fill),
      el("span", { class: "n", text: `${r.rate.toFixed(1)}/s${share}` })));
  }
}

function renderEvents(data) {
  for (const e of data.events) {
    if (e.id > state.lastEventId) state.events.push(e);
  }
  state.lastEventId = Math.max(state.lastEventId, data.last_id);
  state.events = state.events.slice(-200);
  const list = $("events");
  list.replaceChildren(...state.events.slice().reverse().map((e) => el("li",
    { class: e.failure ? "failure" : "", "data-kind": e.kind },
    el("time", { text: new Date(e.unix_ms).toLocaleString() }),
    el("span", { class: "kind", text: e.kind }),
    e.node >= 0 ? `node ${e.node}: ` : "",
    e.message)));
  if (!state.events.length) list.append(el("li", { class: "muted", text: "no events yet" }));
}

function renderSessions(data) {
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  const rows = data.sessions || [];
  for (const s of rows.slice(0, 200)) {
    body.append(el("tr", {},
      el("td", { text: String(s.id) }),
      el("td", { text: s.user }),
      el("td", { text: s.database }),
      el("td", { text: s.application_name }),
      el("td", { text: s.client_address }),
      el("td", { text: s.nodes && s.nodes.length ? s.nodes.join(",")
                                                : s.node >= 0 ? String(s.node) : "–" }),
      el("td", { text: s.state }),
      el("td", { text: new Date(s.since).toLocaleTimeString() })));
  }
  const per = (data.workers || []).map((w) => `worker ${w.worker}: ${w.sessions}`).join(" · ");
  $("sessions-note").textContent =
    `${data.client_sessions} client sessions${per ? ` (${per})` : ""}` +
    (rows.length > 200 ? `; first 200 shown` : "");
}

async function poll() {
  if (state.busy) return;
  state.busy = true;
  try {
    const [st, nodes, events, sessions] = await Promise.all([
      getJson("/api/status"),
      getJson("/api/nodes"),
      getJson(`/api/events?after=${state.lastEventId}&limit=200`),
      getJson("/api/sessions"),
    ]);
    const now = Date.now();
    renderStatus(st);
    renderNodes(nodes);
    recordLag(nodes, now);
    drawLag(now);
    renderLoad(nodes, now);
    renderEvents(events);
    renderSessions(sessions);
    document.body.setAttribute("data-loaded", "true");
  } catch (err) {
    const h = $("health");
    h.className = "pill bad";
    h.textContent = `unreachable: ${err.message}`;
  } finally {
    state.busy = false;
  }
}

// ---- actions: token + confirmation, then POST ----

function confirmAction(title, text) {
  const d = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "";
    d.showModal();
  });
}

async function post(path, body) {
  const token = $("token").value.trim();
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let r;
  try {
    r = await fetch(path, { method: "POST", headers, body: body ? JSON.stringify(body) : "" });
  } catch (err) {
    toast(`request failed: ${err.message}`, true);
    return;
  }
  let msg = "";
  try {
    const j = await r.json();
    msg = j.message || j.error || "";
  } catch (_) { /* not JSON */ }
  if (r.ok) {
    toast(`done: ${msg}`, false);
  } else {
    const why = r.status === 401 ? "missing token" : r.status === 403 ? "refused" : "failed";
    toast(`${why} (HTTP ${r.status}): ${msg}`, true);
  }
  poll();
}

function describeNode(id) {
  const n = state.nodes.find((x) => x.id === id);
  return n ? `node ${id} (${n.hostname}:${n.port}, ${n.role}, ${n.status})` : `node ${id}`;
}

async function onNodeAction(action, id) {
  const words = {
    detach: "It stops getting statements; a detached primary triggers a failover.",
    attach: "It is put back into use.",
    promote: "It becomes the primary (failover to it).",
  };
  const ok = await confirmAction(`${action[0].toUpperCase()}${action.slice(1)} node ${id}?`,
    `${action} ${describeNode(id)}. ${words[action]}`);
  if (ok) await post(`/api/nodes/${id}/${action}`);
}

function init() {
  const saved = sessionStorage.getItem("pgpilot-token");
  if (saved) $("token").value = saved;
  $("token").addEventListener("change", (e) => sessionStorage.setItem("pgpilot-token", e.target.value));
  $("nodes").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]");
    if (b) onNodeAction(b.getAttribute("data-action"), Number(b.getAttribute("data-node")));
  });
  $("switchover").addEventListener("click", async () => {
    const id = Number($("switchover-node").value);
    if (Number.isNaN(id)) return;
    const ok = await confirmAction(`Switchover to node ${id}?`,
      `Planned switchover: new statements are held, ${describeNode(id)} catches up and becomes the primary.`);
    if (ok) await post("/api/switchover", { node: id });
  });
  poll();
  setInterval(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", init);
