// The runs page: filter, sort by any column (config and summary included), page through
// thousands of runs; pick runs to compare; manage a run from its row's menu (rename, tags,
// note, archive, delete). The server filters, sorts and pages.
"use strict";

(() => {
  const { h, replace, badge, timeEl, empty, runLink, chips, api, post, toast, ask, table } = W;
  const PAGE = 100, DEFAULT_COLS = 4;
  const params = new URLSearchParams(location.search);
  const state = {
    q: params.get("q") || "", status: params.get("status") || "", tag: params.get("tag") || "",
    sort: params.get("sort") || "started_at", order: params.get("order") || "desc",
    offset: Number(params.get("offset") || 0),
    archived: params.get("archived") === "only" ? "only" : "",   // "only": the archived runs alone
    columns: null,                     // chosen config/summary columns (null: the defaults)
    selected: new Set((params.get("selected") || "").split(",").filter(Boolean)),
  };
  try { state.columns = JSON.parse(localStorage.getItem("whirr-run-columns") || "null"); } catch (e) { /* none */ }

  const page = {
    async init(main) {
      this.main = main;
      this.search = h("input", { type: "search", placeholder: "Search name, id, tag  ( / )", "aria-label": "Search runs",
                                 value: state.q, oninput: () => this.debounced() });
      this.statusSel = h("select", { "aria-label": "Status", onchange: () => { state.status = this.statusSel.value; this.reload(); } });
      this.tagSel = h("select", { "aria-label": "Tag", onchange: () => { state.tag = this.tagSel.value; this.reload(); } });
      this.compareBtn = h("button", { class: "primary", type: "button", onclick: () => this.compare(),
                                      title: "Compare the selected runs (c)" });
      this.columnsMenu = h("details", { class: "columns" }, h("summary", {}, "Columns"), h("div", { class: "menu" }));
      this.archivedBox = h("input", { type: "checkbox", id: "show-archived", checked: state.archived === "only",
                                      onchange: () => { state.archived = this.archivedBox.checked ? "only" : ""; this.reload(); } });
      this.tableCard = h("div");
      // Run management: a menu per run, then a form or a confirmation (two dialogs: one
      // closing must not dismiss the next one opening).
      this.menu = h("dialog", { id: "run-menu", class: "run-menu" });
      this.dialog = h("dialog", { id: "run-dialog" });
      replace(main,
        h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Runs"), this.sub = h("div", { class: "sub" })),
          h("div", { class: "actions" }, this.compareBtn)),
        h("div", { class: "toolbar" }, this.search, this.statusSel, this.tagSel, this.columnsMenu,
          h("label", { class: "toggle", title: "List the archived runs (hidden from this list by default)" }, this.archivedBox, "Archived")),
        this.tableCard, this.menu, this.dialog);
      W.keys.c = () => this.compare();
      W.keys.x = () => { const row = document.querySelector("tr.focused"); if (row) this.toggle(row.dataset.run); };
      await this.load();
      W.live.start({ onChange: batch => { if (!batch.length || batch.some(c => c[1].startsWith("run."))) this.load(); } });
    },
    timer: null,
    debounced() { clearTimeout(this.timer); this.timer = setTimeout(() => { state.q = this.search.value; this.reload(); }, 180); },
    reload() { state.offset = 0; this.load(); },
    url() {
      const q = new URLSearchParams();
      for (const k of ["q", "status", "tag", "sort", "order", "archived"]) if (state[k]) q.set(k, state[k]);
      q.set("offset", state.offset); q.set("limit", PAGE);
      return q;
    },
    async load() {
      const q = this.url();
      const d = await api(`/ui/runs?${q}`);
      this.data = d;
      // Shareable state: the address bar says what is shown.
      const shown = new URLSearchParams(q); shown.delete("limit");
      if (shown.get("offset") === "0") shown.delete("offset");
      if (shown.get("sort") === "started_at" && shown.get("order") === "desc") { shown.delete("sort"); shown.delete("order"); }
      history.replaceState(null, "", `/runs${shown.toString() ? "?" + shown : ""}`);
      this.render();
    },
    chosen() {
      const d = this.data;
      if (state.columns) {
        const have = new Set([...d.columns.config.map(c => `config.${c}`), ...d.columns.summary.map(c => `summary.${c}`)]);
        return state.columns.filter(c => have.has(c));
      }
      return [...d.columns.config.slice(0, DEFAULT_COLS).map(c => `config.${c}`),
              ...d.columns.summary.slice(0, DEFAULT_COLS).map(c => `summary.${c}`)];
    },
    toggle(id) {
      if (!id) return;
      if (state.selected.has(id)) state.selected.delete(id); else state.selected.add(id);
      this.render();
    },
    compare() {
      if (state.selected.size) location.href = `/compare?runs=${encodeURIComponent([...state.selected].join(","))}`;
      else W.toast("Select runs to compare first (the boxes on the left, or x on a row)");
    },
    sortBy(key) {
      if (state.sort === key) state.order = state.order === "desc" ? "asc" : "desc";
      else { state.sort = key; state.order = key.startsWith("summary.") || key === "started_at" ? "desc" : "asc"; }
      this.reload();
    },
    renderFilters() {
      const d = this.data;
      const statuses = Object.keys(d.statuses).sort();
      replace(this.statusSel, h("option", { value: "" }, "Any status"),
        statuses.map(s => h("option", { value: s, selected: s === state.status }, `${s.replace("_", " ")} (${d.statuses[s]})`)));
      replace(this.tagSel, h("option", { value: "" }, "Any tag"),
        d.tags.map(t => h("option", { value: t, selected: t === state.tag }, t)));
      const chosen = new Set(this.chosen());
      const box = (col, label) => h("label", {}, h("input", { type: "checkbox", checked: chosen.has(col), onchange: ev => {
        const cols = this.chosen().filter(c => c !== col);
        if (ev.target.checked) cols.push(col);
        state.columns = cols;
        try { localStorage.setItem("whirr-run-columns", JSON.stringify(cols)); } catch (e) { /* private */ }
        this.render();
      } }), label);
      replace(this.columnsMenu.querySelector(".menu"),
        h("h3", {}, "Config"), d.columns.config.length ? d.columns.config.map(c => box(`config.${c}`, c)) : h("div", { class: "faint" }, "none"),
        h("h3", {}, "Summary"), d.columns.summary.length ? d.columns.summary.map(c => box(`summary.${c}`, c)) : h("div", { class: "faint" }, "none"));
    },
    render() {
      const d = this.data;
      this.renderFilters();
      this.sub.textContent = d.matched === d.total ? `${d.total.toLocaleString()} runs`
        : `${d.matched.toLocaleString()} of ${d.total.toLocaleString()} runs match`;
      this.compareBtn.textContent = `Compare${state.selected.size ? ` (${state.selected.size})` : ""}`;
      this.compareBtn.disabled = state.selected.size < 1;
      // Config columns before summary ones, so each group is one block under its heading.
      const extra = this.chosen().sort((a, b) => (a.startsWith("summary.") - b.startsWith("summary."))).map(col => {
        const [group, ...rest] = col.split(".");
        const key = rest.join(".");
        return { label: key, sort: col, class: "num", thClass: `group-${group}`, title: `${group}: ${key}`,
                 cell: r => W.value(r[group][key]) };
      });
      const cols = [
        { label: "", cell: r => h("input", { type: "checkbox", "aria-label": `Select ${r.id}`, checked: state.selected.has(r.id),
                                               onchange: () => this.toggle(r.id) }) },
        { label: "Status", sort: "status", cell: r => badge(r.status) },
        { label: "Run", sort: "name", cell: r => runLink(r) },
        { label: "Tags", sort: "tags", cell: r => chips(r.tags) },
        { label: "Started", sort: "started_at", cell: r => timeEl(r.started_at) },
        { label: "Duration", sort: "duration", class: "num",
          cell: r => r.duration === null ? (r.status === "running" ? h("span", { dataset: { since: r.started_at } }, W.seconds(W.since(r.started_at))) : "–") : W.seconds(r.duration) },
        ...extra,
        { label: "", class: "row-actions", cell: r => h("button", {
            type: "button", class: "small ghost", title: "Rename, tag, note, archive or delete",
            "aria-label": `Manage ${r.name || r.id}`, dataset: { manageRun: r.id }, onclick: () => this.manage(r) }, "⋯") },
      ];
      const content = d.rows.length
        ? groupHeads(table(cols, d.rows, { nav: true, sort: { key: state.sort, desc: state.order === "desc" },
                                           onSort: key => this.sortBy(key), rowData: r => ({ run: r.id }) }),
                     cols.length - extra.length, extra.map(c => c.thClass))
        : state.archived ? empty("No archived run matches", "Archive a run from its ⋯ menu to hide it from the runs list.")
        : d.total ? empty("No run matches these filters", "Clear the search or pick another status or tag.")
          : empty("No runs yet", "Track one from Python: ", h("code", {}, "with whirr.init(config={...}) as run: run.log({\"loss\": l})"));
      const last = Math.min(state.offset + PAGE, d.matched);
      const pager = h("div", { class: "pager" },
        h("span", {}, d.matched ? `${(state.offset + 1).toLocaleString()}–${last.toLocaleString()} of ${d.matched.toLocaleString()}` : ""),
        h("span", { class: "spacer" }),
        h("span", { class: "hint" }, h("kbd", {}, "j"), " ", h("kbd", {}, "k"), " move · ", h("kbd", {}, "x"), " select · ", h("kbd", {}, "Enter"), " open"),
        h("button", { type: "button", disabled: state.offset === 0, onclick: () => { state.offset = Math.max(0, state.offset - PAGE); this.load(); } }, "← Newer"),
        h("button", { type: "button", disabled: last >= d.matched, onclick: () => { state.offset += PAGE; this.load(); } }, "Older →"));
      replace(this.tableCard, h("section", { class: "card" }, content, pager));
    },
    // -- run management: the dashboard's POST /ui/runs/<id>/... with the page's CSRF token
    // (as on the run page; see docs/security.md) ------------------------------------------
    manage(run) {
      const dlg = this.menu;
      const item = (label, act, opts) => h("button", {
        type: "button", class: (opts && opts.kind) || "", dataset: { act }, disabled: !!(opts && opts.disabled),
        title: (opts && opts.title) || null, onclick: () => { dlg.close(); this.act(act, run); } }, label);
      const running = run.status === "running";
      replace(dlg, h("h2", {}, run.name || run.id), h("div", { class: "mono faint" }, run.id),
        h("div", { class: "menu-items", role: "group", "aria-label": `Manage ${run.id}` },
          item("Rename…", "rename"), item("Tags…", "tags"), item(run.notes ? "Edit note…" : "Add note…", "note"),
          run.archived ? item("Unarchive", "unarchive") : item("Archive", "archive",
            { title: "Hide the run from the runs list (it is kept; Archived lists it)" }),
          item("Delete…", "delete", { kind: "danger", disabled: running,
                                      title: running ? "A run cannot be deleted while it runs" : null })),
        h("div", { class: "dialog-buttons" }, h("button", { type: "button", id: "run-menu-close", onclick: () => dlg.close() }, "Close")));
      dlg.showModal();
    },
    async act(act, run) {
      const name = run.name || run.id;
      if (act === "rename") {
        const given = await ask(this.dialog, { title: `Rename ${name}`, label: "Name", value: run.name || "", confirm: "Rename" });
        if (given !== null && given.trim()) await this.write(run, "rename", { name: given.trim() });
      } else if (act === "tags") {
        const given = await ask(this.dialog, { title: `Tags of ${name}`, label: "Tags (separated by commas)",
                                               value: run.tags.join(", "), confirm: "Save" });
        if (given === null) return;
        const now = given.split(",").map(t => t.trim()).filter(Boolean);
        const add = now.filter(t => !run.tags.includes(t)), remove = run.tags.filter(t => !now.includes(t));
        if (add.length || remove.length) await this.write(run, "tags", { add, remove });
      } else if (act === "note") {
        const given = await ask(this.dialog, { title: `Note of ${name}`, label: "Note (empty clears it)", value: run.notes || "",
                                               multiline: true, confirm: "Save" });
        if (given !== null) await this.write(run, "note", { text: given });
      } else if (act === "archive" || act === "unarchive") {
        await this.write(run, act);
      } else if (act === "delete") {
        const ok = await ask(this.dialog, { title: `Delete ${name}?`, confirm: "Delete", danger: true,
          text: `The run ${run.id} and its files (metrics, output, artifacts) are removed for good; it leaves every view. This cannot be undone.` });
        if (ok === null) return;
        if (await this.write(run, "delete")) state.selected.delete(run.id);
      }
    },
    async write(run, what, body) {
      try {
        const res = await post(`/ui/runs/${encodeURIComponent(run.id)}/${what}`, body);
        toast(res.message);
        await this.load();
        return true;
      } catch (e) { toast(e.message, "error"); return false; }
    },
  };
  // A row above the headers naming each block of columns ("Config", "Summary"): the
  // colour of a header's top border alone did not say which is which.
  function groupHeads(wrap, base, groups) {
    if (!groups.length) return wrap;
    const cells = [h("th", { colspan: base, class: "col-group-none" })];
    for (const group of groups) {
      const last = cells[cells.length - 1];
      if (last.dataset.group === group) { last.colSpan += 1; continue; }
      const name = group.replace("group-", "");
      cells.push(h("th", { colspan: 1, scope: "colgroup", class: `col-group ${group}`, dataset: { group } },
        name === "config" ? "Config" : "Summary"));
    }
    wrap.querySelector("thead").prepend(h("tr", { class: "col-groups" }, cells));
    return wrap;
  }
  W.boot(page);
})();
