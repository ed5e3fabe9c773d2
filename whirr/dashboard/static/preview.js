// A static SVG drawing of a chart's traces, shown while plotly.js loads.
//
// On a browser's first visit plotly.js (about 5 MB) takes a second or two to compile; the
// chart's points (already downsampled by the server) arrive long before that. This draws
// them at once with the same margins, axes, colours and line widths as the plotly chart
// that replaces it, so the page does not jump when plotly takes over. No hover, no zoom:
// those come with plotly.
"use strict";

const Preview = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs) => {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    return el;
  };

  // About `count` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten).
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(m => m * mag).find(s => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  // Tick labels as plotly writes them with exponentformat "e": 0.5, 200k, 1e-4.
  function label(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e3 && a < 1e9) {
      const [n, unit] = a >= 1e6 ? [v / 1e6, "M"] : [v / 1e3, "k"];
      return `${+n.toPrecision(4)}${unit}`;
    }
    if (a < 1e-3 || a >= 1e9) return v.toExponential(1).replace("e+", "e").replace(".0e", "e");
    return String(+v.toPrecision(4));
  }
  // The finite range of one axis over every trace (log scale: positive values only).
  function extent(traces, axis, log) {
    let lo = Infinity, hi = -Infinity;
    for (const t of traces) {
      for (const v of t[axis]) {
        if (v === null || !isFinite(v) || (log && v <= 0)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (lo === Infinity) return null;
    if (log) { lo = Math.log10(lo); hi = Math.log10(hi); }
    if (lo === hi) { lo -= 1; hi += 1; }
    return [lo, hi];
  }

  // Draws `traces` (plotly-style: x, y, line, opacity) into `el`, replacing its content;
  // `style` gives the margins and colours of the plotly layout the chart will get.
  function draw(el, traces, style) {
    const width = el.clientWidth, height = el.clientHeight;
    const m = style.margin;
    const w = width - m.l - m.r, hgt = height - m.t - m.b;
    const xr = extent(traces, "x", false);
    let yr = extent(traces, "y", style.log);
    if (w <= 0 || hgt <= 0 || !xr || !yr) { el.replaceChildren(); return; }
    if (style.yRange) yr = style.yRange.slice();   // as plotly's fixed range (charts.js)
    else {
      if (style.yFromZero) { yr[0] = Math.min(0, yr[0]); yr[1] = Math.max(0, yr[1]); }
      // Plotly pads a line chart's y range by about 5% so the line clears the frame.
      const pad = (yr[1] - yr[0]) * 0.05;
      if (!style.yFromZero || yr[0] < 0) yr[0] -= pad;
      yr[1] += pad;
    }
    const X = v => m.l + ((v - xr[0]) / (xr[1] - xr[0])) * w;
    const Y = v => m.t + hgt - (((style.log ? Math.log10(v) : v) - yr[0]) / (yr[1] - yr[0])) * hgt;
    const root = svg("svg", { class: "chart-preview", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                              "aria-label": `${traces.filter(t => t.showlegend !== false).map(t => t.name).join(", ")} (interactive chart loading)` });
    const text = { fill: style.text, "font-size": 11, "font-family": style.font };
    for (const v of ticks(xr[0], xr[1], Math.max(2, Math.round(w / 80)))) {
      root.append(svg("line", { x1: X(v), x2: X(v), y1: m.t, y2: m.t + hgt, stroke: style.grid }));
      const t = svg("text", { ...text, x: X(v), y: m.t + hgt + 14, "text-anchor": "middle" });
      t.textContent = label(v);
      root.append(t);
    }
    const yTicks = style.log
      ? ticks(Math.ceil(yr[0]), Math.floor(yr[1]), 5).filter(Number.isInteger).map(p => Math.pow(10, p))
      : ticks(yr[0], yr[1], Math.max(2, Math.round(hgt / 50)));
    for (const v of yTicks) {
      root.append(svg("line", { x1: m.l, x2: m.l + w, y1: Y(v), y2: Y(v), stroke: style.grid }));
      const t = svg("text", { ...text, x: m.l - 4, y: Y(v) + 4, "text-anchor": "end" });
      t.textContent = label(v);
      root.append(t);
    }
    if (style.xTitle) {
      const t = svg("text", { ...text, x: m.l + w / 2, y: height - 4, "text-anchor": "middle" });
      t.textContent = style.xTitle;
      root.append(t);
    }
    for (const trace of traces) {
      // A gap (null, or not positive on a log axis) lifts the pen, as plotly does.
      let d = "", pen = "M";
      for (let i = 0; i < trace.x.length; i++) {
        const x = trace.x[i], y = trace.y[i];
        if (x === null || y === null || !isFinite(x) || !isFinite(y) || (style.log && y <= 0)) { pen = "M"; continue; }
        d += `${pen}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
        pen = "L";
      }
      root.append(svg("path", { d, fill: "none", stroke: trace.line.color, "stroke-width": trace.line.width,
                                opacity: trace.opacity === undefined ? 1 : trace.opacity, "stroke-linejoin": "round" }));
    }
    el.replaceChildren(root);
  }

  return { draw, ticks, label };
})();
