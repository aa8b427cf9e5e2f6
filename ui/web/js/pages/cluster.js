// cluster.js - /ui/cluster/NAME (level 3: one etcd cluster) and
// /ui/cluster/NAME/troubleshoot (etcd beside Kubernetes on one time axis,
// cursors synced across every chart, annotations for leader changes, alert
// firings, snapshot errors, ingest gaps and HA failovers). Both are
// dashboards from ui/dashboards (cluster.json, troubleshoot.json) with
// $cluster set; the time window is range=… and end=… in the URL.
import { loadDashboard, renderRows, window_, annotations } from '../dash.js';
import { h, params, setParams } from '../util.js';

const RANGES = ['1h', '2h', '6h', '12h', '1d', '2d', '7d'];

export async function render(root, ctx) {
  const [name, sub] = ctx.args;
  if (!name) throw new Error('no cluster named: use /ui/cluster/NAME');
  const troubleshoot = sub === 'troubleshoot';
  if (sub && !troubleshoot) throw new Error(`no view "${sub}" of a cluster`);
  const d = await loadDashboard(troubleshoot ? 'troubleshoot' : 'cluster');
  const p = params();
  const w = window_(p, d.range);
  const vars = { cluster: name };
  const base = `/ui/cluster/${encodeURIComponent(name)}`;
  root.append(h('div', { class: 'crumbs' }, h('a', { href: '/ui/fleet' }, 'fleet'), ' › ', troubleshoot ? h('a', { href: base }, name) : name,
    troubleshoot ? ' › troubleshoot' : ''));
  root.append(h('h1', {}, d.title.replaceAll('$cluster', name)));
  const rangeSel = h('select', { 'aria-label': 'range', onchange: () => { setParams({ range: rangeSel.value }, true); ctx.rerender(); } },
    [...new Set([...RANGES, w.range])].map((r) => h('option', { value: r, selected: r === w.range }, r)));
  root.append(h('div', { class: 'toolbar' }, h('label', {}, 'last'), rangeSel,
    troubleshoot ? h('a', { href: base + location.search }, 'cluster view')
      : h('a', { href: base + '/troubleshoot' + location.search, id: 'troubleshoot-link' }, 'troubleshoot: etcd beside Kubernetes')));
  let marks = [];
  if (d.annotations) {
    marks = await annotations(d.annotations, vars, w);
    root.append(h('div', { class: 'annot-key' }, d.annotations.map((a) => {
      const n = marks.filter((m) => m.name === a.name).length;
      const s = h('span', { 'data-annotation': a.name, 'data-count': String(n) }, `${a.name} (${n})`);
      s.style.color = a.color;
      return s;
    })));
  }
  await renderRows(root, d.rows, vars, w, { sync: troubleshoot ? 'troubleshoot' : null, annotations: marks });
}
