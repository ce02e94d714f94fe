// punctual-cron's dashboard: reads the JSON API (/api/...), listens to /api/events (server-sent
// events) to refresh within a second of a run starting or ending, and offers actions only when
// the daemon allows them (--http-admin) and this tab holds the token.
'use strict';

const state = { health: null, schedules: [], running: [], detail: null, runs: [], live: false };
let loadedAt = Date.now();  // when state.health was read
const tokenKey = 'punctual-cron-token';
const $ = (sel) => document.querySelector(sel);

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
function token() { return sessionStorage.getItem(tokenKey) || ''; }
function canAct() { return !!(state.health && state.health.admin && token()); }

async function api(path, options = {}) {
  const headers = { Accept: 'application/json' };
  if (options.method === 'POST') headers.Authorization = 'Bearer ' + token();
  const r = await fetch(path, { ...options, headers, cache: 'no-store' });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || r.status + ' ' + r.statusText);
  return body;
}

// ---- formatting ----
function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
function span(seconds) {
  if (seconds == null) return '–';
  const s = Math.abs(seconds);
  if (s < 1) return Math.round(seconds * 1000) + ' ms';
  if (s < 60) return seconds.toFixed(s < 10 ? 2 : 1) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}
function relative(iso) {
  if (!iso) return '';
  const secs = (new Date(iso) - Date.now()) / 1000;
  const s = Math.abs(secs);
  const text = s < 60 ? Math.round(s) + ' s' : s < 3600 ? Math.round(s / 60) + ' min' : s < 86400 ? Math.round(s / 3600) + ' h' : Math.round(s / 86400) + ' d';
  return secs >= 0 ? 'in ' + text : text + ' ago';
}
function outcome(o) { return o ? `<span class="outcome o-${esc(o)}">${esc(o)}</span>` : '–'; }
function exitText(r) {
  if (r.exit_code != null) return 'exit ' + r.exit_code;
  if (r.signal != null) return 'signal ' + r.signal;
  return '–';
}
const colours = { succeeded: '#2e9d57', failed: '#d64541', abandoned: '#d64541', timed_out: '#d64541', cancelled: '#e0a020', missed: '#e0a020', skipped: '#e0a020', running: '#3b7dd8', pending: '#3b7dd8' };
function strip(recent) {
  return '<div class="strip">' + recent.slice().reverse().map((r) =>
    `<a href="#/schedule/${encodeURIComponent(r.schedule || '')}" title="run ${r.job}: ${esc(r.outcome)}" style="background:${colours[r.outcome] || '#8a8f98'}"></a>`).join('') + '</div>';
}
function actionButtons(s) {
  if (!canAct()) return '';
  const b = (action, label) => `<button class="act" data-action="${action}" data-id="${esc(s.id)}">${label}</button>`;
  return b('trigger', 'run now') + (s.paused ? b('resume', 'resume') : b('pause', 'pause'));
}

// ---- views ----
function renderHealth() {
  const h = state.health;
  const el = $('#health');
  if (!h) return;
  el.className = 'banner ' + (h.healthy ? 'healthy' : 'unhealthy');
  const outcomes = Object.entries(h.outcomes).filter(([, n]) => n > 0).map(([k, n]) => `${outcome(k)} ${n}`).join(' ') || 'none yet';
  el.innerHTML = `<span class="state" data-healthy="${h.healthy}">${h.healthy ? 'healthy' : 'unhealthy'}</span>` +
    (h.healthy ? '' : `<span class="reason">${esc(h.reason || h.state)}</span>`) +
    `<span><span class="k">store</span> ${esc(h.store)}</span>` +
    `<span><span class="k">node</span> ${esc(h.node)}</span>` +
    `<span><span class="k">up</span> <span id="uptime">${span(h.uptime_seconds)}</span></span>` +
    `<span><span class="k">running</span> ${h.running}</span>` +
    `<span><span class="k">runs since start</span> ${outcomes}</span>` +
    `<span class="k">${h.admin ? (token() ? 'actions unlocked' : 'actions need the admin token') : 'read-only'}</span>`;
  $('#login').hidden = !h.admin || !!token();
  $('#logout').hidden = !h.admin || !token();
}

function runningTable() {
  if (state.running.length === 0) return '<div class="empty">No job is running.</div>';
  return '<table id="running"><thead><tr><th>schedule</th><th>run</th><th>fire time</th><th>started</th><th>running for</th><th>node</th><th>attempt</th><th></th></tr></thead><tbody>' +
    state.running.map((r) => `<tr data-job="${r.job}"><td><a href="#/schedule/${encodeURIComponent(r.schedule)}">${esc(r.schedule)}</a></td>` +
      `<td class="num">${r.job}</td><td>${when(r.fire_time)}</td><td>${when(r.started)}</td>` +
      `<td class="num elapsed" data-started="${esc(r.started)}">${span((Date.now() - new Date(r.started)) / 1000)}</td>` +
      `<td>${esc(r.node)}</td><td class="num">${r.attempt}</td>` +
      `<td>${canAct() ? `<button class="act" data-action="cancel" data-job="${r.job}">cancel</button>` : ''}</td></tr>`).join('') +
    '</tbody></table>';
}

function renderList() {
  const rows = state.schedules.map((s) => `<tr data-id="${esc(s.id)}">` +
    `<td><a href="#/schedule/${encodeURIComponent(s.id)}">${esc(s.id)}</a></td>` +
    `<td><code>${esc(s.trigger)}</code><div class="desc">${esc(s.description)}</div></td>` +
    `<td>${when(s.next_fire)}<div class="desc rel" data-at="${esc(s.next_fire || '')}">${relative(s.next_fire)}</div></td>` +
    `<td class="last">${outcome(s.last_outcome)}</td>` +
    `<td>${strip(s.recent.map((r) => ({ ...r, schedule: s.id })))}</td>` +
    `<td class="paused-cell">${s.quarantine ? '<span class="paused">quarantined</span>' : s.paused ? '<span class="paused">paused</span>' : 'no'}</td>` +
    `<td>${actionButtons(s)}</td></tr>`).join('');
  $('#view').innerHTML = '<h2>Running now</h2>' + runningTable() +
    `<h2>Schedules (${state.schedules.length})</h2>` +
    (state.schedules.length === 0 ? '<div class="empty">No schedules.</div>' :
      '<table id="schedules"><thead><tr><th>id</th><th>trigger</th><th>next fire</th><th>last outcome</th><th>last runs</th><th>paused</th><th></th></tr></thead><tbody>' + rows + '</tbody></table>');
}

function latenessChart(runs) {
  const points = runs.filter((r) => r.lateness_seconds != null).slice(0, 50).reverse();
  if (points.length === 0) return '<div class="empty">No started runs yet.</div>';
  const w = 720, h = 180, left = 56, bottom = 24, top = 10;
  const max = Math.max(...points.map((p) => p.lateness_seconds), 0.001);
  const bw = Math.min(24, (w - left - 10) / points.length);
  const y = (v) => top + (h - top - bottom) * (1 - v / max);
  const bars = points.map((p, i) => {
    const x = left + i * bw;
    return `<rect x="${(x + 1).toFixed(1)}" y="${y(p.lateness_seconds).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${(h - bottom - y(p.lateness_seconds)).toFixed(1)}" fill="${colours[p.outcome] || '#8a8f98'}"><title>run ${p.job} at ${esc(p.fire_time)}: ${span(p.lateness_seconds)} late</title></rect>`;
  }).join('');
  const ticks = [0, max / 2, max].map((v) => `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11" fill="#666">${span(v)}</text><line x1="${left}" x2="${w - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#e3e6ea"/>`).join('');
  return `<div class="chart"><svg id="lateness" width="${w}" height="${h}" role="img" aria-label="lateness of the last ${points.length} runs">${ticks}${bars}` +
    `<text x="${left}" y="${h - 6}" font-size="11" fill="#666">oldest</text><text x="${w - 10}" y="${h - 6}" font-size="11" fill="#666" text-anchor="end">newest — start minus fire time</text></svg></div>`;
}

function renderDetail() {
  const s = state.detail;
  if (!s) return;
  const runs = state.runs;
  $('#view').innerHTML = `<h2>Schedule <span id="detail-id">${esc(s.id)}</span> ${s.paused ? '<span class="paused">paused</span>' : ''} ${actionButtons(s)}</h2>` +
    `<dl class="opts"><dt>trigger</dt><dd><code>${esc(s.trigger)}</code></dd><dt>in words</dt><dd>${esc(s.description)}</dd>` +
    `<dt>command</dt><dd><code>${esc(s.command)}</code></dd><dt>options</dt><dd><code>${esc(s.options || '(defaults)')}</code></dd>` +
    `<dt>next fire</dt><dd>${when(s.next_fire)} <span class="desc">${relative(s.next_fire)}</span></dd>` +
    (s.quarantine ? `<dt>quarantined</dt><dd>${esc(s.quarantine)}</dd>` : '') + '</dl>' +
    `<h2>Next ${s.next_fires.length} fire times</h2><table id="next-fires"><tbody>` +
    s.next_fires.map((t, i) => `<tr><td class="num">${i + 1}</td><td>${when(t)}</td><td class="desc">${relative(t)}</td><td><code>${esc(t)}</code></td></tr>`).join('') + '</tbody></table>' +
    '<h2>Lateness (start minus fire time) of recent runs</h2>' + latenessChart(runs) +
    `<h2>Runs (${runs.length})</h2>` +
    (runs.length === 0 ? '<div class="empty">No runs yet.</div>' :
      '<table id="runs"><thead><tr><th>run</th><th>fire time</th><th>started</th><th>lateness</th><th>duration</th><th>outcome</th><th>exit</th><th>node</th><th>attempt</th><th>output / error</th><th></th></tr></thead><tbody>' +
      runs.map((r) => `<tr data-job="${r.job}"><td class="num">${r.job}</td><td>${when(r.fire_time)}</td><td>${when(r.started)}</td>` +
        `<td class="num">${span(r.lateness_seconds)}</td><td class="num">${span(r.duration_seconds)}</td><td>${outcome(r.outcome)}</td>` +
        `<td>${exitText(r)}</td><td>${esc(r.node)}</td><td class="num">${r.attempt}</td>` +
        `<td>${r.error ? `<div class="desc">${esc(r.error)}</div>` : ''}<pre class="output">${esc(r.output)}</pre></td>` +
        `<td>${canAct() && r.outcome === 'running' ? `<button class="act" data-action="cancel" data-job="${r.job}">cancel</button>` : ''}</td></tr>`).join('') +
      '</tbody></table>');
}

// ---- data ----
function route() {
  const m = location.hash.match(/^#\/schedule\/(.+)$/);
  return m ? decodeURIComponent(m[1]) : null;
}

let loading = null, again = false;
async function refresh() {
  if (loading) { again = true; return loading; }
  loading = (async () => {
    do {
      again = false;
      try {
        const id = route();
        state.health = await api('/api/health');
        loadedAt = Date.now();
        if (id) {
          const enc = encodeURIComponent(id);
          [state.detail, state.runs] = await Promise.all([api('/api/schedules/' + enc), api('/api/schedules/' + enc + '/runs?limit=50')]);
          renderHealth();
          renderDetail();
        } else {
          [state.schedules, state.running] = await Promise.all([api('/api/schedules'), api('/api/running')]);
          renderHealth();
          renderList();
        }
      } catch (e) {
        $('#view').innerHTML = `<div class="empty">Cannot read the API: ${esc(e.message)}</div>`;
      }
    } while (again);
    loading = null;
  })();
  return loading;
}

let pending = null;
function soon() {  // coalesces a burst of events into one refresh
  if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 100);
}

function toast(text) {
  const t = $('#toast');
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function listen() {
  const source = new EventSource('/api/events');
  source.onopen = () => { state.live = true; $('#live').className = 'live on'; $('#live').textContent = 'live'; soon(); };
  source.onmessage = () => soon();
  source.onerror = () => { state.live = false; $('#live').className = 'live off'; $('#live').textContent = 'reconnecting…'; };
}

document.addEventListener('click', async (ev) => {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  const action = b.dataset.action;
  const path = action === 'cancel' ? `/api/runs/${b.dataset.job}/cancel` : `/api/schedules/${encodeURIComponent(b.dataset.id)}/${action}`;
  try {
    await api(path, { method: 'POST' });
    toast(action === 'trigger' ? 'run queued' : action + ': done');
  } catch (e) {
    toast(action + ' refused: ' + e.message);
    if (/token/.test(e.message)) { sessionStorage.removeItem(tokenKey); }
  }
  refresh();
});
$('#login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(tokenKey, $('#token').value.trim());
  $('#token').value = '';
  refresh();
});
$('#logout').addEventListener('click', () => { sessionStorage.removeItem(tokenKey); refresh(); });
window.addEventListener('hashchange', refresh);

// Relative times and elapsed times move every second; without the event stream, poll.
setInterval(() => {
  document.querySelectorAll('.rel[data-at]').forEach((e) => { e.textContent = relative(e.dataset.at); });
  document.querySelectorAll('.elapsed[data-started]').forEach((e) => { e.textContent = span((Date.now() - new Date(e.dataset.started)) / 1000); });
  if (state.health && $('#uptime')) $('#uptime').textContent = span(state.health.uptime_seconds + (Date.now() - loadedAt) / 1000);
}, 1000);
setInterval(() => { if (!state.live) refresh(); }, 5000);
listen();
refresh();
