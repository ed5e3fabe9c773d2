// whirr dashboard core: DOM building (text only, never innerHTML), the JSON API, live
// updates (server-sent events, falling back to polling), keyboard shortcuts, theme.
"use strict";

const W = (() => {
  const body = document.body;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  // -- DOM -----------------------------------------------------------------------------
  // h("a", {href: "/x", class: "y", onclick: fn}, "text", child...): strings always become
  // text nodes, so values from the server can never turn into markup.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "checked" || key === "value" || key === "selected") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    append(el, children);
    return el;
  }
  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  function replace(el, ...children) { el.replaceChildren(); return append(el, children); }
  const $ = (sel, root) => (root || document).querySelector(sel);

  // -- formatting ----------------------------------------------------------------------
  const GLYPHS = { queued: "◷", running: "●", completed: "✓", failed: "✕", cancelled: "⊘",
                   timed_out: "◔", idle: "○", busy: "●", offline: "◌", stopped: "■" };
  const WORDS = { timed_out: "timed out" };
  function badge(status, extra) {
    return h("span", { class: `badge st-${status}`, title: extra || null },
      h("span", { class: "glyph", "aria-hidden": "true" }, GLYPHS[status] || "•"),
      WORDS[status] || status);
  }
  function seconds(s) {
    if (s === null || s === undefined || isNaN(s)) return "–";
    if (s < 1) return `${Math.round(s * 1000)}ms`;
    if (s < 60) return s < 10 ? `${s.toFixed(1)}s` : `${Math.round(s)}s`;
    const m = Math.floor(s / 60), sec = Math.floor(s % 60);
    if (m < 60) return `${m}m ${String(sec).padStart(2, "0")}s`;
    const hr = Math.floor(m / 60);
    if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, "0")}m`;
    return `${Math.floor(hr / 24)}d ${hr % 24}h`;
  }
  // The server's clock, so "ago" and runtimes do not drift with the browser's.
  let skew = 0;
  function setNow(iso) { if (iso) skew = Date.parse(iso) - Date.now(); }
  const now = () => Date.now() + skew;
  function ago(iso) {
    if (!iso) return "–";
    const s = Math.max(0, (now() - Date.parse(iso)) / 1000);
    return s < 5 ? "just now" : `${seconds(s)} ago`;
  }
  function since(iso) { return iso ? Math.max(0, (now() - Date.parse(iso)) / 1000) : null; }
  function when(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit",
                                         minute: "2-digit" });
  }
  function value(v) {
    if (v === null || v === undefined) return "–";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return v.toLocaleString();
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(5));
    }
    if (typeof v === "boolean") return v ? "true" : "false";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function timeEl(iso) {
    return h("time", { datetime: iso || null, title: iso ? new Date(iso).toLocaleString() : null,
                       dataset: { ago: iso || "" } }, ago(iso));
  }
  // Ticking "ago" and runtime cells without refetching.
  setInterval(() => {
    document.querySelectorAll("[data-ago]").forEach(el => {
      if (el.dataset.ago) el.textContent = ago(el.dataset.ago);
    });
    document.querySelectorAll("[data-since]").forEach(el => {
      if (el.dataset.since) el.textContent = seconds(since(el.dataset.since));
    });
  }, 1000);
  function empty(title, ...hint) {
    return h("div", { class: "empty" }, h("strong", {}, title), hint.length ? h("div", {}, hint) : null);
  }
  function runLink(run) {
    return h("a", { href: `/runs/${encodeURIComponent(run.id)}`, class: "run-link" },
      h("div", { class: "run-name ellipsis" }, run.name || run.id),
      run.name ? h("div", { class: "run-id" }, run.id) : null);
  }
  function chips(tags) { return (tags || []).map(t => h("span", { class: "chip" }, t)); }

  // -- the JSON API --------------------------------------------------------------------
  async function api(path, options) {
    // A GET that early.js already started (before plotly.js) is not asked twice.
    const early = options ? undefined : Early.take(path);
    const resp = await (early || fetch(path, Object.assign({ credentials: "same-origin",
      headers: { Accept: "application/json" } }, options || {})));
    if (resp.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`; }
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) throw new Error((data && data.detail) || `${resp.status} ${resp.statusText}`);
    return data;
  }
  // A write: the page's CSRF token in its header; `body`, when given, sent as JSON.
  async function post(path, body) {
    const headers = { "X-CSRF-Token": csrf, Accept: "application/json" };
    if (body === undefined) return api(path, { method: "POST", headers });
    headers["Content-Type"] = "application/json";
    return api(path, { method: "POST", headers, body: JSON.stringify(body) });
  }
  let toastTimer = null;
  function toast(message, kind) {
    const el = $("#toast");
    el.textContent = message;
    el.className = `toast show ${kind || ""}`;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = "toast"; }, 3500);
  }
  // A button that POSTs, disables itself meanwhile and reports the outcome.
  function action(label, path, opts) {
    const btn = h("button", { class: `${opts && opts.big ? "" : "small"} ${(opts && opts.kind) || ""}`, type: "button",
                              title: (opts && opts.title) || null,
                              dataset: (opts && opts.data) || {} }, label);
    btn.addEventListener("click", async ev => {
      ev.stopPropagation();
      if (opts && opts.confirm && !window.confirm(opts.confirm)) return;
      btn.disabled = true;
      try { const res = await post(path); toast(res.message); if (opts && opts.done) opts.done(res); }
      catch (e) { toast(e.message, "error"); btn.disabled = false; }
    });
    return btn;
  }

  // A small modal form in the <dialog> `dlg` (the run page's and the runs list's run
  // management): resolves to the text typed (or "" for a confirmation), or null when
  // dismissed. opts: title, text, label (no field without one), value, multiline,
  // confirm (the button's word), danger.
  function ask(dlg, opts) {
    return new Promise(resolve => {
      const field = opts.label === undefined ? null
        : h(opts.multiline ? "textarea" : "input", { id: "run-dialog-input", "aria-label": opts.label, rows: opts.multiline ? 6 : null,
                                                    type: opts.multiline ? null : "text", value: opts.value });
      if (field && opts.multiline) field.value = opts.value;
      let answered = false;
      const finish = value => { if (answered) return; answered = true; dlg.close(); resolve(value); };
      const form = h("form", { method: "dialog", onsubmit: ev => { ev.preventDefault(); finish(field ? field.value : ""); } },
        field ? h("label", { class: "dialog-field" }, opts.label, field) : null,
        h("div", { class: "dialog-buttons" },
          h("button", { type: "button", id: "run-dialog-cancel", onclick: () => finish(null) }, "Cancel"),
          h("button", { type: "submit", id: "run-dialog-ok", class: opts.danger ? "danger" : "primary" }, opts.confirm)));
      replace(dlg, h("h2", {}, opts.title), opts.text ? h("p", { class: "dialog-text" }, opts.text) : null, form);
      dlg.onclose = () => finish(null);
      dlg.showModal();
      if (field) { field.focus(); if (field.select) field.select(); }
    });
  }

  // -- live updates --------------------------------------------------------------------
  // One EventSource per page. "change" batches say the log moved (pages refetch, coalesced);
  // "metrics"/"system" say a watched run's files grew. If the stream fails, poll every
  // few seconds and try the stream again later.
  const POLL_MS = 3000, RETRY_STREAM_MS = 20000;
  const live = {
    after: Number(body.dataset.head || 0), es: null, poll: null, retry: null, opts: null,
    state(s) { const el = $("#live"); el.dataset.state = s; el.textContent = s; },
    start(opts) { this.opts = opts; this.connect(); },
    restart() { if (this.es) { this.es.close(); this.es = null; } if (!this.poll) this.connect(); },
    connect() {
      clearTimeout(this.retry);
      if (!window.EventSource) { this.fallback(); return; }
      const q = new URLSearchParams({ after: this.after });
      const runs = this.opts.runs ? this.opts.runs() : [];
      if (runs.length) q.set("runs", runs.join(","));
      const es = this.es = new EventSource(`/ui/stream?${q}`);
      let errors = 0;
      es.addEventListener("hello", () => { errors = 0; this.state("live"); this.stopPolling(); });
      es.addEventListener("change", e => {
        const batch = JSON.parse(e.data);
        this.after = batch[batch.length - 1][0];
        this.changed(batch);
      });
      for (const kind of ["metrics", "system"]) {
        es.addEventListener(kind, e => this.opts.onSeries && this.opts.onSeries(JSON.parse(e.data), kind));
      }
      es.onerror = () => {
        errors += 1;
        if (es.readyState === EventSource.CLOSED || errors >= 3) { es.close(); this.es = null; this.fallback(); }
        else this.state("reconnecting");
      };
    },
    pending: null, batch: [],
    changed(batch) {
      // Coalesce bursts (a sweep submitting 200 jobs) into one refetch.
      this.batch.push(...batch);
      if (this.pending) return;
      this.pending = setTimeout(() => {
        const all = this.batch; this.batch = []; this.pending = null;
        this.opts.onChange(all);
      }, 250);
    },
    fallback() {
      this.state("polling");
      if (!this.poll) {
        this.poll = setInterval(() => {
          this.opts.onChange([]);
          if (this.opts.onSeries) this.opts.onSeries(null, "poll");
        }, POLL_MS);
      }
      if (window.EventSource) this.retry = setTimeout(() => this.connect(), RETRY_STREAM_MS);
    },
    stopPolling() { if (this.poll) { clearInterval(this.poll); this.poll = null; } },
  };

  // -- theme and keyboard --------------------------------------------------------------
  const themeListeners = [];
  function toggleTheme() {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    try { localStorage.setItem("whirr-theme", next); } catch (e) { /* private mode */ }
    themeListeners.forEach(fn => fn(next));
  }
  $("#theme-toggle").addEventListener("click", toggleTheme);
  $("#help-toggle").addEventListener("click", () => $("#help").showModal());

  const keys = {};         // page-specific single-key handlers
  let prefix = null;       // "g" waits for its second key
  const GO = { o: "/", q: "/queue", r: "/runs", c: "/compare" };
  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (ev.key === "Escape") {
      if (typing) t.blur();
      return;
    }
    if (typing) return;
    if (prefix === "g") { prefix = null; if (GO[ev.key]) { ev.preventDefault(); location.href = GO[ev.key]; } return; }
    if (ev.key === "g") { prefix = "g"; setTimeout(() => { prefix = null; }, 1200); return; }
    if (ev.key === "t") { toggleTheme(); return; }
    if (ev.key === "?") { $("#help").showModal(); return; }
    if (ev.key === "/") {
      const search = $("input[type=search]");
      if (search) { ev.preventDefault(); search.focus(); search.select(); }
      return;
    }
    if (ev.key === "j" || ev.key === "k") { ev.preventDefault(); moveFocus(ev.key === "j" ? 1 : -1); return; }
    if (ev.key === "Enter") {
      const row = $("tr.focused"); const link = row && row.querySelector("a[href]");
      if (link) { ev.preventDefault(); location.href = link.href; }
      return;
    }
    if (keys[ev.key]) { ev.preventDefault(); keys[ev.key](ev); }
  });
  function moveFocus(step) {
    const rows = [...document.querySelectorAll("table.nav tbody tr")];
    if (!rows.length) return;
    let i = rows.findIndex(r => r.classList.contains("focused"));
    if (i >= 0) rows[i].classList.remove("focused");
    i = Math.min(rows.length - 1, Math.max(0, i + step));
    rows[i].classList.add("focused");
    rows[i].scrollIntoView({ block: "nearest" });
  }

  // -- tables --------------------------------------------------------------------------
  // cols: [{label, cell(row) -> node|string, class, sort}]
  function table(cols, rows, opts) {
    opts = opts || {};
    const head = h("tr", {}, cols.map(c => {
      const align = c.class && c.class.includes("num") ? "num" : "";
      const th = h("th", { class: [align, c.sort ? "sortable" : "", c.thClass].filter(Boolean).join(" "),
                           scope: "col", title: c.title || null }, c.label);
      if (c.sort) {
        if (opts.sort && opts.sort.key === c.sort) th.setAttribute("aria-sort", opts.sort.desc ? "descending" : "ascending");
        th.tabIndex = 0;
        const go = () => opts.onSort(c.sort);
        th.addEventListener("click", go);
        th.addEventListener("keydown", e => { if (e.key === "Enter") go(); });
      }
      return th;
    }));
    const body = h("tbody", {}, rows.map(row => h("tr", { dataset: opts.rowData ? opts.rowData(row) : {} },
      cols.map(c => h("td", { class: c.class || null }, c.cell(row))))));
    return h("div", { class: "table-wrap" }, h("table", { class: `data ${opts.nav ? "nav" : ""}` }, h("thead", {}, head), body));
  }

  function card(title, count, content, tools) {
    return h("section", { class: "card section" },
      h("div", { class: "card-head" }, h("h2", {}, title),
        count !== null && count !== undefined ? h("span", { class: "count" }, count) : null,
        tools ? h("div", { class: "tools" }, tools) : null),
      content);
  }

  function boot(page) {
    const main = $("#main");
    page.init(main).catch(e => replace(main, empty("Could not load this page", e.message)));
  }

  return { h, append, replace, $, badge, glyph: s => GLYPHS[s] || "•", seconds, ago, since, when, value, timeEl, empty,
           runLink, chips, api, post, toast, action, ask, live, keys, table, card, boot, setNow,
           onTheme: fn => themeListeners.push(fn), body };
})();
