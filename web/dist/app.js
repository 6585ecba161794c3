// Sluice token-usage dashboard. Vanilla ES module, no dependencies, no
// build step. Every value that comes from the API is rendered with
// textContent or SVG attributes, never as HTML.

const KEY_STORAGE = 'sluice.adminKey';
const REFRESH_MS = 30_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const SVG_NS = 'http://www.w3.org/2000/svg';
const REQ_PAGE = 50; // rows per page of the request log
const STATUSES = ['ok', 'error', 'client_cancelled', 'stream_broken'];

const RANGES = {
  '24h': { group: 'hour', step: HOUR, buckets: 24, title: 'Tokens per hour (last 24 h)' },
  '7d': { group: 'day', step: DAY, buckets: 7, title: 'Tokens per day (last 7 days, UTC)' },
  '30d': { group: 'day', step: DAY, buckets: 30, title: 'Tokens per day (last 30 days, UTC)' },
};

const state = {
  range: '24h',
  timer: 0,
  lastLoad: 0,
  loading: null,
  again: false,
  last: null, // the last data rendered, to redraw the chart on resize
  resizeTimer: 0,
  // The request log: its filter and page survive refreshes; range is the
  // window of the last full load, so paging stays within it.
  req: { status: '', page: 1, total: 0, range: null, seq: 0 },
};

// --- formatting -----------------------------------------------------------

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const pctFmt = new Intl.NumberFormat(undefined, { style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 2 });
const usd = (min, max) => new Intl.NumberFormat(undefined, {
  style: 'currency', currency: 'USD', minimumFractionDigits: min, maximumFractionDigits: max,
});
const usd2 = usd(2, 2);
const usd4 = usd(4, 4);
const usd6 = usd(4, 6);
const hourFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const fullDayFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeZone: 'UTC' });
const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });
const rowTimeFmt = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const fracFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const secFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

const num = (v) => intFmt.format(Number(v) || 0);

/** Formats a USD amount: 2 decimals from $1, 4 from 1¢, up to 6 below. */
function cost(v) {
  const x = Number(v) || 0;
  if (x === 0) return usd2.format(0);
  const a = Math.abs(x);
  if (a >= 1) return usd2.format(x);
  if (a >= 0.01) return usd4.format(x);
  return usd6.format(x);
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** The USD cost of a usage row or request, from its integer micro-USD. */
const costUSD = (r) => (isNum(r.cost_micros) ? r.cost_micros / 1e6 : Number(r.cost) || 0);

/** Formats milliseconds for a table cell: one decimal below 100 ms. */
function msCell(v) {
  if (!isNum(v)) return '–';
  return v < 100 ? fracFmt.format(v) : intFmt.format(v);
}

/** Formats a duration in ms for a KPI: "412 ms" below a second, else "1.24 s". */
function dur(v) {
  if (!isNum(v)) return '–';
  return v < 1000 ? `${intFmt.format(v)} ms` : `${secFmt.format(v / 1000)} s`;
}

/** Formats two durations in the larger one's unit: "120 / 480 ms", "0.42 / 1.20 s". */
function durPair(a, b) {
  if (!isNum(a) || !isNum(b)) return '–';
  if (b < 1000) return `${intFmt.format(a)} / ${intFmt.format(b)} ms`;
  return `${secFmt.format(a / 1000)} / ${secFmt.format(b / 1000)} s`;
}

function rate(errors, requests) {
  return requests > 0 ? pctFmt.format(errors / requests) : '–';
}

// --- DOM helpers ----------------------------------------------------------

const $ = (sel) => document.querySelector(sel);

/** Creates an HTML element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else n.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

/** Creates an SVG element with attributes. */
function svg(tag, attrs = {}) {
  const n = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  return n;
}

// --- API ------------------------------------------------------------------

class AuthError extends Error {
  constructor() { super('invalid admin key'); this.name = 'AuthError'; }
}

function adminKey() {
  try { return sessionStorage.getItem(KEY_STORAGE) || ''; } catch { return ''; }
}

function setAdminKey(k) {
  try {
    if (k) sessionStorage.setItem(KEY_STORAGE, k);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lives only in this page */ }
}

async function api(path, params = {}) {
  const key = adminKey();
  if (!key) throw new AuthError();
  const qs = new URLSearchParams(params).toString();
  const res = await fetch(qs ? `${path}?${qs}` : path, {
    headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
    referrerPolicy: 'no-referrer',
  });
  if (res.status === 401) throw new AuthError();
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`.trim();
    try {
      const body = await res.json();
      if (body && body.error && typeof body.error.message === 'string') msg = body.error.message;
    } catch { /* not JSON */ }
    throw new Error(`${path}: ${msg}`);
  }
  return res.json();
}

/** Returns the bucket-aligned window for the selected range. */
function window_(rangeName, now = Date.now()) {
  const r = RANGES[rangeName];
  const last = Math.floor(now / r.step) * r.step; // start of the current bucket
  const from = last - (r.buckets - 1) * r.step;
  const starts = [];
  for (let t = from; t <= last; t += r.step) starts.push(t);
  return { ...r, from, to: now, starts };
}

/** Fetches the current page of the request log within range. */
function fetchRequests(range) {
  const params = { ...range, page: String(state.req.page), page_size: String(REQ_PAGE) };
  if (state.req.status) params.status = state.req.status;
  return api('/admin/requests', params);
}

async function load() {
  const w = window_(state.range);
  const range = { from: String(Math.floor(w.from / 1000)), to: String(Math.ceil(w.to / 1000) + 1) };
  state.req.range = range;
  const reqSeq = ++state.req.seq;
  const [series, byModel, byKey, byProvider, keys, health, summary, requests] = await Promise.all([
    api('/admin/usage', { group_by: w.group, ...range }),
    api('/admin/usage', { group_by: 'model', ...range }),
    api('/admin/usage', { group_by: 'key', ...range }),
    api('/admin/usage', { group_by: 'provider', ...range }),
    api('/admin/keys', { page_size: '500' }),
    api('/admin/health'),
    api('/admin/usage/summary', range),
    fetchRequests(range),
  ]);
  return {
    w, series: items(series), byModel: items(byModel), byKey: items(byKey), byProvider: items(byProvider), keys: items(keys),
    health: items(health), summary: summary || {}, requests, reqSeq,
  };
}

const items = (body) => (body && Array.isArray(body.items) ? body.items : []);

// --- rendering --------------------------------------------------------------

function renderKPIs(rows) {
  const t = rows.reduce((a, r) => {
    a.requests += Number(r.requests) || 0;
    a.input += Number(r.prompt_tokens) || 0;
    a.output += Number(r.completion_tokens) || 0;
    a.cached += Number(r.cached_tokens) || 0;
    a.cacheWrite += Number(r.cache_write_tokens) || 0;
    a.reasoning += Number(r.reasoning_tokens) || 0;
    a.micros += isNum(r.cost_micros) ? r.cost_micros : Math.round((Number(r.cost) || 0) * 1e6);
    a.errors += Number(r.errors) || 0;
    a.clamped += Number(r.clamped) || 0;
    return a;
  }, { requests: 0, input: 0, output: 0, cached: 0, cacheWrite: 0, reasoning: 0, micros: 0, errors: 0, clamped: 0 });
  t.cost = t.micros / 1e6;
  const set = (id, value, sub) => {
    $(`#${id} .value`).textContent = value;
    $(`#${id} .sub`).textContent = sub;
  };
  set('kpi-requests', num(t.requests), `${num(t.requests - t.errors)} succeeded`);
  const cache = [t.cached ? `${num(t.cached)} cached` : '', t.cacheWrite ? `${num(t.cacheWrite)} cache writes` : ''].filter(Boolean);
  set('kpi-input', num(t.input), cache.length ? cache.join(' · ') : 'prompt tokens');
  set('kpi-output', num(t.output), t.reasoning ? `${num(t.reasoning)} reasoning` : 'completion tokens');
  set('kpi-cost', cost(t.cost), t.requests ? `${cost(t.cost / t.requests)} per request` : 'no requests');
  set('kpi-errors', rate(t.errors, t.requests),
    `${num(t.errors)} failed` + (t.clamped ? ` · ${num(t.clamped)} with impossible usage clamped` : ''));
  $('#kpi-errors').classList.toggle('bad', t.errors > 0);
}

function renderLatency(s) {
  const set = (id, value, sub) => {
    $(`#${id} .value`).textContent = value;
    $(`#${id} .sub`).textContent = sub;
  };
  const n = Number(s.requests) || 0;
  set('kpi-latency', durPair(s.latency_p50_ms, s.latency_p95_ms),
    n ? `p99 ${dur(s.latency_p99_ms)} · ${num(n)} requests` : 'no requests');
  const streamed = Number(s.ttft_requests) || 0;
  set('kpi-ttft', dur(s.ttft_p95_ms),
    streamed ? `p50 ${dur(s.ttft_p50_ms)} · ${num(streamed)} streamed` : 'no streamed requests');
}

/** Picks a "nice" axis maximum and tick step at or above max. */
function niceScale(max, ticks = 4) {
  if (!(max > 0)) return { top: ticks, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  return { top: step * ticks, step };
}

function renderChart(w, rows) {
  const box = $('#chart');
  $('#chart-title').textContent = w.title;
  const byStart = new Map();
  for (const r of rows) {
    const t = Date.parse(r.group);
    if (!Number.isNaN(t)) byStart.set(t, r);
  }
  const data = w.starts.map((t) => {
    const r = byStart.get(t) || {};
    return { t, input: Number(r.prompt_tokens) || 0, output: Number(r.completion_tokens) || 0, requests: Number(r.requests) || 0 };
  });
  const max = Math.max(0, ...data.map((d) => d.input + d.output));
  const { top, step } = niceScale(max);

  // Draw at the container's pixel width so text keeps its size on any screen.
  const W = Math.max(280, Math.round(box.clientWidth) || 960);
  const H = W < 600 ? 220 : 280;
  const padL = 48, padR = 8, padT = 12, padB = 30;
  const iw = W - padL - padR, ih = H - padT - padB;
  const y = (v) => padT + ih - (v / top) * ih;
  const slot = iw / data.length;
  const bw = Math.max(2, Math.min(40, slot * 0.7));
  const labelWidth = w.group === 'hour' ? 64 : 52;

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': w.title });
  root.classList.add('chart-svg');

  for (let v = 0; v <= top + step / 2; v += step) {
    const gy = y(v);
    root.append(svg('line', { x1: padL, x2: W - padR, y1: gy, y2: gy, class: v === 0 ? 'axis' : 'grid' }));
    const label = svg('text', { x: padL - 8, y: gy + 4, 'text-anchor': 'end', class: 'tick' });
    label.textContent = compactFmt.format(v);
    root.append(label);
  }

  const every = Math.max(1, Math.ceil(labelWidth / slot));
  data.forEach((d, i) => {
    const cx = padL + slot * i + slot / 2;
    const x = cx - bw / 2;
    const g = svg('g', { class: 'bucket' });
    const tip = svg('title');
    const when = w.group === 'hour' ? fullFmt.format(d.t) : fullDayFmt.format(d.t);
    tip.textContent = `${when}\nInput: ${num(d.input)}\nOutput: ${num(d.output)}\nRequests: ${num(d.requests)}`;
    g.append(tip);
    // A transparent full-height target makes the tooltip easy to reach.
    g.append(svg('rect', { x: padL + slot * i, y: padT, width: slot, height: ih, class: 'hit' }));
    if (d.input > 0) {
      g.append(svg('rect', { x, y: y(d.input), width: bw, height: y(0) - y(d.input), class: 'bar bar-in' }));
    }
    if (d.output > 0) {
      g.append(svg('rect', { x, y: y(d.input + d.output), width: bw, height: y(d.input) - y(d.input + d.output), class: 'bar bar-out' }));
    }
    root.append(g);
    if ((data.length - 1 - i) % every === 0) {
      const label = svg('text', { x: cx, y: H - 10, 'text-anchor': 'middle', class: 'tick' });
      label.textContent = w.group === 'hour' ? hourFmt.format(d.t) : dayFmt.format(d.t);
      root.append(label);
    }
  });

  const nodes = [root];
  if (max === 0) nodes.push(el('p', { class: 'empty chart-empty' }, 'No tokens in this range.'));
  box.replaceChildren(...nodes);
}

const byCostDesc = (a, b) => costUSD(b) - costUSD(a)
  || (Number(b.requests) || 0) - (Number(a.requests) || 0)
  || String(a.group).localeCompare(String(b.group));

/**
 * Renders a table. columns: [{ label, value(row) -> string|Node, num?: bool, cls?(row) }].
 */
function renderTable(table, columns, rows, emptyText) {
  const head = el('thead', {}, el('tr', {}, ...columns.map((c) => el('th', { class: c.num ? 'num' : undefined, scope: 'col' }, c.label))));
  const body = el('tbody');
  if (rows.length === 0) {
    body.append(el('tr', { class: 'empty-row' }, el('td', { colspan: columns.length, class: 'empty' }, emptyText)));
  }
  for (const r of rows) {
    body.append(el('tr', {}, ...columns.map((c) => el('td', { class: [c.num ? 'num' : '', c.cls ? c.cls(r) : ''].join(' ').trim() || undefined }, c.value(r)))));
  }
  table.replaceChildren(head, body);
}

const usageColumns = (first) => [
  first,
  { label: 'Requests', num: true, value: (r) => num(r.requests) },
  { label: 'Input tokens', num: true, value: (r) => num(r.prompt_tokens) },
  { label: 'Output tokens', num: true, value: (r) => num(r.completion_tokens) },
  { label: 'Cost', num: true, value: (r) => cost(costUSD(r)) },
  { label: 'Errors', num: true, value: (r) => num(r.errors), cls: (r) => (Number(r.errors) > 0 ? 'bad' : '') },
];

const orDash = (s) => (s === undefined || s === null || s === '' ? '–' : String(s));

function renderTables(d) {
  renderTable($('#by-model'), usageColumns({ label: 'Model', value: (r) => orDash(r.group) }),
    [...d.byModel].sort(byCostDesc), 'No usage in this range.');
  renderTable($('#by-provider'), usageColumns({ label: 'Provider', value: (r) => orDash(r.group) }),
    [...d.byProvider].sort(byCostDesc), 'No usage in this range.');

  const keys = new Map(d.keys.map((k) => [k.id, k]));
  const keyCell = (r) => {
    const k = keys.get(r.group);
    if (!r.group) return el('span', { class: 'muted' }, 'no key');
    if (!k) return el('span', { class: 'muted', title: String(r.group) }, 'deleted key');
    return el('span', { class: 'keyname', title: k.owner ? `owner ${k.owner}` : undefined }, orDash(k.name), ' ', el('code', { class: 'prefix' }, orDash(k.prefix)),
      k.revoked_at ? el('span', { class: 'badge badge-off' }, 'revoked') : null,
      !k.revoked_at && k.disabled ? el('span', { class: 'badge badge-off' }, 'disabled') : null);
  };
  renderTable($('#by-key'), usageColumns({ label: 'Key', value: keyCell }),
    [...d.byKey].sort(byCostDesc), 'No usage in this range.');

  const health = [...d.health].sort((a, b) => String(a.model).localeCompare(String(b.model))
    || String(a.deployment).localeCompare(String(b.deployment)));
  renderTable($('#health'), [
    { label: 'Model', value: (r) => orDash(r.model) },
    { label: 'Provider', value: (r) => orDash(r.provider) },
    { label: 'Upstream model', value: (r) => orDash(r.upstream_model) },
    { label: 'Deployment', value: (r) => el('code', {}, orDash(r.deployment)) },
    { label: 'Status', value: (r) => (r.healthy
      ? el('span', { class: 'badge badge-ok' }, 'healthy')
      : el('span', { class: 'badge badge-bad' }, HEALTH_STATE[r.state] || 'unavailable')) },
    { label: 'In flight', num: true, value: (r) => num(r.in_flight) },
    { label: 'Successes', num: true, value: (r) => num(r.successes) },
    { label: 'Failures', num: true, value: (r) => num(r.failures), cls: (r) => (Number(r.failures) > 0 ? 'bad' : '') },
    { label: 'Cooldown until', value: (r) => {
      const t = r.cooldown_until ? Date.parse(r.cooldown_until) : NaN;
      return Number.isNaN(t) ? '–' : fullFmt.format(t);
    } },
  ], health, 'No deployments configured.');
}

const HEALTH_STATE = { cooling: 'cooling down', ejected: 'ejected', credential_dead: 'credential rejected' };

const STATUS_BADGE = { ok: 'badge-ok', error: 'badge-bad', stream_broken: 'badge-warn', client_cancelled: 'badge-off' };

function statusBadge(r) {
  const st = String(r.status || '');
  return el('span', { class: `badge ${STATUS_BADGE[st] || 'badge-off'}`, title: r.error_type ? String(r.error_type) : undefined }, orDash(st));
}

function renderRequests(body) {
  const rows = items(body);
  const total = Math.max(0, Number(body && body.total) || 0);
  const page = state.req.page;
  if (rows.length === 0 && total > 0 && page > 1) {
    // The range shrank under the current page: go to the last one.
    state.req.page = Math.max(1, Math.ceil(total / REQ_PAGE));
    loadRequests();
    return;
  }
  state.req.total = total;
  const keys = state.last ? new Map(state.last.keys.map((k) => [k.id, k])) : new Map();
  renderTable($('#requests'), [
    { label: 'Time', value: (r) => {
      const t = Date.parse(r.time);
      const ids = `request id ${orDash(r.request_id)}` + (r.client_request_id ? `\nclient X-Request-Id ${r.client_request_id}` : '');
      return el('span', { title: ids }, Number.isNaN(t) ? '–' : rowTimeFmt.format(t));
    } },
    { label: 'Key', value: (r) => {
      if (!r.key_prefix) return el('span', { class: 'muted' }, 'no key');
      const k = keys.get(r.key_id);
      return el('code', { class: 'prefix', title: k ? String(k.name) : undefined }, String(r.key_prefix));
    } },
    { label: 'Model', value: (r) => orDash(r.model) },
    { label: 'Provider', value: (r) => orDash(r.provider) },
    { label: 'Status', value: (r) => (r.clamped
      ? el('span', {}, statusBadge(r), ' ', el('span', { class: 'badge badge-warn', title: 'the upstream reported impossible usage; bounded figures were stored' }, 'clamped'))
      : statusBadge(r)) },
    { label: 'HTTP', num: true, value: (r) => orDash(r.http_status), cls: (r) => (Number(r.http_status) >= 400 ? 'bad' : '') },
    { label: 'Tokens in', num: true, value: (r) => num(r.prompt_tokens) },
    { label: 'Tokens out', num: true, value: (r) => num(r.completion_tokens) },
    { label: 'Cost', num: true, value: (r) => cost(costUSD(r)) },
    { label: 'Latency ms', num: true, value: (r) => msCell(r.latency_ms) },
    { label: 'TTFT ms', num: true, value: (r) => (r.stream && Number(r.ttft_ms) > 0 ? msCell(r.ttft_ms) : '–') },
    { label: 'Stream', value: (r) => (r.stream ? 'yes' : 'no') },
  ], rows, state.req.status ? `No ${state.req.status} requests in this range.` : 'No requests in this range.');
  const first = (page - 1) * REQ_PAGE;
  $('#req-info').textContent = total === 0 ? '0 requests'
    : `${num(Math.min(first + 1, total))}–${num(Math.min(first + rows.length, total))} of ${num(total)}`;
  $('#req-prev').disabled = page <= 1;
  $('#req-next').disabled = first + rows.length >= total;
  $('#requests').dataset.page = String(page);
}

/** Reloads only the request log (filter or page change). */
async function loadRequests() {
  if (!state.req.range) return;
  const seq = ++state.req.seq;
  document.body.dataset.reqLoading = 'true';
  try {
    const body = await fetchRequests(state.req.range);
    if (seq === state.req.seq) renderRequests(body);
  } catch (e) {
    if (e instanceof AuthError) showLogin('The admin key was rejected. Sign in again.');
    else if (seq === state.req.seq) banner(`Could not load requests: ${e && e.message ? e.message : e}`);
  } finally {
    if (seq === state.req.seq) delete document.body.dataset.reqLoading;
  }
}

function render(d) {
  state.last = d;
  renderKPIs(d.series);
  renderLatency(d.summary);
  renderChart(d.w, d.series);
  renderTables(d);
  // A filter or page change since this load started has newer rows.
  if (d.reqSeq === state.req.seq) renderRequests(d.requests);
}

// --- views and flow ---------------------------------------------------------

function showLogin(message) {
  stopTimer();
  setAdminKey('');
  $('#dash').hidden = true;
  $('#controls').hidden = true;
  $('#login').hidden = false;
  const err = $('#login-error');
  err.textContent = message || '';
  err.hidden = !message;
  document.body.dataset.view = 'login';
  const input = $('#admin-key');
  input.value = '';
  input.focus();
}

function showDash() {
  $('#login').hidden = true;
  $('#dash').hidden = false;
  $('#controls').hidden = false;
  document.body.dataset.view = 'dash';
}

function banner(msg) {
  const b = $('#banner');
  b.textContent = msg || '';
  b.hidden = !msg;
}

/** Loads and renders; resolves to false when the key was rejected. */
async function refresh() {
  if (state.loading) {
    // A range change during a load must not be lost: load again after.
    state.again = true;
    return state.loading;
  }
  document.body.dataset.loading = 'true';
  state.loading = (async () => {
    try {
      const d = await load();
      render(d);
      banner('');
      state.lastLoad = Date.now();
      $('#updated').textContent = `Updated ${timeFmt.format(state.lastLoad)}`;
      document.body.dataset.loaded = String(state.lastLoad);
      return true;
    } catch (e) {
      if (e instanceof AuthError) {
        showLogin('The admin key was rejected. Sign in again.');
        return false;
      }
      banner(`Could not load usage: ${e && e.message ? e.message : e}`);
      return true;
    } finally {
      state.loading = null;
      delete document.body.dataset.loading;
      if (state.again) {
        state.again = false;
        if (adminKey()) setTimeout(refresh, 0);
      }
    }
  })();
  return state.loading;
}

function startTimer() {
  stopTimer();
  state.timer = setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
}

function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = 0;
}

async function signIn(key) {
  setAdminKey(key);
  showDash();
  if (await refresh()) startTimer();
}

function selectRange(name) {
  if (!RANGES[name] || name === state.range) return;
  state.range = name;
  state.req.page = 1;
  for (const b of document.querySelectorAll('[data-range]')) {
    b.setAttribute('aria-pressed', String(b.dataset.range === name));
  }
  refresh();
}

function init() {
  $('#login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('#admin-key');
    const key = input.value;
    input.value = '';
    if (!key) return;
    const btn = $('#login-submit');
    btn.disabled = true;
    try {
      await signIn(key);
    } finally {
      btn.disabled = false;
    }
  });
  $('#signout').addEventListener('click', () => showLogin(''));
  $('#refresh').addEventListener('click', () => refresh());
  $('#req-status').addEventListener('change', (ev) => {
    const v = ev.target.value;
    state.req.status = STATUSES.includes(v) ? v : '';
    state.req.page = 1;
    loadRequests();
  });
  $('#req-prev').addEventListener('click', () => {
    if (state.req.page <= 1) return;
    state.req.page -= 1;
    loadRequests();
  });
  $('#req-next').addEventListener('click', () => {
    if (state.req.page * REQ_PAGE >= state.req.total) return;
    state.req.page += 1;
    loadRequests();
  });
  for (const b of document.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => selectRange(b.dataset.range));
  }
  window.addEventListener('resize', () => {
    clearTimeout(state.resizeTimer);
    state.resizeTimer = setTimeout(() => {
      if (state.last && !$('#dash').hidden) renderChart(state.last.w, state.last.series);
    }, 150);
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.timer && Date.now() - state.lastLoad >= REFRESH_MS) refresh();
  });

  const key = adminKey();
  if (key) signIn(key);
  else showLogin('');
}

init();
