// redpg dashboard: polls /api/stats, /api/views and /api/dlq and draws
// every chart itself. Data from the server is only ever set with
// textContent or setAttribute, never parsed as HTML. Each figure carries
// its exact value in a data-* attribute, which the browser test reads.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const refresh = Number(document.body.dataset.refreshMs) || 3000;
  const history = []; // {t, depth, inflight}, newest last
  const maxHistory = 120;
  const maxWorkers = 50; // rows in the workers table; the rest are counted
  let lastStats = null;
  let cycle = 0;
  let loaded = { stats: false, views: false, dlq: false };

  const $ = (id) => document.getElementById(id);
  const fmtInt = (n) => Number(n).toLocaleString("en-US");
  const fmtUSD = (s) => "$" + Number(s).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const fmtCents = (c) => fmtUSD(Number(c) / 100);

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  async function getJSON(url) {
    const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) throw new Error("unauthorised: reload and enter the token");
    if (!r.ok) throw new Error(url + ": HTTP " + r.status);
    return r.json();
  }

  function showError(msg) {
    const e = $("error");
    e.textContent = msg || "";
    e.hidden = !msg;
  }

  // bars draws horizontal bars; items: {label, value, display, cls, attrs}.
  function bars(container, items, emptyText) {
    clear(container);
    if (items.length === 0) {
      container.appendChild(el("p", { class: "empty" }, emptyText || "nothing yet"));
      return;
    }
    const top = Math.max(...items.map((i) => i.value), 1e-9);
    for (const it of items) {
      const row = el("div", Object.assign({ class: "bar-row" }, it.attrs));
      row.appendChild(el("span", { class: "bar-label", title: it.label }, it.label));
      const track = el("span", { class: "bar-track" });
      const bar = el("span", { class: "bar " + (it.cls || "") });
      bar.style.width = (100 * it.value / top).toFixed(2) + "%";
      track.appendChild(bar);
      row.appendChild(track);
      row.appendChild(el("span", { class: "bar-value" }, it.display));
      container.appendChild(row);
    }
  }

  function setKPI(name, value, display) {
    const e = $("kpi-" + name);
    if (!e) return;
    e.dataset.value = String(value);
    e.textContent = display === undefined ? fmtInt(value) : display;
  }

  function renderStats(s) {
    for (const k of ["queue_depth", "processing", "workers", "production_rows", "duplicates_total", "rejected_rows", "produced_total", "dedup_window_size", "batches_last_minute"]) {
      setKPI(k, s[k]);
    }
    if (lastStats) {
      const dt = (Date.parse(s.taken_at) - Date.parse(lastStats.taken_at)) / 1000;
      if (dt > 0) {
        const rate = Math.max(0, (s.promoted_total - lastStats.promoted_total) / dt);
        setKPI("promoted_rate", rate.toFixed(1), rate.toFixed(1));
      }
    }
    lastStats = s;
    $("version").textContent = s.version;

    // Live windows as orders per minute. Each figure covers [from, to),
    // whole seconds by order time, as `stats --json` reports it.
    bars($("chart-windows"), (s.windows || []).map((w) => {
      const minutes = (Date.parse(w.to) - Date.parse(w.from)) / 60000;
      const perMin = minutes > 0 ? w.orders / minutes : 0;
      return {
        label: "last " + w.span, value: perMin,
        display: perMin.toFixed(1) + "/min · " + fmtInt(w.orders) + " orders · " + fmtCents(w.revenue_usd_cents),
        attrs: { "data-window": w.span, "data-from": w.from, "data-to": w.to, "data-orders": w.orders,
          "data-revenue-cents": w.revenue_usd_cents, "data-per-minute": perMin.toFixed(3) },
      };
    }), "no windows");

    // Queue depth and in flight over time, sampled by this page.
    history.push({ t: Date.parse(s.taken_at), depth: s.queue_depth, inflight: s.processing });
    while (history.length > maxHistory) history.shift();
    drawQueue();

    // Duplicates and dead letters by reason.
    const reasons = Object.entries(s.rejected_by_reason || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const items = [{ label: "duplicates", value: s.duplicates_total, display: fmtInt(s.duplicates_total), cls: "kind-duplicates",
      attrs: { "data-kind": "duplicates", "data-count": s.duplicates_total } }];
    for (const [reason, n] of reasons) {
      items.push({ label: reason, value: n, display: fmtInt(n), cls: "kind-reason", attrs: { "data-reason": reason, "data-count": n } });
    }
    bars($("chart-reasons"), items);

    bars($("chart-rows"), [
      { label: "staging (orders_staging)", value: s.staging_rows, display: fmtInt(s.staging_rows), cls: "kind-staging", attrs: { "data-table": "staging", "data-count": s.staging_rows } },
      { label: "production (orders)", value: s.production_rows, display: fmtInt(s.production_rows), attrs: { "data-table": "production", "data-count": s.production_rows } },
    ]);

    // Workers holding a lease (workers_alive), with what they registered.
    const tbody = $("workers").tBodies[0];
    clear(tbody);
    const now = Date.parse(s.taken_at);
    const workers = s.workers_alive || [];
    for (const w of workers.slice(0, maxWorkers)) {
      const until = Date.parse(w.lease_until);
      const left = (until - now) / 1000;
      const tr = el("tr", { "data-worker": w.id, "data-host": w.host || "", "data-version": w.version || "",
        "data-lease-until": w.lease_until, "data-lease-seconds": left.toFixed(1) });
      tr.appendChild(el("td", { title: w.id }, w.id));
      const host = w.host ? w.host + (w.pid ? " (pid " + w.pid + ")" : "") : "–";
      tr.appendChild(el("td", { title: host }, host));
      tr.appendChild(el("td", { title: w.version || "" }, w.version || "–"));
      tr.appendChild(el("td", { title: w.lease_until }, new Date(until).toLocaleTimeString() + " " +
        (left >= 0 ? "(in " + left.toFixed(1) + " s)" : "(expired " + (-left).toFixed(1) + " s ago)")));
      tbody.appendChild(tr);
    }
    if (workers.length > maxWorkers) {
      const tr = el("tr");
      tr.appendChild(el("td", { class: "empty", colspan: 4 }, "and " + fmtInt(workers.length - maxWorkers) + " more"));
      tbody.appendChild(tr);
    }
    if (!workers.length) {
      const tr = el("tr");
      tr.appendChild(el("td", { class: "empty", colspan: 4 }, "no worker holds a lease"));
      tbody.appendChild(tr);
    }
  }

  function drawQueue() {
    const c = $("chart-queue");
    clear(c);
    const W = 400, H = 150, pad = 4;
    const top = Math.max(1, ...history.map((h) => Math.max(h.depth, h.inflight)));
    c.appendChild(svg("text", { x: pad, y: 10 }, fmtInt(top)));
    const line = (key, color) => {
      if (history.length === 0) return;
      const n = Math.max(history.length - 1, 1);
      const pts = history.map((h, i) => [pad + (W - 2 * pad) * i / n, H - pad - (H - 2 * pad - 12) * h[key] / top]);
      c.appendChild(svg("polyline", { points: pts.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    };
    line("depth", "#2563eb");
    line("inflight", "#f59e0b");
    const last = history[history.length - 1];
    const q = $("queue-latest"), f = $("inflight-latest");
    q.textContent = fmtInt(last.depth); q.dataset.value = last.depth;
    f.textContent = fmtInt(last.inflight); f.dataset.value = last.inflight;
    c.dataset.samples = history.length;
  }

  const palette = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#84cc16", "#ec4899"];

  function renderViews(v) {
    // Revenue per hour by category: stacked columns.
    const c = $("chart-sales-hourly");
    clear(c);
    const rows = v.sales_hourly || [];
    const hours = [...new Set(rows.map((r) => r.hour))].sort();
    const cats = [...new Set(rows.map((r) => r.category))].sort();
    const totals = hours.map((h) => rows.filter((r) => r.hour === h).reduce((a, r) => a + Number(r.total_revenue_usd), 0));
    const top = Math.max(1, ...totals);
    const W = 800, H = 220, left = 56, bottom = 20, slot = (W - left) / Math.max(hours.length, 1);
    c.appendChild(svg("text", { x: 0, y: 10 }, fmtUSD(top)));
    c.appendChild(svg("line", { x1: left, y1: H - bottom, x2: W, y2: H - bottom, stroke: "#e3e6ea" }));
    hours.forEach((h, i) => {
      let y = H - bottom;
      const x = left + i * slot + slot * 0.15;
      for (const r of rows.filter((r) => r.hour === h)) {
        const hgt = (H - bottom - 14) * Number(r.total_revenue_usd) / top;
        y -= hgt;
        const rect = svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: (slot * 0.7).toFixed(1), height: Math.max(hgt, 0.5).toFixed(1),
          fill: palette[cats.indexOf(r.category) % palette.length], "data-hour": r.hour, "data-category": r.category,
          "data-revenue": r.total_revenue_usd, "data-orders": r.order_count });
        rect.appendChild(svg("title", {}, r.category + " " + new Date(r.hour).toLocaleString() + ": " + fmtUSD(r.total_revenue_usd) + ", " + fmtInt(r.order_count) + " orders"));
        c.appendChild(rect);
      }
      const d = new Date(h);
      c.appendChild(svg("text", { x: (x + slot * 0.35).toFixed(1), y: H - 6, "text-anchor": "middle" }, String(d.getHours()).padStart(2, "0") + ":00"));
    });
    if (hours.length === 0) c.appendChild(svg("text", { x: left, y: H / 2 }, "no orders in the last 24 hours (refresh the views: redpg promote)"));
    const legend = $("legend-categories");
    clear(legend);
    cats.forEach((cat, i) => {
      legend.appendChild(el("span", { class: "swatch s" + (i % palette.length) }));
      legend.appendChild(document.createTextNode(cat));
    });

    bars($("chart-top-products"), (v.top_products_today || []).map((p) => ({
      label: p.product_name + " (" + p.product_id + ")", value: Number(p.total_revenue_usd),
      display: fmtUSD(p.total_revenue_usd) + " · " + fmtInt(p.order_count),
      attrs: { "data-product-id": p.product_id, "data-revenue": p.total_revenue_usd, "data-orders": p.order_count, "data-units": p.units_sold },
    })), "no orders today");

    bars($("chart-zones"), (v.shipping_zones || []).map((z) => ({
      label: z.shipping_zone + " · " + z.country, value: Number(z.total_revenue_usd),
      display: fmtUSD(z.total_revenue_usd) + " · " + fmtInt(z.order_count),
      attrs: { "data-zone": z.shipping_zone, "data-country": z.country, "data-revenue": z.total_revenue_usd, "data-orders": z.order_count },
    })), "no orders yet");
  }

  function renderDLQ(d) {
    const tbody = $("dlq-samples").tBodies[0];
    clear(tbody);
    const letters = d.letters || [];
    for (const l of letters) {
      const tr = el("tr", { "data-id": l.id, "data-reason": l.reason });
      tr.appendChild(el("td", {}, l.id));
      tr.appendChild(el("td", {}, l.reason));
      tr.appendChild(el("td", { title: l.order_id }, l.order_id || "–"));
      tr.appendChild(el("td", { title: l.detail }, l.detail));
      const td = el("td");
      td.appendChild(el("pre", { class: "payload" }, l.payload + (l.payload_truncated ? " …" : "")));
      tr.appendChild(td);
      tbody.appendChild(tr);
    }
    if (!letters.length) {
      const tr = el("tr");
      tr.appendChild(el("td", { class: "empty", colspan: 5 }, "no dead letters"));
      tbody.appendChild(tr);
    }
  }

  async function tick() {
    cycle++;
    try {
      const jobs = [getJSON("/api/stats").then((s) => { renderStats(s); loaded.stats = true; }),
        getJSON("/api/views").then((v) => { renderViews(v); loaded.views = true; })];
      if (cycle === 1 || cycle % 5 === 0) {
        jobs.push(getJSON("/api/dlq?newest=1&limit=10").then((d) => { renderDLQ(d); loaded.dlq = true; }));
      }
      await Promise.all(jobs);
      showError("");
      $("updated").textContent = new Date().toLocaleTimeString();
      document.body.dataset.updates = String(cycle);
      if (loaded.stats && loaded.views && loaded.dlq) document.body.dataset.ready = "1";
    } catch (err) {
      showError(String(err.message || err));
    } finally {
      setTimeout(tick, refresh);
    }
  }

  tick();
})();
