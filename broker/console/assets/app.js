// LedgerMQ web console: a single-page application over the broker's JSON
// API (docs/api.md). Everything it shows comes from the API with the
// user's token; every write asks the serving node to forward it to the
// leader (LedgerMQ-Forward: leader). Data is only ever put into the page
// as text (textContent), never as HTML.
'use strict';

(() => {
  const REFRESH_MS = 2000;
  const state = {
    token: sessionStorage.getItem('ledgermq.token') || '',
    view: null,      // the current view: {refresh()}
    viewKey: '',
    rates: {},       // key -> {t, n}: previous counter samples for rates
    timer: null,
    cluster: null,
  };

  // ---- DOM helpers -------------------------------------------------------

  // h builds an element: attrs may hold class, id, type, value, href,
  // text (textContent), on (event handlers) and data-* / other attributes.
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const kid of kids.flat()) {
      if (kid === undefined || kid === null || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  function table(headers, rows, attrs) {
    return h('table', attrs || {},
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { text: x })))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { class: 'empty', colspan: headers.length, text: 'none' }))));
  }

  function td(v, attrs) { return h('td', Object.assign({ text: v === undefined || v === null ? '' : v }, attrs || {})); }
  function num(v) { return td(fmtNum(v), { class: 'num' }); }

  function fmtNum(n) { return n === undefined || n === null ? '' : Number(n).toLocaleString('en-US'); }
  function fmtBytes(n) {
    if (!n) return '0 B';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + ' ' + u[i];
  }
  function fmtMs(ms) {
    if (!ms) return 'unlimited';
    const units = [['d', 86400000], ['h', 3600000], ['m', 60000], ['s', 1000]];
    for (const [u, d] of units) if (ms % d === 0) return ms / d + u;
    return ms + 'ms';
  }
  function fmtRate(r) { return r === null ? '–' : (r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US')) + '/s'; }

  // rate returns the per-second rate of counter n under key since the
  // previous sample (null on the first).
  function rate(key, n) {
    const now = performance.now();
    const prev = state.rates[key];
    state.rates[key] = { t: now, n };
    if (!prev || now - prev.t < 200) return prev && prev.r !== undefined ? prev.r : null;
    const r = Math.max(0, (n - prev.n) * 1000 / (now - prev.t));
    state.rates[key].r = r;
    return r;
  }

  function toast(msg, kind) {
    const el = document.getElementById('toast');
    el.textContent = msg;
    el.className = kind || 'error';
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, kind === 'ok' ? 4000 : 8000);
  }

  function fail(e) {
    if (e && e.status === 401) return showLogin(e.message);
    toast((e && e.code ? e.code + ': ' : '') + (e && e.message ? e.message : String(e)));
  }

  // ---- API ---------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    if (method !== 'GET') headers['LedgerMQ-Forward'] = 'leader';
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const node = r.headers.get('LedgerMQ-Node');
    if (node && method === 'GET') document.getElementById('node').textContent = node;
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const err = new Error(data && data.error ? data.error.message : (text || r.statusText));
      err.code = data && data.error ? data.error.code : 'HTTP_' + r.status;
      err.status = r.status;
      throw err;
    }
    return data;
  }

  const enc = encodeURIComponent;

  // ---- sign in -----------------------------------------------------------

  function showLogin(msg) {
    document.getElementById('login').hidden = false;
    document.getElementById('view').hidden = true;
    if (msg && state.token) toast(msg);
  }

  async function whoami() {
    try {
      const w = await api('GET', '/v1/auth/whoami');
      document.getElementById('who').textContent = w.principal ? w.principal + (w.superuser ? ' (superuser)' : '') : '';
      document.getElementById('logout').hidden = !state.token;
      document.getElementById('login').hidden = true;
      document.getElementById('view').hidden = false;
      return true;
    } catch (e) {
      fail(e);
      return false;
    }
  }

  // ---- views -------------------------------------------------------------

  // Each view builds its fixed part (forms) once and re-renders its data
  // part on every refresh, so a refresh never disturbs what is being typed.

  function clusterView(root) {
    const data = h('div', { id: 'cluster-data' });
    root.append(h('h1', { text: 'Cluster' }), data,
      h('p', { class: 'hint', text: 'Make leader hands leadership to that node (a Raft leadership transfer): writes pause for a moment, nothing is lost.' }));
    return {
      async refresh() {
        const c = await api('GET', '/v1/cluster');
        state.cluster = c;
        const leader = c.nodes.find((n) => n.id === c.leader);
        const commit = leader ? leader.commit_index : 0;
        const rows = c.nodes.map((n) => h('tr', { 'data-node': n.id, class: n.reachable ? '' : 'down' },
          td(n.id), h('td', {}, h('span', { class: 'role ' + n.role, text: n.role })),
          td(n.api_addr), td(n.raft_addr), td(n.kafka_addr || ''),
          num(n.term), num(n.first_index), num(n.last_index), num(n.commit_index), num(n.applied_index),
          num(commit && n.applied_index <= commit ? commit - n.applied_index : 0),
          td(n.reachable ? 'yes' : 'no', { class: n.reachable ? 'ok' : 'bad' }),
          td(n.status_age_ms === undefined ? '' : n.status_age_ms + ' ms', { class: 'num' }),
          td(n.disk_error || n.error || ''),
          h('td', {}, n.id !== c.leader ? h('button', { 'data-test': 'transfer-' + n.id, on: { click: () => transfer(n.id) }, text: 'Make leader' }) : '')));
        data.replaceChildren(
          h('p', { class: 'facts' }, 'Group ', h('b', { text: c.group_id }), ' · leader ', h('b', { id: 'leader', text: c.leader || 'none' }),
            ' · term ', h('b', { id: 'term', text: c.term }), ' · answered by ', c.answered_by),
          table(['node', 'role', 'API', 'Raft', 'Kafka', 'term', 'first', 'last', 'commit', 'applied', 'lag', 'reachable', 'status age', 'error', ''], rows, { id: 'nodes' }));
      },
    };
  }

  async function transfer(to) {
    try {
      const r = await api('POST', '/v1/cluster/transfer-leadership', { to });
      toast('leader is now ' + (r.leader || to), 'ok');
    } catch (e) { fail(e); }
    refresh();
  }

  function topicsView(root) {
    const name = h('input', { id: 'topic-name', placeholder: 'name', required: true, pattern: '[A-Za-z0-9._-]+' });
    const queues = h('input', { id: 'topic-queues', type: 'number', min: 1, value: 4 });
    const retention = h('input', { id: 'topic-retention', class: 'wide', type: 'number', min: 0, placeholder: 'retention hours (default 168)' });
    const retBytes = h('input', { id: 'topic-retention-bytes', class: 'wide', type: 'number', min: 0, placeholder: 'retention bytes per queue' });
    const form = h('form', { id: 'create-topic', class: 'inline', on: { submit: async (ev) => {
      ev.preventDefault();
      const body = { name: name.value.trim(), queues: Number(queues.value) };
      if (retention.value) body.retention_ms = Math.round(Number(retention.value) * 3600000);
      if (retBytes.value) body.retention_bytes = Number(retBytes.value);
      try {
        await api('POST', '/v1/topics', body);
        toast('created topic ' + body.name, 'ok');
        name.value = '';
      } catch (e) { fail(e); }
      refresh();
    } } }, 'New topic: ', name, ' queues ', queues, ' ', retention, ' ', retBytes, ' ', h('button', { type: 'submit', text: 'Create' }));
    const data = h('div', { id: 'topics-data' });
    root.append(h('h1', { text: 'Topics' }), form, data);
    return {
      async refresh() {
        const list = await api('GET', '/v1/topics?queues=true');
        const rows = list.topics.map((t) => {
          const qi = t.queue_info || [];
          const stored = qi.reduce((a, q) => a + (q.next - q.earliest), 0);
          const produced = qi.reduce((a, q) => a + q.next, 0);
          const bytes = qi.reduce((a, q) => a + (q.bytes || 0), 0);
          return h('tr', { 'data-topic': t.name },
            h('td', {}, h('a', { href: '#/topics/' + enc(t.name), text: t.name })),
            num(t.queues), num(stored), td(fmtBytes(bytes), { class: 'num' }),
            td(fmtRate(rate('topic:' + t.name, produced)), { class: 'num rate' }),
            td(fmtMs(t.retention_ms) + (t.retention_bytes ? ' / ' + fmtBytes(t.retention_bytes) + ' per queue' : '')),
            td(fmtBytes(t.max_message_bytes)),
            h('td', {}, h('a', { href: '#/messages?topic=' + enc(t.name), text: 'browse' }), ' ',
              h('button', { class: 'danger', 'data-test': 'delete-' + t.name, on: { click: () => deleteTopic(t.name) }, text: 'Delete' })));
        });
        data.replaceChildren(table(['topic', 'queues', 'messages', 'size', 'in', 'retention', 'max message', ''], rows, { id: 'topics' }));
      },
    };
  }

  async function deleteTopic(name) {
    if (!confirm('Delete topic ' + name + ' and all its messages?')) return;
    try {
      await api('DELETE', '/v1/topics/' + enc(name));
      toast('deleted topic ' + name, 'ok');
    } catch (e) { fail(e); }
    refresh();
  }

  function topicView(root, name) {
    const data = h('div', { id: 'topic-data' });
    root.append(h('h1', {}, h('a', { href: '#/topics', text: 'Topics' }), ' / ', name), data);
    return {
      async refresh() {
        const t = await api('GET', '/v1/topics/' + enc(name));
        const rows = (t.queue_info || []).map((q) => h('tr', { 'data-queue': q.queue },
          num(q.queue), num(q.earliest), num(q.next), num(q.next - q.earliest), td(fmtBytes(q.bytes), { class: 'num' }),
          td(fmtRate(rate('queue:' + name + '/' + q.queue, q.next)), { class: 'num rate' }),
          h('td', {}, h('a', { href: '#/messages?topic=' + enc(name) + '&queue=' + q.queue + '&offset=' + q.earliest, text: 'browse' }))));
        data.replaceChildren(
          h('p', { class: 'facts' }, t.queues + ' queues · retention ' + fmtMs(t.retention_ms) +
            (t.retention_bytes ? ' / ' + fmtBytes(t.retention_bytes) + ' per queue' : '') + ' · max message ' + fmtBytes(t.max_message_bytes)),
          table(['queue', 'earliest', 'next', 'messages', 'size', 'in', ''], rows, { id: 'queues' }));
      },
    };
  }

  // ---- message browser ---------------------------------------------------

  function b64bytes(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function hexdump(bytes) {
    const lines = [];
    for (let i = 0; i < bytes.length; i += 16) {
      const row = Array.from(bytes.slice(i, i + 16));
      const hex = row.map((b) => b.toString(16).padStart(2, '0')).join(' ');
      const asc = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
      lines.push(i.toString(16).padStart(6, '0') + '  ' + hex.padEnd(48) + ' ' + asc);
    }
    return lines.join('\n');
  }

  // show renders a key or value: text, JSON pretty-printed, or hex, as
  // format says ("auto": JSON when it parses, hex when not UTF-8).
  function show(text, b64, format) {
    const bytes = () => (b64 !== undefined ? b64bytes(b64) : new TextEncoder().encode(text));
    if (text === undefined && b64 === undefined) return h('span', { class: 'null', text: 'null' });
    if (format === 'hex' || (b64 !== undefined && format !== 'text')) return h('pre', { class: 'hex', text: hexdump(bytes()) });
    if (b64 !== undefined) return h('pre', { text: new TextDecoder().decode(bytes()) });
    if (format === 'json' || format === 'auto') {
      const s = text.trim();
      if (format === 'json' || s.startsWith('{') || s.startsWith('[')) {
        try { return h('pre', { class: 'json', text: JSON.stringify(JSON.parse(s), null, 2) }); } catch (_) { /* as text */ }
      }
    }
    return h('pre', { text });
  }

  function messagesView(root, params) {
    const topic = h('select', { id: 'msg-topic' });
    const queue = h('input', { id: 'msg-queue', type: 'number', min: 0, value: params.get('queue') || 0 });
    const from = h('select', { id: 'msg-from' }, ['offset', 'time', 'newest'].map((v) => h('option', { value: v, text: v })));
    const offset = h('input', { id: 'msg-offset', type: 'number', min: 0, value: params.get('offset') || 0 });
    const time = h('input', { id: 'msg-time', type: 'datetime-local', step: 1 });
    const max = h('input', { id: 'msg-max', type: 'number', min: 1, max: 1000, value: 50 });
    const format = h('select', { id: 'msg-format' }, ['auto', 'text', 'json', 'hex'].map((v) => h('option', { value: v, text: v })));
    const next = h('button', { id: 'msg-next', type: 'button', disabled: true, text: 'Next page' });
    const out = h('div', { id: 'messages-data' });
    let last = null;
    const sync = () => { offset.hidden = from.value !== 'offset'; time.hidden = from.value !== 'time'; };
    from.addEventListener('change', sync);
    format.addEventListener('change', () => { if (last) render(last); });

    async function fetchAt(off) {
      const t = topic.value;
      if (!t) return toast('choose a topic');
      let q = '/v1/topics/' + enc(t) + '/queues/' + Number(queue.value) + '/messages?max_messages=' + Number(max.value);
      if (off !== undefined) q += '&offset=' + off;
      else if (from.value === 'time') {
        if (!time.value) return toast('choose a time');
        q += '&timestamp=' + enc(new Date(time.value).toISOString());
      } else if (from.value === 'newest') {
        const info = await api('GET', '/v1/topics/' + enc(t));
        const qi = (info.queue_info || [])[Number(queue.value)];
        if (!qi) throw Object.assign(new Error('topic ' + t + ' has no queue ' + queue.value), { code: 'QUEUE_NOT_FOUND' });
        q += '&offset=' + Math.max(qi.earliest, qi.next - Number(max.value));
      } else q += '&offset=' + Number(offset.value);
      last = await api('GET', q);
      render(last);
    }

    function render(res) {
      const rows = res.messages.map((m) => h('tr', { 'data-offset': m.offset },
        num(m.offset), td(m.timestamp),
        h('td', {}, show(m.key, m.key_base64, format.value === 'hex' ? 'hex' : 'text')),
        h('td', {}, Object.keys(m.headers || {}).length ? h('pre', { text: Object.entries(m.headers).map(([k, v]) => k + ': ' + v).join('\n') }) : ''),
        h('td', { class: 'value' }, show(m.value, m.value_base64, format.value))));
      next.disabled = res.messages.length === 0;
      next.onclick = () => fetchAt(res.next_offset).catch(fail);
      out.replaceChildren(h('p', { class: 'facts', id: 'msg-count', text: res.messages.length + ' messages · next offset ' + res.next_offset }),
        table(['offset', 'timestamp', 'key', 'headers', 'value'], rows, { id: 'messages' }));
    }

    const form = h('form', { id: 'browse', class: 'inline', on: { submit: (ev) => { ev.preventDefault(); fetchAt().catch(fail); } } },
      'Topic ', topic, ' queue ', queue, ' from ', from, ' ', offset, time, ' show ', max, ' as ', format, ' ',
      h('button', { type: 'submit', id: 'msg-fetch', text: 'Fetch' }), ' ', next);
    root.append(h('h1', { text: 'Messages' }), form, out);
    sync();
    api('GET', '/v1/topics').then((list) => {
      topic.replaceChildren(...list.topics.map((t) => h('option', { value: t.name, text: t.name })));
      if (params.get('topic')) topic.value = params.get('topic');
      if (params.get('topic') && params.get('offset') !== null) fetchAt().catch(fail);
    }).catch(fail);
    return { async refresh() { /* browsing is on demand */ } };
  }

  // ---- consumer groups ---------------------------------------------------

  function groupLag(g) { return (g.queues || []).reduce((a, q) => a + q.lag, 0); }

  function groupsView(root) {
    const data = h('div', { id: 'groups-data' });
    root.append(h('h1', { text: 'Consumer groups' }), data);
    return {
      async refresh() {
        const list = await api('GET', '/v1/groups');
        const rows = list.groups.map((g) => h('tr', { 'data-group': g.group },
          h('td', {}, h('a', { href: '#/groups/' + enc(g.group), text: g.group })),
          num(g.generation), num((g.members || []).length),
          td([...new Set((g.queues || []).map((q) => q.topic))].join(', ')),
          num(groupLag(g))));
        data.replaceChildren(table(['group', 'generation', 'members', 'topics', 'lag'], rows, { id: 'groups' }));
      },
    };
  }

  function groupView(root, name) {
    const topic = h('input', { id: 'reset-topic', placeholder: 'topic', required: true });
    const to = h('select', { id: 'reset-to' }, ['earliest', 'latest', 'time', 'offset'].map((v) => h('option', { value: v, text: v })));
    const arg = h('input', { id: 'reset-arg', placeholder: 'offset or RFC 3339 time' });
    const reset = h('form', { id: 'reset-offsets', class: 'inline', on: { submit: async (ev) => {
      ev.preventDefault();
      const body = { topic: topic.value.trim(), to: to.value };
      if (to.value === 'offset') body.offset = Number(arg.value);
      if (to.value === 'time') body.timestamp = arg.value.trim();
      try {
        await api('POST', '/v1/groups/' + enc(name) + '/reset-offsets', body);
        toast('offsets of ' + name + ' on ' + body.topic + ' reset to ' + to.value, 'ok');
      } catch (e) { fail(e); }
      refresh();
    } } }, 'Reset offsets (only while the group has no members): topic ', topic, ' to ', to, ' ', arg, ' ',
    h('button', { type: 'submit', text: 'Reset' }), ' ',
    h('button', { type: 'button', class: 'danger', on: { click: async () => {
      if (!confirm('Delete group ' + name + ' and its committed offsets?')) return;
      try {
        await api('DELETE', '/v1/groups/' + enc(name));
        toast('deleted group ' + name, 'ok');
        location.hash = '#/groups';
      } catch (e) { fail(e); }
    } }, text: 'Delete group' }));
    const data = h('div', { id: 'group-data' });
    root.append(h('h1', {}, h('a', { href: '#/groups', text: 'Consumer groups' }), ' / ', name), data, reset);
    return {
      async refresh() {
        const g = await api('GET', '/v1/groups/' + enc(name));
        const lag = groupLag(g);
        const members = (g.members || []).map((m) => h('tr', {},
          td(m.member_id), td(m.instance_id || ''), td((m.topics || []).join(', ')),
          td((m.assignment || []).map((a) => a.topic + '/' + a.queue).join(' ')),
          td((m.revoking || []).map((a) => a.topic + '/' + a.queue).join(' ')),
          td(m.session_timeout_ms + ' ms', { class: 'num' })));
        const queues = (g.queues || []).map((q) => h('tr', { 'data-queue': q.topic + '/' + q.queue },
          td(q.topic), num(q.queue), td(q.owner || ''), td(q.target || ''),
          td(q.committed === undefined ? 'none' : fmtNum(q.committed), { class: 'num' }), num(q.next), num(q.lag),
          td(fmtRate(rate('lag:' + name + '/' + q.topic + '/' + q.queue, q.committed || 0)), { class: 'num rate' })));
        data.replaceChildren(
          h('p', { class: 'facts' }, 'Generation ' + g.generation + ' · ' + (g.members || []).length + ' members · total lag ',
            h('b', { id: 'group-lag', text: lag })),
          h('h2', { text: 'Members' }),
          table(['member', 'instance', 'topics', 'assigned', 'revoking', 'session'], members, { id: 'members' }),
          h('h2', { text: 'Offsets' }),
          table(['topic', 'queue', 'owner', 'moving to', 'committed', 'next', 'lag', 'consumed'], queues, { id: 'offsets' }));
      },
    };
  }

  // ---- routing and refresh -------------------------------------------------

  function route() {
    const hash = location.hash.replace(/^#/, '') || '/cluster';
    const [path, query] = hash.split('?');
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(query || '');
    const root = document.getElementById('view');
    root.replaceChildren();
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.id === 'nav-' + parts[0]);
    switch (parts[0]) {
      case 'topics': return parts[1] ? topicView(root, parts[1]) : topicsView(root);
      case 'messages': return messagesView(root, params);
      case 'groups': return parts[1] ? groupView(root, parts[1]) : groupsView(root);
      default: return clusterView(root);
    }
  }

  async function refresh() {
    if (!state.view) return;
    const summary = document.getElementById('summary');
    try {
      await state.view.refresh();
      if (state.cluster) {
        const c = state.cluster;
        const up = c.nodes.filter((n) => n.reachable).length;
        summary.textContent = 'leader ' + (c.leader || 'none') + ' · term ' + c.term + ' · ' + up + '/' + c.nodes.length + ' nodes up';
      }
      document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      fail(e);
    }
  }

  async function summaryTick() {
    try { state.cluster = await api('GET', '/v1/cluster'); } catch (_) { /* shown by the view */ }
  }

  function go() {
    state.view = route();
    summaryTick().then(refresh);
  }

  function tick() {
    if (!document.getElementById('live').checked || document.hidden) return;
    if (document.getElementById('login').hidden === false) return;
    summaryTick().then(refresh);
  }

  document.addEventListener('DOMContentLoaded', async () => {
    document.getElementById('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      state.token = document.getElementById('token').value.trim();
      sessionStorage.setItem('ledgermq.token', state.token);
      if (await whoami()) go();
    });
    document.getElementById('logout').addEventListener('click', () => {
      state.token = '';
      sessionStorage.removeItem('ledgermq.token');
      document.getElementById('who').textContent = '';
      showLogin();
    });
    window.addEventListener('hashchange', go);
    state.timer = setInterval(tick, REFRESH_MS);
    if (await whoami()) go();
  });
})();
