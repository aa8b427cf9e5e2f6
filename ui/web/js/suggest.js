// suggest.js - suggestions while typing PromQL: metric names (from
// /api/v1/label/__name__/values), label names of the metric being selected
// (/api/v1/labels with match[]), label values (/api/v1/label/NAME/values),
// functions, aggregations and keywords. A small list under the textarea,
// driven by the keyboard (up, down, Tab/Enter to take, Escape to close).
import { api } from './api.js';
import { h, clear, debounce } from './util.js';

const FUNCTIONS = ('abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp ' +
  'clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv ' +
  'exp floor histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev histogram_stdvar ' +
  'histogram_sum holt_winters double_exponential_smoothing hour idelta increase irate label_join label_replace ln ' +
  'log10 log2 last_over_time mad_over_time max_over_time min_over_time minute month pi predict_linear ' +
  'present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_by_label ' +
  'sort_by_label_desc sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year')
  .split(' ');
const AGGREGATIONS = 'sum avg min max count group stddev stdvar topk bottomk quantile count_values limitk limit_ratio'.split(' ');
const KEYWORDS = 'by without on ignoring group_left group_right bool offset and or unless'.split(' ');

let metricNames = null;
async function metrics() {
  if (!metricNames) {
    try { metricNames = (await api.values('__name__')).data; } catch { metricNames = []; }
  }
  return metricNames;
}

// What the cursor is in: a label value, a label name inside braces, or a name.
function context(text, pos) {
  const before = text.slice(0, pos);
  const open = before.lastIndexOf('{'), close = before.lastIndexOf('}');
  if (open > close) {
    const metric = (before.slice(0, open).match(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*$/) || [])[1] || '';
    const inner = before.slice(open + 1);
    const val = inner.match(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)$/);
    if (val) return { kind: 'value', metric, label: val[1], word: val[3] };
    const name = inner.match(/(?:^|[,{\s])([a-zA-Z_][a-zA-Z0-9_]*)?$/);
    return { kind: 'label', metric, word: name && name[1] ? name[1] : '' };
  }
  const w = before.match(/[a-zA-Z_:][a-zA-Z0-9_:]*$/);
  return { kind: 'name', word: w ? w[0] : '' };
}

export function attachSuggest(textarea, onRun) {
  const list = h('ul', { class: 'suggest', hidden: true, role: 'listbox' });
  textarea.parentElement.append(list);
  let items = [], sel = 0, ctx = null;

  const close = () => { list.hidden = true; items = []; };
  const show = () => {
    clear(list);
    items.slice(0, 50).forEach((it, i) => {
      list.append(h('li', {
        class: i === sel ? 'sel' : '', role: 'option',
        onmousedown: (e) => { e.preventDefault(); take(i); },
      }, it.text, it.kind ? h('small', {}, it.kind) : null));
    });
    list.hidden = items.length === 0;
  };
  const take = (i) => {
    const it = items[i];
    if (!it || !ctx) return;
    const pos = textarea.selectionStart;
    const start = pos - ctx.word.length;
    const insert = it.text + (ctx.kind === 'value' ? '"' : '');
    textarea.setRangeText(insert, start, pos, 'end');
    close();
    textarea.dispatchEvent(new Event('input'));
  };
  const update = debounce(async () => {
    ctx = context(textarea.value, textarea.selectionStart);
    const w = ctx.word.toLowerCase();
    let cands = [];
    try {
      if (ctx.kind === 'value') {
        const match = ctx.metric ? [ctx.metric] : undefined;
        cands = (await api.values(ctx.label, match)).data.map((t) => ({ text: t }));
      } else if (ctx.kind === 'label') {
        const match = ctx.metric ? [ctx.metric] : undefined;
        cands = (await api.labels(match)).data.filter((l) => l !== '__name__').map((t) => ({ text: t, kind: 'label' }));
      } else if (w.length >= 1) {
        cands = [
          ...(await metrics()).map((t) => ({ text: t, kind: 'metric' })),
          ...FUNCTIONS.map((t) => ({ text: t, kind: 'function' })),
          ...AGGREGATIONS.map((t) => ({ text: t, kind: 'aggregation' })),
          ...KEYWORDS.map((t) => ({ text: t, kind: 'keyword' })),
        ];
      }
    } catch { cands = []; }
    items = cands.filter((c) => c.text.toLowerCase().startsWith(w) && c.text !== ctx.word)
      .concat(w.length >= 2 ? cands.filter((c) => !c.text.toLowerCase().startsWith(w) && c.text.toLowerCase().includes(w)) : []);
    sel = 0;
    if (document.activeElement === textarea) show();
  }, 120);

  textarea.addEventListener('input', update);
  textarea.addEventListener('blur', () => setTimeout(close, 100));
  textarea.addEventListener('keydown', (e) => {
    if (!list.hidden && items.length) {
      if (e.key === 'ArrowDown') { sel = (sel + 1) % Math.min(items.length, 50); show(); e.preventDefault(); return; }
      if (e.key === 'ArrowUp') { sel = (sel + Math.min(items.length, 50) - 1) % Math.min(items.length, 50); show(); e.preventDefault(); return; }
      if (e.key === 'Tab' || e.key === 'Enter') { take(sel); e.preventDefault(); return; }
      if (e.key === 'Escape') { close(); e.preventDefault(); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); close(); onRun(); }
  });
}
