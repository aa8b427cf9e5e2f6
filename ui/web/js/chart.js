// chart.js - every chart of the UI, drawn with uPlot: lines, stacked areas,
// heatmaps of histogram buckets and sparklines. Range-query answers are
// aligned on the query's step grid (a missing point stays a gap). A chart's
// element carries data-kind, data-series and data-points, which is what the
// browser tests read to check what was drawn.
import uPlot from '../vendor/uPlot.esm.js';
import { fmt, fmtTime, legend as legendOf, h } from './util.js';

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2',
  '#17becf', '#bcbd22', '#7f7f7f', '#393b79', '#e7ba52', '#637939', '#ad494a', '#3182bd'];
export const color = (i) => PALETTE[i % PALETTE.length];

function theme() {
  const cs = getComputedStyle(document.documentElement);
  return {
    fg: cs.getPropertyValue('--fg').trim() || '#222',
    grid: cs.getPropertyValue('--grid').trim() || '#ddd',
    heat: cs.getPropertyValue('--heat').trim() || '31, 119, 180',
  };
}

// The step grid of a range query and each series' values on it.
export function align(result, start, end, step) {
  const n = Math.max(1, Math.floor((end - start) / step + 1e-9) + 1);
  const xs = new Array(n);
  for (let i = 0; i < n; i++) xs[i] = start + i * step;
  const ys = result.map((s) => {
    const col = new Array(n).fill(null);
    for (const [t, v] of s.values || []) {
      const i = Math.round((t - start) / step);
      // NaN and ±Inf (histogram_quantile of no observations, division by
      // zero) cannot be drawn: gaps, like missing points
      const f = parseFloat(v);
      if (i >= 0 && i < n && Number.isFinite(f)) col[i] = f;
    }
    return col;
  });
  return { xs, ys };
}

function countPoints(ys) {
  let n = 0;
  for (const col of ys) for (const v of col) if (v !== null && !Number.isNaN(v)) n++;
  return n;
}

function axes(unit, t) {
  const common = { stroke: t.fg, grid: { stroke: t.grid, width: 1 }, ticks: { stroke: t.grid, width: 1 } };
  return [
    { ...common },
    { ...common, size: 64, values: (u, vals) => vals.map((v) => fmt(v, unit)) },
  ];
}

function annotationHook(annotations) {
  return (u) => {
    if (!annotations || !annotations.length) return;
    const ctx = u.ctx;
    ctx.save();
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
    for (const a of annotations) {
      const x = Math.round(u.valToPos(a.t, 'x', true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.strokeStyle = a.color;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
    }
    ctx.restore();
  };
}

function sizeOf(el, height) {
  return { width: Math.max(200, el.clientWidth || 600), height };
}

// Keeps a chart as wide as its box.
function fit(el, u, height) {
  if (typeof ResizeObserver === 'undefined') return;
  let w = el.clientWidth;
  const ro = new ResizeObserver(() => {
    if (!el.isConnected) { ro.disconnect(); u.destroy(); return; }
    if (el.clientWidth && el.clientWidth !== w) { w = el.clientWidth; u.setSize(sizeOf(el, height)); }
  });
  ro.observe(el);
}

// Lines or stacked areas from a range-query matrix.
// opts: {kind: 'line'|'stacked', unit, legend, start, end, step, height, sync, annotations}
export function lineChart(el, result, opts) {
  const { xs, ys } = align(result, opts.start, opts.end, opts.step);
  const t = theme();
  const names = opts.names || result.map((s) => legendOf(s.metric, opts.legend));
  let data = ys;
  const stacked = opts.kind === 'stacked';
  if (stacked) {
    // cumulative sums, drawn as bands between neighbours; the legend shows
    // each series' own value
    const acc = new Array(xs.length).fill(0);
    data = ys.map((col) => col.map((v, i) => (acc[i] += v ?? 0)));
  }
  const series = [{ value: (u, v) => (v == null ? '' : fmtTime(v)) }];
  names.forEach((name, i) => {
    series.push({
      label: name,
      stroke: color(i),
      width: 1.5,
      fill: stacked ? color(i) + '66' : undefined,
      spanGaps: false,
      points: { show: false },
      value: (u, v, si, di) => fmt(di == null ? v : ys[i][di], opts.unit),
    });
  });
  const bands = stacked ? ys.slice(1).map((_, i) => ({ series: [i + 2, i + 1] })) : undefined;
  const u = new uPlot({
    ...sizeOf(el, opts.height || 220),
    series,
    bands,
    axes: axes(opts.unit, t),
    scales: { x: { time: true, range: [opts.start, opts.end] } },
    cursor: opts.sync ? { sync: { key: opts.sync } } : {},
    legend: { show: opts.showLegend !== false },
    hooks: { draw: [annotationHook(opts.annotations)] },
  }, [xs, ...data], el);
  Object.assign(el.dataset, { kind: opts.kind || 'line', series: String(result.length), points: String(countPoints(ys)) });
  fit(el, u, opts.height || 220);
  return u;
}

// True when a matrix is histogram buckets: every series has an `le` label.
export function isBuckets(result) {
  return result.length > 1 && result.every((s) => s.metric.le !== undefined);
}

function leValue(s) {
  return s === '+Inf' ? Infinity : parseFloat(s);
}

// A heatmap of bucket rates: rows are buckets (summed over all other labels),
// each cell the share of observations that fell in the bucket (cumulative
// counts are differenced), colour by count.
export function heatmap(el, result, opts) {
  const { xs, ys } = align(result, opts.start, opts.end, opts.step);
  const byLe = new Map();
  result.forEach((s, i) => {
    const k = s.metric.le;
    const col = byLe.get(k) || new Array(xs.length).fill(null);
    ys[i].forEach((v, j) => { if (v !== null) col[j] = (col[j] ?? 0) + v; });
    byLe.set(k, col);
  });
  const les = [...byLe.keys()].sort((a, b) => leValue(a) - leValue(b));
  const cum = les.map((k) => byLe.get(k));
  const cells = cum.map((col, b) => col.map((v, j) => {
    if (v === null) return null;
    const prev = b > 0 ? cum[b - 1][j] ?? 0 : 0;
    return Math.max(0, v - prev);
  }));
  let max = 0;
  for (const col of cells) for (const v of col) if (v !== null && v > max) max = v;
  const t = theme();
  const nb = les.length;
  const readout = h('div', { class: 'heat-readout muted' }, '\u00a0');
  const draw = (u) => {
    const ctx = u.ctx;
    ctx.save();
    const half = opts.step / 2;
    for (let b = 0; b < nb; b++) {
      const y0 = u.valToPos(b, 'y', true), y1 = u.valToPos(b + 1, 'y', true);
      for (let j = 0; j < xs.length; j++) {
        const v = cells[b][j];
        if (v === null || v <= 0) continue;
        const x0 = u.valToPos(xs[j] - half, 'x', true), x1 = u.valToPos(xs[j] + half, 'x', true);
        const a = max > 0 ? 0.15 + 0.85 * Math.sqrt(v / max) : 0;
        ctx.fillStyle = `rgba(${t.heat}, ${a.toFixed(3)})`;
        ctx.fillRect(x0, y1, Math.max(1, x1 - x0), Math.max(1, y0 - y1));
      }
    }
    ctx.restore();
  };
  const u = new uPlot({
    ...sizeOf(el, opts.height || 220),
    series: [{}, { label: 'buckets', paths: () => null, points: { show: false } }],
    axes: [
      { stroke: t.fg, grid: { show: false }, ticks: { stroke: t.grid } },
      {
        stroke: t.fg, size: 64, grid: { show: false }, ticks: { stroke: t.grid },
        // label every bucket edge that fits (about one per 14 px)
        splits: (u2) => {
          const every = Math.max(1, Math.ceil(nb / Math.max(1, u2.bbox.height / devicePixelRatio / 14)));
          return les.map((_, i) => i + 1).filter((v) => (nb - v) % every === 0);
        },
        values: (u2, vals) => vals.map((v) => (les[v - 1] === '+Inf' ? '+Inf' : fmt(leValue(les[v - 1]), opts.unit))),
      },
    ],
    scales: { x: { time: true, range: [opts.start, opts.end] }, y: { auto: false, range: [0, nb] } },
    legend: { show: false },
    cursor: { ...(opts.sync ? { sync: { key: opts.sync } } : {}), points: { show: false } },
    hooks: {
      draw: [draw, annotationHook(opts.annotations)],
      setCursor: [(u2) => {
        const j = u2.cursor.idx;
        const b = Math.floor(u2.posToVal(u2.cursor.top ?? -1, 'y'));
        if (j == null || b < 0 || b >= nb) { readout.textContent = '\u00a0'; return; }
        const v = cells[b][j];
        readout.textContent = `${fmtTime(xs[j])}  ≤ ${les[b]}: ${fmt(v, 'short')}/s`;
      }],
    },
  }, [xs, new Array(xs.length).fill(null)], el);
  el.append(readout);
  let points = 0;
  for (const col of cells) for (const v of col) if (v !== null) points++;
  Object.assign(el.dataset, { kind: 'heatmap', series: String(nb), points: String(points) });
  fit(el, u, opts.height || 220);
  return u;
}

// A small line without axes or legend: the tiles' 7-day trend.
export function sparkline(el, xs, ys, opts = {}) {
  const t = theme();
  const u = new uPlot({
    width: opts.width || 180, height: opts.height || 36,
    series: [{}, { stroke: opts.color || t.fg, width: 1.5, fill: (opts.color || '#888888') + '33', points: { show: false } }],
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: true }, y: { range: opts.range || ((u2, lo, hi) => [Math.min(0, lo), Math.max(1, hi)]) } },
    legend: { show: false },
    cursor: { show: false },
  }, [xs, ys], el);
  Object.assign(el.dataset, { kind: 'sparkline', series: '1', points: String(countPoints([ys])) });
  return u;
}
