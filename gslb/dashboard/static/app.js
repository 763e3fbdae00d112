// The gslb dashboard: plain JavaScript over the REST API, no build step, nothing from a CDN.
//
// State comes from the API (zones, health, nodes, checkers, load, answers, audit, history)
// and is re-read whenever the event stream (Server-Sent Events, read with fetch so that the
// token travels in a header, never in a cookie) says something changed, and every few
// seconds for the counters. Views are rendered from that state by plain functions.
"use strict";

const API = "/api/v1";
const REFRESH_EVERY = 2000; // ms: counters (queries/s, answers, RTT samples)
const KEEP_SAMPLES = 150; // RTT samples per member kept for the plot (5 minutes at 2 s)
const KEEP_BUCKETS = 30; // answer buckets of 10 s kept for the plot (5 minutes)

const state = {
  token: sessionStorage.getItem("gslb-token") || "",
  canRead: false,
  zones: {}, // name -> zone document
  health: { members: {}, checkers: {} },
  nodes: {},
  load: {},
  answers: {}, // bucket start -> member key -> count
  bucketSeconds: 10,
  rtt: { times: [], by: {} }, // sample times, and member key -> ms at each (null: none)
  audit: [],
  history: [],
  dnssec: {}, // zone -> its keys and rollover state (GET /zones/{zone}/dnssec), signed zones only
  streamUp: false,
  redisUp: true,
};

const $ = (selector, root = document) => root.querySelector(selector);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "colour") node.style.background = value; // CSSOM: allowed by the CSP
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// --- talking to the API -----------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers["Authorization"] = `Bearer ${state.token}`;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const body = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

async function refresh() {
  const [list, health, nodes, load, answers, audit, history] = await Promise.all([
    api("/zones"),
    api("/health"),
    api("/nodes"),
    api("/load"),
    api("/answers"),
    api("/audit?limit=200"),
    api("/history?limit=200"),
  ]);
  const documents = await Promise.all(list.zones.map((z) => api(`/zones/${encodeURIComponent(z.zone)}`)));
  state.zones = {};
  list.zones.forEach((z, i) => (state.zones[z.zone] = documents[i]));
  const signed = list.zones.filter((z, i) => documents[i].dnssec);
  const views = await Promise.all(signed.map((z) => api(`/zones/${encodeURIComponent(z.zone)}/dnssec`)));
  state.dnssec = {};
  signed.forEach((z, i) => (state.dnssec[z.zone] = views[i]));
  state.health = health;
  state.nodes = nodes.nodes;
  state.load = load.members;
  Object.assign(state.answers, answers.buckets);
  state.bucketSeconds = answers.bucket_seconds || 10;
  const starts = Object.keys(state.answers).map(Number).sort((a, b) => a - b);
  for (const old of starts.slice(0, Math.max(0, starts.length - KEEP_BUCKETS))) delete state.answers[old];
  state.audit = audit.records;
  state.history = history.changes;
  // One row of RTT samples per refresh, every member in it (null where it has none), so
  // that the plot's series share their times.
  const rtt = state.rtt;
  rtt.times.push(Date.now() / 1000);
  for (const key of new Set([...Object.keys(rtt.by), ...Object.keys(health.members)])) {
    const member = health.members[key];
    const series = (rtt.by[key] = rtt.by[key] || Array(rtt.times.length - 1).fill(null));
    series.push(member && member.rtt !== null && member.rtt !== undefined ? member.rtt * 1000 : null);
  }
  if (rtt.times.length > KEEP_SAMPLES) {
    rtt.times.shift();
    for (const series of Object.values(rtt.by)) series.shift();
  }
  render();
}

let refreshing = null;
let again = false;
function scheduleRefresh() {
  // One refresh at a time; a burst of events while one runs makes exactly one more.
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = refresh()
    .then(() => {
      // Every read went through the server to Redis: both are there.
      setServerLost(false);
      setRedisLost(false);
    })
    .catch(handleFailure)
    .finally(() => {
      refreshing = null;
      if (again) {
        again = false;
        scheduleRefresh();
      }
    });
}

function handleFailure(error) {
  if (error instanceof ApiError && error.status === 401) {
    showLogin("The token was refused. Give another one.");
  } else if (error instanceof ApiError && error.status === 503) {
    setRedisLost(true);
  } else if (!(error instanceof ApiError)) {
    setServerLost(true);
  }
}

// --- the event stream ---------------------------------------------------------------------

async function followEvents() {
  // EventSource cannot send an Authorization header, so the stream is read with fetch.
  for (;;) {
    try {
      const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
      const response = await fetch(`${API}/events`, { headers, cache: "no-store" });
      if (response.status === 401) {
        showLogin("The token was refused. Give another one.");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
      setStream(true);
      scheduleRefresh();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      // fall through: reconnect
    }
    setStream(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function onEvent(block) {
  let kind = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (kind === "hello" || kind === "redis") {
    const info = JSON.parse(data || "{}");
    setRedisLost(info.redis === "down" || info.state === "down");
    if (kind === "redis" && info.state === "up") scheduleRefresh();
    return;
  }
  if (kind === "config" || kind === "health") scheduleRefresh();
}

function setStream(up) {
  state.streamUp = up;
  const live = $("#live");
  live.textContent = up ? "live" : "reconnecting…";
  live.className = "live " + (up ? "on" : "off");
  setServerLost(!up);
}

let serverLost = false;
let redisLost = false;
function setServerLost(lost) {
  serverLost = lost;
  showBanner();
}
function setRedisLost(lost) {
  redisLost = lost;
  showBanner();
}
function showBanner() {
  const banner = $("#banner");
  if (serverLost) {
    banner.textContent = "Connection to the gslb server lost — reconnecting. What you see may be out of date.";
  } else if (redisLost) {
    banner.textContent = "The server has lost its connection to Redis — DNS answers from its last state; changes cannot be saved.";
  } else {
    banner.hidden = true;
    return;
  }
  banner.hidden = false;
}

// --- what the state means -----------------------------------------------------------------

function parseIp(text) {
  // An address as [BigInt, bits], or null.
  if (text.includes(":")) {
    let [head, tail] = text.split("::");
    const h = head ? head.split(":") : [];
    const t = tail !== undefined ? (tail ? tail.split(":") : []) : [];
    if (tail === undefined && h.length !== 8) return null;
    const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
    let value = 0n;
    for (const g of groups) value = (value << 16n) + BigInt(parseInt(g || "0", 16));
    return [value, 128];
  }
  const parts = text.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) return null;
  return [parts.reduce((v, p) => (v << 8n) + BigInt(p), 0n), 32];
}

function inNetwork(address, cidr) {
  const [net, prefix] = cidr.split("/");
  const a = parseIp(address);
  const n = parseIp(net);
  if (!a || !n || a[1] !== n[1]) return false;
  const shift = BigInt(a[1] - Number(prefix));
  return a[0] >> shift === n[0] >> shift;
}

function ispOf(zone, member) {
  if (member.isp) return member.isp;
  for (const [name, blocks] of Object.entries(zone.isps || {})) {
    if (blocks.some((cidr) => inNetwork(member.address, cidr))) return name;
  }
  return "";
}

function poolsOf() {
  const out = [];
  for (const [zoneName, zone] of Object.entries(state.zones)) {
    for (const [name, pool] of Object.entries(zone.pools || {})) {
      const members = pool.members.map((m) => {
        const key = `${zoneName}/${name}/${m.address}`;
        const decided = state.health.members[key];
        // No monitor (the pool's, or a member marked monitored: false): nothing checks it,
        // and the page says so rather than painting it a healthy green.
        const monitored = Boolean(pool.monitor) && m.monitored !== false;
        return {
          ...m,
          key,
          admin: m.state || "enabled",
          health: !monitored ? "unmonitored" : decided ? decided.health : "unknown",
          decided,
        };
      });
      const usable = members.filter((m) => m.admin === "enabled" && m.health !== "down");
      out.push({ zoneName, zone, name, pool, members, onFallback: usable.length === 0 });
    }
  }
  return out;
}

function answersFor(key) {
  return Object.values(state.answers).reduce((sum, bucket) => sum + (bucket[key] || 0), 0);
}

function recentAnswers(key) {
  const starts = Object.keys(state.answers).map(Number).sort((a, b) => a - b).slice(-3);
  return starts.reduce((sum, s) => sum + (state.answers[s][key] || 0), 0);
}

const ago = (t) => {
  const s = Math.max(0, Date.now() / 1000 - t);
  return s < 90 ? `${Math.round(s)} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};
const HEALTH_TEXT = { unmonitored: "not monitored" };
const healthText = (h) => HEALTH_TEXT[h] || h;
const ms = (seconds) => (seconds === null || seconds === undefined ? "–" : `${(seconds * 1000).toFixed(1)} ms`);

// --- views ----------------------------------------------------------------------------------

function route() {
  const hash = location.hash || "#/overview";
  const [, view, ...rest] = hash.split("/");
  return { view: view || "overview", args: rest.map(decodeURIComponent) };
}

function render() {
  const { view, args } = route();
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("header nav a")) {
    link.toggleAttribute("aria-current", link.id === `nav-${view}`);
    if (link.id === `nav-${view}`) link.setAttribute("aria-current", "page");
  }
  if (view === "overview") renderOverview();
  if (view === "pool") renderPool(args[0], args[1]);
  if (view === "events") renderEvents();
  if (view === "sites") renderSites();
}

// The name a pool answers (its `name`, else its key), not its key: `www-v6` answers
// www.gslb.example.com AAAA, and www-v6.gslb.example.com does not exist.
function answered(p) {
  const relative = p.pool.name || p.name;
  return relative === "@" ? p.zoneName : `${relative}.${p.zoneName}`;
}

function poolLabel(p) {
  const own = answered(p);
  const key = (p.pool.name || p.name) === p.name ? "" : ` (pool ${p.name})`;
  return `${own} ${p.pool.type || "A"}${key}`;
}

function renderOverview() {
  const cards = poolsOf().map((p) => {
    const count = (pred) => p.members.filter(pred).length;
    const href = `#/pool/${encodeURIComponent(p.zoneName)}/${encodeURIComponent(p.name)}`;
    return el(
      "article",
      { class: "card" + (p.onFallback ? " alarm" : ""), dataset: { pool: `${p.zoneName}/${p.name}` } },
      el("h3", {}, el("a", { href }, answered(p)), ` ${poolLabel(p).slice(answered(p).length + 1)}`),
      p.onFallback ? el("p", { class: "alarm-text" }, `On fallback (${JSON.stringify(p.pool.fallback || "all")}): no healthy member`) : null,
      el(
        "p",
        { class: "counts" },
        el("span", { class: "count-up" }, `${count((m) => m.health === "up" && m.admin === "enabled")} up`),
        el("span", { class: "count-down" }, `${count((m) => m.health === "down")} down`),
        el("span", { class: "count-drained" }, `${count((m) => m.admin !== "enabled")} drained/disabled`),
        el("span", { class: "count-unknown" }, `${count((m) => m.health === "unknown")} unknown`),
        count((m) => m.health === "unmonitored")
          ? el("span", { class: "count-unmonitored" }, `${count((m) => m.health === "unmonitored")} not monitored`)
          : null
      ),
      el(
        "div",
        { class: "chips" },
        p.members.map((m) =>
          el("span", { class: "chip", title: `${healthText(m.health)}, ${m.admin}`, dataset: { member: m.key, health: m.health, admin: m.admin } }, m.address)
        )
      )
    );
  });
  $("#pools").replaceChildren(...(cards.length ? cards : [el("p", {}, "No pools yet.")]));
  // Signed zones: their keys, and a rollover under way (docs/dnssec.md).
  $("#dnssec").replaceChildren(
    ...Object.values(state.dnssec).map((d) =>
      el(
        "p",
        { class: "dnssec", dataset: { zone: d.zone } },
        el("strong", {}, `${d.zone}: DNSSEC ${d.algorithm}`),
        `, key${d.keys.length > 1 ? "s" : ""} ${d.keys.map((k) => k.key_tag).join(" and ")}`,
        d.rollover !== "none" ? el("span", { class: "badge admin-drained" }, ` rollover ${d.rollover}: both keys sign; the parent should hold both DS`) : null,
        state.zones[d.zone] && state.zones[d.zone].dnssec && state.zones[d.zone].dnssec.withdraw ? el("span", { class: "badge admin-disabled" }, " withdrawing: CDS asks the parent to delete its DS") : null
      )
    )
  );
  // A node whose last reload was refused keeps serving what it had: say so, and why.
  const refused = Object.values(state.nodes).filter((n) => n.refused);
  $("#refusals").replaceChildren(
    ...refused.map((n) =>
      el(
        "article",
        { class: "card alarm refusal", dataset: { node: n.id } },
        el("h3", {}, `Zone files refused on ${n.id}`),
        el("p", {}, `${when(n.refused.at)}: the node keeps serving the zones it had.`),
        el("ul", { class: "mono" }, n.refused.errors.map((e) => el("li", {}, e)))
      )
    )
  );

  const nodes = Object.values(state.nodes).sort((a, b) => a.id.localeCompare(b.id));
  $("#nodes tbody").replaceChildren(
    ...nodes.map((n) =>
      el(
        "tr",
        { dataset: { node: n.id } },
        el("td", { class: "mono" }, n.id),
        el("td", {}, n.region),
        el("td", {}, n.roles.join(", ")),
        el("td", { class: "qps" }, n.qps.toFixed(1)),
        el("td", {}, n.version),
        el("td", { class: n.alive ? "health-up" : "health-down" }, n.alive ? "alive" : `silent since ${ago(n.seen)}`)
      )
    )
  );
  const checkers = Object.entries(state.health.checkers).sort();
  $("#checkers tbody").replaceChildren(
    ...checkers.map(([id, c]) =>
      el(
        "tr",
        { dataset: { checker: id } },
        el("td", { class: "mono" }, id),
        el("td", {}, c.region),
        el("td", {}, c.paths.join(", ")),
        el("td", {}, c.probes),
        el("td", { class: c.alive ? "health-up" : "health-down" }, c.alive ? "alive" : `silent since ${ago(c.seen)}`)
      )
    )
  );
}

function renderPool(zoneName, poolName) {
  const p = poolsOf().find((x) => x.zoneName === zoneName && x.name === poolName);
  if (!p) {
    $("#pool-title").textContent = `No pool ${poolName} in ${zoneName}`;
    return;
  }
  $("#pool-title").textContent = poolLabel(p);
  $("#pool-summary").replaceChildren(
    `policy: ${(p.pool.policy || ["health", "round_robin", "limit"]).join(" → ")}; monitor: ${p.pool.monitor || "none"}; TTL ${p.pool.ttl ?? 30} s`,
    p.onFallback ? el("strong", { class: "alarm-text" }, " — on fallback: no healthy member") : ""
  );
  $("#members tbody").replaceChildren(
    ...p.members.map((m) => {
      const load = state.load[m.address];
      const action =
        m.admin === "enabled"
          ? el("button", { type: "button", class: "drain danger", onclick: () => adminAction(p, m, "drain") }, "Drain")
          : el("button", { type: "button", class: "enable", onclick: () => adminAction(p, m, "enable") }, "Enable");
      return el(
        "tr",
        { dataset: { member: m.key, health: m.health, admin: m.admin } },
        el("td", { class: "mono" }, m.address),
        el("td", {}, m.site || ""),
        el("td", {}, ispOf(p.zone, m)),
        el("td", {}, m.weight ?? 1),
        el("td", {}, m.priority ?? 1),
        el("td", {}, m.admin === "enabled" ? "enabled" : el("span", { class: `badge admin-${m.admin}` }, m.admin)),
        el("td", { class: `health health-${m.health}`, title: m.decided ? `since ${ago(m.decided.since)}` : "" }, healthText(m.health)),
        el("td", {}, ms(m.decided && m.decided.rtt)),
        el("td", {}, load ? `${load.sessions ?? "–"} sessions, CPU ${load.cpu ?? "–"}${load.fresh ? "" : " (stale)"}` : "–"),
        el("td", { class: "answers" }, recentAnswers(m.key)),
        el("td", {}, action)
      );
    })
  );
  // The matrix: a column per checker and path seen for any member of the pool.
  const columns = [...new Set(p.members.flatMap((m) => Object.keys((m.decided && m.decided.checkers) || {})))].sort();
  $("#matrix thead").replaceChildren(el("tr", {}, el("th", {}, "member"), columns.map((c) => el("th", { class: "mono" }, c.replace("|", " via ")))));
  $("#matrix tbody").replaceChildren(
    ...p.members.map((m) =>
      el(
        "tr",
        { dataset: { member: m.key } },
        el("td", { class: "mono" }, m.address),
        columns.map((c) => {
          const seen = m.decided && m.decided.checkers[c];
          if (!seen) return el("td", {}, "–");
          return el(
            "td",
            { class: `health-${seen.fresh ? seen.vote : "unknown"}`, title: seen.error || "", dataset: { cell: `${m.address} ${c}` } },
            seen.fresh ? seen.vote : `${seen.vote} (stale)`,
            el("small", {}, seen.ok ? ms(seen.rtt) : seen.error || "failed"),
            el("small", {}, `since ${ago(seen.since)}`)
          );
        })
      )
    )
  );
  renderPlots(p);
}

// Member lines: one scale of blues, purples and teals, so that no line looks like a health
// state (green up, red down, amber drained, grey disabled and unknown).
const COLOURS = ["#0969da", "#8250df", "#0a7ea4", "#bf3989", "#3e63dd", "#1b7c83", "#6639ba", "#5a7fa8"];
const plots = {}; // element id -> uPlot instance (window.gslbPlots, for the tests)
window.gslbPlots = plots;

function renderPlots(p) {
  const now = Date.now() / 1000;
  // Only finished buckets: the one still filling would draw a dip that is not there.
  const starts = Object.keys(state.answers)
    .map(Number)
    .filter((s) => s + state.bucketSeconds <= now)
    .sort((a, b) => a - b);
  const labels = p.members.map((m) => m.address);
  drawPlot("plot-answers", "answers / 10 s", labels, starts, p.members.map((m) => starts.map((s) => state.answers[s][m.key] || 0)));
  const rtt = state.rtt;
  drawPlot("plot-rtt", "ms", labels, rtt.times, p.members.map((m) => rtt.by[m.key] || rtt.times.map(() => null)));
}

function drawPlot(id, unit, labels, xs, ys) {
  const box = document.getElementById(id);
  const data = [xs, ...ys];
  const existing = plots[id];
  const shape = JSON.stringify([unit, labels]);
  const width = Math.max(240, box.clientWidth - 8);
  if (existing && existing.gslbShape === shape && existing.root.isConnected) {
    if (Math.abs(existing.width - width) > 4) existing.setSize({ width, height: 200 });
    existing.setData(data);
    return;
  }
  if (existing) existing.destroy();
  const plot = new uPlot(
    {
      width,
      height: 200,
      // A time axis of clock times; a y axis from zero, with its unit, to a round number.
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, niceCeiling(Math.max(1, max || 0))] } },
      axes: [
        { stroke: "#57606a", grid: { stroke: "#eaeef2" } },
        {
          label: unit,
          stroke: "#57606a",
          grid: { stroke: "#eaeef2" },
          values: (u, ticks) => ticks.map(formatValue),
          // Answers are counted: whole ticks only.
          incrs: unit.startsWith("answers") ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 1e5, 1e6] : undefined,
        },
      ],
      series: [{}, ...labels.map((label, i) => ({ label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true }))],
    },
    data,
    box
  );
  plot.gslbShape = shape;
  plot.gslbColours = labels.map((_, i) => COLOURS[i % COLOURS.length]);
  plots[id] = plot;
}

function niceCeiling(v) {
  const step = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * step) return m * step;
  return 10 * step;
}

function formatValue(v) {
  return v >= 10 || v === 0 ? v.toFixed(0) : v.toFixed(v >= 1 ? 1 : 2);
}

// A moment as a person reads it: the date, the time and the time zone.
function when(t) {
  return new Date(t * 1000).toLocaleString([], {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
  });
}

function renderEvents() {
  const items = [
    ...state.history.map((h) => ({
      at: h.at,
      cls: `health-${h.health}-event`,
      text: `${h.member} is ${h.health}${h.was ? ` (was ${h.was})` : ""}${h.paths_down.length ? `, paths down: ${h.paths_down.join(", ")}` : ""} — decided by ${h.checker}`,
      detail: null,
    })),
    ...state.audit.map((a) =>
      a.action === "refuse"
        ? { at: a.at, cls: "refused-event", text: `${a.who}: refused ${a.resource}, nothing changed`, detail: el("ul", { class: "mono" }, a.errors.map((e) => el("li", {}, e))) }
        : { at: a.at, cls: "config-event", text: `${a.who}: ${a.action} ${a.resource}`, detail: changes(a.before, a.after) }
    ),
  ].sort((a, b) => b.at - a.at);
  $("#events").replaceChildren(
    ...items.map((item) =>
      el(
        "li",
        { class: item.cls },
        el("time", { datetime: new Date(item.at * 1000).toISOString() }, when(item.at)),
        item.text,
        item.detail
      )
    )
  );
}

// What a configuration change changed: one line per field, path: before → after.
function changes(before, after) {
  const lines = diff(before, after, "");
  if (!lines.length) return null;
  const shown = lines.slice(0, 30).map(({ path, was, now }) =>
    el(
      "li",
      {},
      el("code", {}, path || "(all)"),
      ": ",
      was === undefined ? el("ins", {}, short(now)) : now === undefined ? el("del", {}, short(was)) : [el("del", {}, short(was)), " → ", el("ins", {}, short(now))]
    )
  );
  if (lines.length > 30) shown.push(el("li", {}, `… and ${lines.length - 30} more`));
  return el("details", { class: "diff" }, el("summary", {}, `${lines.length} change${lines.length === 1 ? "" : "s"}`), el("ul", {}, shown));
}

function diff(was, now, path) {
  if (JSON.stringify(was) === JSON.stringify(now)) return [];
  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObject(was) && isObject(now)) {
    const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
    return keys.flatMap((k) => diff(was[k], now[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(was) && Array.isArray(now)) {
    // Members are known by address: a drain is one member's state, not "members[2]".
    const byAddress = (list) => list.every((m) => isObject(m) && typeof m.address === "string");
    if (byAddress(was) && byAddress(now)) {
      const index = (list) => Object.fromEntries(list.map((m) => [m.address, m]));
      const a = index(was), b = index(now);
      const addresses = [...new Set([...Object.keys(a), ...Object.keys(b)])];
      return addresses.flatMap((k) => diff(a[k], b[k], `${path}[${k}]`));
    }
  }
  return [{ path, was, now }];
}

function short(value) {
  const text = JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 77) + "…" : text;
}

// --- sites ------------------------------------------------------------------------------------

function renderSites() {
  const all = poolsOf();
  const blocks = Object.entries(state.zones).map(([zoneName, zone]) => {
    const pools = all.filter((p) => p.zoneName === zoneName);
    const members = pools.flatMap((p) => p.members);
    const led = (m) => answersFor(m.key);
    const total = members.reduce((sum, m) => sum + led(m), 0);
    const names = [...new Set([...Object.keys(zone.sites || {}), ...members.map((m) => m.site).filter(Boolean)])];
    if (members.some((m) => !m.site)) names.push("");
    const regions = {};
    for (const name of names) {
      const site = (zone.sites || {})[name] || {};
      const region = name ? site.continent || site.country || "region unknown" : "no site";
      (regions[region] = regions[region] || []).push([name, site]);
    }
    const rows = Object.entries(regions)
      .sort()
      .flatMap(([region, sites]) => [
        el("tr", { class: "region" }, el("th", { colspan: 5 }, region)),
        ...sites.sort().map(([name, site]) => {
          const here = members.filter((m) => (m.site || "") === name);
          const share = total ? (100 * here.reduce((sum, m) => sum + led(m), 0)) / total : 0;
          const count = (h) => here.filter((m) => m.health === h && m.admin === "enabled").length;
          return el(
            "tr",
            { dataset: { site: `${zoneName}/${name}` } },
            el("td", {}, name || "(members without a site)"),
            el("td", {}, [site.country, site.lat !== undefined && site.lat !== null ? `${site.lat}, ${site.lon}` : null].filter(Boolean).join(" · ")),
            el(
              "td",
              { class: "counts" },
              ["up", "down", "unknown", "unmonitored"].map((h) => (count(h) ? el("span", { class: `count-${h}` }, `${count(h)} ${healthText(h)}`) : null)),
              here.some((m) => m.admin !== "enabled") ? el("span", {}, `${here.filter((m) => m.admin !== "enabled").length} drained/disabled`) : null
            ),
            el("td", {}, el("div", { class: "chips" }, here.map((m) => el("span", { class: "chip", dataset: { member: m.key, health: m.health, admin: m.admin }, title: `${m.key}: ${healthText(m.health)}, ${m.admin}` }, m.address)))),
            el("td", { class: "share", dataset: { share: share.toFixed(1) } }, el("span", { class: "bar", colour: COLOURS[0], style: null }), `${share.toFixed(0)} %`)
          );
        }),
      ]);
    return el(
      "div",
      { class: "scroll" },
      el("h3", {}, zoneName),
      el(
        "table",
        { class: "grid sites" },
        el("thead", {}, el("tr", {}, el("th", {}, "site"), el("th", {}, "where"), el("th", {}, "health"), el("th", {}, "members"), el("th", {}, `answers, last ${Math.round((Object.keys(state.answers).length * state.bucketSeconds) / 60) || 1} min`))),
        el("tbody", {}, rows)
      )
    );
  });
  $("#sites").replaceChildren(...(blocks.length ? blocks : [el("p", {}, "No zones yet.")]));
  // The bars' widths, set through the CSSOM (the page's policy allows no inline styles).
  for (const cell of document.querySelectorAll("#sites td.share")) {
    cell.querySelector(".bar").style.width = `${Math.min(100, Number(cell.dataset.share))}%`;
  }
}

// --- actions --------------------------------------------------------------------------------

function confirmAction(text) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
    $("#confirm-no").focus();
  });
}

async function adminAction(p, member, action) {
  const verb = action === "drain" ? "Drain" : "Enable";
  const what = action === "drain" ? "No new answers will name it; its health checks go on." : "It goes back into the answers when healthy.";
  if (!(await confirmAction(`${verb} ${member.address} in ${poolLabel(p)}? ${what}`))) return;
  const path = `/zones/${encodeURIComponent(p.zoneName)}/pools/${encodeURIComponent(p.name)}/members/${encodeURIComponent(member.address)}/${action}`;
  try {
    await api(path, { method: "POST" });
    scheduleRefresh();
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
      showLogin(`${verb} needs a write token: ${error.message}`);
    } else {
      alert(`${verb} failed: ${error.message}`);
    }
  }
}

async function explainSubmit(event) {
  event.preventDefault();
  const params = new URLSearchParams({
    client: $("#explain-client").value.trim(),
    name: $("#explain-name").value.trim(),
    type: $("#explain-type").value,
  });
  if ($("#explain-subnet").value) params.set("subnet", $("#explain-subnet").value);
  const out = $("#explain-result");
  try {
    const r = await api(`/explain?${params}`);
    const loc = r.location;
    const where = !r.geoip
      ? "no GeoIP database"
      : !loc || loc.lat === null
        ? `unknown (GeoIP block ${loc ? loc.network : "?"})`
        : `${[loc.city, loc.country, loc.continent].filter(Boolean).join(", ")} (${loc.lat}, ${loc.lon}), block ${loc.network}${loc.asn ? `, AS${loc.asn}` : ""}`;
    out.replaceChildren(
      el("p", {}, el("strong", {}, "Client location: "), where),
      el("p", {}, el("strong", {}, `Answer (${r.rcode}, ECS scope ${r.ecs_scope ?? "none: no ECS in the query"}):`)),
      el("pre", { id: "explain-answer" }, (r.answer || []).join("\n") || "(no records)"),
      ...r.pools.map((pool) =>
        el(
          "div",
          {},
          el("h3", {}, `pool ${pool.pool} (${pool.type}): ${pool.policy.join(" → ")}`),
          el(
            "table",
            { class: "grid" },
            el("thead", {}, el("tr", {}, el("th", {}, "step"), el("th", {}, "kept, in order"), el("th", {}, "dropped"), el("th", {}, "notes"))),
            el(
              "tbody",
              {},
              pool.steps.map((s) =>
                el("tr", {}, el("td", {}, s.step), el("td", { class: "mono" }, s.kept.join(" ") || "(none)"), el("td", { class: "mono" }, s.dropped.join(" ")), el("td", {}, s.notes.join("; ")))
              )
            )
          ),
          pool.fallback ? el("p", {}, `fallback used: ${pool.fallback} (answered by ${pool.answered_by})`) : null
        )
      )
    );
  } catch (error) {
    out.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

// --- start ------------------------------------------------------------------------------------

function showLogin(message) {
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#token").focus();
}

async function signIn(event) {
  event.preventDefault();
  state.token = $("#token").value.trim();
  try {
    await api("/zones");
  } catch (error) {
    $("#login-error").textContent = error instanceof ApiError && error.status === 401 ? "Unknown token." : error.message;
    return;
  }
  sessionStorage.setItem("gslb-token", state.token);
  $("#token").value = "";
  $("#login").hidden = true;
  $("#sign-out").hidden = false;
  start();
}

let started = false;
function start() {
  render();
  if (started) {
    scheduleRefresh();
    return;
  }
  started = true;
  followEvents();
  setInterval(scheduleRefresh, REFRESH_EVERY);
}

async function boot() {
  $("#login-form").addEventListener("submit", signIn);
  $("#explain-form").addEventListener("submit", explainSubmit);
  $("#sign-out").addEventListener("click", () => {
    sessionStorage.removeItem("gslb-token");
    state.token = "";
    location.reload();
  });
  window.addEventListener("hashchange", render);
  try {
    await api("/zones"); // with the kept token, or none where reading is open
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      showLogin();
      return;
    }
  }
  $("#sign-out").hidden = !state.token;
  start();
}

boot();
