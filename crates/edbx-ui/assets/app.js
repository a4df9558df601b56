// edbx ui: the pages. Plain DOM code. Every value from the store is inserted as text
// (createTextNode / textContent), never as HTML; links are built from this page's own routes
// only. The server's Content-Security-Policy forbids inline script and eval anyway.
'use strict';

(function () {
  // ---------------------------------------------------------------- DOM helpers
  function h(tag, attrs) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'class') el.className = value;
        else if (key === 'text') el.textContent = String(value);
        else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (let i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }
  function append(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) { child.forEach(c => append(el, c)); return; }
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  // A link to one of this page's routes (never to a URL taken from the store).
  function link(route, text, attrs) {
    return h('a', Object.assign({ href: '#' + route }, attrs || {}), text);
  }
  function aggRoute(type, id, params) {
    return '/a/' + encodeURIComponent(type) + '/' + encodeURIComponent(id) + query(params);
  }
  function typeRoute(type, params) { return '/t/' + encodeURIComponent(type) + query(params); }
  function query(params) {
    if (!params) return '';
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    return s ? '?' + s : '';
  }
  const numbers = new Intl.NumberFormat('en-US');
  function fmtNum(n) { return typeof n === 'number' ? numbers.format(n) : String(n); }
  function fmtTime(text) {
    if (!text) return '';
    // The server's RFC 3339 time, to the millisecond, as written (UTC).
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,3})?\d*(Z|[+-]\d\d:\d\d)?$/.exec(text);
    return m ? m[1].replace('T', ' ') + (m[2] || '') + (m[3] === 'Z' ? 'Z' : (m[3] || '')) : String(text);
  }
  function compact(value) {
    try { return JSON.stringify(value); } catch (e) { return String(value); }
  }
  // A stored state text read back as the server's `select` does: JSON when it is JSON.
  function parseStored(text) {
    if (typeof text !== 'string') return text;
    try { return JSON.parse(text); } catch (e) { return text; }
  }
  function stateJson(state) {
    const out = {};
    for (const [k, v] of Object.entries(state || {})) out[k] = parseStored(v);
    return out;
  }

  // A JSON value as a collapsible tree of text nodes.
  function tree(value, open) {
    const root = h('div', { class: 'tree' });
    root.appendChild(treeNode(null, value, open === undefined ? 2 : open));
    return root;
  }
  function treeNode(key, value, open) {
    const label = key === null ? null : h('span', { class: 'k' }, JSON.stringify(key), ': ');
    if (value !== null && typeof value === 'object') {
      const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
      const d = h('details');
      if (open > 0) d.open = true;
      const brackets = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
      d.appendChild(h('summary', null, label, brackets[0],
        h('span', { class: 'muted' }, ' ' + entries.length + (Array.isArray(value) ? ' items ' : ' keys ')), brackets[1]));
      for (const [k, v] of entries) d.appendChild(treeNode(Array.isArray(value) ? Number(k) : k, v, open - 1));
      return d;
    }
    const cls = value === null ? 'z' : typeof value === 'string' ? 's' : typeof value === 'number' ? 'n' : 'b';
    return h('div', { class: 'leaf' }, label, h('span', { class: cls }, JSON.stringify(value)));
  }

  // ---------------------------------------------------------------- HTTP
  let session = null;
  async function api(path, params) {
    const response = await fetch('/api/' + path + query(params), { credentials: 'same-origin' });
    const text = await response.text();
    let body;
    try { body = JSON.parse(text); } catch (e) { body = { error: text || response.statusText, kind: 'http' }; }
    if (!response.ok) {
      const err = new Error(body.error || response.statusText);
      err.kind = body.kind;
      err.status = response.status;
      throw err;
    }
    return body;
  }
  async function post(action, body) {
    const response = await fetch('/api/write/' + action, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-edbx-csrf': session.csrf || '' },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    let parsed;
    try { parsed = JSON.parse(text); } catch (e) { parsed = { error: text, kind: 'http' }; }
    if (!response.ok) {
      const err = new Error(parsed.error || response.statusText);
      err.kind = parsed.kind;
      throw err;
    }
    return parsed;
  }
  function errorBox(err) {
    const box = h('div', { class: 'error', role: 'alert' });
    box.textContent = (err && err.message) ? err.message : String(err);
    return box;
  }

  // ---------------------------------------------------------------- live events
  let source = null;
  let liveHandlers = [];
  function setLive(state, text) {
    const el = document.getElementById('live');
    el.dataset.state = state;
    el.textContent = text;
  }
  function listen(params, onEvent) {
    if (source) source.close();
    liveHandlers = [onEvent];
    setLive('connecting', 'live: connecting…');
    source = new EventSource('/api/live' + query(params));
    source.addEventListener('ready', e => setLive('ready', 'live (' + e.data + ')'));
    source.addEventListener('status', e => setLive('error', 'live: ' + e.data));
    source.addEventListener('lagged', () => setLive('error', 'live: fell behind, reload the page'));
    source.addEventListener('event', e => {
      let event;
      try { event = JSON.parse(e.data); } catch (x) { return; }
      liveHandlers.forEach(f => f(event));
    });
    source.onerror = () => { if (source && source.readyState !== EventSource.OPEN) setLive('connecting', 'live: reconnecting…'); };
  }
  function stopListening() {
    if (source) { source.close(); source = null; }
    liveHandlers = [];
    setLive('off', 'live: off');
  }

  // ---------------------------------------------------------------- charts
  // uPlot is loaded when the first chart is drawn, not before the page's own content.
  let uplot = null;
  function loadUplot() {
    if (!uplot) {
      uplot = new Promise((resolve, reject) => {
        const script = h('script', { src: '/assets/uPlot.iife.min.js' });
        script.addEventListener('load', () => resolve(window.uPlot));
        script.addEventListener('error', () => reject(new Error('cannot load the chart library')));
        document.head.appendChild(script);
      });
    }
    return uplot;
  }
  let charts = [];
  function dropCharts() { charts.forEach(c => c.destroy()); charts = []; }
  function activityPanel(type) {
    const panel = h('section', { class: 'panel', id: 'activity' });
    const title = h('h2', null, 'Events per minute, last 60 minutes' + (type ? ' (' + type + ')' : ''));
    const chart = h('div', { class: 'chart', id: 'activity-chart' });
    const summary = h('p', { class: 'muted', id: 'activity-summary' }, 'Counting…');
    const top = h('div', { id: 'top-active' });
    panel.append(title, chart, summary, h('h2', null, 'Most active aggregates'), top);
    const load = async () => {
      let data, uPlot;
      try {
        [data, uPlot] = await Promise.all([api('activity', { type: type, minutes: 60 }), loadUplot()]);
      } catch (err) { clear(summary).append(errorBox(err)); return; }
      // Each bar stands in the middle of its minute; the axis spans the whole window.
      const xs = data.buckets.map((_, i) => (data.from_ms + i * 60000 + 30000) / 1000);
      dropCharts();
      clear(chart);
      {
        const width = Math.max(300, chart.clientWidth || 600);
        const opts = {
          width: width, height: 200,
          scales: { x: { time: true, range: [data.from_ms / 1000, data.to_ms / 1000] } },
          axes: [{}, { label: 'events' }],
          series: [{}, { label: 'events / min', stroke: '#2457c5', fill: 'rgba(36,87,197,0.25)', paths: uPlot.paths.bars({ size: [0.9, 40] }), points: { show: false } }],
          legend: { show: true },
        };
        charts.push(new uPlot(opts, [xs, data.buckets], chart));
      }
      summary.textContent = fmtNum(data.total) + ' events in the last ' + data.minutes + ' minutes, in ' +
        fmtNum(data.aggregates) + ' aggregates changed' + (data.capped ? ' (only the ' + fmtNum(data.aggregates) + ' most recently changed aggregates were counted)' : '') + '.';
      summary.dataset.total = String(data.total);
      clear(top);
      if (!data.top.length) { top.append(h('p', { class: 'muted' }, 'No events in the window.')); return; }
      top.append(h('table', null,
        h('thead', null, h('tr', null, h('th', null, 'aggregate'), h('th', { class: 'num' }, 'events'))),
        h('tbody', null, data.top.map(a => h('tr', null,
          h('td', null, link(aggRoute(a.aggregate_type, a.aggregate_id), a.aggregate_type + ' / ' + a.aggregate_id)),
          h('td', { class: 'num' }, fmtNum(a.events)))))));
    };
    // Loaded once the page's own content is shown (it reads many aggregates' recent events).
    let started = false;
    return { panel: panel, load: load, start: () => { if (!started) { started = true; load(); } } };
  }

  // ---------------------------------------------------------------- live feed panel
  function feedPanel(title) {
    const body = h('tbody');
    const empty = h('p', { class: 'muted' }, 'New events appear here as they are written.');
    const panel = h('section', { class: 'panel', id: 'feed' }, h('h2', null, title), empty,
      h('table', null, h('thead', null, h('tr', null, h('th', null, 'time'), h('th', null, 'aggregate'),
        h('th', { class: 'num' }, 'version'), h('th', null, 'event'), h('th', null, 'writer'))), body));
    return {
      panel: panel,
      add: event => {
        empty.remove();
        const row = h('tr', { class: 'fresh' },
          h('td', { class: 'mono' }, fmtTime(event.metadata && event.metadata.created_at)),
          h('td', null, link(aggRoute(event.aggregate_type, event.aggregate_id, { v: event.version }), event.aggregate_type + ' / ' + event.aggregate_id)),
          h('td', { class: 'num' }, fmtNum(event.version)),
          h('td', { class: 'mono' }, event.event_type_raw || event.event_type),
          h('td', null, writer(event)));
        body.insertBefore(row, body.firstChild);
        while (body.children.length > 100) body.removeChild(body.lastChild);
      },
    };
  }
  function writer(event) {
    const by = event.metadata && event.metadata.issued_by;
    return by ? by.group + '/' + by.user : '';
  }

  // ---------------------------------------------------------------- pages
  const main = () => document.getElementById('main');
  let generation = 0;  // bumps on every navigation; late answers of an old page are dropped

  // Performance marks, read by the benchmark (scripts/bench-ui.sh): the page's main data has
  // arrived, and its own content is in the document.
  function mark(name) {
    try { performance.mark(name); } catch (e) { /* marks are optional */ }
  }
  function arrived(name) { mark('edbx:data:' + name); }
  function painted(name) {
    mark('edbx:painted:' + name);
    document.body.dataset.painted = name;
  }

  async function overview() {
    const gen = generation;
    const root = clear(main());
    document.title = 'edbx ui';
    const typesPanel = h('section', { class: 'panel', id: 'types' }, h('h2', null, 'Aggregate types'));
    const typesBody = h('div', null, h('p', { class: 'muted' }, 'Finding types…'));
    const status = h('p', { class: 'muted', id: 'types-status' });
    const recount = h('button', { type: 'button', id: 'recount', onclick: () => loadTypes(true) }, 'Count again');
    typesPanel.append(typesBody, h('div', { class: 'row' }, status, recount));
    const activity = activityPanel(null);
    const feed = feedPanel('New events (whole store)');
    root.append(h('div', { class: 'grid' }, h('div', null, typesPanel, feed.panel), h('div', null, activity.panel)));
    listen({}, feed.add);
    let timer = null;
    async function loadTypes(refresh) {
      if (gen !== generation) return;
      let data;
      try { data = await api('types', refresh ? { refresh: 1 } : {}); } catch (err) { clear(typesBody).append(errorBox(err)); return; }
      if (gen !== generation) return;
      if (!document.body.dataset.painted) arrived('overview');
      clear(typesBody);
      if (!data.types.length) {
        typesBody.append(h('p', { class: 'muted' }, data.done ? 'The store holds no aggregates.' : 'Finding types…'));
      } else {
        typesBody.append(h('table', { id: 'types-table' },
          h('thead', null, h('tr', null, h('th', null, 'type'), h('th', { class: 'num' }, 'active'), h('th', { class: 'num' }, 'archived'), h('th', null, ''))),
          h('tbody', null, data.types.map(t => h('tr', { 'data-type': t.type },
            h('td', null, link(typeRoute(t.type), t.type)),
            h('td', { class: 'num' }, fmtNum(t.active)),
            h('td', { class: 'num' }, fmtNum(t.archived)),
            h('td', { class: 'muted' }, t.final ? '' : 'counting…'))))));
        painted('overview');
        activity.start();
      }
      status.textContent = data.error ? 'Count stopped: ' + data.error
        : data.done ? 'Counted ' + fmtNum(data.scanned) + ' aggregates' + (data.skipped ? ' (' + data.skipped + ' too large to list)' : '') + ' at ' + new Date(data.finished_ms).toLocaleTimeString() + '.'
          : 'Counting… ' + fmtNum(data.scanned) + ' aggregates so far.';
      recount.disabled = !data.done;
      if (!data.done) timer = setTimeout(() => loadTypes(false), 700);
      else if (!data.types.length) { painted('overview'); activity.start(); }
    }
    loadTypes(false);
    cleanup.push(() => clearTimeout(timer));
  }

  async function typePage(type, params) {
    const gen = generation;
    const root = clear(main());
    document.title = type + ' — edbx ui';
    const filter = h('input', { id: 'filter', size: 48, placeholder: "status = 'paid' AND total > 40", spellcheck: 'false' });
    filter.value = params.get('filter') || '';
    const sort = h('select', { id: 'sort' }, ['', 'updated_at:desc', 'updated_at:asc', 'created_at:desc', 'created_at:asc', 'aggregate_id:asc', 'aggregate_id:desc']
      .map(s => h('option', { value: s }, s || 'key order')));
    sort.value = params.get('sort') || '';
    const scope = h('select', { id: 'scope' }, [['active', 'active'], ['archived', 'archived only'], ['all', 'active and archived']].map(([v, t]) => h('option', { value: v }, t)));
    scope.value = params.get('scope') || 'active';
    const take = h('select', { id: 'take' }, ['50', '100', '200', '500'].map(n => h('option', { value: n }, n + ' per page')));
    take.value = params.get('take') || '50';
    const form = h('form', { class: 'row', id: 'list-form', onsubmit: e => {
      e.preventDefault();
      go(typeRoute(type, { filter: filter.value.trim(), sort: sort.value, scope: scope.value === 'active' ? '' : scope.value, take: take.value === '50' ? '' : take.value }));
    } }, h('label', { for: 'filter' }, 'filter'), filter, sort, scope, take, h('button', { type: 'submit', class: 'primary' }, 'List'));
    const results = h('div', { id: 'results' }, h('p', { class: 'muted' }, 'Loading…'));
    const list = h('section', { class: 'panel' }, form, results);
    const activity = activityPanel(type);
    const feed = feedPanel('New events of ' + type);
    root.append(h('h1', null, link('/', 'types'), ' / ', type), list, h('div', { class: 'grid' }, activity.panel, feed.panel));
    listen({ type: type }, feed.add);

    const cursor = params.get('cursor');
    let data;
    try {
      data = await api('aggregates', { type: type, filter: params.get('filter'), sort: params.get('sort'), scope: params.get('scope'), take: params.get('take'), cursor: cursor });
    } catch (err) {
      if (gen === generation) { clear(results).append(errorBox(err)); painted('type'); activity.start(); }
      return;
    }
    if (gen !== generation) return;
    arrived('type');
    clear(results);
    if (!data.items.length) {
      results.append(h('p', { class: 'muted', id: 'no-rows' }, cursor ? 'No more aggregates.' : 'No aggregates match.'));
    } else {
      results.append(h('table', { id: 'aggregates' },
        h('thead', null, h('tr', null, h('th', null, 'id'), h('th', { class: 'num' }, 'version'), h('th', null, 'updated'), h('th', null, 'created'), h('th', null, 'state'))),
        h('tbody', null, data.items.map(a => h('tr', { 'data-id': a.aggregate_id },
          h('td', null, link(aggRoute(a.aggregate_type, a.aggregate_id), a.aggregate_id), a.archived ? h('span', { class: 'badge warn' }, ' archived') : null),
          h('td', { class: 'num' }, fmtNum(a.version)),
          h('td', { class: 'mono' }, fmtTime(a.updated_at)),
          h('td', { class: 'mono' }, fmtTime(a.created_at)),
          stateCell(a.state))))));
    }
    const nav = h('div', { class: 'row' });
    if (cursor) nav.append(link(typeRoute(type, without(params, 'cursor')), 'First page'));
    if (data.next_cursor) nav.append(link(typeRoute(type, Object.assign(without(params, 'cursor'), { cursor: data.next_cursor })), 'Next page', { id: 'next-page' }));
    if (!data.pageable && !data.complete) nav.append(h('span', { class: 'notice' }, 'The server cannot page this sort, and this page may be incomplete: sort by updated_at or created_at, or not at all, to see every row.'));
    nav.append(h('span', { class: 'muted' }, fmtNum(data.items.length) + ' rows' + (data.next_cursor ? ', more follow' : '')));
    results.append(nav);
    painted('type');
    activity.start();
  }
  function stateCell(state) {
    const text = compact(stateJson(state));
    return h('td', { class: 'mono cell-json', title: text }, text);
  }
  function without(params, key) {
    const out = {};
    for (const [k, v] of params.entries()) if (k !== key) out[k] = v;
    return out;
  }

  async function aggregatePage(type, id, params) {
    const gen = generation;
    const root = clear(main());
    document.title = type + '/' + id + ' — edbx ui';
    root.append(h('h1', null, link('/', 'types'), ' / ', link(typeRoute(type), type), ' / ', h('span', { id: 'agg-id' }, id)));
    let got;
    try { got = await api('aggregate', { type: type, id: id }); } catch (err) {
      if (gen === generation) { root.append(errorBox(err)); painted('aggregate'); }
      return;
    }
    if (gen !== generation) return;
    arrived('aggregate');
    if (!got.found) {
      root.append(h('p', { class: 'error', id: 'not-found' }, 'No aggregate ' + type + ' / ' + id + ' on this server.'));
      painted('aggregate');
      return;
    }
    let agg = got.aggregate;
    const facts = h('dl', { class: 'kv', id: 'facts' });
    const current = h('div', { id: 'current-state' });
    function showFacts() {
      clear(facts).append(
        h('dt', null, 'version'), h('dd', { id: 'version' }, fmtNum(agg.version)),
        h('dt', null, 'created'), h('dd', { class: 'mono' }, fmtTime(agg.created_at)),
        h('dt', null, 'updated'), h('dd', { class: 'mono' }, fmtTime(agg.updated_at)),
        h('dt', null, 'archived'), h('dd', null, agg.archived ? h('span', { class: 'badge warn' }, 'archived') : 'no'),
        h('dt', null, 'Merkle root'), h('dd', { class: 'mono' }, agg.merkle_root || ''));
      const extensions = {};
      for (const [k, v] of Object.entries(agg)) if (k.startsWith('@')) extensions[k] = v;
      if (Object.keys(extensions).length) facts.append(h('dt', null, 'extensions'), h('dd', null, tree(extensions, 1)));
      clear(current).append(tree(stateJson(agg.state), 2));
    }
    showFacts();
    const rawToggle = h('button', { type: 'button', onclick: () => {
      const raw = current.dataset.raw === '1';
      current.dataset.raw = raw ? '0' : '1';
      clear(current).append(raw ? tree(stateJson(agg.state), 2) : h('pre', null, JSON.stringify(agg.state, null, 2)));
      rawToggle.textContent = raw ? 'as stored (text)' : 'as JSON';
    } }, 'as stored (text)');
    const statePanel = h('section', { class: 'panel' }, h('div', { class: 'row' }, h('h2', null, 'Current state'), rawToggle), current);
    const factsPanel = h('section', { class: 'panel' }, h('h2', null, 'Aggregate'), facts);

    // State at any version, and what its event changed.
    const stepper = h('div', { class: 'stepper' });
    const versionBox = h('div', { id: 'at-version' }, h('p', { class: 'muted' }, 'Loading…'));
    const atPanel = h('section', { class: 'panel', id: 'history' }, h('h2', null, 'State at version'), stepper, versionBox);
    let selected = Number(params.get('v')) || agg.version;
    const range = h('input', { type: 'range', min: 1, max: agg.version, value: selected, id: 'version-range', 'aria-label': 'version' });
    const number = h('input', { type: 'number', min: 1, max: agg.version, value: selected, id: 'version-number', style: null, 'aria-label': 'version number' });
    number.size = 6;
    const prev = h('button', { type: 'button', id: 'prev-version', onclick: () => select(selected - 1) }, '◀ previous');
    const next = h('button', { type: 'button', id: 'next-version', onclick: () => select(selected + 1) }, 'next ▶');
    const latest = h('button', { type: 'button', onclick: () => select(agg.version) }, 'latest');
    range.addEventListener('input', () => select(Number(range.value), true));
    number.addEventListener('change', () => select(Number(number.value)));
    stepper.append(prev, range, number, next, latest);
    let stateRequest = 0;
    async function select(v, fromRange) {
      v = Math.max(1, Math.min(agg.version, v || 1));
      selected = v;
      if (!fromRange) range.value = v;
      number.value = v;
      prev.disabled = v <= 1;
      next.disabled = v >= agg.version;
      history.replaceState(null, '', '#' + aggRoute(type, id, { v: v === agg.version ? '' : v }));
      timeline.mark(v);
      const ask = ++stateRequest;
      let data;
      try { data = await api('state', { type: type, id: id, version: v }); } catch (err) {
        if (ask === stateRequest) clear(versionBox).append(errorBox(err));
        return;
      }
      if (ask !== stateRequest || gen !== generation) return;
      const ev = data.event;
      versionBox.dataset.version = String(data.version);
      mark('edbx:shown:state');
      clear(versionBox).append(
        h('p', null, 'Version ', h('strong', { id: 'shown-version' }, String(data.version)), ' of ' + fmtNum(agg.version) + ', made by ', h('code', null, ev.event_type_raw || ev.event_type), ' at ', h('span', { class: 'mono' }, fmtTime(ev.metadata && ev.metadata.created_at))),
        h('h2', null, 'What this event changed'),
        data.changes.length ? h('table', { id: 'changes' },
          h('thead', null, h('tr', null, h('th', null, 'key'), h('th', null, ''), h('th', null, 'before'), h('th', null, 'after'))),
          h('tbody', null, data.changes.map(c => h('tr', { class: 'change-' + c.kind },
            h('td', { class: 'mono' }, c.key), h('td', null, c.kind),
            h('td', { class: 'mono' }, c.before === null || c.before === undefined ? '—' : c.before),
            h('td', { class: 'mono' }, c.after === null || c.after === undefined ? '—' : c.after)))))
          : h('p', { class: 'muted' }, 'It wrote no keys.'),
        h('h2', null, 'State after it'),
        tree(stateJson(data.state), 2));
    }

    // The timeline, newest first, a page at a time.
    const timeline = timelinePanel(type, id, () => agg.version, v => select(v));
    // Verify, referrers, snapshots.
    const verifyOut = h('div', { id: 'verify-result' });
    const verifyButton = h('button', { type: 'button', id: 'verify', onclick: async () => {
      verifyButton.disabled = true;
      clear(verifyOut).append(h('p', { class: 'muted' }, 'Reading the events back and recomputing the root…'));
      try {
        const r = await api('verify', { type: type, id: id });
        const label = { intact: 'intact', mismatch: 'MISMATCH', unverifiable: 'could not check' }[r.outcome] || r.outcome;
        const cls = { intact: 'ok', mismatch: 'bad', unverifiable: 'warn' }[r.outcome] || 'warn';
        clear(verifyOut).append(h('p', null, h('span', { class: 'badge ' + cls, id: 'verify-outcome', 'data-outcome': r.outcome }, label),
          r.reason ? ' (' + r.reason + ')' : '', ' ', r.detail));
      } catch (err) {
        clear(verifyOut).append(h('p', null, h('span', { class: 'badge warn', id: 'verify-outcome', 'data-outcome': 'unverifiable' }, 'could not check'), ' '), errorBox(err));
      }
      verifyButton.disabled = false;
    } }, 'Check the Merkle root');
    const verifyPanel = h('section', { class: 'panel' }, h('h2', null, 'Integrity'), h('p', { class: 'muted' }, 'Reads the events back, recomputes each hash and the root, and compares them with what the server stored.'), verifyButton, verifyOut);
    const related = h('section', { class: 'panel', id: 'related' }, h('h2', null, 'Referrers'), h('div', { id: 'referrers' }, 'Loading…'), h('h2', null, 'Snapshots'), h('div', { id: 'snapshots' }, 'Loading…'));
    let writes = null;
    try { if ((await sessionReady).allow_writes) writes = writePanel(type, id, () => refresh()); } catch (err) { /* shown by start() */ }
    if (gen !== generation) return;

    root.append(h('div', { class: 'grid' }, h('div', null, factsPanel, statePanel), h('div', null, atPanel)), timeline.panel,
      h('div', { class: 'grid' }, verifyPanel, related));
    if (writes) root.append(writes);
    painted('aggregate');
    select(selected);
    loadRelated(type, id);

    async function refresh() {
      try {
        const again = await api('aggregate', { type: type, id: id });
        if (!again.found || gen !== generation) return;
        const wasLatest = selected === agg.version;
        agg = again.aggregate;
        range.max = agg.version; number.max = agg.version;
        showFacts();
        timeline.grow();
        if (wasLatest) select(agg.version); else next.disabled = selected >= agg.version;
      } catch (err) { /* the next event will try again */ }
    }
    listen({ type: type, id: id }, event => {
      if (event.aggregate_type === type && event.aggregate_id === id) {
        timeline.arrived(event);
        refresh();
      }
    });
  }

  function timelinePanel(type, id, latestVersion, onSelect) {
    const PAGE = 50;
    const body = h('tbody');
    const nav = h('div', { class: 'row' });
    const panel = h('section', { class: 'panel', id: 'timeline' }, h('h2', null, 'Events (newest first)'), h('table', null,
      h('thead', null, h('tr', null, h('th', { class: 'num' }, 'version'), h('th', null, 'event type'), h('th', null, 'time'),
        h('th', null, 'writer'), h('th', null, 'note'), h('th', null, 'metadata'), h('th', null, 'payload'))), body), nav);
    let top = latestVersion();  // newest version shown
    let bottom = top + 1;       // oldest version shown
    let selectedVersion = null;
    function row(event, fresh) {
      const tr = h('tr', { class: 'clickable' + (fresh ? ' fresh' : ''), 'data-version': event.version, onclick: () => onSelect(event.version) },
        h('td', { class: 'num' }, String(event.version)),
        h('td', { class: 'mono' }, event.event_type_raw || event.event_type),
        h('td', { class: 'mono nowrap' }, fmtTime(event.metadata && event.metadata.created_at)),
        h('td', null, writer(event)),
        h('td', { class: 'note' }, event.metadata && event.metadata.note ? event.metadata.note : ''),
        h('td', { class: 'mono cell-json metadata', title: event.extensions ? compact(event.extensions) : '' }, event.extensions ? compact(event.extensions) : ''),
        h('td', { class: 'mono cell-json payload', title: compact(event.payload) }, compact(event.payload)));
      if (event.version === selectedVersion) tr.classList.add('selected');
      return tr;
    }
    async function load(after, take, atTop) {
      let data;
      try { data = await api('events', { type: type, id: id, after: after, take: take }); } catch (err) { nav.append(errorBox(err)); return; }
      const rows = data.items.slice().reverse().map(e => row(e, false));
      if (atTop) rows.reverse().forEach(r => body.insertBefore(r, body.firstChild));
      else rows.forEach(r => body.appendChild(r));
      for (const e of data.items) { top = Math.max(top, e.version); bottom = Math.min(bottom, e.version); }
      drawNav();
      mark('edbx:shown:timeline');
    }
    function drawNav() {
      clear(nav);
      if (bottom > 1) nav.append(h('button', { type: 'button', id: 'older', onclick: () => load(Math.max(0, bottom - 1 - PAGE), Math.min(PAGE, bottom - 1), false) }, 'Older events'));
      nav.append(h('span', { class: 'muted' }, bottom <= top ? 'versions ' + bottom + '–' + top + ' of ' + latestVersion() : 'no events listed'));
    }
    load(Math.max(0, top - PAGE), Math.min(PAGE, Math.max(top, 1)), false);
    return {
      panel: panel,
      mark: v => {
        selectedVersion = v;
        for (const tr of body.children) tr.classList.toggle('selected', Number(tr.dataset.version) === v);
      },
      arrived: event => {
        if (event.version > top && !body.querySelector('tr[data-version="' + event.version + '"]')) {
          body.insertBefore(row(event, true), body.firstChild);
          top = event.version;
          drawNav();
        }
      },
      grow: () => {
        const latest = latestVersion();
        if (latest > top) load(top, Math.min(PAGE, latest - top), true);
      },
    };
  }

  async function loadRelated(type, id) {
    const referrers = document.getElementById('referrers');
    const snapshots = document.getElementById('snapshots');
    api('referrers', { type: type, id: id }).then(data => {
      clear(referrers).append(data.items.length
        ? h('ul', null, data.items.map(r => h('li', null, link(aggRoute(r.aggregate_type, r.aggregate_id), r.aggregate_type + ' / ' + r.aggregate_id), ' via ', h('code', null, r.path))))
        : h('p', { class: 'muted' }, 'No aggregate refers to this one.'));
    }, err => clear(referrers).append(errorBox(err)));
    api('snapshots', { type: type, id: id }).then(data => {
      clear(snapshots).append(data.items.length
        ? h('table', null, h('thead', null, h('tr', null, h('th', { class: 'num' }, 'version'), h('th', null, 'taken'), h('th', null, 'comment'), h('th', null, ''))),
          h('tbody', null, data.items.map(s => h('tr', null, h('td', { class: 'num' }, String(s.version)), h('td', { class: 'mono' }, fmtTime(s.created_at)),
            h('td', null, s.comment || ''), h('td', null, link(aggRoute(type, id, { v: s.version }), 'state then'))))))
        : h('p', { class: 'muted' }, 'No snapshots.'));
    }, err => clear(snapshots).append(errorBox(err)));
  }

  // Writes: each form shows what it will send and waits for a confirmation.
  function writePanel(type, id, after) {
    const out = h('div', { id: 'write-result' });
    const panel = h('section', { class: 'panel', id: 'writes' }, h('h2', null, 'Write (this UI was started with --allow-writes)'));
    function form(action, title, fields, build) {
      const inputs = {};
      const box = h('div');
      const f = h('form', { id: 'write-' + action, onsubmit: e => {
        e.preventDefault();
        let body;
        try { body = build(inputs); } catch (err) { clear(box).append(errorBox(err)); return; }
        body.type = type; body.id = id;
        const confirmButton = h('button', { type: 'button', class: 'danger', id: 'confirm-' + action, onclick: async () => {
          confirmButton.disabled = true;
          try {
            const r = await post(action, body);
            clear(box);
            clear(out).append(h('p', { class: 'badge ok', id: 'write-done' }, action + ' done' + (r.echo && r.echo.version ? ': version ' + r.echo.version : '')));
            after();
          } catch (err) {
            clear(box);
            const message = err.kind === 'outcome_unknown'
              ? 'The write was sent but its answer was lost: it may or may not be applied. Reload the aggregate before writing again. (' + err.message + ')'
              : err.message;
            clear(out).append(errorBox(new Error(message)));
          }
        } }, 'Confirm: ' + action);
        clear(box).append(h('div', { class: 'confirm' }, h('p', null, 'About to ' + action + ' ' + type + ' / ' + id + ':'),
          h('pre', null, JSON.stringify(body, null, 2)), confirmButton, ' ',
          h('button', { type: 'button', onclick: () => clear(box) }, 'Cancel')));
      } }, h('h2', null, title));
      for (const [name, label, kind] of fields) {
        const input = kind === 'area' ? h('textarea', { name: name, id: action + '-' + name }) : h('input', { name: name, id: action + '-' + name, size: 40 });
        inputs[name] = input;
        f.append(h('div', { class: 'row' }, h('label', { for: action + '-' + name }, label), input));
      }
      f.append(h('button', { type: 'submit' }, 'Review ' + action + '…'), box);
      return f;
    }
    function json(text, what) {
      if (!text.trim()) return undefined;
      try { return JSON.parse(text); } catch (e) { throw new Error(what + ' is not valid JSON: ' + e.message); }
    }
    panel.append(h('div', { class: 'grid' },
      form('apply', 'Append an event', [['event_type', 'event type'], ['payload', 'payload (JSON object)', 'area'], ['note', 'note'], ['metadata', 'metadata (JSON, @-keys)', 'area']],
        i => ({ event_type: i.event_type.value.trim(), payload: json(i.payload.value, 'payload') || {}, note: i.note.value || undefined, metadata: json(i.metadata.value, 'metadata') })),
      form('patch', 'Patch the state', [['event_type', 'event type'], ['patch', 'RFC 6902 operations (JSON array)', 'area'], ['note', 'note']],
        i => ({ event_type: i.event_type.value.trim(), patch: json(i.patch.value, 'patch') || [], note: i.note.value || undefined })),
      form('archive', 'Archive', [['comment', 'comment']], i => ({ comment: i.comment.value || undefined })),
      form('restore', 'Restore', [], () => ({}))), out);
    return panel;
  }

  // ---------------------------------------------------------------- routing
  let cleanup = [];
  function go(route) { location.hash = '#' + route; }
  function route() {
    generation++;
    cleanup.forEach(f => f());
    cleanup = [];
    dropCharts();
    stopListening();
    delete document.body.dataset.painted;
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, search] = hash.split('?');
    const params = new URLSearchParams(search || '');
    const parts = path.split('/').filter(p => p !== '').map(p => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    if (parts[0] === 't' && parts.length === 2) return typePage(parts[1], params);
    if (parts[0] === 'a' && parts.length === 3) return aggregatePage(parts[1], parts[2], params);
    if (parts.length === 0) return overview();
    clear(main()).append(h('p', { class: 'error' }, 'No such page: ' + hash), link('/', 'to the overview'));
  }

  let sessionReady = null;
  async function start() {
    // The session is read alongside the first page's data, not before it.
    sessionReady = api('session');
    sessionReady.catch(err => clear(main()).append(errorBox(err)));
    document.getElementById('jump').addEventListener('submit', e => {
      e.preventDefault();
      const type = document.getElementById('jump-type').value.trim();
      const id = document.getElementById('jump-id').value.trim();
      if (type && id) go(aggRoute(type, id));
      else if (type) go(typeRoute(type));
    });
    window.addEventListener('hashchange', route);
    route();
    try { session = await sessionReady; } catch (err) { return; }
    document.getElementById('server').textContent = session.server + (session.tenant ? ' · tenant ' + session.tenant : '');
    const mode = document.getElementById('mode');
    mode.textContent = session.allow_writes ? 'writes allowed' : 'read-only';
    mode.className = 'badge ' + (session.allow_writes ? 'warn' : 'ok');
  }
  start();
})();
