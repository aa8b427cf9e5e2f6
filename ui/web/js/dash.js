// dash.js - draws a dashboard from its JSON (ui/dashboards/*.json): rows of
// panels, each with one or more PromQL targets {expr, legend}, a unit and a
// kind - line, stacked, heatmap (histogram buckets), stat (the newest value
// of each series) or table (label columns of an instant query). Variables
// such as $cluster are replaced by their values escaped for a PromQL string,
// so dashboards are data: adding a panel is an edit of a JSON file.
import { api, stepFor } from './api.js';
import { lineChart, heatmap, isBuckets } from './chart.js';
import { h, fmt, legend as legendOf, parseDuration } from './util.js';

const loaded = new Map();

export async function loadDashboard(name) {
  if (!loaded.has(name)) {
    const url = new URL(`../dashboards/${name}.json`, import.meta.url);
    loaded.set(name, fetch(url, { credentials: 'same-origin' }).then((r) => {
      if (!r.ok) throw new Error(`dashboard ${name}: HTTP ${r.status}`);
      return r.json();
    }));
  }
  return loaded.get(name);
}

function esc(v) {
  return String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

// Replaces $name and ${name} by the variable's value.
export function expand(text, vars) {
  return text.replace(/\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?/g, (m, k) => (k in vars ? esc(vars[k]) : m));
}

function targets(panel) {
  return panel.targets || [{ expr: panel.expr, legend: panel.legend }];
}

// The time window of a dashboard page from the URL (range=6h, end=unix s).
export function window_(p, def = '6h') {
  const range = p.get('range') || def;
  const rangeSec = parseDuration(range);
  if (!isFinite(rangeSec) || rangeSec <= 0) throw new Error(`bad range "${range}"`);
  const step = stepFor(rangeSec, 200);
  let end = p.get('end') ? parseFloat(p.get('end')) : Date.now() / 1000;
  if (!isFinite(end)) throw new Error(`bad end "${p.get('end')}"`);
  end = Math.floor(end / step) * step;
  return { range, start: end - rangeSec, end, step };
}

// Times where an annotation query has a value > 0, as markers.
export async function annotations(defs, vars, w) {
  const out = [];
  await Promise.all((defs || []).map(async (a) => {
    const r = await api.range(expand(a.expr, vars), w.start, w.end, w.step);
    for (const s of r.data.result) {
      let prev = false;
      for (const [t, v] of s.values) {
        const on = parseFloat(v) > 0;
        if (on && !prev) out.push({ t, color: a.color, name: a.name });
        prev = on;
      }
    }
  }));
  return out.sort((x, y) => x.t - y.t);
}

async function drawPanel(box, panel, vars, w, opts) {
  const chart = h('div', { class: 'chart' });
  box.append(chart);
  const ts = targets(panel);
  if (panel.kind === 'stat' || panel.kind === 'table') {
    const answers = await Promise.all(ts.map((t) => api.query(expand(t.expr, vars), w.end)));
    const rows = [];
    answers.forEach((a, i) => {
      for (const s of a.data.result) rows.push({ metric: s.metric, value: parseFloat(s.value[1]), legend: ts[i].legend });
    });
    chart.dataset.kind = panel.kind;
    chart.dataset.series = String(rows.length);
    if (!rows.length) { chart.append(h('p', { class: 'muted' }, panel.empty || 'no data')); return; }
    if (panel.kind === 'stat') {
      chart.append(h('div', { class: 'values' }, rows.map((r) => h('div', {},
        h('div', { class: 'stat-value ' + statClass(panel, r.value) }, fmt(r.value, panel.unit)),
        h('div', { class: 'stat-name' }, legendOf(r.metric, r.legend))))));
    } else {
      const cols = panel.columns || Object.keys(rows[0].metric).filter((k) => k !== '__name__');
      chart.append(h('table', {},
        h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)), panel.hideValue ? null : h('th', { class: 'num' }, 'value'))),
        h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', {}, r.metric[c] ?? '')),
          panel.hideValue ? null : h('td', { class: 'num' }, fmt(r.value, panel.unit)))))));
    }
    return;
  }
  const answers = await Promise.all(ts.map((t) => api.range(expand(t.expr, vars), w.start, w.end, w.step)));
  const result = [], names = [];
  answers.forEach((a, i) => {
    for (const s of a.data.result) { result.push(s); names.push(legendOf(s.metric, ts[i].legend)); }
  });
  if (!result.length) {
    Object.assign(chart.dataset, { kind: panel.kind, series: '0', points: '0' });
    chart.append(h('p', { class: 'muted' }, panel.empty || 'no data'));
    return;
  }
  const o = { start: w.start, end: w.end, step: w.step, unit: panel.unit, kind: panel.kind, names,
    height: panel.height || 200, sync: opts.sync, annotations: opts.annotations };
  if (panel.kind === 'heatmap') {
    if (!isBuckets(result)) throw new Error('a heatmap needs bucket series with an "le" label');
    heatmap(chart, result, o);
  } else {
    lineChart(chart, result, o);
  }
}

function statClass(panel, v) {
  const t = panel.thresholds;
  if (!t) return '';
  const below = t.dir === 'below';
  if (t.bad !== undefined && (below ? v <= t.bad : v >= t.bad)) return 'bad';
  if (t.warn !== undefined && (below ? v <= t.warn : v >= t.warn)) return 'warn';
  return 'good';
}

export function panelBox(panel) {
  return h('section', { class: 'panel ' + (panel.kind || 'line'), 'data-title': panel.title }, h('h3', {}, panel.title));
}

// Draws every panel of the given rows into root; resolves when all are drawn
// (a panel's error is shown in the panel and marks it data-error).
export async function renderRows(root, rows, vars, w, opts = {}) {
  const jobs = [];
  for (const row of rows) {
    const sec = h('div', { class: 'dash-row' });
    if (row.title) sec.append(h('h2', {}, expand(row.title, vars)));
    const grid = h('div', { class: 'panels' + (row.columns === 2 ? ' two' : '') });
    sec.append(grid);
    root.append(sec);
    for (const panel of row.panels) {
      const box = panelBox(panel);
      grid.append(box);
      jobs.push(drawPanel(box, panel, vars, w, opts).catch((e) => {
        box.dataset.error = e.message;
        box.append(h('div', { class: 'error' }, e.message));
      }));
    }
  }
  await Promise.all(jobs);
}
