// The disco status page: reads the admin API with the admin token and
// follows changes with blocking queries. Everything shown is set with
// textContent: the API's strings are never parsed as HTML.
'use strict';

const PAGE_SIZE = 20;        // services per page
const WAIT = '15s';          // a blocking query's wait; at its end the page refreshes check times
const DETAILS_PER_SERVICE = 12; // instances whose transitions are fetched, most recent first
const ROWS_PER_SERVICE = 200;   // instances listed per service
const TOKEN_KEY = 'disco-admin-token';

const state = {
  token: null,
  gen: 0,              // bumped to stop the loops of a previous token
  list: null,          // the last GET /v1/services
  views: new Map(),    // service name -> {index, view}
  details: new Map(),  // "service/id" -> {since, status, detail}
  page: 0,
  filter: '',
  problems: false,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

class AuthError extends Error {}

// api GETs path and returns {body, index}; a 401 throws AuthError.
async function api(path) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  let resp;
  try {
    resp = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    throw new Error('cannot reach the server');
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (resp.status === 401) throw new AuthError((body && body.error) || 'unauthorized');
  if (!resp.ok) throw new Error((body && body.error) || (resp.status + ' ' + resp.statusText));
  return { body, index: resp.headers.get('X-Disco-Index') };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- token ----

function tokenFromURL() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (!params.has('token')) return null;
  const t = params.get('token');
  // Keep the token out of the address bar and the history.
  history.replaceState(null, '', location.pathname + location.search);
  return t;
}

function start(token) {
  state.gen++;
  state.token = token || null;
  if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token);
  clearData();
  $('auth').hidden = true;
  setConn('connecting', '');
  watch(state.gen);
}

// denied forgets every datum shown and asks for the token; message says
// why (the server's answer), or null when the user asked to forget it.
function denied(message) {
  const had = !!state.token;
  state.gen++;
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearData();
  $('main').hidden = true;
  $('forget').hidden = true;
  $('auth').hidden = false;
  setConn('no access', 'down');
  $('auth-msg').textContent = message === null ? 'The token is forgotten.'
    : had ? 'The server refused this admin token (' + message + '). No data is shown: enter the right token.'
      : 'This server needs its admin token (' + message + '). No data is shown until you enter it.';
  $('auth-token').value = '';
  $('auth-token').focus();
}

function clearData() {
  state.list = null;
  state.views.clear();
  state.details.clear();
  $('services').replaceChildren();
  $('explain-out').replaceChildren();
  $('totals').textContent = '';
  $('page').textContent = '';
}

function setConn(text, cls) {
  const c = $('conn');
  c.textContent = text;
  c.className = 'conn' + (cls ? ' ' + cls : '');
}

// ---- following changes ----

// watch follows GET /v1/services with blocking queries until the token
// changes: each answer's index is the next query's, so it returns as soon
// as anything changes; at the wait's end the visible services are read
// again for their check times.
async function watch(gen) {
  let index = null;
  while (gen === state.gen) {
    try {
      const q = index === null ? '' : '?index=' + encodeURIComponent(index) + '&wait=' + WAIT;
      const r = await api('/v1/services' + q);
      if (gen !== state.gen) return;
      const moved = r.index !== index;
      index = r.index;
      state.list = r.body;
      $('main').hidden = false;
      $('forget').hidden = !state.token;
      setConn('live', 'live');
      render();
      await refresh(gen, !moved);
    } catch (e) {
      if (gen !== state.gen) return;
      if (e instanceof AuthError) { denied(e.message); return; }
      setConn('reconnecting: ' + e.message, 'down');
      await sleep(2000);
    }
  }
}

// visible returns the summaries of the services on the current page.
function filtered() {
  if (!state.list) return [];
  const f = state.filter.trim().toLowerCase();
  return state.list.services.filter((s) =>
    (!f || s.name.includes(f)) &&
    (!state.problems || s.counts.warning + s.counts.critical > 0 || s.fail_open));
}

function visible() {
  const all = filtered();
  const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
  state.page = Math.min(state.page, pages - 1);
  return all.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
}

// refresh reads the visible services whose index moved (all of them when
// all is set), then, in the background, the histories of their recently
// changed instances.
async function refresh(gen, all) {
  const stale = visible().filter((s) => all || !state.views.has(s.name) || state.views.get(s.name).index !== s.index);
  await pool(stale, 4, async (s) => {
    const r = await api('/v1/services/' + encodeURIComponent(s.name));
    if (gen !== state.gen) return;
    state.views.set(s.name, { index: s.index, view: r.body });
  });
  if (gen !== state.gen) return;
  render();
  // The transitions follow without holding up the next blocking query.
  details(gen, stale).catch(failed);
}

// details reads the histories of the recently changed instances of the
// services just read.
async function details(gen, stale) {
  const wanted = [];
  for (const s of stale) {
    const v = state.views.get(s.name);
    if (!v) continue;
    const recent = [...v.view.instances].sort((a, b) => (b.since > a.since ? 1 : -1)).slice(0, DETAILS_PER_SERVICE);
    for (const i of recent) {
      const key = i.service + '/' + i.id;
      const d = state.details.get(key);
      if (!d || d.since !== i.since || d.status !== i.status || d.health !== i.health) wanted.push(i);
    }
  }
  await pool(wanted, 4, async (i) => {
    const r = await api('/v1/services/' + encodeURIComponent(i.service) + '/instances/' + encodeURIComponent(i.id));
    if (gen !== state.gen) return;
    state.details.set(i.service + '/' + i.id, { since: i.since, status: i.status, health: i.health, detail: r.body });
  });
  if (gen === state.gen && wanted.length) render();
}

// pool runs fn over items, n at a time; a missing item (404) is skipped.
async function pool(items, n, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++];
      try { await fn(item); } catch (e) {
        if (e instanceof AuthError) throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
}

// ---- rendering ----

function ago(iso) {
  const t = Date.parse(iso);
  if (isNaN(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return s + 's ago';
  if (s < 3600) return Math.floor(s / 60) + 'm ago';
  if (s < 86400) return Math.floor(s / 3600) + 'h ago';
  return Math.floor(s / 86400) + 'd ago';
}

function when(iso) {
  if (!iso) return el('span', { class: 'muted' }, 'never');
  const d = new Date(iso);
  return el('time', { datetime: iso, title: iso, 'data-ago': iso },
    d.toLocaleTimeString() + ' (' + ago(iso) + ')');
}

function status(s) {
  return el('span', { class: 'st st-' + s }, s);
}

function render() {
  if (!state.list) return;
  const all = filtered();
  const shown = visible();
  const pages = Math.max(1, Math.ceil(all.length / PAGE_SIZE));
  $('page').textContent = 'page ' + (state.page + 1) + ' of ' + pages + ' (' + all.length + ' services)';
  $('prev').disabled = state.page === 0;
  $('next').disabled = state.page >= pages - 1;

  const t = { passing: 0, warning: 0, critical: 0, maintenance: 0 };
  for (const s of state.list.services) for (const k in t) t[k] += s.counts[k];
  const open = state.list.services.filter((s) => s.fail_open).length;
  $('totals').textContent = state.list.services.length + ' services: ' + t.passing + ' passing, ' + t.warning +
    ' warning, ' + t.critical + ' critical, ' + t.maintenance + ' maintenance' +
    (open ? '; ' + open + ' failing open' : '') + ' (index ' + state.list.version + ')';

  const out = shown.map(serviceCard);
  if (!out.length) out.push(el('p', { class: 'empty' }, state.list.services.length ? 'No service matches the filter.' : 'No service is registered yet.'));
  $('services').replaceChildren(...out);
}

function serviceCard(s) {
  const c = s.counts;
  const head = el('div', { class: 'head' },
    el('h3', null, s.name),
    el('span', { class: 'count' }, s.instances + ' instances: ' + c.passing + ' passing, ' + c.warning + ' warning, ' +
      c.critical + ' critical, ' + c.maintenance + ' maintenance'),
    s.fail_open && el('span', { class: 'failopen', title: 'fewer than min_healthy_percent are healthy' },
      'fail open: DNS serves every instance not in maintenance'),
    s.settings.dns_ttl !== undefined && el('span', { class: 'count' }, 'dns_ttl ' + s.settings.dns_ttl + 's'),
    s.settings.min_healthy_percent !== undefined && el('span', { class: 'count' }, 'min_healthy_percent ' + s.settings.min_healthy_percent));
  const card = el('div', { class: 'service' }, head);
  const v = state.views.get(s.name);
  if (!v) {
    card.append(el('p', { class: 'empty' }, 'loading…'));
    return card;
  }
  if (!v.view.instances.length) {
    card.append(el('p', { class: 'empty' }, 'No instances.'));
    return card;
  }
  const rows = v.view.instances.slice(0, ROWS_PER_SERVICE).map((i) => el('tr', null,
    el('td', { class: 'mono' }, i.id),
    el('td', { class: 'mono' }, i.address.includes(':') ? '[' + i.address + ']:' + i.port : i.address + ':' + i.port),
    el('td', null, ...(i.tags.length ? i.tags.map((tg) => el('span', { class: 'tag' }, tg)) : [el('span', { class: 'muted' }, '-')])),
    el('td', null, status(i.status), i.status === 'maintenance' && i.health ? el('div', { class: 'muted' }, 'checks: ' + i.health) : null),
    el('td', null, when(i.since)),
    el('td', null, i.checks.length ? when(i.last_check) : el('span', { class: 'muted' }, '-'),
      i.failures ? el('div', { class: 'muted' }, i.failures + ' failures in a row') : null),
    el('td', { class: 'output' }, i.maintenance ? el('div', null, 'drained' + (i.maintenance.reason ? ': ' + i.maintenance.reason : '')) : null,
      el('div', { class: i.maintenance ? 'muted' : '' }, i.output))));
  card.append(el('table', null,
    el('thead', null, el('tr', null, ...['instance', 'address', 'tags', 'status', 'since', 'last check', 'output'].map((h) => el('th', null, h)))),
    el('tbody', null, ...rows)));
  if (v.view.instances.length > ROWS_PER_SERVICE) {
    card.append(el('p', { class: 'muted' }, ROWS_PER_SERVICE + ' of ' + v.view.instances.length +
      ' instances shown; disco instances ' + s.name + ' lists them all'));
  }
  card.append(transitions(v.view));
  return card;
}

// transitions lists the service's most recent status changes.
function transitions(view) {
  const all = [];
  for (const i of view.instances) {
    const d = state.details.get(i.service + '/' + i.id);
    if (!d) continue;
    for (const h of d.detail.history) all.push({ id: i.id, h });
  }
  all.sort((a, b) => (b.h.time > a.h.time ? 1 : -1));
  const box = el('div', { class: 'transitions' }, el('strong', null, 'Recent transitions'));
  if (!all.length) {
    box.append(el('span', { class: 'muted' }, ' none yet'));
    return box;
  }
  box.append(el('ul', null, ...all.slice(0, 8).map(({ id, h }) => el('li', null,
    when(h.time), ' ', el('span', { class: 'mono' }, id), ': ', status(h.from || 'none'), ' → ', status(h.to),
    h.output ? el('span', { class: 'muted' }, ' ' + h.output) : null))));
  return box;
}

setInterval(() => {
  for (const t of document.querySelectorAll('time[data-ago]')) {
    const iso = t.getAttribute('data-ago');
    t.textContent = new Date(iso).toLocaleTimeString() + ' (' + ago(iso) + ')';
  }
}, 5000);

// ---- explain ----

async function explain(ev) {
  ev.preventDefault();
  const name = $('explain-name').value.trim();
  const type = $('explain-type').value;
  const out = $('explain-out');
  out.replaceChildren(el('p', { class: 'muted' }, 'asking…'));
  const gen = state.gen;
  try {
    const r = await api('/v1/explain?name=' + encodeURIComponent(name) + '&type=' + encodeURIComponent(type));
    if (gen !== state.gen) return;
    out.replaceChildren(...explanation(r.body));
  } catch (e) {
    if (e instanceof AuthError) { denied(e.message); return; }
    out.replaceChildren(el('p', { class: 'problem' }, e.message));
  }
}

function records(title, rrs) {
  return [el('dt', null, title), el('dd', null, rrs.length ? el('pre', null, rrs.join('\n')) : el('span', { class: 'muted' }, 'none'))];
}

function explanation(e) {
  const parts = [
    el('p', null, el('span', { class: 'rcode' }, e.rcode), ' ', el('span', { class: 'mono' }, e.name + ' ' + e.type),
      e.authoritative ? ' (authoritative)' : ''),
    el('p', null, e.reason),
  ];
  const dl = el('dl', null,
    el('dt', null, 'zone'), el('dd', { class: 'mono' }, e.zone || 'none'),
    ...records('answer', e.answer), ...records('authority', e.authority), ...records('additional', e.additional),
    el('dt', null, 'TTL'), el('dd', null, e.ttl === undefined ? '-' : e.ttl + 's from ' + e.ttl_source),
    e.ede ? el('dt', null, 'extended error') : null, e.ede ? el('dd', null, e.ede) : null);
  parts.push(dl);
  if (e.service) {
    const p = e.service.policy;
    parts.push(el('p', null, 'Policy: ' + (p.serve_warning ? 'warning instances served' : 'passing instances only') +
      '; min_healthy_percent ' + p.min_healthy_percent + ' (' + p.min_healthy_percent_from + ')' +
      (p.fail_open ? '; FAILING OPEN' : '')));
    parts.push(el('table', null,
      el('thead', null, el('tr', null, ...['instance', 'address', 'status', 'in the answer', 'why'].map((h) => el('th', null, h)))),
      el('tbody', null, ...e.service.instances.map((i) => el('tr', null,
        el('td', { class: 'mono' }, i.id),
        el('td', { class: 'mono' }, i.address + ':' + i.port),
        el('td', null, status(i.status)),
        el('td', null, i.served ? el('span', { class: 'served' }, 'served') : el('span', { class: 'notserved' }, 'left out')),
        el('td', null, i.reason))))));
  }
  parts.push(el('p', { class: 'muted' }, e.note));
  return parts;
}

// ---- wiring ----

function failed(e) {
  if (e instanceof AuthError) denied(e.message);
}

function reshow() {
  render();
  refresh(state.gen, false).catch(failed);
}

document.addEventListener('DOMContentLoaded', () => {
  $('auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    start($('auth-token').value.trim());
  });
  $('forget').addEventListener('click', () => denied(null));
  $('explain-form').addEventListener('submit', explain);
  $('filter').addEventListener('input', () => {
    state.filter = $('filter').value;
    state.page = 0;
    reshow();
  });
  $('problems').addEventListener('change', () => {
    state.problems = $('problems').checked;
    state.page = 0;
    reshow();
  });
  $('prev').addEventListener('click', () => { state.page--; reshow(); });
  $('next').addEventListener('click', () => { state.page++; reshow(); });
  window.addEventListener('hashchange', () => {
    const t = tokenFromURL();
    if (t !== null) start(t);
  });
  const t = tokenFromURL();
  start(t !== null ? t : sessionStorage.getItem(TOKEN_KEY));
});
