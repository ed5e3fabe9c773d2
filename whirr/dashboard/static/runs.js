// The runs page: filter, sort by any column (config and summary included), page through
// thousands of runs; pick runs to compare. The server filters, sorts and pages.
"use strict";

(() => {
  const { h, replace, badge, timeEl, empty, runLink, chips, api, table, card } = W;
  const PAGE = 100, DEFAULT_COLS = 4;
  const params = new URLSearchParams(location.search);
  const state = {
    q: params.get("q") || "", status: params.get("status") || "", tag: params.get("tag") || "",
    sort: params.get("sort") || "started_at", order: params.get("order") || "desc",
    offset: Number(params.get("offset") || 0),
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
      this.tableCard = h("div");
      replace(main,
        h("div", { class: "page-head" }, h("div", {}, h("h1", {}, "Runs"), this.sub = h("div", { class: "sub" })),
          h("div", { class: "actions" }, this.compareBtn)),
        h("div", { class: "toolbar" }, this.search, this.statusSel, this.tagSel, this.columnsMenu),
        this.tableCard);
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
      for (const k of ["q", "status", "tag", "sort", "order"]) if (state[k]) q.set(k, state[k]);
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
      ];
      const content = d.rows.length
        ? groupHeads(table(cols, d.rows, { nav: true, sort: { key: state.sort, desc: state.order === "desc" },
                                           onSort: key => this.sortBy(key), rowData: r => ({ run: r.id }) }),
                     cols.length - extra.length, extra.map(c => c.thClass))
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
