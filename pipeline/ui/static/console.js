// ITD console: alerts pushed by server-sent events (/api/events), camera health every second, live views
// refreshed at each camera's published rate, their captions naming the frame the image shows. No credentials ever reach this page (the browser sends them).
"use strict";

const MAX_ALERTS = 500;
const seen = new Set();
const cameras = new Map();  // name -> {card, info, loop}
const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const num = (v, d) => (v === null || v === undefined) ? "–" : Number(v).toFixed(d);
const clock = (t) => t ? new Date(t * 1000).toLocaleTimeString() : "–";
const isSnapshot = (url) => typeof url === "string" && url.startsWith("/snapshots/");

// ------------------------------------------------------------------ banner / connection state
const problems = {server: null, redis: null};
function showProblems() {
  const text = problems.server || problems.redis;
  const banner = $("#banner");
  banner.hidden = !text;
  banner.textContent = text ? `${text} — retrying; the page updates by itself when it is back.` : "";
  const pill = $("#redis-state");
  pill.className = "pill " + (problems.server ? "unknown" : problems.redis ? "down" : "ok");
  pill.textContent = problems.server ? "console server unreachable" : problems.redis ? "Redis down" : "Redis connected";
}

// ------------------------------------------------------------------ alert feed
function filtersAllow(a) {
  const cam = $("#filter-camera").value;
  const events = [...document.querySelectorAll(".filter-event:checked")].map((c) => c.value);
  return (!cam || a.camera === cam) && events.includes(a.event);
}

function applyFilters() {
  for (const li of $("#feed").children) li.hidden = !filtersAllow(li._alert);
  $("#no-alerts").hidden = [...$("#feed").children].some((li) => !li.hidden);
}

function addCameraOption(name) {
  const select = $("#filter-camera");
  if ([...select.options].some((o) => o.value === name)) return;
  select.append(new Option(name, name));
}

function addAlert(a, id) {
  if (!id || seen.has(id)) return;
  seen.add(id);
  const li = el("li", "alert fresh");
  li._alert = a;
  Object.assign(li.dataset, {id, camera: a.camera, event: a.event, track: a.track_id,
                             publishedAt: a.published_at ?? "", shownAt: String(Date.now() / 1000)});
  if (isSnapshot(a.snapshot_url)) {
    const img = el("img", "chip");
    img.alt = `track ${a.track_id}`;
    img.src = a.snapshot_url + "/chip";
    li.append(img);
  } else {
    li.append(el("div", "nochip muted", "no picture"));
  }
  const body = el("div");
  const line1 = el("div", "line1");
  line1.append(el("span", "event " + a.event, a.event), el("span", "cam", a.camera),
               el("span", "track", `track ${a.track_id}`), el("span", "time muted", clock(a.published_at || a.captured_at)));
  const speed = Math.hypot(a.vx || 0, a.vy || 0);
  const line2 = el("div", "line2",
    `score ${num(a.score, 2)} · v ${num(speed, 2)} px/frame (${num(a.vx, 2)}, ${num(a.vy, 2)}) · x ${num(a.x, 1)} y ${num(a.y, 1)}` +
    (a.reason ? ` · ${a.reason}` : ""));
  body.append(line1, line2);
  li.append(body);
  li.addEventListener("click", () => openModal(a));
  const feed = $("#feed");
  feed.prepend(li);
  while (feed.children.length > MAX_ALERTS) {
    seen.delete(feed.lastElementChild.dataset.id);
    feed.lastElementChild.remove();
  }
  addCameraOption(a.camera);
  li.hidden = !filtersAllow(a);
  if (!li.hidden) $("#no-alerts").hidden = true;
}

// ------------------------------------------------------------------ big snapshot
function openModal(a) {
  const img = $("#modal-frame"), missing = $("#modal-missing");
  missing.hidden = true;
  img.hidden = false;
  if (isSnapshot(a.snapshot_url)) {
    img.onerror = () => { img.hidden = true; missing.hidden = false; };
    img.src = a.snapshot_url;
  } else {
    img.hidden = true;
    missing.textContent = "No snapshot for this alert";
    missing.hidden = false;
  }
  const dl = $("#modal-details");
  dl.replaceChildren();
  const rows = [["camera", a.camera], ["event", a.event], ["track", a.track_id], ["time", clock(a.published_at || a.captured_at)],
                ["score", num(a.score, 3)], ["top score", num(a.top_score, 3)], ["x, y", `${num(a.x, 1)}, ${num(a.y, 1)}`],
                ["w × h", `${num(a.w, 1)} × ${num(a.h, 1)}`], ["velocity", `${num(a.vx, 2)}, ${num(a.vy, 2)} px/frame`],
                ["frame", a.frame_index], ["hits", a.hits ?? "–"], ["reason", a.reason || "–"]];
  for (const [k, v] of rows) dl.append(el("dt", "", k), el("dd", "", String(v)));
  $("#modal").hidden = false;
}
function closeModal() { $("#modal").hidden = true; $("#modal-frame").removeAttribute("src"); }

// ------------------------------------------------------------------ cameras
function metricsUrl(m) {
  if (!m) return null;
  const host = (!m.host || m.host === "0.0.0.0" || m.host === "::") ? location.hostname : m.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${m.port}/metrics`;
}

function cameraCard(name) {
  const card = el("article", "camera");
  card.dataset.camera = name;
  const head = el("div", "head");
  head.append(el("span", "name", name), el("span", "status unknown", "…"), el("span", "figures"));
  const view = el("div", "view");
  const img = el("img", "live");
  img.alt = `${name} live`;
  img.hidden = true;
  const missing = el("div", "missing live-missing", "no live view");
  view.append(img, missing);
  const foot = el("div", "foot");
  card.append(head, view, foot);
  const entry = {card, info: {}, timer: null, url: null, frame: null};
  cameras.set(name, entry);
  return entry;
}

// The live image is fetched (not set as an <img> URL) so that its frame number (X-Frame-Index) reaches the
// caption with it, and only while the camera publishes one (no 404s for a finished camera: it keeps its last).
async function refreshLive(name) {
  const entry = cameras.get(name);
  if (!entry) return;
  const img = $("img.live", entry.card), missing = $(".live-missing", entry.card);
  let wait = 1000 / Math.max(0.2, entry.info.live_fps || 4);
  if (entry.info.live) {
    try {
      const r = await fetch(`/live/${encodeURIComponent(name)}.jpg?t=${Date.now()}`, {cache: "no-store"});
      if (r.ok) {
        const old = entry.url;
        entry.url = URL.createObjectURL(await r.blob());
        img.onload = () => { if (old) URL.revokeObjectURL(old); };
        img.src = entry.url;
        img.hidden = false;
        missing.hidden = true;
        entry.frame = r.headers.get("X-Frame-Index");
        showFoot(entry);
      } else {
        wait = 2000;
      }
    } catch (e) {
      wait = 2000;
    }
  } else if (!entry.url) {
    img.hidden = true;
    missing.hidden = false;
  }
  if (cameras.get(name) === entry) entry.timer = setTimeout(() => refreshLive(name), wait);
}

function showFoot(entry) {
  const c = entry.info;
  const foot = $(".foot", entry.card);
  // the reason of an online camera is its source (a URL or a local path): shown as the status' tooltip only
  const why = c.reason && !["online", "finished"].includes(c.status) ? c.reason + " · " : "";
  const frame = entry.frame ?? c.frame_index ?? "–";
  foot.replaceChildren(el("span", "", why), el("span", "frame", `frame ${frame}`),
                       el("span", "", ` · updated ${clock(c.updated_at)}`));
  const url = metricsUrl(c.metrics);
  if (url) { foot.append(" · "); const a = el("a", "", "metrics"); a.href = url; a.target = "_blank"; foot.append(a); }
}

function forgetCamera(name) {
  const entry = cameras.get(name);
  clearTimeout(entry.timer);
  if (entry.url) URL.revokeObjectURL(entry.url);
  entry.card.remove();
  cameras.delete(name);
}

function renderCameras(list) {
  const box = $("#cameras");
  $("#no-cameras").hidden = list.length > 0;
  const listed = new Set(list.map((c) => c.camera));
  for (const name of [...cameras.keys()]) if (!listed.has(name)) forgetCamera(name);  // ended long enough ago
  let metrics = null;
  for (const c of list) {
    let entry = cameras.get(c.camera);
    const fresh = !entry;
    if (fresh) {
      entry = cameraCard(c.camera);
      box.append(entry.card);
      addCameraOption(c.camera);
    }
    entry.info = c;
    if (fresh) refreshLive(c.camera);
    const status = $(".status", entry.card);
    status.className = "status " + c.status;
    status.textContent = c.status;
    status.title = c.reason || "";
    $(".figures", entry.card).textContent = `${num(c.fps, 1)} fps · ${c.dropped ?? "–"} dropped`;
    metrics = metrics || metricsUrl(c.metrics);
    showFoot(entry);
  }
  const link = $("#metrics-link");
  link.hidden = !metrics;
  if (metrics) link.href = metrics;
}

// ------------------------------------------------------------------ wiring
function connect() {
  const es = new EventSource("/api/events");
  es.addEventListener("open", () => { problems.server = null; showProblems(); });
  es.addEventListener("error", () => { problems.server = "Console server unreachable"; showProblems(); });
  es.addEventListener("redis", (e) => { const s = JSON.parse(e.data); problems.redis = s.ok ? null : s.error; showProblems(); });
  es.addEventListener("alert", (e) => addAlert(JSON.parse(e.data), e.lastEventId));
  es.addEventListener("cameras", (e) => renderCameras(JSON.parse(e.data)));
}

document.addEventListener("DOMContentLoaded", () => {
  $("#filter-camera").addEventListener("change", applyFilters);
  for (const c of document.querySelectorAll(".filter-event")) c.addEventListener("change", applyFilters);
  $("#modal-close").addEventListener("click", closeModal);
  $("#modal").addEventListener("click", (e) => { if (e.target.id === "modal") closeModal(); });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeModal(); });
  connect();
});
