// Compare runs: overlay a metric (smoothing, log scale; x: step, time, relative time or
// row), or its mean ± std over runs that differ only in ignored config keys (seeds); the
// config diff, and a parallel-coordinates view of config against a summary metric.
"use strict";

(() => {
  const { h, replace, badge, empty, api, card } = W;
  const params = new URLSearchParams(location.search);
  const state = {
    runs: (params.get("runs") || "").split(",").filter(Boolean),
    metric: params.get("metric") || "", x: params.get("x") || "step",
    smoothing: Number(params.get("smooth") || 0), log: params.get("log") === "1",
    target: params.get("target") || "", onlyDiff: true,
    // Group runs whose config is the same but for these keys (seeds): one mean line and a
    // ± one standard deviation band per group. null: every run drawn on its own.
    group: params.has("group") ? params.get("group").split(",").map(k => k.trim()).filter(Boolean) : null,
  };
  const X_LABELS = { step: "step", time: "relative time (s)", wall: "time", index: "row" };

  const page = {
    async init(main) {
      this.main = main;
      const recent = await api("/ui/runs?limit=300");
      this.known = recent.rows;
      this.build();
      await this.refresh();
      W.live.start({
        runs: () => (this.data ? this.data.runs.filter(r => r.status === "running").map(r => r.id) : []),
        onChange: batch => { if (!batch.length || batch.some(c => c[1].startsWith("run."))) this.refresh(); },
        onSeries: () => this.loadSeries(),
      });
    },
    build() {
      this.picker = h("input", { type: "search", list: "run-options", placeholder: "Add a run by name or id  ( / )",
                                 "aria-label": "Add a run", onchange: () => this.add(this.picker.value) });
      const options = h("datalist", { id: "run-options" },
        this.known.map(r => h("option", { value: r.id }, r.name ? `${r.name} · ${r.status}` : r.status)));
      this.chips = h("div", { class: "picked", id: "picked" });
      this.metricSel = h("select", { "aria-label": "Metric", id: "metric", onchange: () => { state.metric = this.metricSel.value; this.sync(); this.loadSeries(); } });
      const xSel = h("select", { "aria-label": "x axis", id: "x-axis", onchange: () => { state.x = xSel.value; this.sync(); this.loadSeries(); } },
        Object.entries(X_LABELS).map(([v, label]) => h("option", { value: v, selected: v === state.x }, `x: ${label}`)));
      const groupBox = h("input", { type: "checkbox", id: "group-runs", checked: state.group !== null,
                                    onchange: () => { state.group = groupBox.checked ? keysOf(ignore.value) : null; this.sync(); this.drawSeries(); } });
      const ignore = h("input", { type: "text", id: "group-ignore", size: 10, value: (state.group || ["seed"]).join(","),
                                  "aria-label": "Config keys that may differ within a group", title: "Config keys that may differ within a group (comma-separated)",
                                  onchange: () => { if (state.group !== null) { state.group = keysOf(ignore.value); this.sync(); this.drawSeries(); } } });
      const smooth = h("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: state.smoothing, "aria-label": "Smoothing",
                                  oninput: () => { state.smoothing = Number(smooth.value); out.textContent = smooth.value; this.sync(); this.drawSeries(); } });
      const out = h("output", { class: "mono" }, String(state.smoothing));
      const logBox = h("input", { type: "checkbox", id: "log-y", checked: state.log, onchange: () => { state.log = logBox.checked; this.sync(); this.drawSeries(); } });
      this.chart = h("div", { class: "chart big", id: "compare-chart" });
      this.diff = h("div");
      this.targetSel = h("select", { "aria-label": "Summary metric", id: "target", onchange: () => { state.target = this.targetSel.value; this.sync(); this.drawParcoords(); } });
      this.parcoords = h("div", { class: "chart big", id: "parcoords" });
      this.onlyDiffBox = h("input", { type: "checkbox", checked: state.onlyDiff, onchange: () => { state.onlyDiff = this.onlyDiffBox.checked; this.drawDiff(); } });
      replace(this.main,
        h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Compare"), this.sub = h("div", { class: "sub" }))),
        h("div", { class: "toolbar" }, this.picker, options, this.chips),
        card("Metric", null, h("div", { class: "card-body" }, this.chart),
          [this.metricSel, xSel, h("label", { class: "inline" }, "smoothing", smooth, out), h("label", { class: "inline" }, logBox, "log y"),
           h("label", { class: "inline", title: "One mean line and a ± std band per group of runs that differ only in these config keys" },
             groupBox, "mean ± std over", ignore)]),
        card("Config and summary", null, this.diff, h("label", { class: "inline" }, this.onlyDiffBox, "only differences")),
        card("Config against a result", null, h("div", { class: "card-body" }, this.parcoords), this.targetSel));
    },
    sync() {
      const q = new URLSearchParams();
      if (state.runs.length) q.set("runs", state.runs.join(","));
      if (state.metric) q.set("metric", state.metric);
      if (state.x !== "step") q.set("x", state.x);
      if (state.smoothing) q.set("smooth", state.smoothing);
      if (state.log) q.set("log", "1");
      if (state.target) q.set("target", state.target);
      if (state.group !== null) q.set("group", state.group.join(","));
      history.replaceState(null, "", `/compare${q.toString() ? "?" + q : ""}`);
    },
    add(value) {
      const id = (value || "").trim();
      this.picker.value = "";
      if (!id || state.runs.includes(id)) return;
      state.runs.push(id); this.sync(); this.refresh().then(() => W.live.restart());
    },
    remove(id) { state.runs = state.runs.filter(r => r !== id); this.sync(); this.refresh().then(() => W.live.restart()); },
    async refresh() {
      if (!state.runs.length) {
        this.data = null;
        this.sub.textContent = "";
        replace(this.chips);
        replace(this.chart, empty("Pick runs to compare", "Select them on the ", h("a", { href: "/runs" }, "runs page"), " or add them above."));
        replace(this.diff); replace(this.parcoords); replace(this.metricSel); replace(this.targetSel);
        return;
      }
      let d;
      try { d = this.data = await api(`/ui/compare?runs=${encodeURIComponent(state.runs.join(","))}`); }
      catch (e) { W.toast(e.message, "error"); state.runs.pop(); this.sync(); return this.refresh(); }
      state.runs = d.runs.map(r => r.id);   // prefixes resolve to full ids
      this.colours = Object.fromEntries(d.runs.map((r, i) => [r.id, Charts.colour(i)]));
      this.sub.textContent = `${d.runs.length} runs`;
      replace(this.chips, d.runs.map(r => h("span", { class: "run-chip", dataset: { run: r.id } },
        h("span", { class: "swatch", style: `background:${this.colours[r.id]}` }),
        h("a", { href: `/runs/${encodeURIComponent(r.id)}` }, r.name || r.id),
        h("button", { type: "button", "aria-label": `Remove ${r.id}`, title: "Remove", onclick: () => this.remove(r.id) }, "×"))));
      if (!d.metric_keys.includes(state.metric)) state.metric = pickDefault(d.metric_keys);
      replace(this.metricSel, d.metric_keys.length ? d.metric_keys.map(k => h("option", { value: k, selected: k === state.metric }, k))
        : h("option", { value: "" }, "no metrics"));
      if (!d.summary_keys.includes(state.target)) state.target = pickDefault(d.summary_keys);
      replace(this.targetSel, d.summary_keys.length ? d.summary_keys.map(k => h("option", { value: k, selected: k === state.target }, k))
        : h("option", { value: "" }, "no summary values"));
      this.sync();
      this.drawDiff(); this.drawParcoords();
      await this.loadSeries();
    },
    async loadSeries() {
      if (!state.runs.length || !state.metric) {
        if (state.runs.length) replace(this.chart, empty("These runs logged no metrics"));
        return;
      }
      const q = new URLSearchParams({ runs: state.runs.join(","), key: state.metric, x: state.x,
                                      points: Math.min(2000, Math.round(window.innerWidth / 2)) });
      this.series = await api(`/ui/compare/series?${q}`);
      this.drawSeries();
    },
    drawSeries() {
      if (!this.series) return;
      if (this.chart.querySelector(".empty")) this.chart.replaceChildren();
      // Wall-clock time comes as epoch seconds: plotly's date axis takes milliseconds.
      const xs = s => (state.x === "wall" ? s.x.map(v => v * 1000) : s.x);
      const series = this.series.series.map(s => ({ x: xs(s), y: s.y, name: s.name || s.run, colour: this.colours[s.run], run: s.run }));
      const opts = { smoothing: state.smoothing, log: state.log, legend: true, xDate: state.x === "wall",
                     xTitle: X_LABELS[state.x], uirevision: state.metric + state.x + (state.group || "") };
      const traces = state.group !== null && this.data ? this.groupTraces(series, opts) : Charts.traces(series, opts);
      Charts.draw(this.chart, traces, opts);
    },
    // Runs grouped by their config without the ignored keys: a group of two or more is
    // drawn as its mean (each run smoothed first) with a band of ± one standard deviation
    // over the runs that have a point at that x; a run alone is drawn as it is.
    groupTraces(series, opts) {
      const ignored = new Set(state.group);
      const runs = Object.fromEntries(this.data.runs.map(r => [r.id, r]));
      const differing = this.data.config_diff.filter(r => r.differs && !ignored.has(r.key)).map(r => r.key);
      const groups = new Map();
      for (const s of series) {
        const config = (runs[s.run] || {}).config || {};
        const key = JSON.stringify(Object.keys(config).filter(k => !ignored.has(k)).sort().map(k => [k, config[k]]));
        if (!groups.has(key)) groups.set(key, { config, members: [] });
        groups.get(key).members.push(s);
      }
      const out = [];
      [...groups.values()].forEach((g, i) => {
        const colour = Charts.colour(i);
        const label = differing.map(k => `${k}=${W.value(g.config[k])}`).join(" ") || "all runs";
        if (g.members.length === 1) {
          const s = g.members[0];
          out.push(...Charts.traces([{ ...s, colour, name: `${label} (${s.name})` }], opts));
          return;
        }
        const band = meanStd(g.members.map(s => ({ x: s.x, y: Charts.smooth(s.y, opts.smoothing) })));
        const name = `${label} (mean of ${g.members.length})`;
        out.push({ x: band.x, y: band.mean.map((m, j) => m + band.std[j]), type: "scatter", mode: "lines",
                   line: { width: 0, color: colour }, hoverinfo: "skip", showlegend: false, name: `${name} +std`, meta: { band: "upper" } });
        out.push({ x: band.x, y: band.mean.map((m, j) => m - band.std[j]), type: "scatter", mode: "lines",
                   line: { width: 0, color: colour }, fill: "tonexty", fillcolor: fade(colour), hoverinfo: "skip",
                   showlegend: false, name: `${name} -std`, meta: { band: "lower" } });
        out.push({ x: band.x, y: band.mean, type: "scatter", mode: "lines", name, line: { color: colour, width: 2 },
                   meta: { group: g.members.map(s => s.run) } });
      });
      return out;
    },
    drawDiff() {
      const d = this.data;
      if (!d) return;
      const rows = d.config_diff.filter(r => !state.onlyDiff || r.differs);
      const summaryRows = d.summary_keys.map(k => ({ key: k, values: d.runs.map(r => r.summary[k]), summary: true }));
      const best = row => {
        // The best value is the lowest for names that sound like a loss or error.
        const nums = row.values.filter(v => typeof v === "number");
        if (nums.length < 2) return null;
        return /loss|err|perplex|time|mse|mae|rmse/i.test(row.key) ? Math.min(...nums) : Math.max(...nums);
      };
      const head = h("tr", {}, h("th", {}, "Key"), d.runs.map(r => h("th", { class: "num" },
        h("span", { class: "swatch", style: `display:inline-block;width:8px;height:8px;border-radius:50%;margin-right:6px;background:${this.colours[r.id]}` }), r.name || r.id)));
      const statusRow = h("tr", {}, h("td", { class: "muted" }, "status"), d.runs.map(r => h("td", { class: "num" }, badge(r.status))));
      const line = (row, group) => {
        const top = group === "summary" ? best(row) : null;
        return h("tr", { dataset: { key: row.key, group } }, h("td", { class: "mono" }, row.key),
          row.values.map(v => h("td", { class: ["num", "mono", row.differs ? "diff" : "", top !== null && v === top ? "best" : ""].filter(Boolean).join(" ") }, W.value(v))));
      };
      const sep = label => h("tr", {}, h("td", { colspan: d.runs.length + 1, class: "hint", style: "background:var(--surface-2)" }, label));
      replace(this.diff, h("div", { class: "table-wrap" }, h("table", { class: "data", id: "diff-table" }, h("thead", {}, head),
        h("tbody", {}, statusRow, sep(`Config (${rows.length}${state.onlyDiff ? " differing" : ""} keys)`),
          rows.length ? rows.map(r => line(r, "config")) : h("tr", {}, h("td", { colspan: d.runs.length + 1, class: "faint" }, "No differences")),
          summaryRows.length ? [sep("Summary (best highlighted)"), summaryRows.map(r => line(r, "summary"))] : null))));
    },
    drawParcoords() {
      const d = this.data;
      if (!d) return;
      if (typeof Plotly === "undefined") { Charts.whenReady(() => this.drawParcoords()); return; }
      if (d.runs.length < 2) { replace(this.parcoords, empty("Add at least two runs to see how config relates to results")); return; }
      const keys = d.config_diff.filter(r => r.differs).map(r => r.key);
      const dims = keys.map(k => dimension(k, d.runs.map(r => r.config[k])));
      const target = state.target;
      const values = d.runs.map(r => (typeof r.summary[target] === "number" ? r.summary[target] : null));
      if (target && values.some(v => v !== null)) dims.push(dimension(target, values));
      if (!dims.length) { replace(this.parcoords, empty("These runs share one config", "Nothing to relate to results.")); return; }
      if (!hasWebGL()) { replace(this.parcoords, empty("This view needs WebGL", "Enable hardware acceleration in the browser to see it.")); return; }
      if (this.parcoords.querySelector(".empty")) this.parcoords.replaceChildren();
      const colourBy = values.some(v => v !== null) ? values.map(v => (v === null ? NaN : v)) : d.runs.map((_, i) => i);
      const text = getComputedStyle(document.documentElement).getPropertyValue("--text").trim();
      Plotly.react(this.parcoords, [{
        type: "parcoords", dimensions: dims,
        line: { color: colourBy, colorscale: "Viridis", showscale: true,
                colorbar: { title: { text: Charts.literal(target || "run") }, thickness: 12 } },
        labelfont: { size: 12, color: text }, tickfont: { size: 11, color: text },
      }], Object.assign(Charts.layout(), { margin: { l: 70, r: 90, t: 40, b: 24 } }), Charts.CONFIG);
    },
  };

  // A numeric axis for numbers, an axis of named ticks for anything else. Its title is
  // escaped for plotly (see Charts.literal); parcoords draws tick labels as plain text.
  function dimension(key, values) {
    const label = Charts.literal(key);
    if (values.every(v => typeof v === "number" || v === null || v === undefined)) {
      return { label, values: values.map(v => (v === null || v === undefined ? NaN : v)) };
    }
    const names = [...new Set(values.map(v => W.value(v)))].sort();
    return { label, values: values.map(v => names.indexOf(W.value(v))), tickvals: names.map((_, i) => i),
             ticktext: names, range: [0, Math.max(1, names.length - 1)] };
  }
  // Mean and standard deviation of several series at common x values: the union of
  // their x, at most 600 points, each series read by linear interpolation, and only where
  // it has points around (no extrapolation past its first or last x).
  function meanStd(series) {
    const MAX = 600;
    let xs = [...new Set(series.flatMap(s => s.x.filter((x, j) => x !== null && s.y[j] !== null && isFinite(s.y[j]))))].sort((a, b) => a - b);
    if (xs.length > MAX) xs = Array.from({ length: MAX }, (_, j) => xs[Math.round(j * (xs.length - 1) / (MAX - 1))]);
    const clean = series.map(s => {
      const pts = s.x.map((x, j) => [x, s.y[j]]).filter(([x, y]) => x !== null && y !== null && isFinite(y));
      return pts.sort((a, b) => a[0] - b[0]);
    });
    const at = (pts, x) => {
      if (!pts.length || x < pts[0][0] || x > pts[pts.length - 1][0]) return null;
      let lo = 0, hi = pts.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (pts[mid][0] <= x) lo = mid; else hi = mid; }
      const [x0, y0] = pts[lo], [x1, y1] = pts[hi];
      return x1 === x0 ? y0 : y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    };
    const mean = [], std = [], keep = [];
    for (const x of xs) {
      const ys = clean.map(p => at(p, x)).filter(v => v !== null);
      if (!ys.length) continue;
      const m = ys.reduce((a, b) => a + b, 0) / ys.length;
      keep.push(x); mean.push(m);
      std.push(Math.sqrt(ys.reduce((a, b) => a + (b - m) * (b - m), 0) / ys.length));
    }
    return { x: keep, mean, std };
  }
  function fade(hex) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},0.2)`;
  }
  const keysOf = text => text.split(",").map(k => k.trim()).filter(Boolean);
  function hasWebGL() {
    try { return !!document.createElement("canvas").getContext("webgl"); } catch (e) { return false; }
  }
  function pickDefault(keys) {
    return keys.find(k => /(^|\/|_)loss$/.test(k) && !/val/.test(k)) || keys.find(k => /loss|acc/.test(k)) || keys[0] || "";
  }
  W.keys.a = () => document.getElementById("metric").focus();
  W.boot(page);
})();
