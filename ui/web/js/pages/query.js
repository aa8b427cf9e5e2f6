// query.js - /ui/query: ad-hoc PromQL. Several expressions on one graph,
// Graph / Table / JSON tabs, stacked mode, a heatmap whenever the answer is
// histogram buckets (every series has `le`), query statistics, suggestions.
// The URL uses Prometheus' own parameters (g0.expr, g0.range_input,
// g0.end_input, g0.moment_input, g0.tab, g0.stacked or g0.display_mode,
// g0.step_input; g1.expr ...), so a link copied from a Prometheus UI opens
// the same view here.
import { api, stepFor } from '../api.js';
import { lineChart, heatmap, isBuckets } from '../chart.js';
import { attachSuggest } from '../suggest.js';
import { h, clear, params, parseDuration, metricName } from '../util.js';

const TABS = ['graph', 'table', 'json'];

function tabOf(v) {
  if (v === '1' || v === 'table') return 'table';
  if (v === 'json') return 'json';
  return 'graph';
}

// "2024-06-01 12:00:00" (UTC, as Prometheus writes it), ISO, or Unix seconds.
function parseTime(s) {
  if (!s) return null;
  if (/^\d+(\.\d+)?$/.test(s)) return parseFloat(s);
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) ? s.replace(' ', 'T') : s.replace(' ', 'T') + 'Z');
  return Number.isNaN(t) ? null : t / 1000;
}

function fmtUTC(sec) {
  return new Date(sec * 1000).toISOString().slice(0, 19).replace('T', ' ');
}

function readState() {
  const p = params();
  const exprs = [];
  for (let i = 0; i < 20; i++) {
    const e = p.get(`g${i}.expr`);
    if (e === null) { if (i > 0) break; continue; }
    exprs.push(e);
  }
  return {
    exprs: exprs.length ? exprs : [''],
    range: p.get('g0.range_input') || '1h',
    end: p.get('g0.end_input') || '',
    moment: p.get('g0.moment_input') || '',
    step: p.get('g0.step_input') || '',
    tab: tabOf(p.get('g0.tab')),
    // the classic UI's g0.stacked=1 and Prometheus 3's g0.display_mode=stacked
    stacked: p.get('g0.stacked') === '1' || p.get('g0.display_mode') === 'stacked',
  };
}

function writeState(st, push) {
  const p = new URLSearchParams();
  st.exprs.forEach((e, i) => p.set(`g${i}.expr`, e));
  p.set('g0.tab', st.tab === 'graph' ? '0' : st.tab === 'table' ? '1' : 'json');
  if (st.stacked) { p.set('g0.stacked', '1'); p.set('g0.display_mode', 'stacked'); }
  p.set('g0.range_input', st.range);
  if (st.end) p.set('g0.end_input', st.end);
  if (st.moment) p.set('g0.moment_input', st.moment);
  if (st.step) p.set('g0.step_input', st.step);
  const url = location.pathname + '?' + p.toString();
  if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
}

export async function render(root) {
  const st = readState();
  root.append(h('h1', {}, 'Query'));
  const exprBox = h('div', { class: 'exprs' });
  const areas = [];
  const addExpr = (text) => {
    const ta = h('textarea', { rows: 1, spellcheck: 'false', placeholder: 'PromQL expression, e.g. rate(etcd_server_proposals_committed_total[5m])', 'aria-label': 'expression' });
    ta.value = text;
    const row = h('div', { class: 'expr' }, ta,
      h('button', { type: 'button', title: 'remove this expression', onclick: () => {
        if (areas.length === 1) { ta.value = ''; return; }
        areas.splice(areas.indexOf(ta), 1); row.remove();
      } }, '×'));
    exprBox.append(row);
    areas.push(ta);
    attachSuggest(ta, run);
    return ta;
  };
  const rangeIn = h('input', { size: 6, value: st.range, 'aria-label': 'range', title: 'range, e.g. 1h, 6h, 7d' });
  const endIn = h('input', { size: 19, value: st.end, placeholder: 'end: now', 'aria-label': 'end', title: 'end of the graph (UTC), empty for now' });
  const stepIn = h('input', { size: 5, value: st.step, placeholder: 'auto', 'aria-label': 'step', title: 'resolution' });
  const stackedIn = h('input', { type: 'checkbox', id: 'stacked' });
  stackedIn.checked = st.stacked;
  const runBtn = h('button', { type: 'button', class: 'primary', onclick: () => run() }, 'Execute');
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const tabBtns = {};
  for (const t of TABS) {
    tabBtns[t] = h('button', { type: 'button', role: 'tab', 'data-tab': t, onclick: () => { st.tab = t; run(); } },
      t === 'json' ? 'JSON' : t[0].toUpperCase() + t.slice(1));
    tabs.append(tabBtns[t]);
  }
  const stats = h('div', { class: 'stats', id: 'query-stats' });
  const out = h('div', { class: 'result', id: 'query-result' });
  root.append(exprBox,
    h('div', { class: 'toolbar' },
      h('button', { type: 'button', onclick: () => addExpr('').focus() }, '+ expression'),
      runBtn,
      h('label', {}, 'range'), rangeIn, h('label', {}, 'end'), endIn, h('label', {}, 'step'), stepIn,
      h('label', { for: 'stacked' }, stackedIn, ' stacked')),
    tabs, stats, out);
  st.exprs.forEach((e) => addExpr(e));

  async function run(push = true) {
    st.exprs = areas.map((a) => a.value.trim()).filter(Boolean);
    st.range = rangeIn.value.trim() || '1h';
    st.end = endIn.value.trim();
    st.step = stepIn.value.trim();
    st.stacked = stackedIn.checked;
    for (const t of TABS) tabBtns[t].classList.toggle('active', t === st.tab);
    writeState({ ...st, exprs: st.exprs.length ? st.exprs : [''] }, push);
    clear(stats);
    clear(out);
    if (!st.exprs.length) { out.append(h('p', { class: 'muted' }, 'Enter an expression.')); return; }
    const t0 = performance.now();
    try {
      if (st.tab === 'graph') await graph(st, out, stats);
      else await instant(st, out, stats);
    } catch (e) {
      out.append(h('div', { class: 'error' }, e.message));
    }
    stats.prepend(`${Math.round(performance.now() - t0)} ms · `);
  }
  await run(false);
}

async function graph(st, out, stats) {
  const rangeSec = parseDuration(st.range);
  if (!isFinite(rangeSec) || rangeSec <= 0) throw new Error(`bad range "${st.range}": use e.g. 1h, 6h, 7d`);
  let end = st.end ? parseTime(st.end) : Math.floor(Date.now() / 1000);
  if (end === null) throw new Error(`bad end time "${st.end}"`);
  let step = st.step ? parseDuration(st.step) : stepFor(rangeSec);
  if (!isFinite(step) || step <= 0) throw new Error(`bad step "${st.step}"`);
  end = Math.floor(end / step) * step;
  const start = end - rangeSec;
  const answers = await Promise.all(st.exprs.map((e) => api.range(e, start, end, step)));
  const result = [];
  answers.forEach((a, i) => {
    for (const s of a.data.result) {
      result.push(st.exprs.length > 1 ? { ...s, metric: { ...s.metric }, expr: i } : s);
    }
  });
  let points = 0;
  for (const s of result) points += (s.values || []).length;
  const warnings = answers.flatMap((a) => a.warnings);
  stats.append(`${result.length} series, ${points} points, step ${step}s, ` +
    `${answers.reduce((n, a) => n + a.bytes, 0).toLocaleString('en-US')} bytes` +
    (warnings.length ? ` · warnings: ${warnings.join('; ')}` : ''));
  if (!result.length) { out.append(h('p', { class: 'muted' }, 'Empty query result.')); return; }
  const el = h('div', { class: 'chart', id: 'query-chart' });
  out.append(el);
  const names = result.map((s) => (s.expr !== undefined ? `#${s.expr + 1} ` : '') + metricName(s.metric));
  const opts = { start, end, step, height: 320, kind: st.stacked ? 'stacked' : 'line', names };
  if (st.exprs.length === 1 && isBuckets(result)) heatmap(el, result, opts);
  else lineChart(el, result, opts);
}

async function instant(st, out, stats) {
  const t = st.moment ? parseTime(st.moment) : Math.floor(Date.now() / 1000);
  if (t === null) throw new Error(`bad evaluation time "${st.moment}"`);
  const answers = await Promise.all(st.exprs.map((e) => api.query(e, t)));
  stats.append(`evaluated at ${fmtUTC(t)} UTC`);
  answers.forEach((a, i) => {
    if (st.exprs.length > 1) out.append(h('h2', {}, `#${i + 1} ${st.exprs[i]}`));
    if (st.tab === 'json') {
      out.append(h('pre', { class: 'json', 'data-expr': String(i) }, JSON.stringify(a.data, null, 2)));
    } else {
      out.append(table(a.data));
    }
    stats.append(` · #${i + 1}: ${a.data.result.length ?? 1} results, ${Math.round(a.ms)} ms`);
  });
}

function table(data) {
  const rows = [];
  const { resultType, result } = data;
  if (resultType === 'scalar' || resultType === 'string') {
    rows.push(h('tr', {}, h('td', { class: 'labels' }, resultType), h('td', { class: 'num' }, result[1])));
  } else {
    for (const s of result) {
      const val = resultType === 'matrix'
        ? (s.values || []).map(([ts, v]) => `${v} @${ts}`).join('\n')
        : s.value[1];
      rows.push(h('tr', {}, h('td', { class: 'labels' }, metricName(s.metric)), h('td', { class: 'num value' }, val)));
    }
  }
  if (!rows.length) return h('p', { class: 'muted' }, 'Empty query result.');
  return h('table', { class: 'result-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'series'), h('th', { class: 'num' }, 'value'))),
    h('tbody', {}, rows));
}

