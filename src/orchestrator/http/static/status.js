/* orchestrator status page: polls /stats, /health?verbose and /ready; no dependencies.
 *
 * Everything is built with DOM calls and textContent (never innerHTML), so nothing from
 * the server is ever parsed as markup, and the page runs under a CSP without inline code.
 */
"use strict";

(function () {
  const TOKEN_KEY = "orchestrator.status.token";
  const INTERVAL_KEY = "orchestrator.status.interval";
  const WINDOW_SECONDS = 300; // the sparklines show the last five minutes
  const FETCH_TIMEOUT_MS = 5000;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const byId = (id) => document.getElementById(id);

  function store() {
    try {
      return window.sessionStorage;
    } catch (err) {
      return null; // storage disabled: the token lasts until the page is left
    }
  }

  function readStored(key) {
    const s = store();
    return s ? s.getItem(key) : null;
  }

  function writeStored(key, value) {
    const s = store();
    if (!s) return;
    if (value === null) s.removeItem(key);
    else s.setItem(key, value);
  }

  const state = {
    token: readStored(TOKEN_KEY),
    interval: 2,
    etag: null,
    samples: [],
    needToken: false,
    debugJobs: true, // until /debug/jobs answers 404 (no token configured on the server)
    unreachableSince: null,
    recovered: null,
    lastData: null,
    timer: null,
    running: false,
    health: "",
    sort: {
      workers: { key: "id", dir: 1 },
      connections: { key: "id", dir: 1 },
    },
  };

  /* -- formatting ------------------------------------------------------------------- */

  const pad = (n) => String(n).padStart(2, "0");

  function clock(date) {
    return pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
  }

  function count(n) {
    return typeof n === "number" ? n.toLocaleString("en-US") : "–";
  }

  function rate(r) {
    if (typeof r !== "number") return "–";
    if (r === 0) return "0";
    return r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US");
  }

  function duration(s) {
    if (typeof s !== "number" || !isFinite(s)) return "–";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    const total = Math.floor(s);
    const d = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    const sec = total % 60;
    if (d > 0) return d + " d " + pad(h) + " h";
    if (h > 0) return h + " h " + pad(m) + " m";
    return m + " m " + pad(sec) + " s";
  }

  function latency(s) {
    if (typeof s !== "number") return "–";
    if (s === 0) return "0";
    if (s < 0.001) return (s * 1000).toFixed(2) + " ms";
    if (s < 1) return (s * 1000).toFixed(1) + " ms";
    return s.toFixed(2) + " s";
  }

  function isoClock(iso) {
    if (!iso) return "never";
    const date = new Date(iso);
    return isNaN(date.getTime()) ? String(iso) : clock(date);
  }

  /* -- DOM helpers ------------------------------------------------------------------- */

  function h(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else node.setAttribute(key, value);
      }
    }
    for (const child of children || []) node.append(child);
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  function show(node, visible) {
    if (node.hidden === visible) node.hidden = !visible;
  }

  function facts(dl, pairs) {
    const nodes = [];
    for (const [term, value, cls] of pairs) {
      nodes.push(h("div", { className: cls || null }, [h("dt", { text: term }), h("dd", { text: value })]));
    }
    dl.replaceChildren(...nodes);
  }

  function meter(bar, value, max, label) {
    const fraction = max > 0 ? Math.min(1, value / max) : 0;
    bar.setAttribute("aria-valuemax", String(max));
    bar.setAttribute("aria-valuenow", String(value));
    bar.setAttribute("aria-valuetext", label);
    bar.classList.toggle("bar-high", fraction >= 0.8);
    bar.firstElementChild.style.width = (fraction * 100).toFixed(1) + "%"; // CSSOM: allowed by the CSP
  }

  /* -- sparklines --------------------------------------------------------------------- */

  function sparkline(series, label, width, height, ceiling) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", String(width));
    svg.setAttribute("height", String(height));
    svg.setAttribute("class", "spark");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const samples = state.samples;
    const end = samples.length ? samples[samples.length - 1].t : 0;
    // The window grows with the history from one minute up to five, so that a fresh page
    // does not squeeze its first seconds into the right edge.
    const span = samples.length ? Math.min(WINDOW_SECONDS, Math.max(60, end - samples[0].t)) : WINDOW_SECONDS;
    const start = end - span;
    // A gauge is drawn against its limit (the chart is full only when the gauge is);
    // a rate against its own peak.
    let max = ceiling > 0 ? ceiling : 0;
    if (!(ceiling > 0)) for (const s of series) for (const [, v] of s.points) max = Math.max(max, v);
    const scale = max > 0 ? (height - 3) / max : 0;
    const baseline = document.createElementNS(SVG_NS, "line");
    baseline.setAttribute("x1", "0");
    baseline.setAttribute("x2", String(width));
    baseline.setAttribute("y1", String(height - 0.5));
    baseline.setAttribute("y2", String(height - 0.5));
    baseline.setAttribute("class", "spark-base");
    svg.append(baseline);
    for (const s of series) {
      const points = s.points.filter(([t]) => t >= start);
      if (points.length < 2) continue;
      const xy = points.map(([t, v]) => {
        const x = ((t - start) / span) * width;
        const y = height - 1.5 - v * scale;
        return x.toFixed(1) + "," + y.toFixed(1);
      });
      if (s.area) {
        const area = document.createElementNS(SVG_NS, "polygon");
        const first = xy[0].split(",")[0];
        const last = xy[xy.length - 1].split(",")[0];
        area.setAttribute("points", first + "," + height + " " + xy.join(" ") + " " + last + "," + height);
        area.setAttribute("class", s.cls + "-area");
        svg.append(area);
      }
      const line = document.createElementNS(SVG_NS, "polyline");
      line.setAttribute("points", xy.join(" "));
      line.setAttribute("class", s.cls);
      svg.append(line);
    }
    return svg;
  }

  function addSample(stats) {
    const app = stats.application || {};
    const t = app.uptime_seconds;
    if (typeof t !== "number") return;
    const samples = state.samples;
    const last = samples[samples.length - 1];
    if (last && t < last.t) samples.length = 0; // the application restarted
    else if (last && t === last.t) return;
    const kinds = {};
    for (const [kind, k] of Object.entries((stats.registry || {}).kinds || {})) {
      kinds[kind] = { finished: k.succeeded_total + k.failed_total, failed: k.failed_total };
    }
    const router = stats.router || {};
    const pool = stats.pool || {};
    samples.push({ t, kinds, queued: router.queued || 0, inUse: pool.in_use || 0 });
    while (samples.length > 2 && t - samples[1].t > WINDOW_SECONDS) samples.shift();
  }

  function kindRates(kind) {
    const finished = [];
    const failed = [];
    const samples = state.samples;
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1];
      const b = samples[i];
      const dt = b.t - a.t;
      if (!(dt > 0) || !a.kinds[kind] || !b.kinds[kind]) continue;
      finished.push([b.t, Math.max(0, (b.kinds[kind].finished - a.kinds[kind].finished) / dt)]);
      failed.push([b.t, Math.max(0, (b.kinds[kind].failed - a.kinds[kind].failed) / dt)]);
    }
    return { finished, failed };
  }

  function gaugeSeries(field) {
    return state.samples.map((s) => [s.t, s[field]]);
  }

  /* -- sortable tables ------------------------------------------------------------------ */

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // empty cells last, whatever the direction
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), "en", { numeric: true });
  }

  class SortableTable {
    constructor(table, columns, sort, empty) {
      this.table = table;
      this.columns = columns;
      this.sort = sort;
      this.empty = empty;
      this.rows = [];
      this.headers = columns.map((col) => {
        const button = h("button", { type: "button", className: "sort", text: col.label });
        button.addEventListener("click", () => this.sortBy(col.key));
        const th = h("th", { scope: "col", className: col.numeric ? "num" : null }, [button]);
        th.dataset.key = col.key;
        return th;
      });
      table.tHead.rows[0].replaceChildren(...this.headers);
      this.markSorted();
    }

    sortBy(key) {
      if (this.sort.key === key) this.sort.dir = -this.sort.dir;
      else {
        this.sort.key = key;
        this.sort.dir = 1;
      }
      this.markSorted();
      this.render(this.rows);
    }

    markSorted() {
      for (const th of this.headers) {
        if (th.dataset.key === this.sort.key) {
          th.setAttribute("aria-sort", this.sort.dir > 0 ? "ascending" : "descending");
        } else {
          th.removeAttribute("aria-sort");
        }
      }
    }

    render(rows) {
      this.rows = rows;
      const { key, dir } = this.sort;
      const sorted = rows.slice().sort((a, b) => {
        const primary = a[key] === null || a[key] === undefined || b[key] === null || b[key] === undefined
          ? compare(a[key], b[key])
          : dir * compare(a[key], b[key]);
        return primary || compare(a.id, b.id);
      });
      const body = this.table.tBodies[0];
      if (!sorted.length) {
        body.replaceChildren(h("tr", null, [
          h("td", { colspan: String(this.columns.length), className: "muted", text: this.empty }),
        ]));
        return;
      }
      body.replaceChildren(...sorted.map((row) => {
        const cells = this.columns.map((col, i) => {
          const value = row[col.key];
          const text = col.format ? col.format(value, row) : value === null || value === undefined ? "–" : String(value);
          const classes = [col.numeric ? "num" : "", col.cls ? col.cls(value, row) : ""].join(" ").trim();
          // A clamped cell shows three lines of a long text; hover or focus shows the rest.
          const clamped = col.clamp && value !== null && value !== undefined;
          return h(i === 0 ? "th" : "td", {
            scope: i === 0 ? "row" : null, className: classes || null, text: clamped ? null : text,
            "data-label": col.label, title: col.title ? col.title(value, row) : null,
          }, clamped ? [h("span", { className: "reason-text", text, tabindex: "0" })] : []);
        });
        return h("tr", null, cells);
      }));
    }
  }

  const stateClass = (value) => "state state-" + String(value).replace(/[^a-z_]/g, "");

  const workersTable = new SortableTable(byId("workers-table"), [
    { key: "id", label: "ID", numeric: true },
    { key: "state", label: "State", cls: stateClass },
    { key: "jobs_total", label: "Jobs", numeric: true, format: count },
    { key: "failed_total", label: "Failed", numeric: true, format: count },
    { key: "job_id", label: "Current job", format: (v, row) => jobText(row.current_job) },
    { key: "running_seconds", label: "Running for", numeric: true, format: duration },
    { key: "age_seconds", label: "Age", numeric: true, format: duration },
    { key: "error_text", label: "Last error", cls: (v) => (v ? "error-text wrap-text" : ""),
      title: (v, row) => errorTitle(row.last_error), clamp: true },
  ], state.sort.workers, "No workers listed.");

  function jobText(job) {
    if (!job) return "–";
    return "#" + job.id + " " + job.kind + (job.attempt > 1 ? " (attempt " + job.attempt + ")" : "");
  }

  function errorTitle(error) {
    if (!error) return null;
    return (error.job_id === null ? "" : "job #" + error.job_id + " ") + "at " + isoClock(error.at);
  }

  // A /stats/workers entry as a table row: its fields, plus a flat sort key for the job in
  // hand and for the last error (both objects, or null).
  function workerRow(w) {
    const job = w.current_job;
    const error = w.last_error;
    return Object.assign({}, w, {
      job_id: job ? job.id : null,
      running_seconds: job ? job.running_seconds : null,
      error_text: error ? error.type + ": " + error.message : null,
    });
  }

  const connectionsTable = new SortableTable(byId("connections-table"), [
    { key: "id", label: "ID", numeric: true },
    { key: "state", label: "State", cls: stateClass },
    { key: "uses", label: "Uses", numeric: true, format: count },
    { key: "age_seconds", label: "Age", numeric: true, format: duration },
    { key: "idle_seconds", label: "Idle for", numeric: true, format: duration },
  ], state.sort.connections, "No pooled connections.");

  /* -- rendering ------------------------------------------------------------------------ */

  function renderHealth(body) {
    const checks = body.checks
      || Object.fromEntries(Object.entries(body.components || {}).map(([n, ok]) => [n, { healthy: ok, reason: null }]));
    const failing = Object.keys(checks).filter((name) => !checks[name].healthy);
    const signature = JSON.stringify([checks, state.needToken && !state.token]);
    if (signature !== state.health) {
      state.health = signature;
      byId("components").replaceChildren(...Object.entries(checks).map(([name, check]) => {
        let reason = check.reason;
        if (!reason) reason = check.healthy ? "–" : state.needToken ? "reason shown with the token" : "no reason given";
        const row = h("tr", { className: check.healthy ? "" : "row-bad" }, [
          h("th", { scope: "row", text: name, "data-label": "Component" }),
          h("td", { "data-label": "Status" }, [h("span", {
            className: "pill " + (check.healthy ? "pill-ok" : "pill-bad"),
            text: check.healthy ? "healthy" : "unhealthy",
          })]),
          h("td", { className: "reason", "data-label": "Reason" }, [
            h("span", { className: "reason-text", text: reason, title: reason, tabindex: check.reason ? "0" : null }),
          ]),
        ]);
        row.dataset.component = name;
        row.dataset.healthy = String(check.healthy);
        return row;
      }));
    }
    if (state.unreachableSince) return;
    setOverall(body.healthy ? "Healthy" : "Unhealthy: " + failing.join(", "), body.healthy ? "pill-ok" : "pill-bad");
  }

  function setOverall(text, cls) {
    const overall = byId("overall");
    setText(overall, text);
    const className = "pill " + cls;
    if (overall.className !== className) overall.className = className;
  }

  function renderReady(res, health) {
    const draining = res.status === 503 && res.body && res.body.reason === "draining";
    const banner = byId("draining");
    if (draining) {
      // Stopping turns the lifecycle unhealthy (it is draining); an admin drain leaves
      // every component healthy: the instance only left its load balancers.
      const components = (health && health.body && health.body.components) || {};
      const stopping = components.lifecycle === false;
      banner.dataset.kind = stopping ? "stopping" : "admin";
      setText(banner, stopping
        ? "Draining: the application is finishing the work in flight and will stop; /ready answers 503."
        : "Out of rotation: drained by an operator (POST /admin/drain). /ready answers 503 so load balancers send nothing new; everything else keeps working. POST /admin/undrain puts it back.");
    }
    show(banner, draining);
    let text = "–";
    let reason = "";
    if (res.status === 200) text = "ready";
    else if (res.body && res.body.reason) {
      reason = String(res.body.reason);
      text = "not ready: " + reason.split(":")[0]; // "draining" or "unhealthy"; details in the title
    } else if (res.status) text = "HTTP " + res.status;
    const node = byId("ready");
    setText(node, text);
    if (node.title !== reason) node.title = reason;
  }

  function renderStats(stats) {
    const app = stats.application || {};
    setText(byId("app-name"), app.name && app.name !== "orchestrator" ? app.name : "");
    setText(byId("app-version"), app.version ? "version " + app.version : "");
    setText(byId("app-pid"), app.pid ? "· pid " + app.pid : "");
    setText(byId("app-state"), app.state || "–");
    setText(byId("app-uptime"), duration(app.uptime_seconds));
    setText(byId("jobs-in-flight"), count(app.jobs_in_flight));
    setText(byId("jobs-completed"), count((stats.workers || {}).jobs_completed_total));
    renderKinds(stats.registry || {});
    renderCapacity(stats.router || {}, stats.pool || {});
    renderAdmission(stats.router || {}, stats.workers || {});
    renderWorkers(stats.workers || {});
    renderConnections(stats.pool || {});
    renderHttp(stats.http || {});
    renderRecycler(stats.recycler || {});
    renderSources(stats.sources || {});
    renderLifecycle(stats.lifecycle || {});
  }

  function renderKinds(registry) {
    const kinds = Object.entries(registry.kinds || {});
    const body = byId("kinds");
    if (!kinds.length) {
      body.replaceChildren(h("tr", null, [h("td", { colspan: "10", className: "muted", text: "No job kinds registered." })]));
      return;
    }
    body.replaceChildren(...kinds.map(([kind, k]) => {
      const r = kindRates(kind);
      const now = r.finished.length ? r.finished[r.finished.length - 1][1] : null;
      const fails = r.failed.length ? r.failed[r.failed.length - 1][1] : null;
      const peak = Math.max(0, ...r.finished.map(([, v]) => v));
      const spark = sparkline(
        [{ points: r.finished, cls: "spark-rate", area: true }, { points: r.failed, cls: "spark-fail" }],
        kind + ": finished and failed jobs per second over the last 5 minutes, peak " + rate(peak) + "/s",
        140, 30,
      );
      const lat = k.latency_seconds || {};
      const cell = (label, text, cls) => h("td", { className: cls, text, "data-label": label });
      const row = h("tr", null, [
        h("th", { scope: "row", text: kind, "data-label": "Kind" }),
        h("td", { className: "spark-cell", "data-label": "Last 5 minutes" }, [spark]),
        cell("Finished/s", rate(now), "num"),
        cell("Failed/s", rate(fails), "num" + (fails ? " error-text" : "")),
        cell("Succeeded", count(k.succeeded_total), "num"),
        cell("Failed", count(k.failed_total), "num" + (k.failed_total ? " error-text" : "")),
        cell("Retried", count(k.retried_total), "num"),
        cell("Timeouts", count(k.timed_out_total), "num"),
        cell("p50", latency(lat.p50), "num"),
        cell("p99", latency(lat.p99), "num"),
      ]);
      row.dataset.kind = kind;
      return row;
    }));
  }

  // What overload control does now: the in-progress limit, and whether the queue sheds.
  function renderAdmission(router, workers) {
    const shedding = byId("shedding");
    const reasons = router.rejected_by_reason || {};
    if (router.standing || router.saturated) {
      setText(shedding, "Shedding: " + (router.standing
        ? "queue over " + latency(router.queue_target_seconds) + ", refusing what would wait longer"
        : "queue full") + " · refused " + count(reasons.standing_wait) + " for waits, "
        + count(reasons.queue_full) + " full");
      shedding.hidden = false;
    } else {
      shedding.hidden = true;
    }
    const limit = workers.in_progress_limit;
    if (typeof limit !== "number") {
      setText(byId("limit-text"), "–");
      setText(byId("limit-facts"), "No in-progress limit in these stats.");
      return;
    }
    const active = workers.in_progress || 0;
    setText(byId("limit-text"), count(active) + " / limit " + count(limit) + " of " + count(workers.count));
    meter(byId("limit-bar"), active, limit, active + " of " + limit + " places held");
    setText(byId("limit-facts"), workers.adaptive_limit
      ? "adaptive · loop lag " + latency(workers.lag_seconds) + " (target "
        + latency(workers.lag_target_seconds) + ") · lowered " + count(workers.limit_lowered_total) + " times"
      : "fixed at the number of workers (adaptive_limit off)");
  }

  function renderCapacity(router, pool) {
    const queued = router.queued || 0;
    const capacity = router.capacity || 0;
    setText(byId("queue-text"), count(queued) + " / " + count(capacity));
    meter(byId("queue-bar"), queued, capacity, queued + " of " + capacity + " queued");
    byId("queue-spark").replaceChildren(
      sparkline([{ points: gaugeSeries("queued"), cls: "spark-rate", area: true }],
        "Queue depth over the last 5 minutes, out of " + count(capacity), 240, 24, capacity),
    );
    setText(byId("queue-facts"),
      (router.accepting === false ? "not accepting · " : "")
      + count(router.routed_total) + " routed · " + count(router.rejected_total) + " rejected · oldest "
      + duration(router.oldest_queued_age_seconds));
    if (pool.enabled === false) {
      setText(byId("pool-text"), "disabled");
      meter(byId("pool-bar"), 0, 0, "no connection pool");
      byId("pool-spark").replaceChildren();
      setText(byId("pool-facts"), "No connection factory configured.");
      return;
    }
    const inUse = pool.in_use || 0;
    const max = pool.max_size || 0;
    setText(byId("pool-text"), count(inUse) + " in use / " + count(pool.size) + " open / " + count(max) + " max");
    meter(byId("pool-bar"), inUse, max, inUse + " of " + max + " connections in use");
    byId("pool-spark").replaceChildren(
      sparkline([{ points: gaugeSeries("inUse"), cls: "spark-rate", area: true }],
        "Connections in use over the last 5 minutes, out of " + count(max), 240, 24, max),
    );
    setText(byId("pool-facts"),
      count(pool.idle) + " idle · " + count(pool.connecting) + " connecting · " + count(pool.waiting) + " waiting · "
      + count(pool.connect_failures_total) + " connect failures · " + count(pool.acquire_timeouts_total) + " acquire timeouts");
  }

  function omitted(id, n, what) {
    const node = byId(id);
    if (n) setText(node, n + " more " + what + " not listed (stats_max_items).");
    show(node, Boolean(n));
  }

  function renderWorkers(workers) {
    setText(byId("workers-summary"), count(workers.alive) + " alive of " + count(workers.count) + " · "
      + count(workers.busy) + " busy · " + count(workers.deaths_total) + " deaths");
    workersTable.render((workers.workers || []).map(workerRow));
    omitted("workers-omitted", workers.workers_omitted, "workers");
  }

  function renderConnections(pool) {
    setText(byId("connections-summary"), pool.enabled === false ? "pool disabled"
      : count(pool.created_total) + " created · " + count(pool.closed_total) + " closed");
    connectionsTable.render(pool.connections || []);
    omitted("connections-omitted", pool.connections_omitted, "connections");
  }

  // Routes whose 503 is a verdict (unhealthy, or draining on purpose), not a failure.
  const VERDICT_ROUTES = ["/health", "/health/{component}", "/ready"];

  function renderHttp(http) {
    const req = http.requests_total || {};
    const rl = http.rate_limit || {};
    const auth = http.auth || {};
    const snap = http.snapshot || {};
    const byRoute = http.requests_by_route || {};
    const verdicts = VERDICT_ROUTES.reduce((n, route) => n + ((byRoute[route] || {})["5xx"] || 0), 0);
    const errors = Math.max(0, (req["5xx"] || 0) - verdicts);
    facts(byId("http-facts"), [
      ["2xx", count(req["2xx"])],
      ["3xx", count(req["3xx"])],
      ["4xx", count(req["4xx"]), req["4xx"] ? "warn" : ""],
      ["5xx errors", count(errors), errors ? "bad" : ""],
      ["503 verdicts (health, ready)", count(verdicts), "verdict"],
      ["401 unauthorised", auth.enabled ? count(auth.failures_total) : "auth off"],
      ["429 rate limited", rl.enabled ? count(rl.rejected_total) : "limit off"],
      ["Clients (rate limit)", rl.enabled ? count(rl.clients) : "–"],
      ["Snapshot hits / misses", count(snap.hits_total) + " / " + count(snap.misses_total)],
    ]);
  }

  function byReason(map) {
    // Every reason is listed from 0: name only those that happened.
    const entries = Object.entries(map || {}).filter(([, n]) => n > 0);
    if (!entries.length) return "none";
    return entries.map(([reason, n]) => reason + ": " + count(n)).join(", ");
  }

  function renderRecycler(r) {
    facts(byId("recycler-facts"), [
      ["Running", r.running ? "yes" : "no", r.running ? "" : "bad"],
      ["Sweeps", count(r.sweeps_total) + " every " + duration(r.interval_seconds)],
      ["Sweep errors", count(r.sweep_errors_total), r.sweep_errors_total ? "bad" : ""],
      ["Last sweep", isoClock(r.last_sweep_at) + " (" + latency(r.sweep_duration_seconds) + ")"],
      ["Workers recycled", byReason(r.workers_recycled_total)],
      ["Connections recycled", byReason(r.connections_recycled_total)],
    ]);
  }

  function renderSources(sources) {
    // A row per job source (the card is hidden without one): where it reads, its state,
    // the group's backlog and what it settled; red while the broker is out of reach.
    const entries = Object.entries(sources);
    byId("sources").hidden = !entries.length;
    facts(byId("sources-facts"), entries.map(([name, s]) => [
      name,
      s.state.replace(/_/g, " ") + " · lag " + count(s.group_lag || 0) + " · pending " +
        count(s.group_pending || 0) + " · acked " + count(s.acked_total) + " · dead " +
        count(s.dead_lettered_total) + (s.last_error ? " · last error " + s.last_error : ""),
      s.state === "disconnected" ? "bad" : "",
    ]));
  }

  function renderLifecycle(lc) {
    const transitions = lc.transitions || [];
    const last = transitions[transitions.length - 1];
    facts(byId("lifecycle-facts"), [
      ["State", lc.state || "–"],
      ["Started", isoClock(lc.started_at)],
      ["Restarts", count(lc.restarts_total), lc.restarts_total ? "warn" : ""],
      ["Pending restarts", count(lc.pending_restarts), lc.pending_restarts ? "warn" : ""],
      ["Last transition", last ? last.state + " at " + isoClock(last.at) : "–"],
    ]);
  }

  function renderDebugJobs(body) {
    const inflight = body.in_flight || [];
    setText(byId("inflight-summary"), count(body.in_flight_total) + " in flight"
      + (body.in_flight_omitted ? " · " + count(body.in_flight_omitted) + " not listed" : ""));
    byId("inflight-table").tBodies[0].replaceChildren(...(inflight.length ? inflight.map((j) => h("tr", null, [
      h("th", { scope: "row", text: "#" + j.id, "data-label": "Job" }),
      h("td", { text: j.kind, "data-label": "Kind" }),
      h("td", { className: stateClass(j.state === "running" ? "busy" : "idle"), text: j.state, "data-label": "State" }),
      h("td", { text: j.worker === null ? "–" : String(j.worker), "data-label": "Worker" }),
      h("td", { className: "num", text: String(j.attempt), "data-label": "Attempt" }),
      h("td", { className: "num", text: duration(j.age_seconds), "data-label": "Age" }),
    ])) : [h("tr", null, [h("td", { colspan: "6", className: "muted", text: "No job in flight." })])]));
    const failures = (body.recent_failures || []).slice(0, 20);
    byId("failures-table").tBodies[0].replaceChildren(...(failures.length ? failures.map((f) => h("tr", null, [
      h("th", { scope: "row", text: isoClock(f.at), "data-label": "When" }),
      h("td", { text: "#" + f.job_id, "data-label": "Job" }),
      h("td", { text: f.kind, "data-label": "Kind" }),
      h("td", { className: "num", text: String(f.attempt), "data-label": "Attempt" }),
      h("td", { className: "error-text", text: f.error_type, "data-label": "Error" }),
      h("td", { className: "reason", text: f.message, "data-label": "Message" }),
      h("td", { className: "num", text: latency(f.duration_seconds), "data-label": "Took" }),
    ])) : [h("tr", null, [h("td", { colspan: "7", className: "muted", text: "No failure lately." })])]));
    show(byId("inflight"), true);
    show(byId("failures"), true);
  }

  /* -- messages ---------------------------------------------------------------------- */

  function notice(text) {
    const node = byId("notice");
    if (text) setText(node, text);
    show(node, Boolean(text));
  }

  function askForToken(message) {
    const section = byId("auth");
    const wasHidden = section.hidden;
    setText(byId("auth-message"), message);
    show(section, true);
    show(byId("forget-token"), false);
    document.body.classList.add("is-locked");
    if (wasHidden) byId("token-input").focus();
  }

  function tokenAccepted() {
    show(byId("auth"), false);
    show(byId("forget-token"), Boolean(state.token));
    document.body.classList.remove("is-locked");
  }

  function unreachable() {
    if (!state.unreachableSince) state.unreachableSince = new Date();
    const since = clock(state.unreachableSince);
    const last = state.lastData ? " Showing the data of " + clock(state.lastData) + "." : "";
    const retry = state.interval ? " Retrying every " + state.interval + " s." : " Polling is paused.";
    setText(byId("unreachable"), "Unreachable since " + since + ": " + location.host + " does not answer." + last + retry);
    show(byId("unreachable"), true);
    show(byId("draining"), false); // unknown now; /ready tells again once it answers
    document.body.classList.add("is-stale");
    setOverall("Unreachable since " + since, "pill-bad");
  }

  function reachable() {
    if (!state.unreachableSince) return;
    const gone = (Date.now() - state.unreachableSince.getTime()) / 1000;
    state.unreachableSince = null;
    state.health = "";
    show(byId("unreachable"), false);
    document.body.classList.remove("is-stale");
    state.recovered = { at: Date.now(), text: "Reachable again at " + clock(new Date()) + " after " + duration(gone) + "." };
  }

  function recoveredMessage() {
    const r = state.recovered;
    if (r && Date.now() - r.at < 30000) return r.text;
    state.recovered = null;
    return "";
  }

  /* -- polling ------------------------------------------------------------------------ */

  async function request(path, etag) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (etag) headers["If-None-Match"] = etag;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
    try {
      const res = await fetch(path, { headers, cache: "no-store", signal: abort.signal, redirect: "error" });
      let body = null;
      if (res.status !== 304 && (res.headers.get("Content-Type") || "").startsWith("application/json")) {
        body = await res.json().catch(() => null); // a broken body is an answer, not an outage
      }
      return {
        status: res.status,
        body,
        etag: res.headers.get("ETag"),
        retryAfter: Number(res.headers.get("Retry-After")) || 0,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  function problem(res, what) {
    const code = res.body && res.body.error ? ": " + res.body.error : "";
    return what + " answered HTTP " + res.status + code + ".";
  }

  async function cycle() {
    let health, ready, stats, debugJobs;
    const wantStats = !(state.needToken && !state.token);
    // Jobs in flight and failures: /debug/jobs exists only where a token is configured.
    const wantDebug = Boolean(state.token) && state.debugJobs;
    try {
      [health, ready, stats, debugJobs] = await Promise.all([
        request("/health?verbose"),
        request("/ready"),
        wantStats ? request("/stats", state.etag) : Promise.resolve(null),
        wantDebug ? request("/debug/jobs?limit=20") : Promise.resolve(null),
      ]);
    } catch (err) {
      unreachable();
      return 0;
    }
    reachable();
    let wait = 0;
    let message = "";
    for (const res of [health, ready, stats]) {
      if (res && res.status === 429) {
        wait = Math.max(wait, res.retryAfter || 1);
        message = "Rate limited (HTTP 429): trying again in " + Math.max(wait, state.interval) + " s.";
      }
    }
    if (stats) {
      if (stats.status === 200 && stats.body) {
        state.etag = stats.etag;
        state.needToken = false;
        state.lastData = new Date();
        tokenAccepted();
        addSample(stats.body);
        renderStats(stats.body);
      } else if (stats.status === 304) {
        state.lastData = new Date();
      } else if (stats.status === 401) {
        state.etag = null;
        state.needToken = true;
        if (state.token) {
          state.token = null;
          writeStored(TOKEN_KEY, null);
          askForToken("The token was not accepted (HTTP 401). Check it and enter it again.");
        } else {
          askForToken("This server needs a bearer token to show its statistics.");
        }
      } else if (stats.status !== 429) {
        message = problem(stats, "/stats");
      }
    }
    if (debugJobs && debugJobs.status === 200 && debugJobs.body) renderDebugJobs(debugJobs.body);
    else if (debugJobs && debugJobs.status === 404) state.debugJobs = false;
    if (!state.token || !state.debugJobs) {
      show(byId("inflight"), false);
      show(byId("failures"), false);
    }
    if (health.body && (health.status === 200 || health.status === 503)) renderHealth(health.body);
    else if (health.status !== 429) message = message || problem(health, "/health");
    renderReady(ready, health);
    notice(message || recoveredMessage());
    setText(byId("updated"), state.lastData ? clock(state.lastData) : state.needToken ? "needs token" : "–");
    return wait;
  }

  function schedule(delaySeconds) {
    clearTimeout(state.timer);
    state.timer = null;
    if (!state.interval) return;
    state.timer = setTimeout(poll, Math.max(state.interval, delaySeconds || 0) * 1000);
  }

  async function poll() {
    if (state.running) return;
    state.running = true;
    let wait = 0;
    try {
      wait = await cycle();
    } catch (err) {
      notice("The page failed to render the data: " + (err && err.message ? err.message : err));
    } finally {
      state.running = false;
    }
    schedule(wait);
  }

  /* -- controls ------------------------------------------------------------------------ */

  function setupControls() {
    const select = byId("interval");
    const saved = readStored(INTERVAL_KEY);
    if (saved !== null && [...select.options].some((o) => o.value === saved)) select.value = saved;
    state.interval = Number(select.value);
    select.addEventListener("change", () => {
      state.interval = Number(select.value);
      writeStored(INTERVAL_KEY, select.value);
      if (state.interval) poll();
      else {
        schedule(0);
        setText(byId("updated"), "paused");
      }
    });
    byId("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = byId("token-input");
      const token = input.value.trim();
      if (!token) return;
      input.value = "";
      state.token = token;
      state.needToken = false;
      state.etag = null;
      state.health = "";
      writeStored(TOKEN_KEY, token);
      tokenAccepted();
      setText(byId("auth-message"), "");
      poll();
    });
    byId("forget-token").addEventListener("click", () => {
      state.token = null;
      state.etag = null;
      writeStored(TOKEN_KEY, null);
      show(byId("forget-token"), false);
      poll();
    });
  }

  setupControls();
  show(byId("forget-token"), Boolean(state.token));
  poll();
})();
