// The overview and queue pages: counts, workers, jobs with cancel and retry.
"use strict";

(() => {
  const { h, replace, badge, timeEl, empty, runLink, chips, api, action, table, card } = W;
  const runtime = iso => h("span", { dataset: { since: iso || "" } }, W.seconds(W.since(iso)));
  const cmd = job => h("span", { title: job.command_argv.join(" ") }, job.command_argv.join(" "));
  const jobName = job => h("div", {},
    h("div", { class: "run-name ellipsis" }, job.name || job.command_argv[0] || `job ${job.id}`),
    h("div", { class: "run-id" }, job.run_id));
  const jobLink = id => id === null || id === undefined ? "–"
    : h("a", { href: `/queue#job-${id}` }, `#${id}`);
  // A function, not one array: a DOM node is in one place at a time, so a hint built once
  // and shown in two cards (running and queue, both empty) moved to the second and left
  // the first reading "Queue one with" and then nothing.
  const submitHint = () => ["Queue one with ", h("code", {}, "whirr submit -- python train.py")];
  const plural = (n, word, many) => `${n.toLocaleString()} ${n === 1 ? word : (many || word + "s")}`;

  function cancelButton(job, refresh) {
    if (job.cancel_requested) return h("span", { class: "faint" }, "stopping…");
    return action("Cancel", `/ui/jobs/${job.id}/cancel`,
      { kind: "danger", title: `Cancel job #${job.id}`, data: { action: "cancel", job: job.id },
        done: refresh });
  }
  function retryButton(job, refresh) {
    if (!["failed", "cancelled", "timed_out"].includes(job.status)) return null;
    return action("Retry", `/ui/jobs/${job.id}/retry`,
      { title: `Queue job #${job.id} again`, data: { action: "retry", job: job.id }, done: refresh });
  }

  // -- overview ------------------------------------------------------------------------
  // What is going on, in words: "2 jobs running, 1 waiting" / "Nothing running or queued".
  function activity(s) {
    if (!s.running && !s.queued) return "Nothing running or queued";
    const parts = [];
    if (s.running) parts.push(`${plural(s.running, "job")} running`);
    if (s.queued) parts.push(s.running ? `${s.queued.toLocaleString()} waiting` : `${plural(s.queued, "job")} waiting`);
    return parts.join(", ");
  }

  const overview = {
    async init(main) { this.main = main; await this.refresh(); W.live.start({ onChange: () => this.refresh() }); },
    async refresh() {
      const d = await api("/ui/overview");
      W.setNow(d.now);
      const s = d.status;
      const tile = (status, label, n, href) => h("a", { class: `card stat st-${status}`, href },
        h("div", { class: "label" }, h("span", { class: "glyph", "aria-hidden": "true" }, W.glyph(status)), label),
        h("div", { class: "value", dataset: { count: status } }, n.toLocaleString()));
      const stats = h("div", { class: "stats" },
        tile("queued", "Queued", s.queued, "/queue"),
        tile("running", "Running", s.running, "/queue"),
        tile("completed", "Completed", s.completed, "/runs?status=completed"),
        tile("failed", "Failed", s.failed, "/runs?status=failed"),
        tile("cancelled", "Cancelled", s.cancelled, "/queue"),
        tile("timed_out", "Timed out", s.timed_out, "/queue"),
        tile("idle", "Workers online", `${s.workers_online} / ${s.workers_total}`, "#workers"));

      const running = d.running.length ? table([
        { label: "Job", cell: j => jobLink(j.id), class: "mono" },
        { label: "Name", cell: j => jobName(j) },
        { label: "Worker", cell: j => j.worker_id || "–", class: "mono" },
        { label: "Attempt", cell: j => String(j.attempt), class: "num" },
        { label: "Runtime", cell: j => runtime(j.started_at || j.created_at), class: "num" },
        { label: "", cell: j => cancelButton(j, () => this.refresh()) },
      ], d.running) : empty("Nothing is running", d.status.queued ? "Jobs are waiting for a worker: start one with " : submitHint(),
                             d.status.queued ? h("code", {}, "whirr worker") : null);

      const workers = d.workers.length ? table([
        { label: "Worker", cell: w => w.id, class: "mono" },
        { label: "Host", cell: w => w.hostname || "–" },
        { label: "Status", cell: w => badge(w.status) },
        { label: "GPUs", cell: w => (w.gpu_ids || []).join(", ") || "–" },
        { label: "Current job", cell: w => jobLink(w.current_job_id) },
        { label: "Last heartbeat", cell: w => timeEl(w.heartbeat_at) },
      ], d.workers) : empty("No workers yet", "Start one with ", h("code", {}, "whirr worker"));

      const queued = d.queued.length ? table([
        { label: "Job", cell: j => jobLink(j.id), class: "mono" },
        { label: "Name", cell: j => jobName(j) },
        { label: "Waiting", cell: j => runtime(j.created_at), class: "num" },
      ], d.queued) : empty("The queue is empty", submitHint());

      const recent = d.recent_runs.length ? table([
        { label: "Status", cell: r => badge(r.status) },
        { label: "Run", cell: r => runLink(r) },
        { label: "Tags", cell: r => chips(r.tags) },
        { label: "Started", cell: r => timeEl(r.started_at) },
        { label: "Duration", cell: r => r.duration === null ? runtime(r.started_at) : W.seconds(r.duration), class: "num" },
      ], d.recent_runs, { nav: true }) : empty("No runs yet", "Track one from Python: ", h("code", {}, "run = whirr.init(); run.log({...})"));

      replace(this.main,
        h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Overview"),
          h("div", { class: "sub", title: `Event log position ${d.head.toLocaleString()}` }, activity(s)))),
        stats,
        h("div", { class: "grid two" },
          card("Running now", d.running.length, running),
          card("Next in queue", s.queued, queued)),
        h("div", { id: "workers" }, card("Workers", d.workers.length, workers)),
        card("Recent runs", null, recent, h("a", { href: "/runs" }, "All runs →")));
    },
  };

  // -- queue ---------------------------------------------------------------------------
  const queue = {
    filter: "",
    async init(main) {
      this.main = main;
      this.search = h("input", { type: "search", placeholder: "Filter jobs  ( / )", "aria-label": "Filter jobs",
                                 oninput: () => { this.filter = this.search.value.toLowerCase(); this.render(); } });
      await this.refresh();
      W.live.start({ onChange: () => this.refresh() });
    },
    async refresh() { this.data = await api("/ui/queue?limit=200"); W.setNow(this.data.now); this.render(); },
    match(j) {
      if (!this.filter) return true;
      const text = [j.id, j.name, j.status, j.worker_id, j.run_id, ...j.command_argv, ...j.tags].join(" ").toLowerCase();
      return this.filter.split(/\s+/).every(w => text.includes(w));
    },
    render() {
      const d = this.data, refresh = () => this.refresh();
      const active = d.active.filter(j => this.match(j)), ended = d.ended.filter(j => this.match(j));
      const idCol = { label: "#", cell: j => h("span", { id: `job-${j.id}` }, String(j.id)), class: "mono" };
      const activeTable = active.length ? table([
        idCol,
        { label: "Status", cell: j => badge(j.status) },
        { label: "Name", cell: j => jobName(j) },
        { label: "Command", cell: cmd, class: "cmd" },
        { label: "Worker", cell: j => j.worker_id || "–", class: "mono" },
        { label: "Attempt", cell: j => `${j.attempt}`, class: "num" },
        { label: "Queued", cell: j => timeEl(j.created_at) },
        { label: "Runtime", cell: j => j.status === "running" ? runtime(j.started_at || j.created_at) : "–", class: "num" },
        { label: "", cell: j => cancelButton(j, refresh) },
      ], active, { rowData: j => ({ job: j.id, status: j.status }) })
        : empty(this.filter ? "No active job matches" : "No active jobs", this.filter ? "" : submitHint());
      const endedTable = ended.length ? table([
        idCol,
        { label: "Status", cell: j => badge(j.status, j.error) },
        { label: "Name", cell: j => jobName(j) },
        { label: "Command", cell: cmd, class: "cmd" },
        { label: "Exit", cell: j => j.exit_code === null ? "–" : String(j.exit_code), class: "num" },
        { label: "Ended", cell: j => timeEl(j.finished_at) },
        { label: "Duration", cell: j => j.started_at && j.finished_at ? W.seconds((Date.parse(j.finished_at) - Date.parse(j.started_at)) / 1000) : "–", class: "num" },
        { label: "Run", cell: j => h("a", { href: `/runs/${encodeURIComponent(j.run_id)}` }, "open") },
        { label: "", cell: j => retryButton(j, refresh) },
      ], ended, { rowData: j => ({ job: j.id, status: j.status }) })
        : empty(this.filter ? "No ended job matches" : "No job has ended yet");
      const typing = document.activeElement === this.search;
      const queued = d.active.filter(j => j.status === "queued").length;
      const running = d.active.length - queued;
      replace(this.main,
        h("div", { class: "page-head" },
          h("div", {}, h("h1", {}, "Queue"), h("div", { class: "sub" }, `${running} running · ${queued} queued`))),
        h("div", { class: "toolbar" }, this.search),
        card("Active", active.length, activeTable),
        card("Recently ended", ended.length, endedTable));
      if (typing) this.search.focus();
    },
  };

  const page = W.body.dataset.page === "queue" ? queue : overview;
  W.boot(page);
})();
