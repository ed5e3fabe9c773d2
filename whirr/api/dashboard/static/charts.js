// Charts: plotly.js with the dashboard's theme, EMA smoothing, a colour per run.
"use strict";

const Charts = (() => {
  // Okabe–Ito based palette: distinguishable with the common colour-vision deficiencies.
  const PALETTE = ["#4f6bed", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
                   "#8e6fd8", "#f0c400", "#2aa198", "#b0453a", "#7f8c8d", "#1f9bd7"];
  const colour = i => PALETTE[i % PALETTE.length];
  const css = name => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function layout(opts) {
    opts = opts || {};
    const text = css("--muted"), grid = css("--border");
    return {
      margin: { l: 52, r: 14, t: 8, b: 34 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: css("--font") || "sans-serif", size: 11, color: text },
      xaxis: { title: opts.xTitle ? { text: opts.xTitle, standoff: 6 } : undefined,
               gridcolor: grid, zerolinecolor: grid, linecolor: grid, automargin: true },
      yaxis: { type: opts.log ? "log" : "linear", gridcolor: grid, zerolinecolor: grid,
               linecolor: grid, automargin: true, exponentformat: "e" },
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

  function draw(el, data, opts) {
    if (typeof Plotly === "undefined") {
      W.replace(el, W.empty("Charts are unavailable", "plotly is not installed on the server."));
      return;
    }
    el._whirrOpts = opts;
    Plotly.react(el, data, layout(opts), CONFIG);
  }

  function redrawAll() {
    if (typeof Plotly === "undefined") return;
    document.querySelectorAll(".js-plotly-plot").forEach(el => {
      const opts = el._whirrOpts || {};
      Plotly.relayout(el, layout(opts));
    });
  }
  W.onTheme(redrawAll);

  return { colour, layout, smooth, traces, draw, CONFIG, PALETTE };
})();
