/**
 * The live console's assets: one HTML page, its style sheet and its script,
 * as string constants, so they ship in `src` and `dist` alike and the
 * service serves every byte itself (no CDN, no build step, no external
 * address at all). The script is plain JavaScript for any current browser:
 * it listens to `/console/events` (an `EventSource`, which reconnects by
 * itself), keeps the last 5 minutes per provider and draws rate and scale as
 * inline SVG. It writes only text nodes for what the server sends (a
 * rejection's path is the client's).
 *
 * @since 0.1.0
 */

/**
 * `GET /`.
 *
 * @since 0.1.0
 * @category assets
 */
export const html: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>market-data-pipeline console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css">
<script src="/console/app.js" defer></script>
</head>
<body>
<header>
  <h1>market-data-pipeline <span id="version"></span></h1>
  <span id="health" class="badge" data-state="unknown">health …</span>
  <span id="connection" class="badge" data-state="connecting">connecting…</span>
</header>
<main>
  <section>
    <h2>Health</h2>
    <ul id="reasons"><li class="muted">waiting for the first snapshot</li></ul>
  </section>
  <section>
    <h2>Providers</h2>
    <table>
      <thead><tr>
        <th>provider</th><th class="num">base rate</th><th class="num">rate</th><th class="num">scale</th>
        <th>level</th><th class="num">tokens</th><th class="num">waiters</th><th>circuit</th>
        <th><span class="key-rate">rate</span> (up to base) over <span class="key-scale">scale</span> (0–1), last 5 min</th>
      </tr></thead>
      <tbody id="providers"></tbody>
    </table>
  </section>
  <section>
    <h2>Coordinators <span id="feedback" class="muted"></span></h2>
    <table>
      <thead><tr>
        <th>coordinator</th><th>level</th><th class="num">queue</th><th class="num">last report</th><th>holding</th>
      </tr></thead>
      <tbody id="coordinators"></tbody>
    </table>
  </section>
  <section>
    <h2>Recent rejections at the edge</h2>
    <table>
      <thead><tr><th>time</th><th class="num">status</th><th>reason</th><th>request</th></tr></thead>
      <tbody id="rejections"></tbody>
    </table>
  </section>
</main>
<footer class="muted">updated <span id="updated">never</span> · <span id="clients">0</span> console(s) open</footer>
</body>
</html>
`

/**
 * `GET /console/app.css`.
 *
 * @since 0.1.0
 * @category assets
 */
export const css: string = `:root {
  --bg: #f7f8fa; --fg: #1d2330; --muted: #6b7280; --line: #e3e6eb; --card: #fff;
  --ok: #1a7f37; --soft: #b26a00; --hard: #c62828; --rate: #2f6fde; --scale: #8a4fd8;
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: center; gap: 12px; padding: 12px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 17px; margin: 0 auto 0 0; }
h1 span { color: var(--muted); font-weight: normal; font-size: 13px; }
h2 { font-size: 14px; margin: 0 0 8px; }
main { padding: 16px 20px; display: grid; gap: 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.msg { white-space: normal; color: var(--muted); }
tr:last-child td { border-bottom: none; }
.muted { color: var(--muted); font-weight: normal; }
ul { margin: 0; padding-left: 18px; }
.badge { padding: 3px 10px; border-radius: 12px; font-size: 12px; font-weight: 600; background: var(--line); }
.badge[data-state="healthy"], .badge[data-state="live"] { background: #dcf3e3; color: var(--ok); }
.badge[data-state="degraded"], .badge[data-state="reconnecting"], .badge[data-state="connecting"] { background: #fdf0d5; color: var(--soft); }
.badge[data-state="unhealthy"] { background: #fde2e1; color: var(--hard); }
.level { font-weight: 600; }
.level[data-level="ok"] { color: var(--ok); }
.level[data-level="soft"] { color: var(--soft); }
.level[data-level="hard"] { color: var(--hard); }
.holding { color: var(--hard); font-weight: 600; }
.key-rate { color: var(--rate); }
.key-scale { color: var(--scale); }
svg.spark { display: block; background: #fbfbfd; border: 1px solid var(--line); border-radius: 4px; }
svg.spark .rate { fill: none; stroke: var(--rate); stroke-width: 1.5; }
svg.spark .scale { fill: none; stroke: var(--scale); stroke-width: 1.5; }
svg.spark .sep { stroke: var(--line); stroke-width: 1; }
footer { padding: 0 20px 16px; font-size: 12px; }
`

/**
 * `GET /console/app.js`.
 *
 * @since 0.1.0
 * @category assets
 */
export const js: string = `"use strict";
(function () {
  var WINDOW_MS = 5 * 60 * 1000;
  var history = {}; // provider -> [[t, rate, scale], ...]
  var source = null;
  var lastMessage = 0;
  var $ = function (id) { return document.getElementById(id); };

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value === null || value === undefined ? "" : String(value);
    if (cls) el.className = cls;
    return el;
  }
  function num(value, digits) {
    if (typeof value !== "number") return "–";
    return digits === undefined ? String(value) : value.toFixed(digits).replace(/\\.?0+$/, "") || "0";
  }
  function setConnection(state, label) {
    var el = $("connection");
    el.dataset.state = state;
    el.textContent = label;
  }
  function keyed(tbody, key, id) {
    // one row per id, reused between snapshots (no flicker, stable for selections)
    var row = tbody.querySelector("tr[data-" + key + "=\\"" + CSS.escape(id) + "\\"]");
    if (!row) {
      row = document.createElement("tr");
      row.dataset[key] = id;
      tbody.appendChild(row);
    }
    row.dataset.seen = "1";
    return row;
  }
  function cell(row, field, cls) {
    var td = row.querySelector("td[data-field=\\"" + field + "\\"]");
    if (!td) {
      td = document.createElement("td");
      td.dataset.field = field;
      if (cls) td.className = cls;
      row.appendChild(td);
    }
    return td;
  }
  function put(row, field, value, cls) {
    var td = cell(row, field, cls);
    var s = value === null || value === undefined ? "" : String(value);
    if (td.textContent !== s) td.textContent = s;
    return td;
  }
  function prune(tbody) {
    Array.prototype.slice.call(tbody.children).forEach(function (row) {
      if (row.dataset.seen !== "1") row.remove(); else delete row.dataset.seen;
    });
  }
  function levelCell(row, field, level) {
    var td = put(row, field, level || "–", "level");
    td.dataset.level = level || "";
  }

  function spark(points, baseRate) {
    // two lanes: rate (0 to the base rate) above, scale (0 to 1) below; steps, as the values change.
    // Numbers only go into the markup; the HTML parser puts <svg> in its own namespace.
    var w = 260, lane = 22, gap = 6, pad = 2, h = 2 * lane + gap + 2 * pad;
    var now = points.length ? points[points.length - 1][0] : 0;
    // the whole width for what there is, up to the last 5 minutes
    var from = points.length ? Math.max(now - WINDOW_MS, points[0][0]) : now - WINDOW_MS;
    var span = Math.max(now - from, 1000);
    var top = Math.max(baseRate || 0, 1e-9);
    points.forEach(function (p) { if (p[1] > top) top = p[1]; });
    var x = function (t) { return (pad + (w - 2 * pad) * (t - from) / span).toFixed(1); };
    var y = function (v, max, y0) { return (y0 + lane - lane * Math.max(0, Math.min(1, v / max))).toFixed(1); };
    var rate = [], scale = [], prev = null;
    points.forEach(function (p) {
      if (p[0] < from) return;
      var px = x(p[0]);
      if (prev) {
        rate.push(px + "," + y(prev[1], top, pad));
        scale.push(px + "," + y(prev[2], 1, pad + lane + gap));
      }
      rate.push(px + "," + y(p[1], top, pad));
      scale.push(px + "," + y(p[2], 1, pad + lane + gap));
      prev = p;
    });
    var mid = (pad + lane + gap / 2).toFixed(1);
    return "<svg class='spark' width='" + w + "' height='" + h + "' viewBox='0 0 " + w + " " + h + "'>" +
      "<line class='sep' x1='0' x2='" + w + "' y1='" + mid + "' y2='" + mid + "'></line>" +
      "<polyline class='rate' points='" + rate.join(" ") + "'></polyline>" +
      "<polyline class='scale' points='" + scale.join(" ") + "'></polyline></svg>";
  }

  function ago(seconds) {
    if (seconds < 60) return seconds.toFixed(1) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + Math.floor(seconds % 60) + " s ago";
    return (seconds / 3600).toFixed(1) + " h ago";
  }

  function render(snap) {
    $("version").textContent = snap.version;
    var health = $("health");
    health.dataset.state = snap.health.state;
    health.textContent = snap.health.state;
    var reasons = $("reasons");
    reasons.textContent = "";
    if (snap.health.reasons.length === 0) reasons.appendChild(text("li", "healthy: no component reports a problem", "muted"));
    snap.health.reasons.forEach(function (r) { reasons.appendChild(text("li", r)); });

    var providers = $("providers");
    snap.providers.forEach(function (p) {
      var points = history[p.name] || (history[p.name] = []);
      if (!points.length || points[points.length - 1][0] < snap.ts) points.push([snap.ts, p.rate, p.scale]);
      while (points.length && points[0][0] < snap.ts - WINDOW_MS) points.shift();
      var row = keyed(providers, "provider", p.name);
      put(row, "name", p.name);
      put(row, "baseRate", num(p.baseRate) + "/s", "num");
      put(row, "rate", num(p.rate, 2) + "/s", "num");
      put(row, "scale", num(p.scale, 3), "num");
      levelCell(row, "level", p.level);
      put(row, "tokens", num(p.tokens, 2) + " / " + p.capacity, "num");
      put(row, "waiters", num(p.waiters), "num");
      put(row, "circuit", p.circuit + (p.inCooldown ? " (cooldown)" : ""));
      cell(row, "chart").innerHTML = spark(points, p.baseRate);
    });
    prune(providers);

    var fb = snap.feedback;
    $("feedback").textContent = fb.enabled
      ? "(driving " + fb.provider + "; worst of all: " + (fb.level || "ok") + ")"
      : "(feedback disabled)";
    var coordinators = $("coordinators");
    snap.coordinators.forEach(function (c) {
      var row = keyed(coordinators, "coordinator", c.id);
      put(row, "id", c.id);
      levelCell(row, "level", c.level);
      put(row, "queue", c.queueSize === null ? "–" : c.queueSize + " / " + c.capacity, "num");
      put(row, "age", ago(c.lastReportAgeSec), "num");
      var td = put(row, "holding", c.holding ? "holds " + c.holding + " down — " + c.reason : "no");
      td.className = c.holding ? "holding" : "muted";
    });
    prune(coordinators);
    if (snap.coordinators.length === 0 && !coordinators.children.length) {
      var empty = document.createElement("tr");
      empty.appendChild(text("td", "no coordinator has reported", "muted"));
      empty.dataset.seen = "";
      coordinators.appendChild(empty);
    }

    var rejections = $("rejections");
    rejections.textContent = "";
    if (snap.rejections.length === 0) {
      var none = document.createElement("tr");
      none.appendChild(text("td", "none", "muted"));
      rejections.appendChild(none);
    }
    snap.rejections.forEach(function (r) {
      var row = document.createElement("tr");
      row.appendChild(text("td", new Date(r.ts).toLocaleTimeString()));
      row.appendChild(text("td", r.status, "num"));
      row.appendChild(text("td", r.reason));
      row.appendChild(text("td", r.method + " " + r.path, "msg"));
      rejections.appendChild(row);
    });
    $("updated").textContent = new Date(snap.ts).toLocaleTimeString();
    $("clients").textContent = String(snap.clients);
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/console/events");
    source.onopen = function () { setConnection("live", "live"); };
    source.addEventListener("history", function (e) {
      lastMessage = Date.now();
      var h = JSON.parse(e.data);
      Object.keys(h.points).forEach(function (name) { history[name] = h.points[name]; });
    });
    source.onmessage = function (e) {
      lastMessage = Date.now();
      setConnection("live", "live");
      render(JSON.parse(e.data));
    };
    source.onerror = function () {
      setConnection("reconnecting", "reconnecting…");
      // the browser retries by itself unless the answer was an error (a 503 when full): then we do
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
  }
  // a stream that went silent (a proxy holding it, a suspended laptop) is reopened
  setInterval(function () {
    if (lastMessage && Date.now() - lastMessage > 5000) {
      lastMessage = 0;
      setConnection("reconnecting", "reconnecting…");
      connect();
    }
  }, 1000);
  connect();
})();
`
