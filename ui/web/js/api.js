// api.js - the UI's only way to the server: same-origin requests to rwgate's
// Prometheus-compatible API (so with authentication on, the browser sends
// the credentials it already used for the page). Queries go as form POSTs
// (long expressions do not hit URL limits); every answer is checked for
// Prometheus' {"status":"error"} shape and turned into an ApiError.

export class ApiError extends Error {
  constructor(message, status, type) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

function encode(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => p.append(k, x));
    else p.append(k, String(v));
  }
  return p;
}

async function call(path, params, post) {
  const body = encode(params);
  const opts = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
  let url = path;
  if (post) {
    opts.method = 'POST';
    opts.body = body;
  } else if ([...body.keys()].length) {
    url += '?' + body.toString();
  }
  const t0 = performance.now();
  let r;
  try {
    r = await fetch(url, opts);
  } catch (e) {
    throw new ApiError(`cannot reach rwgate: ${e.message}`, 0, 'network');
  }
  const text = await r.text();
  let j;
  try {
    j = JSON.parse(text);
  } catch {
    if (r.status === 404) throw new ApiError(`this rwgate does not serve ${path} (not in this version or build)`, 404, 'not_found');
    throw new ApiError(`${path}: HTTP ${r.status}: ${text.trim().slice(0, 300)}`, r.status, 'http');
  }
  if (j.status !== 'success') throw new ApiError(j.error || `HTTP ${r.status}`, r.status, j.errorType);
  return { data: j.data, warnings: j.warnings || [], ms: performance.now() - t0, bytes: text.length };
}

export const api = {
  get: (path, params) => call(path, params, false),
  query: (query, time) => call('/api/v1/query', { query, time }, true),
  range: (query, start, end, step) => call('/api/v1/query_range', { query, start, end, step }, true),
  labels: (match) => call('/api/v1/labels', { 'match[]': match }, false),
  values: (name, match) => call(`/api/v1/label/${encodeURIComponent(name)}/values`, { 'match[]': match }, false),
  series: (match, start, end) => call('/api/v1/series', { 'match[]': match, start, end }, true),
  metadata: () => call('/api/v1/metadata', {}, false),
};

// A step that gives about `points` points over the range, rounded to a
// readable size and never below the resolution the data is scraped at.
export function stepFor(rangeSec, points = 240) {
  const raw = rangeSec / points;
  const nice = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  for (const s of nice) if (s >= raw) return s;
  return Math.ceil(raw / 86400) * 86400;
}

// Instant vector answer -> Map key(label) -> value (numbers), e.g. by cluster.
export function byLabel(result, label) {
  const m = new Map();
  for (const s of result) m.set(s.metric[label] ?? '', parseFloat(s.value[1]));
  return m;
}
