// sources.js - /ui/sources: ingest health per cluster and tenant from
// GET /api/v1/status/sources: newest sample age, samples/s, rejections by
// reason, series against the limit, remote-write version, the elected HA
// replica, kubelet endpoints dropped, and clusters that send but are missing
// from the inventory. The table shows the fields the server reports (nested
// objects such as rejections by reason as name=value lists), sortable and
// filtered by any text; the filter and sort are in the URL.
import { api } from '../api.js';
import { h, fmt, fmtDuration, params, setParams } from '../util.js';

// Known fields first (as /api/v1/status/sources names them), in this order;
// anything else the server adds follows.
const ORDER = ['tenant', 'cluster', 'missing_from_inventory', 'newest_sample_age_seconds', 'newest_sample',
  'samples_per_second_1m', 'samples_accepted', 'active_series', 'max_series', 'rejected', 'dropped',
  'remote_write_versions', 'ha_elected_replica', 'kubelet_endpoints_dropped', 'first_request', 'last_request'];

function rowsOf(data) {
  if (Array.isArray(data)) return data;
  for (const k of ['sources', 'clusters', 'result']) if (Array.isArray(data?.[k])) return data[k];
  return [];
}

function cell(k, v) {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object') return Object.entries(v).map(([a, b]) => `${a}=${typeof b === 'number' ? fmt(b, 'short') : b}`).join(', ');
  if (typeof v === 'number') {
    if (/age|seconds/.test(k)) return fmtDuration(v);
    return fmt(v, 'short');
  }
  return String(v);
}

export async function render(root, ctx) {
  const p = params();
  const r = await api.get('/api/v1/status/sources');
  const rows = rowsOf(r.data);
  const keys = [...new Set(rows.flatMap((x) => Object.keys(x)))];
  const cols = [...ORDER.filter((k) => keys.includes(k)), ...keys.filter((k) => !ORDER.includes(k)).sort()];
  const filter = (p.get('q') || '').toLowerCase();
  const sortKey = cols.includes(p.get('sort')) ? p.get('sort') : null;
  const asc = p.get('dir') !== 'desc';
  let shown = rows.filter((x) => !filter || cols.some((k) => cell(k, x[k]).toLowerCase().includes(filter)));
  if (sortKey) {
    shown = [...shown].sort((a, b) => {
      const x = a[sortKey], y = b[sortKey];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : cell(sortKey, x).localeCompare(cell(sortKey, y));
      return asc ? c : -c;
    });
  }
  const q = h('input', { size: 30, value: p.get('q') || '', placeholder: 'filter: cluster, tenant, reason…', 'aria-label': 'filter' });
  root.append(h('h1', {}, 'Sources'),
    h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); setParams({ q: q.value.trim() }, true); ctx.rerender(); } },
      q, h('button', { type: 'submit', class: 'primary' }, 'Filter'),
      h('span', { class: 'muted' }, `${shown.length} of ${rows.length} sources`)));
  const missing = rows.filter((x) => x.missing_from_inventory === true).length;
  if (missing) root.append(h('p', { class: 'warn', id: 'missing-inventory' }, `${missing} sending cluster(s) missing from the inventory.`));
  if (!rows.length) { root.append(h('p', { class: 'muted' }, 'No sources have written yet.')); return; }
  root.append(h('div', { class: 'scroller' }, h('table', { id: 'sources' },
    h('thead', {}, h('tr', {}, cols.map((k) => h('th', {
      class: 'sortable' + (k === sortKey ? ' sorted' + (asc ? ' asc' : '') : ''),
      onclick: () => { setParams({ sort: k, dir: k === sortKey && asc ? 'desc' : 'asc' }, true); ctx.rerender(); },
    }, k.replace(/_/g, ' '))))),
    h('tbody', {}, shown.map((x) => h('tr', { class: x.missing_from_inventory === true ? 'warn' : '' }, cols.map((k) => {
      const v = cell(k, x[k]);
      return h('td', { class: typeof x[k] === 'number' ? 'num' : (typeof x[k] === 'object' ? 'labels' : '') },
        k === 'cluster' && v ? h('a', { href: `/ui/cluster/${encodeURIComponent(v)}` }, v) : v);
    })))))));
}
