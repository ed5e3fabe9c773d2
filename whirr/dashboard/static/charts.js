// Charts: plotly.js with the dashboard's theme, EMA smoothing, a colour per run; a static
// preview of each chart while plotly.js loads.
"use strict";

const Charts = (() => {
  // Okabe–Ito based palette: distinguishable with the common colour-vision deficiencies.
  const PALETTE = ["#4f6bed", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
                   "#8e6fd8", "#f0c400", "#2aa198", "#b0453a", "#7f8c8d", "#1f9bd7"];
  const colour = i => PALETTE[i % PALETTE.length];
  const css = name => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  // plotly.js reads a subset of HTML in every text it draws (names in the legend and hover
  // label, axis and dimension titles, tick labels): <a href> becomes a link, <b> bold. It
  // splits the tags out first and then decodes entities in the text between them, so
  // escaping &, < and > makes any string of a run (its name, config keys and values,
  // metric keys) come out as typed. Every such string goes through this on its way to
  // plotly; the previews (preview.js) set textContent and get the strings as they are.
  const literal = s => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

  function layout(opts) {
    opts = opts || {};
    const text = css("--muted"), grid = css("--border");
    return {
      margin: { l: 52, r: 14, t: 8, b: 34 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: css("--font") || "sans-serif", size: 11, color: text },
      xaxis: { title: opts.xTitle ? { text: literal(opts.xTitle), standoff: 6 } : undefined,
               type: opts.xDate ? "date" : undefined,   // x in epoch milliseconds
               gridcolor: grid, zerolinecolor: grid, linecolor: grid, automargin: true },
      yaxis: { type: opts.log ? "log" : "linear", gridcolor: grid, zerolinecolor: grid,
               linecolor: grid, automargin: true, exponentformat: "e",
               // A percentage reads against its whole scale (99.9-100 autoscaled looks
               // like a swing); an amount of memory against nothing (not -0.5 GB).
               range: opts.yRange || undefined, autorange: opts.yRange ? false : undefined,
               rangemode: opts.yFromZero ? "tozero" : undefined },
      showlegend: !!opts.legend,
      legend: { orientation: "h", y: -0.18, font: { size: 11 } },
      hovermode: "x unified",
      hoverlabel: { bgcolor: css("--surface"), bordercolor: grid, font: { color: css("--text") } },
      uirevision: opts.uirevision || "keep",   // keep zoom across live updates
      modebar: { bgcolor: "rgba(0,0,0,0)", color: css("--faint"), activecolor: css("--accent") },
    };
  }
  const CONFIG = { displaylogo: false, responsive: true,
                   modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  // Exponential moving average with debiasing (as TensorBoard), over finite points only.
  function smooth(ys, weight) {
    if (!weight) return ys;
    const out = new Array(ys.length);
    let last = 0, n = 0;
    for (let i = 0; i < ys.length; i++) {
      const y = ys[i];
      if (y === null || !isFinite(y)) { out[i] = y; continue; }
      last = last * weight + (1 - weight) * y; n += 1;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  // One line per series; a faint raw line under each smoothed one.
  function traces(series, opts) {
    const out = [];
    series.forEach((s, i) => {
      const c = s.colour || colour(i);
      if (opts.smoothing) {
        out.push({ x: s.x, y: s.y, type: "scatter", mode: "lines", name: `${s.name} (raw)`,
                   line: { color: c, width: 1 }, opacity: 0.25, hoverinfo: "skip", showlegend: false,
                   meta: { raw: true } });
      }
      out.push({ x: s.x, y: smooth(s.y, opts.smoothing), type: "scatter", mode: "lines",
                 name: s.name, line: { color: c, width: 1.8 } });
    });
    return out;
  }

  // plotly.js is fetched and compiled only after the first chart has been drawn as a
  // preview (preview.js): on a browser's first visit compiling takes a second or two and
  // blocks the page meanwhile, while the chart's data is usually there sooner. Not even
  // preloaded: the browser works on a preloaded script as it arrives (decompresses,
  // compiles in the background), which on a small machine takes CPU from a dashboard
  // still parsing the run's metrics (the first chart came a fifth of a second later). A page whose data is slow (a first look at a
  // huge run) starts it anyway after a while, so both go on at the same time.
  const PLOTLY = W.body.dataset.plotly;
  const COMPILE_ANYWAY_MS = 3000;
  let plotly = PLOTLY ? "waiting" : "missing";   // waiting, loading, ready or missing
  const previewed = new Map();                  // chart element -> [data, opts] to redraw
  const waiters = [];

  function load() {
    if (plotly !== "waiting") return;
    plotly = "loading";
    const script = document.createElement("script");
    script.src = PLOTLY;
    script.onload = () => {
      plotly = typeof Plotly === "undefined" ? "missing" : "ready";
      if (plotly === "missing") return unavailable();
      for (const [el, [data, opts]] of previewed) plot(el, data, opts);
      previewed.clear();
      waiters.splice(0).forEach(fn => fn());
    };
    script.onerror = () => { plotly = "missing"; unavailable(); };
    document.head.append(script);
  }
  if (PLOTLY) setTimeout(load, COMPILE_ANYWAY_MS);

  // Without plotly.js the previews stay: still the data, with a word on what is missing.
  function unavailable() {
    for (const el of previewed.keys()) el.title = "Static chart: plotly.js could not be loaded from the server.";
  }

  function plot(el, data, opts) {
    if (el.querySelector(".chart-preview")) el.replaceChildren();
    const named = data.map(t => (t.name === undefined ? t : { ...t, name: literal(t.name) }));
    Plotly.react(el, named, layout(opts), CONFIG);
  }

  function draw(el, data, opts) {
    el._whirrOpts = opts;
    if (plotly === "ready") return plot(el, data, opts);
    const first = previewed.size === 0;
    previewed.set(el, [data, opts]);
    const look = layout(opts);
    Preview.draw(el, data, { margin: look.margin, log: !!opts.log, xTitle: opts.xTitle, text: look.font.color,
                             yRange: opts.yRange, yFromZero: opts.yFromZero,
                             grid: css("--border"), font: look.font.family });
    if (plotly === "missing") unavailable();
    else if (first) loadAfterPaint();
  }

  // Compile plotly.js once what the page has drawn so far is on screen.
  const loadAfterPaint = () => requestAnimationFrame(() => setTimeout(load, 0));

  // Runs fn once plotly.js is ready (at once if it is), loading it if need be; never
  // when plotly.js is missing.
  function whenReady(fn) {
    if (plotly === "ready") return fn();
    if (plotly === "missing") return;
    waiters.push(fn);
    loadAfterPaint();
  }

  function redrawAll() {
    if (plotly !== "ready") {
      for (const [el, [data, opts]] of previewed) draw(el, data, opts);
      return;
    }
    document.querySelectorAll(".js-plotly-plot").forEach(el => {
      const opts = el._whirrOpts || {};
      Plotly.relayout(el, layout(opts));
    });
  }
  W.onTheme(redrawAll);

  // How a system sample's axis is scaled, from its name: percentages 0-100, memory from 0.
  function yScale(key) {
    if (/(^|_)(percent|pct|util|utilization)$/.test(key)) return { yRange: [0, 100] };
    if (/(_gb|_mb|_kb|_bytes)$|mem|rss/.test(key)) return { yFromZero: true };
    return {};
  }

  return { colour, layout, smooth, traces, draw, whenReady, literal, yScale, CONFIG, PALETTE };
})();
