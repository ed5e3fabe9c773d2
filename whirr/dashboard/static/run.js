// One run: header and actions, metric and system charts (live), config, summary, git,
// artifacts, and a live tail of output.log.
"use strict";

(() => {
  const { h, replace, badge, timeEl, empty, chips, api, action, card } = W;
  const runId = W.body.dataset.subject;
  const enc = encodeURIComponent(runId);

  const page = {
    x: "step", smoothing: 0, log: false, logOffset: null,
    async init(main) {
      this.main = main;
      await this.refresh();
      W.live.start({
        runs: () => (this.detail && this.detail.run.status === "running" ? [runId] : []),
        onChange: batch => { if (!batch.length || batch.some(c => c[2].endsWith(runId) || c[1].startsWith("job."))) this.refresh(); },
        onSeries: (msg, kind) => {
          if (kind === "poll") { this.loadSeries("metrics"); this.loadSeries("system"); this.tail(); return; }
          this.loadSeries(kind); this.tail();
        },
      });
    },
    async refresh() {
      const before = this.detail && this.detail.run.status;
      // The first load asks for the charts' data at once, beside the run's details.
      const early = this.built ? null : this.fetchSeries("metrics");
      const d = this.detail = await api(`/ui/runs/${enc}`);
      W.setNow(d.now);
      if (!this.built) { this.build(); this.built = true; }
      this.renderHead(); this.renderInfo();
      if (before && before !== d.run.status) W.live.restart();  // watch (or stop watching) its files
      await Promise.all([early ? early.then(s => this.showSeries("metrics", s)) : this.loadSeries("metrics"),
                         this.loadSeries("system"), this.tail()]);
    },
    build() {
      this.head = h("div", { class: "page-head" });
      this.charts = { metrics: h("div", { class: "charts", id: "metric-charts" }), system: h("div", { class: "charts", id: "system-charts" }) };
      this.boxes = { metrics: {}, system: {} };
      const xSel = h("select", { "aria-label": "x axis", onchange: () => { this.x = xSel.value; this.loadSeries("metrics"); } },
        h("option", { value: "step" }, "x: step"), h("option", { value: "time" }, "x: time (s)"), h("option", { value: "index" }, "x: row"));
      const smooth = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0, "aria-label": "Smoothing",
                                  oninput: () => { this.smoothing = Number(smooth.value); smoothOut.textContent = smooth.value; this.redraw("metrics"); } });
      const smoothOut = h("output", { class: "mono" }, "0");
      const logBox = h("input", { type: "checkbox", onchange: () => { this.log = logBox.checked; this.redraw("metrics"); } });
      const tools = [xSel, h("label", { class: "inline" }, "smoothing", smooth, smoothOut), h("label", { class: "inline" }, logBox, "log y")];
      this.logPre = h("pre", { class: "log", id: "log", tabindex: 0, "aria-label": "output.log" });
      this.info = h("div", { class: "grid two section" });
      this.files = h("div", { class: "grid two section" });
      this.metricsCard = card("Metrics", null, this.charts.metrics, tools);
      this.systemCard = card("System", null, this.charts.system);
      replace(this.main, this.head, this.metricsCard, this.systemCard, this.info, this.files,
        card("Output", null, this.logPre, h("span", { class: "hint", id: "log-state" })));
    },
    renderHead() {
      const { run, job } = this.detail;
      const actions = [];
      if (job && (job.status === "queued" || job.status === "running") && !job.cancel_requested) {
        actions.push(action("Cancel job", `/ui/jobs/${job.id}/cancel`, { kind: "danger", big: true, data: { action: "cancel", job: job.id },
                                                                        done: () => this.refresh() }));
      }
      if (job && ["failed", "cancelled", "timed_out"].includes(job.status)) {
        actions.push(action("Retry", `/ui/jobs/${job.id}/retry`, { big: true, data: { action: "retry", job: job.id },
                                                                   done: res => { location.href = "/queue"; return res; } }));
      }
      actions.push(h("a", { href: `/compare?runs=${enc}` }, h("button", { type: "button", tabindex: -1 }, "Compare…")));
      const dur = run.duration_seconds !== null ? W.seconds(run.duration_seconds)
        : h("span", { dataset: { since: run.started_at } }, W.seconds(W.since(run.started_at)));
      replace(this.head,
        h("div", { style: "min-width:0" },
          h("h1", { class: "ellipsis", id: "run-title" }, run.name || run.id),
          h("div", { class: "sub" }, badge(run.status, run.error), h("span", { class: "mono" }, run.id),
            job ? h("a", { href: `/queue#job-${job.id}` }, `job #${job.id}${job.attempt > 1 ? ` · attempt ${job.attempt}` : ""}`) : h("span", { class: "faint" }, "direct run"),
            h("span", {}, "started ", timeEl(run.started_at)), h("span", {}, run.duration_seconds !== null ? "took " : "running for ", dur),
            run.hostname ? h("span", { class: "mono" }, run.hostname) : null, chips(run.tags)),
          this.renderFiles()),
        h("div", { class: "actions" }, actions));
      document.title = `${run.name || run.id} · whirr`;
    },
    // Where the run's files really are (as `whirr show` says it), and what is missing.
    renderFiles() {
      const where = this.detail.files_location;
      if (!where) return null;
      return h("div", { class: "sub files-line", id: "run-files" },
        h("span", { class: "mono" }, `Files: ${where.line}`),
        where.warnings.map(w => h("span", { class: "files-warning", role: "status" }, `Warning: ${w}`)));
    },
    renderInfo() {
      const d = this.detail, run = d.run;
      const kv = obj => {
        const keys = Object.keys(obj);
        return keys.length ? h("table", { class: "kv" }, h("tbody", {}, keys.map(k => h("tr", {}, h("td", {}, k), h("td", {}, W.value(obj[k]))))))
          : null;
      };
      const summary = Object.assign({}, run.summary);
      const last = d.metrics.last;
      replace(this.info,
        card("Config", Object.keys(d.config_flat).length, h("div", { class: "card-body" }, kv(d.config_flat) || empty("No config", "Pass ", h("code", {}, "whirr.init(config={...})")))),
        card("Summary", null, h("div", { class: "card-body" },
          kv(summary) || empty("No summary yet", h("code", {}, "run.summary({...})"), " records final results"),
          Object.keys(last).length ? [h("h3", { class: "hint", style: "margin:14px 0 4px" }, `Last logged values · ${d.metrics.rows.toLocaleString()} rows`), kv(last)] : null)));
      const git = run.git;
      const artifacts = d.artifacts.length ? W.table([
        { label: "File", cell: a => h("a", { href: `/ui/runs/${enc}/artifacts/${a.path.split("/").map(encodeURIComponent).join("/")}`, download: a.path.split("/").pop() }, a.path), class: "mono" },
        { label: "Size", cell: a => bytes(a.size), class: "num" },
        { label: "Saved", cell: a => timeEl(a.modified) },
      ], d.artifacts) : empty("No artifacts", h("code", {}, "run.save_artifact(path)"), " copies files here");
      replace(this.files,
        card("Git", null, h("div", { class: "card-body" }, git ? kv({ commit: git.commit, branch: git.branch, dirty: git.dirty, remote: git.remote })
          : empty("No git information", "The run was not started inside a git checkout."))),
        card("Artifacts", d.artifacts.length, artifacts));
    },
    series: { metrics: null, system: null },
    fetchSeries(kind) {
      return api(Early.seriesPath(runId, kind, kind === "system" ? "time" : this.x));
    },
    showSeries(kind, d) { this.series[kind] = d; this.redraw(kind); },
    async loadSeries(kind) { this.showSeries(kind, await this.fetchSeries(kind)); },
    redraw(kind) {
      const d = this.series[kind];
      if (!d) return;
      const holder = this.charts[kind];
      const cardEl = kind === "metrics" ? this.metricsCard : this.systemCard;
      cardEl.querySelector(".count") || cardEl.querySelector(".card-head h2").after(h("span", { class: "count" }));
      cardEl.querySelector(".count").textContent = d.series.length ? `${d.series.length} · ${d.rows.toLocaleString()} rows` : "";
      if (!d.series.length) {
        if (kind === "system") { cardEl.hidden = true; return; }
        replace(holder, empty("No metrics logged yet", "Log some with ", h("code", {}, "run.log({\"loss\": loss}, step=step)")));
        this.boxes[kind] = {};
        return;
      }
      cardEl.hidden = false;
      if (holder.querySelector(".empty")) holder.replaceChildren();
      const xTitle = kind === "system" || this.x === "time" ? "seconds" : this.x;
      for (const s of d.series) {
        let box = this.boxes[kind][s.key];
        if (!box) {
          const chart = h("div", { class: "chart", dataset: { key: s.key } });
          const title = h("span", { class: "faint" });
          box = this.boxes[kind][s.key] = { el: h("div", { class: "chart-box" }, h("h3", {}, h("span", {}, s.key), title), chart), chart, title };
          holder.append(box.el);
        }
        box.title.textContent = s.total > s.x.length ? `${s.total.toLocaleString()} pts, ${s.x.length.toLocaleString()} drawn` : `${s.total.toLocaleString()} pts`;
        const opts = kind === "metrics" ? { smoothing: this.smoothing, log: this.log, xTitle } : { xTitle };
        Charts.draw(box.chart, Charts.traces([{ x: s.x, y: s.y, name: s.key, colour: kind === "system" ? "#8e6fd8" : null }], opts), opts);
      }
    },
    tailing: false,
    async tail() {
      if (this.tailing) return;
      this.tailing = true;
      try {
        const first = this.logOffset === null;
        const q = first ? "" : `?offset=${this.logOffset}`;
        const d = await api(`/ui/runs/${enc}/log${q}`);
        const pre = this.logPre;
        const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
        if (first) pre.textContent = d.text || "";
        else if (d.text) pre.append(document.createTextNode(d.text));
        if (first && !d.text) pre.textContent = "(no output yet)";
        else if (!first && d.text && pre.firstChild && pre.firstChild.textContent === "(no output yet)") pre.firstChild.remove();
        this.logOffset = d.offset;
        document.getElementById("log-state").textContent = d.ended ? "ended" : "following";
        if (atBottom || first) pre.scrollTop = pre.scrollHeight;
      } finally { this.tailing = false; }
    },
  };
  function bytes(n) {
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${i ? n.toFixed(1) : n} ${units[i]}`;
  }
  // A running job's output grows without events: look every few seconds while it runs.
  setInterval(() => { if (page.detail && page.detail.run.status === "running") page.tail(); }, 3000);
  W.boot(page);
})();
