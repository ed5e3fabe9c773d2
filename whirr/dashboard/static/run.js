// One run: header and actions (rename, tags, note, archive, delete), why it failed,
// metric charts grouped by prefix (live), system charts and stat tiles, config, summary,
// git, artifacts, and a live tail of output.log.
"use strict";

(() => {
  const { h, replace, badge, timeEl, empty, api, action, card } = W;
  const runId = W.body.dataset.subject;
  const enc = encodeURIComponent(runId);
  // Keys that count progress rather than measure it: charted only on request.
  const STEP_KEYS = new Set(["epoch", "step", "global_step", "iteration"]);
  // Ends worth explaining at the top of the page.
  const BAD_ENDS = new Set(["failed", "crashed", "timed_out", "killed"]);
  const BANNER_LINES = 15;
  // `train/loss` belongs to the section `train`; a key without a prefix to "Charts".
  const groupOf = key => (key.includes("/") ? key.slice(0, key.indexOf("/")) : "");

  // Which charts are pinned, hidden, and whether step keys are shown: kept in the address
  // (`?pin=val/loss&hide=lr&steps=1`), so a link reproduces the view.
  const view = (() => {
    const q = new URLSearchParams(location.search);
    return { pinned: q.getAll("pin"), hidden: new Set(q.getAll("hide")), steps: q.get("steps") === "1" };
  })();
  function saveView() {
    const q = new URLSearchParams(location.search);
    for (const name of ["pin", "hide", "steps"]) q.delete(name);
    view.pinned.forEach(k => q.append("pin", k));
    view.hidden.forEach(k => q.append("hide", k));
    if (view.steps) q.set("steps", "1");
    const s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? `?${s}` : "") + location.hash);
  }

  const page = {
    x: "step", smoothing: 0, log: false, logOffset: null, logText: "",
    async init(main) {
      this.main = main;
      await this.refresh();
      W.live.start({
        runs: () => (this.detail && this.detail.run.status === "running" ? [runId] : []),
        onChange: batch => { if (this.deleted) return; if (!batch.length || batch.some(c => c[2].endsWith(runId) || c[1].startsWith("job."))) this.refresh(); },
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
      let d;
      try { d = this.detail = await api(`/ui/runs/${enc}`); }
      catch (e) { if (this.deleted) return; throw e; }
      W.setNow(d.now);
      if (!this.built) { this.build(); this.built = true; }
      this.renderHead(); this.renderInfo(); this.renderBanner();
      if (before && before !== d.run.status) W.live.restart();  // watch (or stop watching) its files
      await Promise.all([early ? early.then(s => this.showSeries("metrics", s)) : this.loadSeries("metrics"),
                         this.loadSeries("system"), this.tail()]);
    },
    build() {
      this.head = h("div", { class: "page-head" });
      this.banner = h("section", { class: "card section failure", id: "run-failure", role: "alert", hidden: true });
      this.note = h("div", { id: "run-note-box" });
      this.charts = { metrics: h("div", { class: "chart-groups", id: "metric-charts" }),
                      system: h("div", { id: "system-charts" }) };
      this.boxes = { metrics: {}, system: {} };
      this.layoutKey = { metrics: null, system: null };
      const xSel = h("select", { "aria-label": "x axis", onchange: () => { this.x = xSel.value; this.loadSeries("metrics"); } },
        h("option", { value: "step" }, "x: step"), h("option", { value: "time" }, "x: time (s)"), h("option", { value: "index" }, "x: row"));
      const smooth = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0, "aria-label": "Smoothing",
                                  oninput: () => { this.smoothing = Number(smooth.value); smoothOut.textContent = smooth.value; this.redraw("metrics"); } });
      const smoothOut = h("output", { class: "mono" }, "0");
      const logBox = h("input", { type: "checkbox", onchange: () => { this.log = logBox.checked; this.redraw("metrics"); } });
      const stepsBox = h("input", { type: "checkbox", id: "show-steps", checked: view.steps,
                                    onchange: () => { view.steps = stepsBox.checked; saveView(); this.redraw("metrics"); } });
      this.stepsLabel = h("label", { class: "inline", hidden: true, title: "Keys such as epoch or global_step count progress; they are not charted unless asked" },
        stepsBox, "step keys");
      const tools = [xSel, h("label", { class: "inline" }, "smoothing", smooth, smoothOut), h("label", { class: "inline" }, logBox, "log y"), this.stepsLabel];
      this.logPre = h("pre", { class: "log", id: "log", tabindex: 0, "aria-label": "output.log" });
      this.info = h("div", { class: "grid two section" });
      this.files = h("div", { class: "grid two section" });
      this.lastBox = h("div", { id: "last-values" });
      this.metricsCard = card("Metrics", null, this.charts.metrics, tools);
      this.systemCard = card("System", null, this.charts.system);
      this.dialog = h("dialog", { id: "run-dialog" });
      replace(this.main, this.head, this.banner, this.note, this.metricsCard, this.systemCard, this.info, this.files,
        card("Output", null, this.logPre, h("span", { class: "hint", id: "log-state" })), this.dialog);
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
          h("div", { class: "title-line" },
            h("h1", { class: "ellipsis", id: "run-title" }, run.name || run.id),
            this.manageButton("Rename", "rename", () => this.rename())),
          h("div", { class: "sub" }, badge(run.status, run.error), h("span", { class: "mono" }, run.id),
            run.archived ? h("span", { class: "chip archived", id: "archived-flag", title: "Hidden from the runs list by default" }, "archived") : null,
            job ? h("a", { href: `/queue#job-${job.id}` }, `job #${job.id}${job.attempt > 1 ? ` · attempt ${job.attempt}` : ""}`) : h("span", { class: "faint" }, "direct run"),
            h("span", {}, "started ", timeEl(run.started_at)), h("span", {}, run.duration_seconds !== null ? "took " : "running for ", dur),
            run.hostname ? h("span", { class: "mono" }, run.hostname) : null),
          h("div", { class: "sub tags-line", id: "run-tags" }, this.renderTags(run.tags)),
          run.size_warning ? h("div", { class: "sub faint", id: "size-warning", title: "whirr worker --warn-run-dir-size" },
            `⚠ run directory past ${bytes(run.size_warning.limit)}: ${bytes(run.size_warning.size)} measured `, timeEl(run.size_warning.at)) : null,
          this.renderFiles()),
        h("div", { class: "actions" }, actions, this.manageMenu()));
      this.renderNote();
      document.title = `${run.name || run.id} · whirr`;
    },
    // -- run management: each a POST with the page's CSRF token (see docs/security.md) ---
    manageButton(label, act, fn, kind) {
      return h("button", { type: "button", class: `small ${kind || "ghost"}`, dataset: { manage: act }, onclick: fn }, label);
    },
    manageMenu() {
      const run = this.detail.run;
      const running = run.status === "running";
      const del = this.manageButton("Delete…", "delete", () => this.remove(), "danger");
      if (running) { del.disabled = true; del.title = "A run cannot be deleted while it runs"; }
      return h("div", { class: "manage", role: "group", "aria-label": "Manage this run" },
        this.manageButton(run.notes ? "Edit note" : "Add note", "note", () => this.editNote()),
        run.archived ? this.manageButton("Unarchive", "unarchive", () => this.write("unarchive"))
          : this.manageButton("Archive", "archive", () => this.write("archive")),
        del);
    },
    renderTags(tags) {
      return [
        (tags || []).map(t => h("span", { class: "chip removable", dataset: { tag: t } }, t,
          h("button", { type: "button", class: "chip-x", title: `Remove the tag ${t}`, "aria-label": `Remove the tag ${t}`,
                        dataset: { untag: t }, onclick: () => this.write("tags", { remove: [t] }) }, "×"))),
        this.manageButton("+ tag", "tag", () => this.addTag()),
      ];
    },
    renderNote() {
      const notes = this.detail.run.notes;
      replace(this.note, notes ? h("section", { class: "card section run-note" },
        h("div", { class: "card-head" }, h("h2", {}, "Note")),
        h("div", { class: "card-body note-text", id: "run-note" }, notes)) : null);
    },
    async write(what, body) {
      try {
        const res = await W.post(`/ui/runs/${enc}/${what}`, body);
        W.toast(res.message);
        await this.refresh();
      } catch (e) { W.toast(e.message, "error"); }
    },
    async rename() {
      const run = this.detail.run;
      const name = await this.ask({ title: "Rename the run", label: "Name", value: run.name || "", confirm: "Rename" });
      if (name !== null && name.trim()) await this.write("rename", { name: name.trim() });
    },
    async addTag() {
      const tag = await this.ask({ title: "Add a tag", label: "Tag", value: "", confirm: "Add" });
      if (tag !== null && tag.trim()) await this.write("tags", { add: [tag.trim()] });
    },
    async editNote() {
      const text = await this.ask({ title: "Note", label: "Note (empty clears it)", value: this.detail.run.notes || "",
                                    multiline: true, confirm: "Save" });
      if (text !== null) await this.write("note", { text });
    },
    async remove() {
      const run = this.detail.run;
      const ok = await this.ask({ title: `Delete ${run.name || run.id}?`, confirm: "Delete", danger: true,
        text: `The run ${run.id} and its files (metrics, output, artifacts) are removed for good; it leaves every view. This cannot be undone.` });
      if (ok === null) return;
      this.deleted = true;   // the run's own events must not make the page ask for it again
      try {
        const res = await W.post(`/ui/runs/${enc}/delete`);
        W.toast(res.message);
        location.href = "/runs";
      } catch (e) { this.deleted = false; W.toast(e.message, "error"); }
    },
    ask(opts) { return W.ask(this.dialog, opts); },
    // Where the run's files really are (as `whirr show` says it), and what is missing.
    renderFiles() {
      const where = this.detail.files_location;
      if (!where) return null;
      return h("div", { class: "sub files-line", id: "run-files" },
        h("span", { class: "mono" }, `Files: ${where.line}`),
        where.warnings.map(w => h("span", { class: "files-warning", role: "status" }, `Warning: ${w}`)));
    },
    // A run that failed, crashed or timed out says so first: status, exit code, error and
    // the last lines of its output, above the charts.
    renderBanner() {
      if (!this.detail) return;
      const { run, job } = this.detail;
      if (!BAD_ENDS.has(run.status)) { this.banner.hidden = true; return; }
      const exit = run.exit_code !== null && run.exit_code !== undefined ? run.exit_code : job ? job.exit_code : null;
      const error = run.error || (job && job.error) || null;
      const lines = this.logText.replace(/\s+$/, "").split("\n").filter((l, i, all) => all.length > 1 || l);
      const tail = lines.slice(-BANNER_LINES);
      this.banner.hidden = false;
      replace(this.banner,
        h("div", { class: "card-head" }, h("h2", {}, "Why it ended"), badge(run.status),
          h("span", { class: "mono", id: "failure-exit" }, exit !== null && exit !== undefined ? `exit code ${exit}` : "no exit code")),
        h("div", { class: "card-body" },
          error ? h("div", { class: "failure-error", id: "failure-error" }, error) : null,
          tail.length ? [h("div", { class: "hint" }, `Last ${tail.length} line${tail.length === 1 ? "" : "s"} of output `, h("a", { href: "#log" }, "(all of it below)")),
                         h("pre", { class: "log failure-tail", id: "failure-tail" }, tail.join("\n"))]
            : h("div", { class: "hint", id: "failure-tail" }, run.job_id === null ? "A direct run: its output was not captured." : "It printed nothing.")));
    },
    renderInfo() {
      const d = this.detail, run = d.run;
      const summary = Object.assign({}, run.summary);
      const ended = run.finished_at !== null && run.finished_at !== undefined;
      replace(this.info,
        card("Config", Object.keys(d.config_flat).length, h("div", { class: "card-body" }, kv(d.config_flat) || empty("No config", "Pass ", h("code", {}, "whirr.init(config={...})")))),
        card("Summary", null, h("div", { class: "card-body", id: "summary" },
          kv(summary) || (ended ? empty("No summary recorded", "The run ended without ", h("code", {}, "run.summary({...})"))
            : empty("No summary yet", h("code", {}, "run.summary({...})"), " records final results")),
          this.lastBox)));
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
    // The last logged values come with the charts' answer: one row count for both.
    renderLast(d) {
      const last = d.last || {};
      replace(this.lastBox, Object.keys(last).length
        ? [h("h3", { class: "hint", style: "margin:14px 0 4px", id: "last-values-head", dataset: { rows: d.rows } },
             `Last logged values · ${d.rows.toLocaleString()} rows`), kv(last)]
        : null);
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
      const cardEl = kind === "metrics" ? this.metricsCard : this.systemCard;
      cardEl.querySelector(".count") || cardEl.querySelector(".card-head h2").after(h("span", { class: "count" }));
      const count = cardEl.querySelector(".count");
      count.textContent = d.series.length ? `${d.series.length} · ${d.rows.toLocaleString()} rows` : "";
      count.dataset.rows = d.rows;
      if (kind === "metrics") this.renderLast(d);
      if (!d.series.length) {
        if (kind === "system") { cardEl.hidden = true; return; }
        replace(this.charts.metrics, empty("No metrics logged yet", "Log some with ", h("code", {}, "run.log({\"loss\": loss}, step=step)")));
        this.layoutKey.metrics = null;
        return;
      }
      cardEl.hidden = false;
      if (kind === "metrics") this.drawMetrics(d); else this.drawSystem(d);
    },
    // The chart of one key, made once and moved between sections as the view changes.
    box(kind, key, pinnable) {
      let box = this.boxes[kind][key];
      if (box) return box;
      const chart = h("div", { class: "chart", dataset: { key } });
      const title = h("span", { class: "faint" });
      const buttons = pinnable ? h("span", { class: "chart-actions" },
        h("button", { type: "button", class: "small ghost", dataset: { act: "pin" }, onclick: () => this.togglePin(key) }, "Pin"),
        h("button", { type: "button", class: "small ghost", dataset: { act: "hide" }, title: "Hide this chart",
                      onclick: () => this.setHidden(key, true) }, "Hide")) : null;
      box = this.boxes[kind][key] = { el: h("div", { class: "chart-box", dataset: { chart: key } }, h("h3", {}, h("span", {}, key), title, buttons), chart),
                                      chart, title, pin: buttons && buttons.firstChild };
      return box;
    },
    togglePin(key) {
      const at = view.pinned.indexOf(key);
      if (at >= 0) view.pinned.splice(at, 1); else view.pinned.push(key);
      saveView(); this.redraw("metrics");
    },
    setHidden(key, hidden) {
      if (hidden) { view.hidden.add(key); const at = view.pinned.indexOf(key); if (at >= 0) view.pinned.splice(at, 1); }
      else view.hidden.delete(key);
      saveView(); this.redraw("metrics");
    },
    // Sections as W&B has them: pinned charts first, then one per prefix in the order the
    // run first logged a key of it, keys in their first-logged order inside.
    drawMetrics(d) {
      const keys = d.series.map(s => s.key);
      const steps = keys.filter(k => STEP_KEYS.has(k));
      this.stepsLabel.hidden = !steps.length;
      this.stepsLabel.title = steps.length ? `Chart ${steps.join(", ")} too (they count progress; not charted by default)` : "";
      const pinnedSet = new Set(view.pinned);
      const shown = k => !view.hidden.has(k) && (view.steps || !STEP_KEYS.has(k) || pinnedSet.has(k));
      const sections = [];
      const pinned = view.pinned.filter(k => keys.includes(k) && shown(k));
      if (pinned.length) sections.push(["Pinned", pinned]);
      const groups = new Map();
      for (const k of keys) {
        if (!shown(k) || pinnedSet.has(k)) continue;
        const g = groupOf(k);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(k);
      }
      for (const [g, ks] of groups) sections.push([g || "Charts", ks]);
      const hidden = keys.filter(k => view.hidden.has(k));
      const layoutKey = JSON.stringify([sections, hidden]);
      if (layoutKey !== this.layoutKey.metrics) {
        this.layoutKey.metrics = layoutKey;
        replace(this.charts.metrics,
          sections.map(([title, ks]) => h("section", { class: "chart-group", dataset: { group: title } },
            h("h3", { class: "group-title" }, title, h("span", { class: "count" }, ks.length)),
            h("div", { class: "charts" }, ks.map(k => this.box("metrics", k, true).el)))),
          sections.length ? null : empty("Every chart is hidden", "Show one again below."),
          hidden.length ? h("div", { class: "hidden-charts", id: "hidden-charts" }, "Hidden: ",
            hidden.map(k => h("button", { type: "button", class: "chip", dataset: { show: k }, title: `Show ${k} again`,
                                          onclick: () => this.setHidden(k, false) }, k, " ↺"))) : null);
      }
      const byKey = new Map(d.series.map(s => [s.key, s]));
      const xTitle = this.x === "time" ? "seconds" : this.x;
      for (const [, ks] of sections) {
        for (const k of ks) {
          const s = byKey.get(k), box = this.box("metrics", k, true);
          const isPinned = pinnedSet.has(k);
          box.pin.textContent = isPinned ? "Unpin" : "Pin";
          box.pin.setAttribute("aria-pressed", String(isPinned));
          box.pin.title = isPinned ? "Unpin this chart" : "Pin this chart to the top";
          box.title.textContent = pointsText(s);
          const opts = { smoothing: this.smoothing, log: this.log, xTitle };
          Charts.draw(box.chart, Charts.traces([{ x: s.x, y: s.y, name: s.key }], opts), opts);
        }
      }
    },
    // System samples: a constant (total memory, a GPU's size) is a number, not a flat line;
    // percentages on 0-100, memory from 0.
    drawSystem(d) {
      const tiles = [], charted = [];
      for (const s of d.series) (constant(s.y) ? tiles : charted).push(s);
      const layoutKey = JSON.stringify([tiles.map(s => s.key), charted.map(s => s.key)]);
      if (layoutKey !== this.layoutKey.system) {
        this.layoutKey.system = layoutKey;
        this.tiles = h("div", { class: "stats sys-stats", id: "system-stats" });
        replace(this.charts.system, tiles.length ? this.tiles : null,
          charted.length ? h("div", { class: "charts" }, charted.map(s => this.box("system", s.key, false).el)) : null);
      }
      replace(this.tiles, tiles.map(s => h("div", { class: "stat card", dataset: { key: s.key } },
        h("div", { class: "label mono" }, s.key), h("div", { class: "value" }, W.value(finite(s.y)[0])))));
      for (const s of charted) {
        const box = this.box("system", s.key, false);
        box.title.textContent = pointsText(s);
        const opts = { xTitle: "seconds", ...Charts.yScale(s.key) };
        Charts.draw(box.chart, Charts.traces([{ x: s.x, y: s.y, name: s.key, colour: "#8e6fd8" }], opts), opts);
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
        if (first || d.text) {
          // The banner's lines: the tail of what was read, kept short.
          this.logText = (first ? "" : this.logText) + (d.text || "");
          if (this.logText.length > 32768) this.logText = this.logText.slice(-16384);
          this.renderBanner();
        }
        this.logOffset = d.offset;
        document.getElementById("log-state").textContent = d.ended ? "ended" : "following";
        if (atBottom || first) pre.scrollTop = pre.scrollHeight;
      } finally { this.tailing = false; }
    },
  };
  function kv(obj) {
    const keys = Object.keys(obj);
    return keys.length ? h("table", { class: "kv" }, h("tbody", {}, keys.map(k => h("tr", {}, h("td", {}, k), h("td", {}, W.value(obj[k]))))))
      : null;
  }
  const finite = ys => ys.filter(y => y !== null && isFinite(y));
  function constant(ys) {
    const v = finite(ys);
    return v.length > 0 && v.every(y => y === v[0]);
  }
  function pointsText(s) {
    return s.total > s.x.length ? `${s.total.toLocaleString()} pts, ${s.x.length.toLocaleString()} drawn` : `${s.total.toLocaleString()} pts`;
  }
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
