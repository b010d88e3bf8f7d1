// Arsenal dashboard: plain JavaScript, no dependencies. Every value from
// the API reaches the page as text (textContent / text nodes), never as
// markup. Each view polls only while it is open, and only what has no
// event in the feed.
'use strict';

// ---------- DOM helpers ----------

// el('td', {class: 'num'}, 'text', childNode…): strings become text nodes.
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}
const $ = (id) => document.getElementById(id);

function fmtBytes(n) {
  if (n === undefined || n === null) return null;
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}
function fmtMS(ms) {
  if (ms === undefined || ms === null) return null;
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
}
function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleTimeString();
}
// A measured value, or a mark saying it was not measured.
function measured(v, title) {
  return v === null || v === undefined
    ? el('span', {class: 'muted', title: title || 'not measured'}, 'not measured')
    : v;
}
function nodeOfPID(pid) { const i = String(pid).indexOf('@'); return i < 0 ? '' : pid.slice(i + 1); }
function pidLink(pid) {
  return pid ? el('a', {href: '#/process/' + encodeURIComponent(pid)}, pid) : '';
}
function stat(s) { return el('span', {class: String(s), 'data-status': s}, s); }

// ---------- API ----------

const tokenKey = 'arsenal.token';
function token() { return sessionStorage.getItem(tokenKey) || ''; }

// api returns {ok, status, data, meta, error}; it never throws.
async function api(method, path, body, signal) {
  const headers = {Accept: 'application/json'};
  if (token()) headers.Authorization = 'Bearer ' + token();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(path, {method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (err) {
    return {ok: false, status: 0, error: {code: 'network', message: 'the node serving this page did not answer: ' + err.message}};
  }
  let j = {};
  try { j = await resp.json(); } catch (_) {
    return {ok: false, status: resp.status, error: {code: 'bad_answer', message: 'HTTP ' + resp.status + ' without a JSON body'}};
  }
  return {ok: resp.ok, status: resp.status, data: j.data, meta: j.meta || {}, error: j.error};
}
const get = (path, signal) => api('GET', path, undefined, signal);
function qs(o) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(o)) if (v !== '' && v !== undefined && v !== null) p.set(k, v);
  const s = p.toString();
  return s ? '?' + s : '';
}

function errorBox(r, what) {
  const e = r.error || {};
  const lines = [what + ' failed: HTTP ' + r.status + ' ' + (e.code || '') + ': ' + (e.message || '')];
  for (const d of (e.details || [])) lines.push(' • ' + (d.field || '') + ': ' + (d.reason || ''));
  return el('div', {class: 'banner', role: 'alert'}, lines.map((l) => el('div', {}, l)));
}
// The nodes that did not answer a cluster-wide read, said plainly.
function unreachable(meta) {
  const u = (meta && meta.unreachable_nodes) || {};
  const names = Object.keys(u).sort();
  if (!names.length) return null;
  return el('div', {class: 'banner', 'data-test': 'unreachable'},
    el('strong', {}, 'Did not answer (' + names.length + '): '),
    el('ul', {}, names.map((n) => el('li', {}, el('b', {}, n), ' — ', u[n]))));
}

// Server-sent events read with fetch, so the token can be sent; it
// resumes with Last-Event-ID after a break.
function feed(path, onEvent, onState) {
  const ctl = new AbortController();
  let last = '';
  (async () => {
    while (!ctl.signal.aborted) {
      const headers = {Accept: 'text/event-stream'};
      if (token()) headers.Authorization = 'Bearer ' + token();
      if (last) headers['Last-Event-ID'] = last;
      const asked = last; // the id this connection asked to resume after ('' for a first one)
      try {
        const resp = await fetch(path, {headers, signal: ctl.signal});
        if (!resp.ok) throw new Error('HTTP ' + resp.status);
        onState('connected');
        const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i); buf = buf.slice(i + 2);
            let id = '', name = 'message', data = '';
            for (const line of frame.split('\n')) {
              if (line.startsWith('id: ')) id = line.slice(4);
              else if (line.startsWith('event: ')) name = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (!data) continue;
            if (id) last = id;
            let v; try { v = JSON.parse(data); } catch (_) { continue; }
            onEvent(name, id, v, asked);
          }
        }
        onState('ended; reconnecting');
      } catch (err) {
        if (ctl.signal.aborted) return;
        onState('disconnected (' + err.message + '); retrying');
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return () => ctl.abort();
}

// ---------- views ----------

// A view gets its container and the route's parameters and returns a
// function that stops everything it started (polls, feeds).
function poller(ms, fn) {
  let stopped = false, timer = 0;
  const run = async () => {
    if (stopped) return;
    if (!document.hidden) await fn();
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return {stop() { stopped = true; clearTimeout(timer); }, now() { clearTimeout(timer); run(); }};
}

// ----- keyboard -----
// A table of data (role grid) or a tree is one tab stop with a roving
// focus: one row or item has tabindex 0, the rest (and their links) -1.
// The focused one is found again, by its key, when a refresh re-renders
// the widget, so a poll does not throw the keyboard user out.
let kbd = null; // {nav, key} of the focused row or tree item
document.addEventListener('focusin', (e) => {
  const it = e.target.closest && e.target.closest('[data-nav-key]');
  kbd = it ? {nav: it.closest('[data-nav]').dataset.nav, key: it.dataset.navKey} : null;
});
document.addEventListener('pointerdown', (e) => { if (!e.target.closest('[data-nav]')) kbd = null; });
function roving(widget, nav, items) {
  widget.dataset.nav = nav;
  for (const it of items) {
    it.tabIndex = -1;
    for (const a of it.querySelectorAll('a, button')) a.tabIndex = -1;
  }
  const keep = kbd && kbd.nav === nav ? items.find((it) => it.dataset.navKey === kbd.key) : null;
  if (items.length) (keep || items[0]).tabIndex = 0;
  // Focus on a removed element falls back to the body: take it back.
  if (keep) queueMicrotask(() => { if (widget.isConnected && document.activeElement === document.body) keep.focus({preventScroll: true}); });
}
function moveFocus(widget, to) {
  if (!to) return;
  for (const x of widget.querySelectorAll('[data-nav-key][tabindex="0"]')) x.tabIndex = -1;
  to.tabIndex = 0; to.focus();
}
// Rows: ↑ ↓ one row, PageUp PageDown ten, Home End the first and last,
// Enter opens the row's first link.
function gridKeys(tbl, nav) {
  const rows = [...tbl.tBodies[0].rows];
  if (!rows.length || !rows[0].dataset.navKey) return;
  tbl.setAttribute('role', 'grid');
  roving(tbl, nav, rows);
  tbl.tBodies[0].addEventListener('keydown', (e) => {
    const cur = e.target.closest('tr'), i = rows.indexOf(cur);
    if (i < 0 || e.altKey || e.ctrlKey || e.metaKey) return;
    const to = {ArrowDown: i + 1, ArrowUp: i - 1, PageDown: i + 10, PageUp: i - 10, Home: 0, End: rows.length - 1}[e.key];
    if (to !== undefined) { e.preventDefault(); moveFocus(tbl, rows[Math.max(0, Math.min(rows.length - 1, to))]); }
    else if (e.key === 'Enter' && e.target === cur && cur.querySelector('a')) { e.preventDefault(); cur.querySelector('a').click(); }
  });
}
// Trees (WAI-ARIA tree view): ↑ ↓ the previous and next visible item,
// → expands or goes to the first child, ← collapses or goes to the
// parent, Home End, Enter opens the item's process.
function treeKeys(tree) {
  tree.addEventListener('keydown', (e) => {
    const cur = e.target.closest('[role=treeitem]');
    if (!cur || e.altKey || e.ctrlKey || e.metaKey) return;
    const vis = [...tree.querySelectorAll('[role=treeitem]')].filter((li) => !li.parentElement.closest('[aria-expanded=false]'));
    const i = vis.indexOf(cur), open = cur.getAttribute('aria-expanded');
    let to = null;
    switch (e.key) {
      case 'ArrowDown': to = vis[i + 1]; break;
      case 'ArrowUp': to = vis[i - 1]; break;
      case 'Home': to = vis[0]; break;
      case 'End': to = vis[vis.length - 1]; break;
      case 'ArrowRight': if (open === 'false') cur.setAttribute('aria-expanded', 'true'); else if (open) to = cur.querySelector('[role=treeitem]'); break;
      case 'ArrowLeft': if (open === 'true') cur.setAttribute('aria-expanded', 'false'); else to = cur.parentElement.closest('[role=treeitem]'); break;
      case 'Enter': if (e.target !== cur) return; to = null; { const a = cur.querySelector(':scope > .item a'); if (a) a.click(); } break;
      default: return;
    }
    e.preventDefault();
    moveFocus(tree, to);
  });
}

// A table; its rows get keyboard navigation, keyed by their first data-*
// attribute (a PID, a node) or their position.
function table(headers, rows, attrs) {
  const t = el('table', attrs || {},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {scope: 'col'}, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', {colspan: headers.length, class: 'muted'}, 'none'))));
  for (const [i, r] of rows.entries()) r.dataset.navKey = Object.values(r.dataset)[0] || String(i);
  if (rows.length) gridKeys(t, (attrs && attrs['data-test']) || headers[0]);
  return el('div', {class: 'scroll'}, t);
}
function updated(box, ok) {
  box.replaceChildren(ok
    ? el('span', {class: 'muted'}, 'updated ' + new Date().toLocaleTimeString())
    : el('span', {class: 'banner'}, 'last refresh failed at ' + new Date().toLocaleTimeString() + '; showing what was last received'));
}

// ----- Cluster -----
function viewCluster(main) {
  const head = el('div'), nodes = el('div'), matrix = el('div'), hist = el('div'), status = el('div'), errs = el('div');
  const feedState = el('span', {class: 'muted', 'data-test': 'feed-state'}, 'connecting…');
  const events = el('ol', {class: 'feed', 'data-test': 'events', reversed: true});
  main.append(el('h1', {}, 'Cluster'), status, errs, head,
    el('h2', {}, 'Nodes'), nodes,
    el('h2', {}, 'Who sees whom'), el('p', {class: 'note'}, 'Each row is one node\'s own view of every member; rows that disagree show one-way or partial partitions.'), matrix,
    el('h2', {}, 'Health history per node'), hist,
    el('h2', {}, 'Events '), feedState, events);

  async function refresh() {
    const [top, health, views] = await Promise.all([
      get('/api/v1/cluster/topology?include_health=true&include_processes=true'),
      get('/api/v1/cluster/health?include_metrics=true&include_history=true&history_limit=120'),
      get('/api/v1/cluster/membership-views'),
    ]);
    updated(status, top.ok && health.ok && views.ok);
    // A failed call says so above; each section keeps what it last had.
    errs.replaceChildren(...[[top, 'cluster.topology'], [health, 'cluster.health'], [views, 'cluster.membership_views']]
      .filter(([r]) => !r.ok).map(([r, what]) => errorBox(r, what)));
    if (top.ok) renderHead(top);
    if (top.ok) renderNodes(top, health.ok ? health : null);
    if (views.ok) renderMatrix(views);
    if (health.ok) renderHistory(health.data.history || []);
  }
  function renderHead(top) {
    const d = top.data, p = d.partition_status || {};
    const modes = {single_node: 'single node', multi_node: 'multi node', simulated: 'simulated (network simulated in one process)'};
    head.replaceChildren(el('dl', {class: 'kv'},
      el('dt', {}, 'Cluster'), el('dd', {}, d.cluster_name),
      el('dt', {}, 'Answering node'), el('dd', {}, d.current_node),
      el('dt', {}, 'Mode'), el('dd', {'data-test': 'mode'}, modes[d.mode] || d.mode),
      el('dt', {}, 'Partition'), el('dd', {'data-test': 'partition'}, stat(p.state || 'unknown'),
        ' — ' + p.up + ' of ' + p.expected + ' counted members up' + (p.tie_break ? ' (decided by the tie-break)' : '')),
      el('dt', {}, 'Members'), el('dd', {}, d.alive_nodes + ' alive, ' + d.suspect_nodes + ' suspect, ' + d.total_nodes + ' known'),
      el('dt', {}, 'Formed'), el('dd', {}, fmtTime(d.formed_at))));
  }
  function renderNodes(top, health) {
    const hmap = {};
    if (health) for (const n of health.data.nodes || []) hmap[n.node] = n;
    const facts = top.data.node_health || {}, dist = top.data.process_distribution || {};
    const rows = (top.data.nodes || []).map((n) => {
      const up = n.status === 'alive' || n.status === 'suspect';
      const gone = (top.meta.unreachable_nodes || {})[n.name];
      // A node that is down has no current numbers: its last ones are not shown as if they were.
      const f = up ? (facts[n.name] || {}).facts : null, h = hmap[n.name];
      const procs = gone || !up ? null : dist[n.name] ? dist[n.name].count : (f ? f.processes : null);
      return el('tr', {'data-node': n.name},
        el('th', {scope: 'row'}, n.name, n.self ? ' (this node)' : ''),
        el('td', {}, stat(n.status)),
        el('td', {class: 'num'}, n.incarnation),
        el('td', {class: 'num'}, measured(f ? fmtMS(f.uptime_ms) : null, 'no facts collected')),
        el('td', {class: 'num', 'data-test': 'procs'}, procs === null ? measured(null, gone || 'node is ' + n.status)
          : el('a', {href: '#/processes' + qs({node: n.name}), title: 'the processes of ' + n.name}, String(procs))),
        el('td', {class: 'num'}, measured(f ? fmtBytes(f.heap_alloc_bytes) : null, 'no facts collected')),
        el('td', {class: 'num'}, measured(h && h.cpu_percent !== undefined ? h.cpu_percent.toFixed(1) + ' %' : null, 'not yet two CPU samples')),
        el('td', {class: 'num'}, h ? String(h.score) : el('span', {class: 'muted'}, 'not scored')),
        el('td', {}, h && h.issues.length ? el('ul', {}, h.issues.map((i) => el('li', {}, i))) : (h ? 'no issues' : '')));
    });
    nodes.replaceChildren(unreachable(top.meta) || '',
      table(['Node', 'Status', 'Incarnation', 'Uptime', 'Processes', 'Heap', 'CPU', 'Health', 'Reasons'], rows, {'data-test': 'nodes'}),
      health ? el('p', {}, 'Overall: ', stat(health.data.overall_status), ' ',
        (health.data.recommendations || []).join(' ')) : '');
  }
  function renderMatrix(views) {
    const vs = views.data.views || [];
    const names = new Set();
    for (const v of vs) for (const m of v.members) names.add(m.name);
    const u = views.meta.unreachable_nodes || {};
    for (const n of Object.keys(u)) names.add(n);
    const cols = [...names].sort();
    const byObs = {};
    for (const v of vs) byObs[v.observer] = v;
    const rows = [...new Set([...vs.map((v) => v.observer), ...Object.keys(u)])].sort().map((obs) => {
      const v = byObs[obs];
      if (!v) return el('tr', {'data-observer': obs}, el('th', {scope: 'row'}, obs),
        el('td', {colspan: cols.length + 1, class: 'absent', 'data-test': 'no-answer'}, 'did not answer: ' + u[obs]));
      const mine = {};
      for (const m of v.members) mine[m.name] = m;
      return el('tr', {'data-observer': obs}, el('th', {scope: 'row'}, obs),
        cols.map((c) => {
          const m = mine[c];
          return m ? el('td', {class: m.status, 'data-target': c, title: 'since ' + fmtTime(m.since) + ', incarnation ' + m.incarnation}, m.status)
            : el('td', {class: 'absent', 'data-target': c}, 'unknown');
        }),
        el('td', {}, stat(v.partition_status.state)));
    });
    matrix.replaceChildren(table(['observer ↓ / member →', ...cols, 'its partition'], rows, {'data-test': 'matrix'}));
  }
  // One strip per node from the real history buffer of the answering node
  // (a snapshot every 10 s): bar height and colour are the node's score
  // then; a gap is a snapshot in which the node was not scored. The top
  // strip is the overall status.
  function renderHistory(h) {
    if (!h.length) { hist.replaceChildren(el('p', {class: 'muted'}, 'no snapshot yet (one every 10 s)')); return; }
    const shown = h.slice(-120), ns = 'http://www.w3.org/2000/svg', w = 600, bw = w / 120;
    const band = (sc) => (sc >= 80 ? 'healthy' : sc >= 50 ? 'warning' : sc > 0 ? 'degraded' : 'critical');
    const colors = {healthy: '#2da44e', warning: '#bf8700', degraded: '#cf222e', critical: '#82071e'};
    const strip = (label, ht, bar) => {
      const svg = document.createElementNS(ns, 'svg');
      svg.setAttribute('class', 'history'); svg.setAttribute('viewBox', '0 0 ' + w + ' ' + ht);
      svg.setAttribute('preserveAspectRatio', 'none'); svg.setAttribute('height', ht);
      svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', label);
      shown.forEach((s, i) => {
        const b = bar(s);
        if (!b) return;
        const r = document.createElementNS(ns, 'rect'), y = ht - Math.max(3, b.frac * ht); // a score of 0 stays visible
        r.setAttribute('x', (120 - shown.length + i) * bw); r.setAttribute('y', y); r.setAttribute('width', bw - 1); r.setAttribute('height', ht - y);
        r.setAttribute('fill', colors[b.status] || '#888');
        const t = document.createElementNS(ns, 'title');
        t.textContent = fmtTime(s.time) + ': ' + b.text;
        r.append(t); svg.append(r);
      });
      return svg;
    };
    const names = [...new Set(shown.flatMap((s) => Object.keys(s.node_scores || {})))].sort();
    const row = (name, svg, now) => el('div', {class: 'hrow', 'data-history': name}, el('span', {class: 'hlabel'}, name), svg, el('span', {class: 'muted'}, now));
    const last = shown[shown.length - 1];
    hist.replaceChildren(
      row('overall', strip('overall status of the last ' + shown.length + ' snapshots', 12, (s) =>
        ({frac: 1, status: s.overall_status, text: s.overall_status + ', ' + s.nodes_up + '/' + s.nodes_total + ' up, partition ' + s.partition})), last.overall_status + ' at ' + fmtTime(last.time)),
      ...names.map((n) => row(n, strip('score of ' + n + ' in the last ' + shown.length + ' snapshots', 40, (s) => {
        const sc = (s.node_scores || {})[n];
        return sc === undefined ? null : {frac: sc / 100, status: band(sc), text: n + ' score ' + sc};
      }), (last.node_scores && last.node_scores[n] !== undefined ? 'score ' + last.node_scores[n] : 'not scored') + ' at ' + fmtTime(last.time))),
      el('p', {class: 'note'}, 'The last ' + shown.length + ' snapshots of this node\'s history buffer (one every 10 s, as ' +
        'this node saw the cluster); bar height and colour: the node\'s score then, a gap: not scored. Hover a bar for its numbers.'));
  }

  let soon = 0;
  const p = poller(5000, refresh);
  const stopFeed = feed('/api/v1/cluster/events', (name, id, v, asked) => {
    if (name === 'shutdown') { feedState.textContent = 'the node is shutting down'; return; }
    let text;
    if (name === 'topology') text = 'snapshot: ' + (v.topology.nodes || []).length + ' members' + (v.resume_failed ? ' (resync: resuming after #' + asked + ' was not possible)' : '');
    else text = v.type + (v.node ? ' ' + v.node : '') + (v.old_status ? ' ' + v.old_status + ' → ' + v.new_status : '') +
      (v.old_partition ? ' partition ' + v.old_partition + ' → ' + (v.partition ? v.partition.state : '') : '') +
      (v.old_mode ? ' mode ' + v.old_mode + ' → ' + v.mode : '') + (v.restarted ? ' (restarted)' : '');
    events.prepend(el('li', {'data-id': id, 'data-type': name}, '#' + id + ' ' + fmtTime(v.time || new Date()) + ' ' + text));
    while (events.children.length > 200) events.lastChild.remove();
    if (name !== 'topology') { clearTimeout(soon); soon = setTimeout(p.now, 200); }
  }, (s) => { feedState.textContent = 'live feed: ' + s; });
  return () => { p.stop(); stopFeed(); clearTimeout(soon); };
}

// ----- Processes -----
const procDefaults = {node: '', behaviour: '', name: '', status: '', min_mailbox: '', sort: 'pid', limit: '100', offset: '0'};
function viewProcesses(main, params) {
  const st = {...procDefaults};
  for (const k of Object.keys(procDefaults)) if (params.has(k)) st[k] = params.get(k);
  const input = (k, label, attrs) => el('label', {}, label, el('input', {name: k, value: st[k], ...attrs}));
  const nodeSel = el('select', {name: 'node'}, el('option', {value: ''}, 'all nodes'));
  if (st.node) nodeSel.append(el('option', {value: st.node, selected: true}, st.node));
  const select = (k, opts) => el('select', {name: k}, opts.map(([v, t]) => el('option', {value: v, selected: st[k] === v}, t)));
  const form = el('form', {class: 'filters', role: 'search', 'data-test': 'filters'},
    el('label', {}, 'Node', nodeSel),
    input('behaviour', 'Behaviour contains', {size: 14}),
    input('name', 'Name (regular expression)', {size: 16, type: 'search'}),
    el('label', {}, 'Status', select('status', [['', 'any'], ['running', 'running'], ['waiting', 'waiting'], ['exiting', 'exiting']])),
    input('min_mailbox', 'Min mailbox', {size: 6, type: 'number', min: 0}),
    el('label', {}, 'Sort', select('sort', [['pid', 'pid'], ['mailbox', 'mailbox (largest first)'], ['messages', 'messages (most first)'], ['restarts', 'restarts (most first)'], ['age', 'age (oldest first)']])),
    el('label', {}, 'Per page', select('limit', [['50', '50'], ['100', '100'], ['500', '500']])),
    el('button', {type: 'submit'}, 'Apply'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const fd = new FormData(form), next = {};
    for (const k of Object.keys(procDefaults)) next[k] = fd.get(k) || '';
    next.offset = '0';
    go('processes', next);
  });
  const summary = el('p', {'data-test': 'summary', role: 'status'}, 'loading…');
  const hint = el('p', {class: 'note'}, 'Keyboard: Tab into the list, ↑ ↓ Page Up/Down Home End move, Enter opens the process.');
  const bad = el('div'), body = el('div'), status = el('div'), pager = el('div', {class: 'actions'});
  main.append(el('h1', {}, 'Processes'), form, summary, bad, pager, body, hint, status);
  get('/api/v1/cluster/topology?include_health=false').then((r) => {
    if (!r.ok) return;
    for (const n of r.data.nodes) if (n.name !== st.node) nodeSel.append(el('option', {value: n.name}, n.name + ' (' + n.status + ')'));
  });
  const q = {...st};
  if (q.min_mailbox === '0') q.min_mailbox = '';
  let marked = false; // the first render is marked for the measurements of docs/BENCHMARKS.md
  async function refresh() {
    const r = await get('/api/v1/cluster/processes' + qs(q));
    updated(status, r.ok);
    if (!r.ok) { bad.replaceChildren(errorBox(r, 'cluster.processes')); return; }
    bad.replaceChildren(unreachable(r.meta) || '');
    const ps = r.data.processes, off = Number(st.offset), lim = Number(st.limit);
    summary.textContent = ps.length
      ? 'Showing ' + (off + 1) + '–' + (off + ps.length) + ' of ' + r.data.total + ' (true total of matching processes on ' + (r.meta.nodes_queried || []).length + ' nodes that answered)'
      : 'Showing 0 of ' + r.data.total;
    summary.dataset.total = r.data.total; summary.dataset.shown = ps.length;
    if (!marked) { marked = true; requestAnimationFrame(() => performance.mark('arsenal:processes-rendered')); }
    body.replaceChildren(table(['PID', 'Node', 'Name', 'Behaviour', 'Status', 'Mailbox', 'In', 'Out', 'Restarts', 'Started'],
      ps.map((p) => el('tr', {'data-pid': p.pid},
        el('td', {}, pidLink(p.pid)), el('td', {}, nodeOfPID(p.pid)), el('td', {class: 'pname'}, p.name || ''),
        el('td', {}, p.behaviour, p.supervisor ? ' (supervisor)' : '', p.system ? ' (system)' : ''), el('td', {}, stat(p.status)),
        el('td', {class: 'num'}, p.mailbox_len), el('td', {class: 'num'}, p.messages_in), el('td', {class: 'num'}, p.messages_out),
        el('td', {class: 'num'}, p.restarts), el('td', {}, fmtTime(p.started_at)))), {'data-test': 'processes'}));
    pager.replaceChildren(
      el('button', {type: 'button', disabled: off <= 0, 'data-test': 'prev', onclick: () => go('processes', {...st, offset: String(Math.max(0, off - lim))})}, '← Previous'),
      el('button', {type: 'button', disabled: off + lim >= r.data.total, 'data-test': 'next', onclick: () => go('processes', {...st, offset: String(off + lim)})}, 'Next →'));
  }
  const p = poller(5000, refresh);
  return () => p.stop();
}

// ----- Process -----
function confirmAction(title, text, okLabel) {
  const d = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = okLabel;
  d.returnValue = 'cancel';
  d.showModal();
  $('confirm-cancel').focus();
  return new Promise((res) => d.addEventListener('close', () => res(d.returnValue === 'ok'), {once: true}));
}

function viewProcess(main, params, pid) {
  const info = el('div'), sib = el('div'), out = el('div', {role: 'status', 'data-test': 'action-result'}), status = el('div');
  const traceBox = el('div');
  main.append(el('h1', {}, 'Process ', el('span', {'data-test': 'pid'}, pid)), status, info, out);
  let last = null, traceID = '', tracePoll = null;
  const enc = encodeURIComponent(pid);
  const acts = el('div', {class: 'actions'});
  main.append(el('h2', {}, 'Actions'), acts, el('h2', {}, 'Trace'), traceBox, el('h2', {}, 'Supervisor\'s children'), sib);

  function say(r, what) {
    out.replaceChildren(r.ok ? el('p', {class: 'up'}, what + ': done. ', JSON.stringify(r.data)) : errorBox(r, what));
  }
  function renderActions(p) {
    const operator = !!token();
    const protectedWhy = p.supervisor ? 'a supervisor: killing it stops all its children' : p.system ? 'a system process of the node' : '';
    const sup = p.parent && last && last.parentIsSupervisor;
    const force = el('input', {type: 'checkbox', id: 'force'});
    const kill = el('button', {class: 'danger', 'data-test': 'kill', disabled: !operator, onclick: async () => {
      const what = 'Kill ' + pid + ' (reason "kill"). ' + (sup ? 'Its supervisor ' + p.parent + ' will restart it according to its restart type.' : 'It has no supervisor: it will not come back.') +
        (protectedWhy ? ' It is protected (' + protectedWhy + '); force is ' + (force.checked ? 'on.' : 'off, so the node will refuse.') : '');
      if (!await confirmAction('Kill this process?', what, 'Kill')) { out.replaceChildren(el('p', {}, 'Kill cancelled.')); return; }
      say(await api('DELETE', '/api/v1/processes/' + enc + qs({force: force.checked ? 'true' : ''})), 'kill');
      pp.now();
    }}, 'Kill…');
    const restart = el('button', {class: 'danger', 'data-test': 'restart', disabled: !operator || !sup, onclick: async () => {
      if (!await confirmAction('Restart this process?', 'Ask its supervisor ' + p.parent + ' to stop ' + pid + ' and start it again (a new PID).', 'Restart')) {
        out.replaceChildren(el('p', {}, 'Restart cancelled.')); return;
      }
      say(await api('POST', '/api/v1/processes/' + enc + '/restart'), 'restart');
      pp.now();
    }}, 'Restart through its supervisor…');
    const msg = el('textarea', {rows: 2, cols: 40, 'aria-label': 'message (JSON object)'}, '{"ping": 1}');
    const mode = el('select', {'aria-label': 'mode'}, ['send', 'cast', 'call'].map((m) => el('option', {value: m}, m)));
    const send = el('button', {disabled: !operator, onclick: async () => {
      let m; try { m = JSON.parse(msg.value); } catch (e) { out.replaceChildren(el('div', {class: 'banner'}, 'not JSON: ' + e.message)); return; }
      say(await api('POST', '/api/v1/processes/' + enc + '/message', {message: m, mode: mode.value}), 'send');
    }}, 'Send');
    acts.replaceChildren(
      operator ? '' : el('p', {class: 'note'}, 'Log in with an operator token to send, kill, restart or trace.'),
      protectedWhy ? el('p', {class: 'note', 'data-test': 'protected'}, 'Protected: this is ' + protectedWhy + '. A kill needs force.') : '',
      el('fieldset', {}, el('legend', {}, 'Kill'), protectedWhy ? el('label', {}, force, ' force') : '', kill),
      el('fieldset', {}, el('legend', {}, 'Restart'), sup ? '' : el('span', {class: 'note'}, 'no supervisor '), restart),
      el('fieldset', {}, el('legend', {}, 'Send a message'), msg, mode, send));
  }
  function renderTrace() {
    const start = el('button', {'data-test': 'trace-start', disabled: !token() || !!traceID, onclick: async () => {
      const r = await api('POST', '/api/v1/processes/' + enc + '/trace', {duration: '60s', max_events: 1000});
      if (!r.ok) { traceBox.append(errorBox(r, 'trace')); return; }
      traceID = r.data.trace_id; renderTrace();
      tracePoll = poller(1000, readTrace);
    }}, 'Start trace (60 s, 1000 events)');
    const stop = el('button', {'data-test': 'trace-stop', 'data-keep': true, disabled: !traceID, onclick: async () => {
      if (tracePoll) tracePoll.stop();
      const r = await api('DELETE', '/api/v1/traces/' + encodeURIComponent(traceID));
      if (r.ok) showTrace(r.data); else traceBox.append(errorBox(r, 'trace stop'));
      traceID = ''; start.disabled = !token(); stop.disabled = true;
    }}, 'Stop');
    traceBox.replaceChildren(el('div', {class: 'actions'}, start, stop, traceID ? el('span', {}, 'trace ' + traceID) : ''), el('div', {id: 'trace-events'}));
  }
  function showTrace(t) {
    const box = $('trace-events');
    if (!box) return;
    box.replaceChildren(el('p', {'data-test': 'trace-count'}, t.events.length + ' events' + (t.running ? ' (running)' : ' (stopped: ' + (t.stop_reason || '') + ')')),
      table(['Time', 'Dir', 'Kind', 'Peer', 'Type', 'Message'], t.events.slice(-200).reverse().map((e) =>
        el('tr', {}, el('td', {}, fmtTime(e.time)), el('td', {}, e.direction), el('td', {}, e.kind), el('td', {}, pidLink(e.peer)),
          el('td', {}, e.type || ''), el('td', {}, e.message)))));
  }
  async function readTrace() {
    if (!traceID) return;
    const r = await get('/api/v1/traces/' + encodeURIComponent(traceID));
    if (r.ok) { showTrace(r.data); if (!r.data.running && tracePoll) tracePoll.stop(); }
    else if ($('trace-events')) $('trace-events').replaceChildren(errorBox(r, 'trace.get'));
  }

  async function refresh() {
    const r = await get('/api/v1/processes/' + enc + '/info');
    updated(status, r.ok || r.status === 404);
    if (r.status === 404) {
      // Nothing left to act on: the actions say so instead of failing.
      for (const b of main.querySelectorAll('.actions button')) if (!('keep' in b.dataset)) b.disabled = true;
      if (acts.firstChild && !acts.querySelector('[data-test=no-actions]')) acts.prepend(el('p', {class: 'note', 'data-test': 'no-actions'}, 'The process is gone: no action applies to it. Its supervisor\'s children are below.'));
      info.replaceChildren(el('p', {class: 'banner', 'data-test': 'gone'}, 'This process does not exist (any more): ' + (r.error ? r.error.message : '')),
        last ? el('div', {class: 'muted'}, 'Last seen:', kv(last.info)) : '');
    } else if (!r.ok) {
      info.replaceChildren(errorBox(r, 'process.info'), last ? el('div', {class: 'muted'}, 'Last seen:', kv(last.info)) : '');
    } else {
      const first = !last;
      last = {info: r.data, parentIsSupervisor: last ? last.parentIsSupervisor : false};
      info.replaceChildren(kv(r.data));
      if (first) { renderActions(r.data); renderTrace(); }
    }
    const p = last && last.info;
    if (p && p.parent) {
      const t = await get('/api/v1/cluster/supervision-trees' + qs({node: nodeOfPID(p.parent)}));
      if (t.ok) {
        let found = null;
        const walk = (tr) => { if (tr.pid === p.parent) found = tr; for (const c of tr.children) if (c.tree) walk(c.tree); };
        for (const n of t.data.nodes) for (const tr of n.trees) walk(tr);
        if (found && !last.parentIsSupervisor) { last.parentIsSupervisor = true; renderActions(p); }
        sib.replaceChildren(found ? treeTable(found) : el('p', {class: 'muted'}, 'the parent is not a supervisor'));
      } else sib.replaceChildren(errorBox(t, 'cluster.supervision_trees'), sib.querySelector('.scroll') || '');
    } else sib.replaceChildren(el('p', {class: 'muted'}, p ? 'no parent' : ''));
  }
  function kv(p) {
    const row = (k, v) => [el('dt', {}, k), el('dd', {'data-field': k}, v)];
    const pids = (l) => (l && l.length ? l.map((x, i) => [i ? ', ' : '', pidLink(x)]) : 'none');
    return el('dl', {class: 'kv'},
      row('status', stat(p.status)), row('name', p.name || '(none)'), row('behaviour', p.behaviour),
      row('mailbox', String(p.mailbox_len)), row('messages in / out', p.messages_in + ' / ' + p.messages_out),
      row('parent', p.parent ? pidLink(p.parent) : 'none'), row('links', pids(p.links)),
      row('monitors', pids(p.monitors)), row('monitored by', pids(p.monitored_by)),
      row('restarts', String(p.restarts)), row('started', new Date(p.started_at).toLocaleString()),
      row('traps exits', String(p.trap_exits)), row('supervisor / system', String(p.supervisor) + ' / ' + String(p.system)),
      row('current call', p.current_call ? JSON.stringify(p.current_call) : 'none'));
  }
  const pp = poller(2000, refresh);
  return () => { pp.stop(); if (tracePoll) tracePoll.stop(); };
}

// ----- Supervision trees -----
function treeTable(tr) {
  return table(['Child id', 'PID', 'State', 'Restart', 'Restarts', 'Behaviour', 'Mailbox'], tr.children.map((c) =>
    el('tr', {'data-child': c.id}, el('td', {}, c.id), el('td', {'data-test': 'child-pid'}, pidLink(c.pid)), el('td', {}, stat(c.state)),
      el('td', {}, c.restart), el('td', {class: 'num'}, c.restarts), el('td', {}, c.behaviour || c.type), el('td', {class: 'num'}, c.mailbox_len))));
}
// A supervisor and its children as items of a WAI-ARIA tree: a click on
// the marker or ← → collapse and expand it.
function treeNode(tr, closed) {
  const li = el('li', {role: 'treeitem', 'aria-expanded': closed.has(tr.pid) ? 'false' : 'true', 'data-sup': tr.pid, 'data-nav-key': tr.pid},
    el('div', {class: 'item'},
      el('span', {class: 'twisty', 'aria-hidden': 'true', onclick: () => li.setAttribute('aria-expanded', li.getAttribute('aria-expanded') === 'true' ? 'false' : 'true')}),
      el('b', {}, tr.name || 'supervisor'), ' ', pidLink(tr.pid), ' — ' + tr.strategy + ', at most ' + tr.max_restarts +
      ' restarts in ' + fmtMS(tr.period_ms) + ', ' + tr.total_restarts + ' restarts so far, ' + tr.children.length + ' children' + (tr.truncated ? ' (deeper levels not shown)' : '')),
    el('ul', {role: 'group'}, tr.children.map((c) => c.tree ? treeNode(c.tree, closed)
      : el('li', {role: 'treeitem', 'data-nav-key': c.pid || c.id, 'data-pid': c.pid || ''}, el('div', {class: 'item'},
        c.id + ' ', pidLink(c.pid), ' ', stat(c.state), ' ' + c.restart + ', ' + c.restarts + ' restarts' + (c.name ? ', name ' : ''), c.name || '')))));
  return li;
}
function viewTrees(main) {
  const body = el('div'), status = el('div'), errs = el('div');
  main.append(el('h1', {}, 'Supervision trees'), status, errs,
    el('p', {class: 'note'}, 'Keyboard: Tab into a tree, ↑ ↓ move, → expands, ← collapses, Enter opens the process.'), body);
  const p = poller(10000, async () => {
    const r = await get('/api/v1/cluster/supervision-trees');
    updated(status, r.ok);
    errs.replaceChildren(r.ok ? '' : errorBox(r, 'cluster.supervision_trees'));
    if (!r.ok) return;
    // What was collapsed stays collapsed across refreshes.
    const closed = new Set([...body.querySelectorAll('[aria-expanded=false]')].map((li) => li.dataset.sup));
    body.replaceChildren(unreachable(r.meta) || '', ...r.data.nodes.map((n) => {
      if (!n.trees.length) return el('section', {'data-node': n.node}, el('h2', {}, n.node + ' — no supervisors'));
      const tree = el('ul', {role: 'tree', class: 'tree', 'aria-label': 'supervision trees of ' + n.node}, n.trees.map((t) => treeNode(t, closed)));
      roving(tree, 'tree:' + n.node, [...tree.querySelectorAll('[role=treeitem]')]);
      treeKeys(tree);
      return el('section', {'data-node': n.node}, el('h2', {}, n.node + ' — ' + n.trees.length + ' top-level supervisors'), tree);
    }));
  });
  return () => p.stop();
}

// ----- Registry and placement -----
function viewRegistry(main) {
  const reg = el('div'), pl = el('div'), status = el('div');
  main.append(el('h1', {}, 'Registry and placement'), status, el('h2', {}, 'Split-brain decision per node'), pl, el('h2', {}, 'Registered names'), reg);
  const p = poller(5000, async () => {
    const [r, q] = await Promise.all([get('/api/v1/cluster/registry'), get('/api/v1/cluster/placement?include_nodes=true')]);
    updated(status, r.ok && q.ok);
    if (r.ok) reg.replaceChildren(el('p', {}, r.data.registrations.length + ' of ' + r.data.total + ' names'),
      table(['Name', 'PID', 'Owner node', 'Generation', 'Registered', 'Meta'], r.data.registrations.map((x) =>
        el('tr', {}, el('td', {class: 'rname'}, x.name), el('td', {}, pidLink(x.pid)), el('td', {}, x.node), el('td', {class: 'num'}, x.gen),
          el('td', {}, fmtTime(x.registered_at)), el('td', {}, Object.entries(x.meta).map(([k, v]) => k + '=' + v).join(' ')))), {'data-test': 'registry'}));
    else reg.replaceChildren(errorBox(r, 'cluster.registry'));
    if (!q.ok) { pl.replaceChildren(errorBox(q, 'cluster.placement')); return; }
    const nodes = q.data.nodes || {};
    pl.replaceChildren(unreachable(q.meta) || '',
      table(['Node', 'Side', 'Why', 'Policy', 'Partition', 'Stable for', 'Children here'], Object.keys(nodes).sort().map((n) => {
        const s = nodes[n];
        return el('tr', {}, el('th', {scope: 'row'}, n), el('td', {}, stat(s.up ? 'up' : 'down')), el('td', {}, s.reason,
          s.pending ? ' (pending: ' + JSON.stringify(s.pending) + ')' : ''), el('td', {}, s.policy + ', ' + s.strategy),
          el('td', {}, s.partition.state + ' ' + s.partition.up + '/' + s.partition.expected), el('td', {}, fmtMS(s.stable_for_ms)),
          el('td', {class: 'num'}, s.local_children));
      }), {'data-test': 'sides'}),
      el('h2', {}, 'Distributed children'),
      table(['Id', 'Kind', 'Name', 'Owner', 'PID', 'Status', 'Restart', 'Starts'], q.data.children.map((c) =>
        el('tr', {}, el('td', {}, c.id), el('td', {}, c.kind), el('td', {}, c.name || ''), el('td', {}, c.node), el('td', {}, pidLink(c.pid)),
          el('td', {}, stat(c.status)), el('td', {}, c.restart), el('td', {class: 'num'}, c.starts))), {'data-test': 'children'}));
  });
  return () => p.stop();
}

// ---------- router, login ----------

function go(page, params) { location.hash = '#/' + page + qs(params || {}); }
let stopView = () => {};
function route() {
  stopView();
  const h = location.hash.replace(/^#\/?/, '') || 'cluster';
  const qi = h.indexOf('?');
  const path = qi < 0 ? h : h.slice(0, qi), params = new URLSearchParams(qi < 0 ? '' : h.slice(qi + 1));
  const [page, ...rest] = path.split('/');
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === page) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = $('main');
  main.replaceChildren();
  const views = {cluster: viewCluster, processes: viewProcesses, trees: viewTrees, registry: viewRegistry};
  if (page === 'process' && rest.length) stopView = viewProcess(main, params, decodeURIComponent(rest.join('/')));
  else if (views[page]) stopView = views[page](main, params);
  else { main.append(el('p', {}, 'No page ' + page)); stopView = () => {}; }
  document.title = 'Arsenal — ' + page;
}
function showLogin() {
  const t = token();
  $('who').textContent = t ? 'token set (this tab only)' : 'no token: read-only views';
  $('token').hidden = !!t; $('login-btn').hidden = !!t; $('logout-btn').hidden = !t;
}
document.addEventListener('DOMContentLoaded', () => {
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const v = $('token').value.trim();
    if (v) sessionStorage.setItem(tokenKey, v);
    $('token').value = '';
    showLogin(); route();
  });
  $('logout-btn').addEventListener('click', () => { sessionStorage.removeItem(tokenKey); showLogin(); route(); });
  window.addEventListener('hashchange', route);
  showLogin(); route();
});
