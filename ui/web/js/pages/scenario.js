// scenario.js - /ui/scenario?region=…&product=…&scenario=…&size=…&slo=…,
// level 2: a product/scenario x size matrix of the share of clusters within
// budget, and a table of every matching cluster (budget left, burn rates,
// p99 fsync and commit, quota used, leader changes, snapshot age, firing
// alerts), worst first, sortable, and virtualised: only the rows in view
// exist in the document, so thousands of clusters scroll smoothly. Every
// choice (cell, SLO, sort column and direction) is in the URL.
import { api, byLabel } from '../api.js';
import { loadDashboard } from '../dash.js';
import { h, clear, fmt, params, setParams, sel } from '../util.js';

const ROW_H = 30;

function fmtCol(v, unit) {
  if (unit === 'x') return v === undefined ? '–' : fmt(v) + '×';
  return v === undefined ? '–' : fmt(v, unit);
}

export async function render(root, ctx) {
  const d = await loadDashboard('scenario');
  const p = params();
  const f = { region: p.get('region') || '', product: p.get('product') || '', scenario: p.get('scenario') || '', size: p.get('size') || '' };
  const slo = p.get('slo') || '';
  const now = Math.floor(Date.now() / 1000);
  const vars = (extra) => {
    const s = sel({ ...f, ...extra });
    return (t) => t.replaceAll('$ssel', sel({ ...f, ...extra, slo })).replaceAll('$sel', s);
  };
  // the matrix shows the region (not the cell filters), the table all filters
  const mx = vars({ product: '', scenario: '', size: '' });
  const tx = vars({});
  const mkeys = Object.keys(d.matrix);
  const [mAns, cAns] = await Promise.all([
    Promise.all(mkeys.map((k) => api.query(mx(d.matrix[k]), now))),
    Promise.all(d.columns.map((c) => api.query(tx(c.expr), now))),
  ]);

  const title = [f.region || 'all regions', f.product && f.scenario ? `${f.product}/${f.scenario}` : '', f.size, slo && `SLO ${slo}`].filter(Boolean).join(' · ');
  root.append(h('div', { class: 'crumbs' }, h('a', { href: '/ui/fleet' }, 'fleet'), ' › ', f.region || 'all regions'),
    h('h1', {}, title));

  // --- the SLO choice
  const sloSel = h('select', { 'aria-label': 'SLO', onchange: () => { setParams({ slo: sloSel.value }, true); ctx.rerender(); } },
    h('option', { value: '' }, 'all SLOs'),
    ['availability', 'fsync', 'commit', 'leader'].map((s) => h('option', { value: s, selected: s === slo }, s)));
  root.append(h('div', { class: 'toolbar' }, h('label', {}, 'SLO'), sloSel,
    (f.product || f.scenario || f.size) ? h('a', { href: `/ui/scenario?${new URLSearchParams({ region: f.region, ...(slo ? { slo } : {}) })}` }, 'clear the cell filter') : null));

  // --- matrix: rows product/scenario, columns size
  const cell = (m) => `${m.product ?? ''}/${m.scenario ?? ''}|${m.size ?? ''}`;
  const mv = Object.fromEntries(mkeys.map((k, i) => [k, new Map(mAns[i].data.result.map((s) => [cell(s.metric), parseFloat(s.value[1])]))]));
  const keys = [...new Set([...mv.clusters.keys(), ...mv.total.keys()])];
  const rowsK = [...new Set(keys.map((k) => k.split('|')[0]))].sort();
  const sizes = [...new Set(keys.map((k) => k.split('|')[1]))].sort();
  const table = h('table', { class: 'matrix' },
    h('thead', {}, h('tr', {}, h('th', {}, 'product / scenario'), sizes.map((s) => h('th', {}, s || '(no size)')))),
    h('tbody', {}, rowsK.map((r) => h('tr', {}, h('th', {}, r), sizes.map((s) => {
      const k = `${r}|${s}`;
      if (!mv.clusters.has(k) && !mv.total.has(k)) return h('td', { class: 'muted' }, '');
      const share = (mv.within.get(k) ?? 0) / (mv.total.get(k) || NaN);
      const [product, scenario] = r.split('/');
      const chosen = f.product === product && f.scenario === scenario && f.size === s;
      const q = new URLSearchParams({ region: f.region, product, scenario, size: s, ...(slo ? { slo } : {}) });
      return h('td', { class: 'cell' + (chosen ? ' selected' : ''), 'data-cell': k },
        h('a', { href: `/ui/scenario?${q}` },
          h('div', { class: share >= 0.99 ? 'good' : share >= 0.9 ? 'warn' : 'bad' }, fmt(share, 'percentunit')),
          h('div', { class: 'muted' }, `${mv.clusters.get(k) ?? 0} clusters`,
            (mv.alerts.get(k) ?? 0) > 0 ? h('span', { class: 'bad' }, ` · ${mv.alerts.get(k)} critical`) : '')));
    })))));
  root.append(h('h2', {}, 'Scenarios × size: clusters within budget'), table);

  // --- cluster table
  const vals = d.columns.map((c, i) => byLabel(cAns[i].data.result, 'cluster'));
  const names = [...new Set(vals.flatMap((m) => [...m.keys()]))].filter(Boolean);
  const rows = names.map((name) => ({ name, v: vals.map((m) => m.get(name)) }));
  const sortKey = p.get('sort') || d.sort;
  const ci = Math.max(0, d.columns.findIndex((c) => c.key === sortKey));
  const col = d.columns[ci];
  // worst first by default: lowest budget, highest burn/latency/...
  const asc = p.get('dir') ? p.get('dir') === 'asc' : col.worse === 'low';
  rows.sort((a, b) => {
    const x = a.v[ci], y = b.v[ci];
    if (x === undefined || Number.isNaN(x)) return y === undefined || Number.isNaN(y) ? a.name.localeCompare(b.name) : 1;
    if (y === undefined || Number.isNaN(y)) return -1;
    return (asc ? x - y : y - x) || a.name.localeCompare(b.name);
  });
  root.append(h('h2', {}, `Clusters (${rows.length}), worst first`));
  const head = h('tr', {}, h('th', {}, 'cluster'), d.columns.map((c, i) => h('th', {
    class: 'num sortable' + (i === ci ? ' sorted' + (asc ? ' asc' : '') : ''), 'data-key': c.key,
    onclick: () => {
      const dir = i === ci ? (asc ? 'desc' : 'asc') : (c.worse === 'low' ? 'asc' : 'desc');
      setParams({ sort: c.key, dir }, true);
      ctx.rerender();
    },
  }, c.title)));
  const body = h('tbody', { id: 'clusters' });
  const scroller = h('div', { class: 'scroller' }, h('table', { class: 'clusters' }, h('thead', {}, head), body));
  root.append(scroller);
  if (!rows.length) { body.append(h('tr', {}, h('td', { colspan: d.columns.length + 1, class: 'muted' }, 'No clusters match.'))); return; }
  const mkRow = (r) => {
    const href = `/ui/cluster/${encodeURIComponent(r.name)}`;
    return h('tr', { class: 'clickable', 'data-cluster': r.name, onclick: (e) => { if (!e.target.closest('a')) e.currentTarget.querySelector('a').click(); } },
      h('td', {}, h('a', { href }, r.name)),
      r.v.map((v, i) => {
        const c = d.columns[i];
        const bad = v !== undefined && ((c.key === 'budget' && v <= 0) || (c.key.startsWith('burn') && v >= 14.4) || (c.key === 'alerts' && v > 0));
        return h('td', { class: 'num' + (bad ? ' bad' : '') }, fmtCol(v, c.unit));
      }));
  };
  // virtualisation: a spacer row above and below the rows in view
  const draw = () => {
    const first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - 10);
    const count = Math.ceil((scroller.clientHeight || 560) / ROW_H) + 20;
    const last = Math.min(rows.length, first + count);
    clear(body);
    const before = h('tr', { class: 'spacer' });
    before.style.height = `${first * ROW_H}px`;
    body.append(before);
    for (let i = first; i < last; i++) body.append(mkRow(rows[i]));
    const after = h('tr', { class: 'spacer' });
    after.style.height = `${(rows.length - last) * ROW_H}px`;
    body.append(after);
    body.dataset.first = String(first);
    body.dataset.total = String(rows.length);
  };
  draw();
  let pending = false;
  scroller.addEventListener('scroll', () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  });
}
