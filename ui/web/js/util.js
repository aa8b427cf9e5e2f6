// util.js - small helpers shared by every page: building DOM nodes (no
// innerHTML, so nothing from the API is ever parsed as markup), number and
// duration formatting by unit, PromQL label quoting and the URL state.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A PromQL string literal for a label value.
export function q(v) {
  return '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

// A selector body from {name: value}, skipping empty values.
export function sel(labels) {
  return Object.entries(labels).filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${k}=${q(v)}`).join(', ');
}

// Prometheus durations: 1h, 30m, 7d, 1h30m.
const DUR = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
export function parseDuration(s) {
  if (!s) return NaN;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/g;
  let total = 0, m, used = 0;
  while ((m = re.exec(s)) !== null) { total += parseFloat(m[1]) * DUR[m[2]]; used += m[0].length; }
  return used === s.length && used > 0 ? total : NaN;
}

export function fmtDuration(sec) {
  if (!isFinite(sec)) return sec > 0 ? '∞' : '–';
  const neg = sec < 0; sec = Math.abs(sec);
  const p3 = (v) => String(Number(v.toPrecision(3)));
  let out;
  if (sec === 0) out = '0s';
  else if (sec < 0.001) out = p3(sec * 1e6) + 'µs';
  else if (sec < 1) out = p3(sec * 1000) + 'ms';
  else if (sec < 60) out = p3(sec) + 's';
  else if (sec < 3600) out = Math.floor(sec / 60) + 'm' + (Math.round(sec % 60) ? Math.round(sec % 60) + 's' : '');
  else if (sec < 86400) out = Math.floor(sec / 3600) + 'h' + (Math.floor(sec % 3600 / 60) ? Math.floor(sec % 3600 / 60) + 'm' : '');
  else out = Math.floor(sec / 86400) + 'd' + (Math.floor(sec % 86400 / 3600) ? Math.floor(sec % 86400 / 3600) + 'h' : '');
  return (neg ? '-' : '') + out;
}

function sig(v, digits = 3) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e15 || a < 1e-4) return v.toExponential(2);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(Number(v.toPrecision(digits)));
}

function scaled(v, base, units) {
  let i = 0, a = Math.abs(v);
  while (a >= base && i < units.length - 1) { a /= base; v /= base; i++; }
  return sig(v) + units[i];
}

// Formats a value for a unit as dashboards name them (Grafana's names).
export function fmt(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (!isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  switch (unit) {
    case 'percentunit': return sig(v * 100) + '%';
    case 'percent': return sig(v) + '%';
    case 's': return fmtDuration(v);
    case 'bytes': return scaled(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']);
    case 'ops': case 'reqps': return sig(v) + '/s';
    case 'short': return scaled(v, 1000, ['', 'k', 'M', 'G', 'T']);
    default: return sig(v);
  }
}

export function fmtTime(sec) {
  const d = new Date(sec * 1000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// Renders {{label}} templates of a legend; without a template, the label set.
export function legend(metric, tmpl) {
  if (tmpl) return tmpl.replace(/\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g, (_, k) => metric[k] ?? '');
  return metricName(metric);
}

export function metricName(metric) {
  const name = metric.__name__ || '';
  const rest = Object.entries(metric).filter(([k]) => k !== '__name__')
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
  return rest ? `${name}{${rest}}` : (name || '{}');
}

// URL state: read and write the page's query string without reloading.
export function params() {
  return new URLSearchParams(location.search);
}

export function setParams(updates, push = false) {
  const p = params();
  for (const [k, v] of Object.entries(updates)) {
    if (v === undefined || v === null || v === '') p.delete(k); else p.set(k, v);
  }
  const qs = p.toString();
  const url = location.pathname + (qs ? '?' + qs : '');
  if (url !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', url);
}

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
