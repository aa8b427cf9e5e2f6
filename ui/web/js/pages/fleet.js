// fleet.js - /ui/fleet, level 1: one card per region with a tile per SLO -
// the share of clusters within their 30-day error budget, clusters burning
// fast and with the budget exhausted, a 7-day trend - and the region's
// counts of firing critical alerts, overdue snapshots and silent clusters.
// It reads only the fleet roll-up recording rules (a few series per region),
// so it stays fast for ten thousand clusters. A tile leads to the region's
// scenario page for that SLO.
import { api, byLabel } from '../api.js';
import { sparkline, align } from '../chart.js';
import { loadDashboard } from '../dash.js';
import { h, fmt, parseDuration } from '../util.js';

// {region: {slo: value}} from an instant answer grouped by region and slo.
function byRegionSlo(result) {
  const m = {};
  for (const s of result) (m[s.metric.region ?? ''] ||= {})[s.metric.slo ?? ''] = parseFloat(s.value[1]);
  return m;
}

export async function render(root) {
  const d = await loadDashboard('fleet');
  const now = Math.floor(Date.now() / 1000);
  const qs = d.queries;
  const names = ['slo_clusters', 'slo_within', 'slo_burning', 'slo_exhausted', 'clusters', 'silent', 'snapshot_overdue', 'critical_alerts'];
  const answers = await Promise.all(names.map((n) => api.query(qs[n], now)));
  const r = Object.fromEntries(names.map((n, i) => [n, answers[i].data.result]));
  const rangeSec = parseDuration(d.trend.range), step = parseDuration(d.trend.step);
  const end = Math.floor(now / step) * step;
  const trend = await api.range(qs.trend, end - rangeSec, end, step);

  const total = byRegionSlo(r.slo_clusters), within = byRegionSlo(r.slo_within);
  const burning = byRegionSlo(r.slo_burning), exhausted = byRegionSlo(r.slo_exhausted);
  const counts = Object.fromEntries(['clusters', 'silent', 'snapshot_overdue', 'critical_alerts'].map((n) => [n, byLabel(r[n], 'region')]));
  const regions = [...new Set([...Object.keys(total), ...counts.clusters.keys()])].sort();

  root.append(h('h1', {}, 'etcd fleet'),
    h('p', { class: 'muted' }, 'Share of clusters within their 30-day error budget, per region and SLO. Choose a tile to see the region\'s scenarios and clusters.'));
  if (!regions.length) {
    root.append(h('div', { class: 'error' }, 'No fleet roll-ups found: load deploy/rules (fleet-rollups.yml and the SLO rules) so that region:etcd_slo_clusters:count and friends are recorded.'));
    return;
  }
  const box = h('div', { class: 'regions' });
  root.append(box);
  const { xs, ys } = align(trend.data.result, end - rangeSec, end, step);
  for (const region of regions) {
    const c = (n) => counts[n].get(region) ?? 0;
    const counter = (label, v, bad) => h('span', { class: bad && v > 0 ? 'nz' : '' }, h('b', {}, fmt(v, 'short')), ' ', label);
    const card = h('section', { class: 'region', 'data-region': region },
      h('div', { class: 'region-head' },
        h('a', { href: `/ui/scenario?region=${encodeURIComponent(region)}` }, region),
        h('div', { class: 'counters' },
          counter('clusters', c('clusters')),
          counter('critical alerts firing', c('critical_alerts'), true),
          counter('snapshots overdue', c('snapshot_overdue'), true),
          counter('silent 5 min', c('silent'), true))));
    const tiles = h('div', { class: 'tiles' });
    const slos = [...new Set([...(d.slos || []), ...Object.keys(total[region] || {})])];
    for (const slo of slos) {
      const n = total[region]?.[slo];
      if (n === undefined) continue;
      const w = within[region]?.[slo] ?? 0;
      const share = n > 0 ? w / n : NaN;
      const cls = !(share >= 0) ? '' : share >= d.thresholds.ok ? 'ok' : share >= d.thresholds.degraded ? 'degraded' : 'failing';
      const spark = h('div', { class: 'spark' });
      const tile = h('a', {
        class: 'tile ' + cls, href: `/ui/scenario?region=${encodeURIComponent(region)}&slo=${encodeURIComponent(slo)}`,
        'data-slo': slo, 'data-share': String(share), 'data-within': String(w), 'data-total': String(n),
      },
      h('div', { class: 'slo' }, slo),
      h('div', { class: 'share' }, fmt(share, 'percentunit')),
      h('div', { class: 'detail' }, `${w} of ${n} within budget`),
      h('div', { class: 'detail' },
        h('span', { class: (burning[region]?.[slo] ?? 0) > 0 ? 'bad' : '' }, `${burning[region]?.[slo] ?? 0} burning fast`), ' · ',
        h('span', { class: (exhausted[region]?.[slo] ?? 0) > 0 ? 'bad' : '' }, `${exhausted[region]?.[slo] ?? 0} exhausted`)),
      spark);
      tiles.append(tile);
      const idx = trend.data.result.findIndex((s) => s.metric.region === region && s.metric.slo === slo);
      if (idx >= 0) {
        const col = getComputedStyle(document.documentElement).getPropertyValue(cls === 'failing' ? '--bad' : cls === 'degraded' ? '--warn' : '--good').trim();
        sparkline(spark, xs, ys[idx], { width: 176, height: 34, color: col, range: [0, 1] });
      }
    }
    card.append(tiles);
    box.append(card);
  }
}
