// alerts.js - /ui/alerts and /ui/rules: alerts and rules filtered by the
// standard labels (region, product, scenario, size, cluster) and severity,
// paged on the server so ten thousand alerts do not freeze the page.
//
// The filters become a match[] selector on the labels; paging uses
// Prometheus' own parameters where it has them (/api/v1/rules: group_limit
// and group_next_token, answer groupNextToken) and the same idea for
// /api/v1/alerts (limit and next_token, answer nextToken). A server that
// does not page answers everything, and the page then shows the first page
// only, saying so. The page token is in the URL, so Back goes back a page.
import { api } from '../api.js';
import { h, fmt, fmtTime, params, setParams, sel } from '../util.js';

const FILTERS = ['region', 'product', 'scenario', 'size', 'cluster', 'severity'];
const PAGE = 100;

function filterBar(ctx, p, extra) {
  const inputs = {};
  const apply = () => {
    const u = { token: '' };
    for (const k of Object.keys(inputs)) u[k] = inputs[k].value.trim();
    setParams(u, true);
    ctx.rerender();
  };
  const bar = h('form', { class: 'toolbar', onsubmit: (e) => { e.preventDefault(); apply(); } });
  for (const k of [...FILTERS, ...extra]) {
    if (k === 'state' || k === 'type') {
      const opts = k === 'state' ? ['', 'firing', 'pending'] : ['', 'alert', 'record'];
      inputs[k] = h('select', { name: k, 'aria-label': k, onchange: apply },
        opts.map((o) => h('option', { value: o, selected: (p.get(k) || '') === o }, o || `any ${k}`)));
    } else {
      inputs[k] = h('input', { name: k, size: 10, placeholder: k, value: p.get(k) || '', 'aria-label': k });
    }
    bar.append(inputs[k]);
  }
  bar.append(h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  return bar;
}

function matchParam(p) {
  const m = {};
  for (const k of FILTERS) if (p.get(k)) m[k] = p.get(k);
  return Object.keys(m).length ? [`{${sel(m)}}`] : undefined;
}

function pager(p, next, shown, note) {
  return h('div', { class: 'pager' },
    p.get('token') ? h('button', { type: 'button', onclick: () => history.back() }, '‹ previous') : null,
    h('span', { class: 'muted' }, `${shown} shown${note ? ' · ' + note : ''}`),
    next ? h('a', { href: location.pathname + '?' + new URLSearchParams({ ...Object.fromEntries(p), token: next }), id: 'next-page' }, 'next ›') : null);
}

function labelChips(labels, skip) {
  return Object.entries(labels).filter(([k]) => !skip.includes(k))
    .map(([k, v]) => h('span', { class: 'chip' + (k === 'severity' ? ' ' + v : '') }, `${k}=${v}`));
}

async function alertsPage(root, ctx) {
  const p = params();
  root.append(h('h1', {}, 'Alerts'), filterBar(ctx, p, ['state']));
  const r = await api.get('/api/v1/alerts', { 'match[]': matchParam(p), state: p.get('state'), limit: PAGE, next_token: p.get('token') });
  let alerts = r.data.alerts || [];
  // a server without paging and filters: filter and cut here
  const m = Object.fromEntries(FILTERS.filter((k) => p.get(k)).map((k) => [k, p.get(k)]));
  alerts = alerts.filter((a) => Object.entries(m).every(([k, v]) => a.labels[k] === v) && (!p.get('state') || a.state === p.get('state')));
  const unpaged = alerts.length > PAGE && r.data.nextToken === undefined;
  if (unpaged) alerts = alerts.slice(0, PAGE);
  root.append(pager(p, r.data.nextToken, alerts.length,
    unpaged ? 'this server does not page alerts: the first page only' : (r.data.total !== undefined ? `${r.data.total} match` : '')));
  const rows = alerts.map((a) => {
    const c = a.labels.cluster;
    return h('tr', { 'data-alert': a.labels.alertname },
      h('td', {}, h('span', { class: 'chip ' + a.state }, a.state)),
      h('td', {}, a.labels.alertname),
      h('td', {}, c ? h('a', { href: `/ui/cluster/${encodeURIComponent(c)}` }, c) : ''),
      h('td', { class: 'labels' }, labelChips(a.labels, ['alertname', 'cluster'])),
      h('td', {}, a.activeAt ? fmtTime(Date.parse(a.activeAt) / 1000) : ''),
      h('td', { class: 'num' }, fmt(parseFloat(a.value))),
      h('td', { class: 'labels' }, a.annotations?.summary || a.annotations?.description || ''));
  });
  root.append(h('table', { id: 'alerts' },
    h('thead', {}, h('tr', {}, ['state', 'alert', 'cluster', 'labels', 'active since', 'value', 'summary'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No alerts match.')))));
}

async function rulesPage(root, ctx) {
  const p = params();
  root.append(h('h1', {}, 'Rules'), filterBar(ctx, p, ['type']));
  const r = await api.get('/api/v1/rules', { 'match[]': matchParam(p), type: p.get('type'), group_limit: 20, group_next_token: p.get('token') });
  const groups = r.data.groups || [];
  root.append(pager(p, r.data.groupNextToken, `${groups.length} groups`, ''));
  for (const g of groups) {
    root.append(h('h2', {}, g.name, h('span', { class: 'muted' }, ` ${g.file} · every ${g.interval}s · last evaluation ${fmt(g.evaluationTime, 's')}`)));
    root.append(h('table', { class: 'rules', 'data-group': g.name },
      h('thead', {}, h('tr', {}, ['rule', 'state', 'health', 'labels', 'expression'].map((t) => h('th', {}, t)))),
      h('tbody', {}, g.rules.map((rule) => h('tr', {},
        h('td', {}, rule.name),
        h('td', {}, rule.type === 'alerting' ? h('span', { class: 'chip ' + rule.state }, `${rule.state} (${(rule.alerts || []).length})`) : 'recording'),
        h('td', { class: rule.health === 'ok' ? 'good' : rule.health === 'err' ? 'bad' : 'muted', title: rule.lastError || '' }, rule.health),
        h('td', { class: 'labels' }, labelChips(rule.labels || {}, [])),
        h('td', { class: 'labels' }, h('a', { href: '/ui/query?' + new URLSearchParams({ 'g0.expr': rule.query, 'g0.tab': '0' }) }, rule.query)))))));
  }
  if (!groups.length) root.append(h('p', { class: 'muted' }, 'No rules match.'));
}

export async function render(root, ctx) {
  return ctx.page === 'rules' ? rulesPage(root, ctx) : alertsPage(root, ctx);
}
