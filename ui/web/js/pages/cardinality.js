// cardinality.js - /ui/cardinality?match=…&focusLabel=…&limit=…: where the
// series come from, from /api/v1/status/tsdb with match[] (only the series
// a selector such as {cluster="x"} selects), focusLabel (the values of one
// label by series count) and limit, as VictoriaMetrics offers them. A metric
// name narrows the selector to it; a label name becomes the focus.
import { api } from '../api.js';
import { h, fmt, params, setParams } from '../util.js';

function bars(title, entries, total, onPick, id) {
  const max = Math.max(1, ...entries.map((e) => e.value));
  return h('section', { class: 'panel', id },
    h('h3', {}, title),
    entries.length ? h('table', {}, h('tbody', {}, entries.map((e) => h('tr', {},
      h('td', { class: 'labels' }, onPick ? h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); onPick(e.name); } }, e.name) : e.name),
      h('td', { class: 'num' }, fmt(e.value, 'short')),
      h('td', { class: 'num muted' }, total ? fmt(e.value / total, 'percentunit') : ''),
      h('td', { class: 'barcell' }, (() => { const b = h('div', { class: 'bar' }); b.style.width = `${Math.round(100 * e.value / max)}%`; return b; })())))))
      : h('p', { class: 'muted' }, 'nothing'));
}

export async function render(root, ctx) {
  const p = params();
  const match = p.get('match') || '';
  const focus = p.get('focusLabel') || '';
  const limit = p.get('limit') || '10';
  const r = await api.get('/api/v1/status/tsdb', { 'match[]': match || undefined, focusLabel: focus, limit });
  const d = r.data;
  const go = (u) => { setParams(u, true); ctx.rerender(); };
  const matchIn = h('input', { size: 40, value: match, placeholder: 'selector, e.g. {cluster="x"}', 'aria-label': 'selector' });
  const focusIn = h('input', { size: 12, value: focus, placeholder: 'focus label', 'aria-label': 'focus label' });
  const limitIn = h('select', { 'aria-label': 'limit' }, ['10', '20', '50', '100'].map((v) => h('option', { value: v, selected: v === limit }, v)));
  root.append(h('h1', {}, 'Cardinality'),
    h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); go({ match: matchIn.value.trim(), focusLabel: focusIn.value.trim(), limit: limitIn.value }); } },
      matchIn, focusIn, h('label', {}, 'top'), limitIn, h('button', { type: 'submit', class: 'primary' }, 'Show')));
  const total = d.totalSeries ?? d.headStats?.numSeries ?? 0;
  root.append(h('p', { id: 'card-total' }, h('b', {}, fmt(total, 'short')), ' series',
    match ? ` selected by ${match}` : ' in total',
    d.totalLabelValuePairs !== undefined ? ` · ${fmt(d.totalLabelValuePairs, 'short')} label=value pairs` : ''));
  const narrow = (name) => go({ match: match.trim().startsWith('{') ? match.replace(/^\s*\{/, `{__name__="${name}", `).replace(/,\s*\}$/, '}') : `{__name__="${name}"}` });
  const panels = h('div', { class: 'panels' },
    bars('Series by metric name', d.seriesCountByMetricName || [], total, narrow, 'by-metric'),
    focus ? bars(`Series by value of ${focus}`, d.seriesCountByFocusLabelValue || [], total, null, 'by-focus') : null,
    bars('Series by label name', d.seriesCountByLabelName || [], total, (n) => go({ focusLabel: n }), 'by-label'),
    bars('Values by label name', d.labelValueCountByLabelName || [], 0, (n) => go({ focusLabel: n }), 'values-by-label'),
    bars('Series by label=value pair', d.seriesCountByLabelValuePair || [], total, null, 'by-pair'));
  root.append(panels);
}
