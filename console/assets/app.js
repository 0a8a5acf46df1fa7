// Cairn console. Plain JavaScript, no dependencies, no build step.
//
// Everything goes through Cairn's public grpc-gateway JSON API (/v3/...),
// with the user's token (when auth is on) in the Authorization header; the
// token lives in this tab only (sessionStorage), never in a cookie.
// Keys and values are bytes (base64 in the gateway's JSON): they are
// decoded as bytes and rendered with textContent only, never as HTML.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const enc = new TextEncoder();
  const strictUTF8 = new TextDecoder('utf-8', { fatal: true });
  const PAGE = 100; // entries shown per "page" of the tree
  const FETCH = 64; // keys asked for per range request while listing

  const S = {
    token: sessionStorage.getItem('cairn.token') || '',
    user: sessionStorage.getItem('cairn.user') || '',
    rev: 0, // 0: live; otherwise the revision being browsed
    headRev: 0,
    memberID: '',
    sep: enc.encode('/'),
    prefix: new Uint8Array(0),
    flat: false, // prefix search: a flat list instead of folders
    cursor: null,
    current: null, // the open key's kv (as the gateway gave it) and bytes
    mode: 'auto',
    retry: null,
  };

  // ---- bytes ---------------------------------------------------------

  function b64(u8) {
    let s = '';
    for (let i = 0; i < u8.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }
  function unb64(s) {
    if (!s) return new Uint8Array(0);
    const bin = atob(s);
    const u8 = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
    return u8;
  }
  function concat(a, b) {
    const u = new Uint8Array(a.length + b.length);
    u.set(a, 0);
    u.set(b, a.length);
    return u;
  }
  function compare(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return a.length - b.length;
  }
  function indexOf(hay, needle, from) {
    if (!needle.length) return -1;
    outer: for (let i = from || 0; i + needle.length <= hay.length; i++) {
      for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  }
  // prefixEnd is etcd's range end for "every key starting with p"; for
  // the empty prefix (or one of 0xff bytes only) it is "\0": no end.
  function prefixEnd(p) {
    const e = p.slice();
    for (let i = e.length - 1; i >= 0; i--) {
      if (e[i] < 0xff) {
        e[i]++;
        return e.slice(0, i + 1);
      }
    }
    return new Uint8Array([0]);
  }
  function isNoEnd(e) { return e.length === 1 && e[0] === 0; }
  function after(k) { return concat(k, new Uint8Array([0])); }
  function bytesEqual(a, b) { return compare(a, b) === 0; }

  // show renders bytes as text: valid UTF-8 as is, and every other byte
  // (invalid UTF-8, NUL and other control characters) as a visible \xNN
  // escape in a span of its own. Returns a DocumentFragment.
  function show(u8, max) {
    const frag = document.createDocumentFragment();
    let text = '';
    const flush = () => { if (text) { frag.appendChild(document.createTextNode(text)); text = ''; } };
    const esc = (s) => { flush(); const sp = document.createElement('span'); sp.className = 'esc'; sp.textContent = s; frag.appendChild(sp); };
    const n = max && u8.length > max ? max : u8.length;
    for (let i = 0; i < n;) {
      const c = u8[i];
      if (c >= 0x20 && c < 0x7f) { text += String.fromCharCode(c); i++; continue; }
      if (c < 0x80) { esc('\\x' + hex2(c)); i++; continue; }
      const len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
      if (len > 1 && i + len <= u8.length) {
        try { text += strictUTF8.decode(u8.subarray(i, i + len)); i += len; continue; } catch (e) { /* escape below */ }
      }
      esc('\\x' + hex2(c));
      i++;
    }
    if (n < u8.length) text += '…';
    flush();
    return frag;
  }
  // showStr is show as a plain string (for titles and dialogs).
  function showStr(u8, max) {
    const d = document.createElement('span');
    d.appendChild(show(u8, max));
    return d.textContent;
  }
  function hex2(c) { return (c < 16 ? '0' : '') + c.toString(16); }
  function human(n) {
    if (n < 1024) return n + ' B';
    if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1 << 30) return (n / (1 << 20)).toFixed(1) + ' MiB';
    return (n / (1 << 30)).toFixed(2) + ' GiB';
  }
  function hexID(dec) {
    try { return BigInt(dec || '0').toString(16); } catch (e) { return String(dec); }
  }
  // asText is the value as a string when it is text (valid UTF-8 without
  // NUL or other control characters but tab and newlines), else null.
  function asText(u8) {
    let s;
    try { s = strictUTF8.decode(u8); } catch (e) { return null; }
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(s)) return null;
    return s;
  }

  // ---- DOM -----------------------------------------------------------

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === undefined || v === null) continue;
        if (k === 'text') e.textContent = v;
        else if (k === 'cls') e.className = v;
        else if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
        else if (k === 'data') Object.assign(e.dataset, v);
        else e.setAttribute(k, v);
      }
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }

  function showError(msg) {
    const b = $('error');
    b.textContent = msg;
    b.hidden = false;
  }
  function clearError() { $('error').hidden = true; }
  $('error').addEventListener('click', clearError);

  // ---- API -----------------------------------------------------------

  class APIError extends Error {
    constructor(msg, code, status) { super(msg); this.code = code; this.status = status; }
  }
  function headers() {
    const h = { 'Content-Type': 'application/json' };
    if (S.token) h.Authorization = S.token;
    return h;
  }
  async function post(url, body, signal) {
    let r;
    try {
      r = await fetch(url, { method: 'POST', headers: headers(), body: JSON.stringify(body || {}), signal, credentials: 'omit', cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new APIError('cannot reach the server: ' + e.message, 0, 0);
    }
    const text = await r.text();
    let j;
    try { j = text ? JSON.parse(text) : {}; } catch (e) { j = { message: text.trim() }; }
    if (!r.ok) throw new APIError(j.message || j.error || r.statusText, j.code, r.status);
    return j;
  }
  async function api(path, body) {
    const j = await post('/v3/' + path, body);
    if (j.header) {
      if (j.header.revision) setHeadRev(Number(j.header.revision));
      if (j.header.member_id) S.memberID = j.header.member_id;
    }
    return j;
  }
  function setHeadRev(r) {
    if (r > S.headRev) S.headRev = r;
    $('cur-rev').textContent = 'store at rev ' + S.headRev;
  }
  const isCompacted = (e) => /compacted/.test(e.message || '');
  const needsLogin = (e) => /user name is empty|invalid auth token|authentication failed|auth token is expired/.test(e.message || '');

  // run runs an action and reports its failure; one that needs a login
  // opens the login dialog and runs again after it.
  async function run(fn) {
    try {
      const v = await fn();
      return v;
    } catch (e) {
      if (e && e.name === 'AbortError') return undefined;
      if (needsLogin(e)) {
        S.retry = fn;
        openLogin(e.message);
        return undefined;
      }
      let msg = e.message || String(e);
      if (isCompacted(e) && S.rev) msg = 'Revision ' + S.rev + ' was compacted away: the store no longer keeps it (' + msg + '). Press Live, or pick a later revision.';
      showError(msg);
      return undefined;
    }
  }

  // rangeReq is a range request; etcd wants a key, and "\0" to "\0" is
  // every key.
  function rangeReq(key, end, extra) {
    const r = { key: b64(key.length || !end ? key : new Uint8Array([0])) };
    if (end) r.range_end = b64(end);
    if (S.rev) r.revision = String(S.rev);
    return Object.assign(r, extra || {});
  }

  // ---- login ---------------------------------------------------------

  function openLogin(why) {
    S.authOn = true;
    updateWho();
    $('login-msg').textContent = why && !/user name is empty/.test(why) ? why : '';
    $('login-user').value = S.user || '';
    $('login-pass').value = '';
    if (!$('login').open) $('login').showModal();
    $('login-user').focus();
  }
  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const name = $('login-user').value;
    const password = $('login-pass').value;
    try {
      S.token = '';
      const j = await post('/v3/auth/authenticate', { name, password });
      S.token = j.token;
      S.user = name;
      sessionStorage.setItem('cairn.token', S.token);
      sessionStorage.setItem('cairn.user', name);
      $('login').close();
      updateWho();
      clearError();
      const retry = S.retry;
      S.retry = null;
      if (retry) run(retry);
    } catch (e) {
      $('login-msg').textContent = e.message;
    }
  });
  $('login-btn').addEventListener('click', () => openLogin(''));
  $('logout-btn').addEventListener('click', () => {
    S.token = '';
    S.user = '';
    sessionStorage.removeItem('cairn.token');
    sessionStorage.removeItem('cairn.user');
    updateWho();
  });
  function updateWho() {
    $('whoami').textContent = S.token ? 'user ' + S.user : '';
    $('logout-btn').hidden = !S.token;
    $('login-btn').hidden = !!S.token || !S.authOn;
  }

  // ---- confirm -------------------------------------------------------

  function confirmDialog(title, text, ok) {
    return new Promise((resolve) => {
      const d = $('confirm');
      $('confirm-title').textContent = title;
      const t = $('confirm-text');
      clear(t);
      if (typeof text === 'string') t.textContent = text; else t.appendChild(text);
      $('confirm-ok').textContent = ok || 'Confirm';
      d.returnValue = '';
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.showModal();
      $('confirm-cancel').focus();
    });
  }

  // ---- tabs ----------------------------------------------------------

  let clusterTimer = null;
  function selectView(name) {
    for (const b of document.querySelectorAll('.tabs button')) {
      const on = b.dataset.view === name;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
      $('view-' + b.dataset.view).hidden = !on;
    }
    clearInterval(clusterTimer);
    clusterTimer = null;
    if (name === 'cluster') {
      run(loadCluster);
      loadCharts();
      clusterTimer = setInterval(() => {
        // A member that does not answer holds a refresh up to the relay's
        // timeout: never pile refreshes up behind it.
        if (S.clusterBusy) return;
        S.clusterBusy = true;
        Promise.all([run(loadCluster), loadCharts()]).finally(() => { S.clusterBusy = false; });
      }, 2000);
    } else if (name === 'leases') run(loadLeases);
    else if (name === 'access') run(loadAccess);
  }
  for (const b of document.querySelectorAll('.tabs button')) {
    b.addEventListener('click', () => selectView(b.dataset.view));
    b.addEventListener('keydown', (ev) => {
      const all = [...document.querySelectorAll('.tabs button')];
      const i = all.indexOf(b);
      let j = -1;
      if (ev.key === 'ArrowRight') j = (i + 1) % all.length;
      if (ev.key === 'ArrowLeft') j = (i + all.length - 1) % all.length;
      if (j >= 0) { ev.preventDefault(); all[j].focus(); selectView(all[j].dataset.view); }
    });
  }

  // ---- revision travel -----------------------------------------------

  $('rev-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = parseInt($('rev-input').value, 10);
    setRev(n > 0 ? n : 0);
  });
  $('rev-live').addEventListener('click', () => { $('rev-input').value = ''; setRev(0); });
  function setRev(n) {
    S.rev = n;
    const b = $('banner');
    b.hidden = !n;
    b.textContent = n ? 'Viewing the store as it was at revision ' + n + ' (read-only). Press Live to come back.' : '';
    for (const id of ['new-key', 'del-prefix', 'edit-btn', 'del-btn']) $(id).disabled = !!n;
    run(async () => {
      await reloadTree();
      if (S.current) await openKey(S.current.key);
    });
  }

  // ---- keys tree -----------------------------------------------------

  const tree = $('tree');
  $('sep').addEventListener('change', () => {
    S.sep = enc.encode($('sep').value);
    S.prefix = new Uint8Array(0);
    run(reloadTree);
  });
  let searchTimer = null;
  $('search').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const q = $('search').value;
      S.flat = q !== '';
      if (S.flat) S.prefix = enc.encode(q);
      else S.prefix = new Uint8Array(0);
      run(reloadTree);
    }, 200);
  });
  $('search').addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'Enter') { ev.preventDefault(); focusItem(0); }
  });
  $('more').addEventListener('click', () => run(loadMore));

  // reloadTree lists S.prefix from its start; with focus, the first entry
  // takes the keyboard focus as soon as the page is shown.
  async function reloadTree(focus) {
    const gen = (S.gen = (S.gen || 0) + 1);
    clear(tree);
    S.cursor = S.prefix;
    renderCrumbs();
    $('list-info').textContent = 'loading…';
    const end = prefixEnd(S.prefix);
    let cnt;
    try {
      const counting = api('kv/range', rangeReq(S.prefix, end, { count_only: true }));
      counting.catch(() => {}); // reported below, once the listing is done
      await loadMore();
      if (focus && gen === S.gen) focusItem(0);
      cnt = await counting;
    } catch (e) {
      if (gen !== S.gen) return;
      $('list-info').textContent = 'Cannot list these keys.';
      throw e;
    }
    if (gen !== S.gen) return; // a newer listing owns the page
    const total = Number(cnt.count || 0);
    $('list-info').textContent = total + (total === 1 ? ' key' : ' keys') + (S.prefix.length ? ' under this prefix' : ' in total');
  }

  function renderCrumbs() {
    const c = $('crumbs');
    clear(c);
    if (S.flat) {
      c.append(el('span', { cls: 'muted', text: 'Keys starting with ' }), el('span', { cls: 'mono' }, show(S.prefix)));
      return;
    }
    c.append(el('button', { type: 'button', text: '(root)', on: { click: () => goTo(new Uint8Array(0)) } }));
    // Split the prefix at each separator.
    let start = 0;
    for (;;) {
      const i = indexOf(S.prefix, S.sep, start);
      if (i < 0) break;
      const upto = S.prefix.slice(0, i + S.sep.length);
      const seg = S.prefix.subarray(start, i);
      // An empty segment (the leading "/" of "/a/b") is its separator.
      if (seg.length) c.append(el('button', { type: 'button', on: { click: () => goTo(upto) } }, show(seg)), el('span', { cls: 'sepchar' }, show(S.sep)));
      else c.append(el('button', { type: 'button', on: { click: () => goTo(upto) } }, show(S.sep)));
      start = i + S.sep.length;
    }
  }
  function goTo(prefix) {
    S.prefix = prefix;
    S.flat = false;
    $('search').value = '';
    return run(() => reloadTree(true));
  }

  // scanFrom returns the first keys (keys only, at most FETCH) of
  // [from, end), and whether more may follow. A range's response counts
  // every key of its span (etcd's RangeResponse.count, even with a
  // limit), so asking for [from, end) at every step would cost as much as
  // all the keys after `from`, each time. It asks instead for small
  // windows after `from` first: the keys sharing all of it, then all but
  // its last 1, 2, 3, 4, 6, 8… bytes, four windows to a read-only Txn (one
  // round trip), and for the whole span only when they are all empty; so
  // a step costs about as much as the keys near `from`.
  async function scanFrom(from, end, floor) {
    const L = from.length;
    const windows = [];
    for (let d = 0; L - d > floor; d = d < 4 ? d + 1 : Math.ceil(d * 1.4)) {
      const wEnd = prefixEnd(from.subarray(0, L - d));
      if (isNoEnd(wEnd) || (!isNoEnd(end) && compare(wEnd, end) >= 0)) break;
      if (!windows.length || compare(wEnd, windows[windows.length - 1]) !== 0) windows.push(wEnd);
    }
    windows.push(end);
    for (let g = 0; g < windows.length; g += 4) {
      const group = windows.slice(g, g + 4);
      const r = await api('kv/txn', { success: group.map((w) => ({ request_range: rangeReq(from, w, { keys_only: true, limit: String(FETCH) }) })) });
      for (let i = 0; i < group.length; i++) {
        const rr = (r.responses && r.responses[i] && r.responses[i].response_range) || {};
        const whole = g + i === windows.length - 1;
        if ((rr.kvs && rr.kvs.length) || whole) return { kvs: rr.kvs || [], more: whole ? !!rr.more : true };
      }
    }
    return { kvs: [], more: false };
  }

  // loadMore lists the next PAGE entries under S.prefix from S.cursor: a
  // folder (the keys sharing the next segment up to a separator) is one
  // entry, and the listing jumps over its keys to the next one (scanFrom
  // from the folder's end), so a page costs a few small keys-only
  // requests however many keys there are.
  async function loadMore() {
    const end = prefixEnd(S.prefix);
    const folders = [];
    const gen = S.gen;
    let added = 0;
    while (added < PAGE && S.cursor) {
      const resp = await scanFrom(S.cursor, end, S.prefix.length);
      if (gen !== S.gen) return; // another listing started meanwhile
      const kvs = resp.kvs || [];
      if (!kvs.length) { S.cursor = null; break; }
      let next = null;
      let i = 0;
      for (; i < kvs.length && added < PAGE; i++) {
        const k = unb64(kvs[i].key);
        if (next && compare(k, next) < 0) continue;
        const j = S.flat ? -1 : indexOf(k, S.sep, S.prefix.length);
        if (j >= 0) {
          const f = k.slice(0, j + S.sep.length);
          folders.push(addFolder(f));
          next = prefixEnd(f);
          if (isNoEnd(next)) { next = null; break; }
        } else {
          addKey(k);
          next = after(k);
        }
        added++;
      }
      S.cursor = next;
      if (!next) break;
      if (i >= kvs.length && !resp.more) {
        // Nothing after this page, unless a folder jump went past it.
        const last = unb64(kvs[kvs.length - 1].key);
        if (compare(next, last) > 0) S.cursor = null;
      }
    }
    $('more').hidden = !S.cursor;
    if (!tree.firstChild) tree.append(el('li', { cls: 'muted', text: S.rev ? 'No keys here at revision ' + S.rev + '.' : 'No keys here.' }));
    // Counts per folder, a few at a time.
    countFolders(folders);
  }
  async function countFolders(items) {
    const queue = items.slice();
    const worker = async () => {
      while (queue.length) {
        const li = queue.shift();
        const f = unb64(li.dataset.key);
        try {
          const r = await api('kv/range', rangeReq(f, prefixEnd(f), { count_only: true }));
          li.querySelector('.count').textContent = String(r.count || 0);
        } catch (e) { /* the listing itself reports errors */ }
      }
    };
    await Promise.all([worker(), worker(), worker()]);
  }
  function itemName(k) {
    return k.subarray(S.flat ? 0 : S.prefix.length);
  }
  function addFolder(f) {
    const li = el('li', { role: 'treeitem', tabindex: '-1', 'aria-expanded': 'false', data: { kind: 'folder', key: b64(f) } },
      el('span', { cls: 'icon', 'aria-hidden': 'true', text: '▸' }),
      el('span', { cls: 'name' }, show(itemName(f), 300)),
      el('span', { cls: 'count', text: '…' }));
    li.title = showStr(f, 1000);
    tree.append(li);
    return li;
  }
  function addKey(k) {
    const li = el('li', { role: 'treeitem', tabindex: '-1', data: { kind: 'key', key: b64(k) } },
      el('span', { cls: 'icon', 'aria-hidden': 'true', text: '•' }),
      el('span', { cls: 'name' }, itemName(k).length ? show(itemName(k), 300) : el('span', { cls: 'muted', text: '(the prefix itself)' })));
    li.title = showStr(k, 1000);
    tree.append(li);
    return li;
  }
  function items() { return [...tree.querySelectorAll('li[role="treeitem"]')]; }
  function focusItem(i) {
    const all = items();
    if (!all.length) return;
    i = Math.max(0, Math.min(i, all.length - 1));
    for (const li of all) li.tabIndex = -1;
    all[i].tabIndex = 0;
    all[i].focus();
  }
  function activate(li) {
    const k = unb64(li.dataset.key);
    if (li.dataset.kind === 'folder') {
      goTo(k);
    } else {
      for (const x of items()) x.setAttribute('aria-selected', 'false');
      li.setAttribute('aria-selected', 'true');
      run(() => openKey(k));
    }
  }
  tree.addEventListener('click', (ev) => {
    const li = ev.target.closest('li[role="treeitem"]');
    if (!li) return;
    focusItem(items().indexOf(li));
    activate(li);
  });
  tree.addEventListener('keydown', (ev) => {
    const all = items();
    const i = all.indexOf(document.activeElement);
    switch (ev.key) {
      case 'ArrowDown': focusItem(i + 1); break;
      case 'ArrowUp': if (i <= 0) $('search').focus(); else focusItem(i - 1); break;
      case 'Home': focusItem(0); break;
      case 'End': focusItem(all.length - 1); break;
      case 'PageDown': focusItem(i + 10); break;
      case 'PageUp': focusItem(i - 10); break;
      case 'Enter': case 'ArrowRight': case ' ':
        if (i >= 0) activate(all[i]);
        break;
      case 'ArrowLeft': case 'Backspace': {
        if (S.flat || !S.prefix.length) break;
        // Up one folder: drop the last segment and its separator.
        const p = S.prefix.subarray(0, S.prefix.length - S.sep.length);
        let j = -1;
        for (let s = 0; ; ) { const n = indexOf(p, S.sep, s); if (n < 0) break; j = n; s = n + 1; }
        goTo(j < 0 ? new Uint8Array(0) : S.prefix.slice(0, j + S.sep.length));
        break;
      }
      default: return;
    }
    ev.preventDefault();
  });
  tree.addEventListener('focus', (ev) => { if (ev.target === tree) focusItem(0); });

  // ---- key detail ----------------------------------------------------

  async function openKey(k) {
    const seq = (S.openSeq = (S.openSeq || 0) + 1);
    const r = await api('kv/range', rangeReq(k));
    if (seq !== S.openSeq) return; // another key was opened meanwhile
    const kv = r.kvs && r.kvs[0];
    $('detail-empty').hidden = true;
    $('detail-body').hidden = false;
    $('editor').hidden = true;
    $('conflict').hidden = true;
    $('history').hidden = true;
    const name = $('d-key');
    clear(name);
    name.append(show(k));
    if (!kv) {
      S.current = { key: k, kv: null, value: new Uint8Array(0) };
      renderMeta(null);
      clear($('d-value'));
      $('d-kind').textContent = '';
      $('d-note').textContent = S.rev ? 'This key did not exist at revision ' + S.rev + '.' : 'This key does not exist (any more).';
      $('edit-btn').disabled = $('del-btn').disabled = true;
      return;
    }
    S.current = { key: k, kv, value: unb64(kv.value) };
    $('edit-btn').disabled = $('del-btn').disabled = !!S.rev;
    $('d-note').textContent = '';
    renderMeta(kv);
    renderValue();
  }
  function renderMeta(kv) {
    const dl = $('d-meta');
    clear(dl);
    if (!kv) return;
    const add = (k, v, id) => dl.append(el('dt', { text: k }), el('dd', { text: v, id }));
    add('Create rev', kv.create_revision || '0');
    add('Mod rev', kv.mod_revision || '0', 'd-modrev');
    add('Version', kv.version || '0', 'd-version');
    add('Size', human(unb64(kv.value).length));
    if (kv.lease && kv.lease !== '0') {
      add('Lease', hexID(kv.lease), 'd-lease');
      add('TTL left', '…', 'd-ttl');
      api('lease/timetolive', { ID: kv.lease }).then((t) => {
        const ttl = Number(t.TTL);
        $('d-ttl').textContent = ttl < 0 ? 'expired' : ttl + 's of ' + (t.grantedTTL || '?') + 's';
      }).catch((e) => { $('d-ttl').textContent = e.message; });
    } else {
      add('Lease', 'none', 'd-lease');
    }
  }
  for (const b of document.querySelectorAll('.modes button')) {
    b.addEventListener('click', () => { S.mode = b.dataset.mode; renderValue(); });
  }

  // detect tells what a value looks like: binary, json, yaml or text.
  function detect(u8) {
    const s = asText(u8);
    if (s === null) return { kind: 'binary' };
    const t = s.trim();
    if (t && '{['.includes(t[0])) {
      try { return { kind: 'json', text: s, json: JSON.parse(s) }; } catch (e) { /* not JSON */ }
    }
    const lines = t.split('\n').filter((l) => l.trim() && !/^\s*#/.test(l));
    const yamlish = lines.filter((l) => /^\s*(- )?[^\s:][^:]*:(\s|$)/.test(l) || /^\s*- /.test(l) || /^---/.test(l));
    if (lines.length >= 1 && yamlish.length === lines.length && /:(\s|$)/.test(t)) return { kind: 'yaml', text: s };
    return { kind: 'text', text: s };
  }

  function renderValue() {
    const cur = S.current;
    if (!cur || !cur.kv) return;
    const u8 = cur.value;
    const d = detect(u8);
    let mode = S.mode;
    if (mode === 'auto') mode = d.kind === 'binary' ? 'hex' : d.kind;
    for (const b of document.querySelectorAll('.modes button')) b.setAttribute('aria-pressed', b.dataset.mode === S.mode ? 'true' : 'false');
    $('d-kind').textContent = (d.kind === 'binary' ? 'binary' : d.kind.toUpperCase() === 'TEXT' ? 'text' : d.kind.toUpperCase()) + ', ' + human(u8.length);
    const pre = $('d-value');
    clear(pre);
    pre.dataset.mode = mode;
    $('d-note').textContent = '';
    if (mode === 'hex') return renderHex(pre, u8);
    if (mode === 'json') {
      let v = d.json;
      if (d.kind !== 'json') {
        try { v = JSON.parse(d.text === undefined ? '' : d.text); } catch (e) {
          $('d-note').textContent = 'Not valid JSON: ' + e.message;
          pre.append(show(u8));
          return;
        }
      }
      const pretty = JSON.stringify(v, null, 2);
      if (pretty.length > 256 * 1024) pre.textContent = pretty; else highlightJSON(pre, pretty);
      return;
    }
    if (mode === 'yaml' && d.text !== undefined && u8.length <= 256 * 1024) return highlightYAML(pre, d.text);
    // Text (or YAML too large to highlight, or binary shown as text with escapes).
    if (d.text !== undefined) pre.textContent = d.text; else pre.append(show(u8));
  }
  function tok(cls, s) { const sp = document.createElement('span'); sp.className = cls; sp.textContent = s; return sp; }
  function highlightJSON(pre, s) {
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0;
    const frag = document.createDocumentFragment();
    for (let m; (m = re.exec(s));) {
      if (m.index > last) frag.append(s.slice(last, m.index));
      if (m[1]) { frag.append(tok(m[2] ? 'tok-k' : 'tok-s', m[1])); if (m[2]) frag.append(m[2]); }
      else if (m[3]) frag.append(tok('tok-b', m[3]));
      else frag.append(tok('tok-n', m[4]));
      last = re.lastIndex;
    }
    frag.append(s.slice(last));
    pre.append(frag);
  }
  function highlightYAML(pre, s) {
    const frag = document.createDocumentFragment();
    for (const line of s.split('\n')) {
      const m = /^(\s*(?:- )?)([^\s:#][^:#]*?)(:)(\s.*|)$/.exec(line);
      if (/^\s*#/.test(line)) frag.append(tok('tok-c', line));
      else if (m) {
        frag.append(m[1], tok('tok-k', m[2]), m[3]);
        const v = m[4];
        const c = v.indexOf(' #');
        const val = c >= 0 ? v.slice(0, c) : v;
        if (/^\s*(-?\d+(\.\d+)?)\s*$/.test(val)) frag.append(tok('tok-n', val));
        else if (/^\s*(true|false|null|~|yes|no)\s*$/i.test(val)) frag.append(tok('tok-b', val));
        else if (val.trim()) frag.append(tok('tok-s', val)); else frag.append(val);
        if (c >= 0) frag.append(tok('tok-c', v.slice(c)));
      } else frag.append(line);
      frag.append('\n');
    }
    pre.append(frag);
  }
  function renderHex(pre, u8) {
    const max = 64 * 1024;
    const n = Math.min(u8.length, max);
    const out = [];
    for (let off = 0; off < n; off += 16) {
      const row = u8.subarray(off, Math.min(off + 16, n));
      let h = '';
      let a = '';
      for (let i = 0; i < 16; i++) {
        if (i < row.length) { h += hex2(row[i]) + ' '; a += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : '.'; }
        else h += '   ';
        if (i === 7) h += ' ';
      }
      out.push(off.toString(16).padStart(8, '0') + '  ' + h + ' ' + a);
    }
    pre.textContent = out.join('\n');
    $('d-note').textContent = u8.length > max ? 'Showing the first ' + human(max) + ' of ' + human(u8.length) + '.' : '';
  }

  // ---- edit, create, delete ----------------------------------------------

  $('edit-btn').addEventListener('click', () => {
    const cur = S.current;
    if (!cur || !cur.kv) return;
    const t = asText(cur.value);
    if (t === null) { showError('This value is binary: editing it as text would change it. Use etcdctl or a client to write bytes.'); return; }
    $('edit-text').value = t;
    $('edit-rev').textContent = cur.kv.mod_revision;
    $('edit-msg').textContent = '';
    $('conflict').hidden = true;
    $('editor').hidden = false;
    $('edit-text').focus();
  });
  $('cancel-btn').addEventListener('click', () => { $('editor').hidden = true; });
  $('save-btn').addEventListener('click', () => run(() => save($('edit-text').value, S.current.kv ? S.current.kv.mod_revision : '0')));
  $('reload-btn').addEventListener('click', () => run(() => openKey(S.current.key)));

  // save writes text to the open key if it is still at modRev ("0": if
  // it does not exist), as one transaction; otherwise it shows the
  // conflict with both values.
  async function save(text, modRev) {
    const cur = S.current;
    const key = b64(cur.key);
    const put = { key, value: b64(enc.encode(text)) };
    if (cur.kv && cur.kv.lease && cur.kv.lease !== '0') put.ignore_lease = true;
    const compare = modRev === '0'
      ? { key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }
      : { key, target: 'MOD', result: 'EQUAL', mod_revision: String(modRev) };
    const r = await api('kv/txn', { compare: [compare], success: [{ request_put: put }], failure: [{ request_range: { key } }] });
    if (r.succeeded) {
      $('editor').hidden = true;
      $('conflict').hidden = true;
      await openKey(cur.key);
      $('d-note').textContent = 'Saved at revision ' + (r.header && r.header.revision) + '.';
      return;
    }
    const rr = r.responses && r.responses[0] && r.responses[0].response_range;
    const theirs = rr && rr.kvs && rr.kvs[0];
    showConflict(text, theirs);
  }
  function showConflict(mine, theirs) {
    $('editor').hidden = true;
    $('conflict').hidden = false;
    $('conflict-mine').textContent = mine;
    const th = $('conflict-theirs');
    clear(th);
    let theirText = '';
    if (theirs) {
      const v = unb64(theirs.value);
      theirText = asText(v);
      if (theirText === null) { th.append(show(v, 64 * 1024)); theirText = ''; } else th.textContent = theirText;
      $('conflict-theirs-h').textContent = 'Theirs (now in the store, mod revision ' + theirs.mod_revision + ', version ' + theirs.version + ')';
      $('conflict-msg').textContent = 'The key was changed at revision ' + theirs.mod_revision + ' after you opened it at revision ' + $('edit-rev').textContent + '. Nothing was written.';
    } else {
      $('conflict-theirs-h').textContent = 'Theirs: the key was deleted';
      $('conflict-msg').textContent = 'The key was deleted after you opened it. Nothing was written.';
    }
    renderDiff($('conflict-diff'), theirText, mine);
    $('conflict').scrollIntoView({ block: 'start' });
    const btn = $('overwrite-btn');
    btn.onclick = () => run(async () => {
      $('edit-rev').textContent = theirs ? theirs.mod_revision : '0';
      await save(mine, theirs ? theirs.mod_revision : '0');
    });
  }

  $('new-key').addEventListener('click', () => {
    $('create-key').value = S.flat ? '' : showStr(S.prefix);
    if (S.flat) $('create-key').value = $('search').value;
    $('create-value').value = '';
    $('create-msg').textContent = '';
    $('create').showModal();
    $('create-key').focus();
  });
  $('create-form').addEventListener('submit', (ev) => {
    const ok = ev.submitter && ev.submitter.value === 'ok';
    if (!ok) return;
    ev.preventDefault();
    run(async () => {
      const k = enc.encode($('create-key').value);
      if (!k.length) { $('create-msg').textContent = 'The key cannot be empty.'; return; }
      const key = b64(k);
      const r = await api('kv/txn', {
        compare: [{ key, target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
        success: [{ request_put: { key, value: b64(enc.encode($('create-value').value)) } }],
      });
      if (!r.succeeded) { $('create-msg').textContent = 'That key already exists: nothing was written.'; return; }
      $('create').close();
      await reloadTree();
      await openKey(k);
    });
  });

  $('del-btn').addEventListener('click', () => run(async () => {
    const cur = S.current;
    if (!cur || !cur.kv) return;
    const ok = await confirmDialog('Delete this key?', el('span', {}, 'Delete ', el('b', {}, show(cur.key, 500)), ' (mod revision ' + cur.kv.mod_revision + ')? It is deleted only if nobody changed it since.'), 'Delete');
    if (!ok) return;
    const key = b64(cur.key);
    const r = await api('kv/txn', {
      compare: [{ key, target: 'MOD', result: 'EQUAL', mod_revision: cur.kv.mod_revision }],
      success: [{ request_delete_range: { key } }],
      failure: [{ request_range: { key } }],
    });
    if (!r.succeeded) {
      const rr = r.responses && r.responses[0] && r.responses[0].response_range;
      showConflict('(delete)', rr && rr.kvs && rr.kvs[0]);
      return;
    }
    await reloadTree();
    await openKey(cur.key);
    $('d-note').textContent = 'Deleted at revision ' + r.header.revision + '.';
  }));

  $('del-prefix').addEventListener('click', () => run(async () => {
    const p = S.prefix;
    if (!p.length) { showError('Open a folder or search a prefix first: the console does not delete the whole store.'); return; }
    const end = prefixEnd(p);
    const c = await api('kv/range', { key: b64(p), range_end: b64(end), count_only: true });
    const n = Number(c.count || 0);
    const ok = await confirmDialog('Delete ' + n + (n === 1 ? ' key?' : ' keys?'),
      el('span', {}, 'This deletes every key starting with ', el('b', {}, show(p, 500)), ': ' + n + (n === 1 ? ' key' : ' keys') + ' now.'), 'Delete ' + n);
    if (!ok) return;
    const r = await api('kv/deleterange', { key: b64(p), range_end: b64(end) });
    $('list-info').textContent = 'Deleted ' + (r.deleted || 0) + ' keys at revision ' + r.header.revision + '.';
    const msg = $('list-info').textContent;
    await reloadTree();
    $('list-info').textContent = msg;
  }));

  // ---- history -------------------------------------------------------

  const H = { versions: [], next: 0, key: null };
  $('hist-btn').addEventListener('click', () => run(async () => {
    const cur = S.current;
    if (!cur || !cur.kv) return;
    H.versions = [];
    H.key = cur.key;
    H.next = Number(cur.kv.mod_revision);
    $('history').hidden = false;
    clear($('hist-table').tBodies[0]);
    clear($('hist-diff'));
    await loadHistory();
    $('history').scrollIntoView({ block: 'nearest' });
  }));
  $('hist-more').addEventListener('click', () => run(loadHistory));

  // loadHistory walks back from H.next: the version at a revision is the
  // one whose mod revision is at or before it, so each step asks for the
  // key at (mod revision - 1) of the last version found, down to the
  // first version or the compaction point.
  async function loadHistory() {
    const msg = $('hist-msg');
    const key = b64(H.key);
    let n = 0;
    while (H.next > 0 && n < 50) {
      let r;
      try {
        r = await api('kv/range', { key, revision: String(H.next) });
      } catch (e) {
        if (isCompacted(e)) {
          msg.textContent = 'Older versions were compacted away: revisions up to ' + H.next + ' are no longer kept. ' + H.versions.length + ' versions shown.';
          H.next = 0;
          break;
        }
        throw e;
      }
      const kv = r.kvs && r.kvs[0];
      if (!kv) {
        msg.textContent = 'Complete history: ' + H.versions.length + ' versions.';
        H.next = 0;
        break;
      }
      H.versions.push(kv);
      addHistRow(kv, H.versions.length - 1);
      n++;
      H.next = Number(kv.mod_revision) - 1;
      if (Number(kv.version) === 1) {
        // Its creation: before it the key did not exist (an earlier life
        // ended with a delete, and ranges do not see past it).
        msg.textContent = 'Complete history: ' + H.versions.length + (H.versions.length === 1 ? ' version' : ' versions') + ' since the key was created at revision ' + kv.create_revision + '.';
        H.next = 0;
        break;
      }
    }
    if (H.next > 0) msg.textContent = H.versions.length + ' versions so far.';
    $('hist-more').hidden = !(H.next > 0);
    const a = document.querySelector('input[name="ha"]:checked');
    if (!a) {
      const ra = document.querySelectorAll('input[name="ha"]');
      const rb = document.querySelectorAll('input[name="hb"]');
      if (rb.length) rb[0].checked = true;
      if (ra.length) ra[Math.min(1, ra.length - 1)].checked = true;
    }
    histDiff();
  }
  function addHistRow(kv, i) {
    const v = unb64(kv.value);
    const prev = el('td', { cls: 'val' }, show(v, 120));
    const rA = el('input', { type: 'radio', name: 'ha', value: String(i), 'aria-label': 'diff from revision ' + kv.mod_revision, on: { change: histDiff } });
    const rB = el('input', { type: 'radio', name: 'hb', value: String(i), 'aria-label': 'diff to revision ' + kv.mod_revision, on: { change: histDiff } });
    const note = Number(kv.version) === 1 ? ' (created)' : '';
    $('hist-table').tBodies[0].append(el('tr', { data: { rev: kv.mod_revision } },
      el('td', {}, rA), el('td', {}, rB),
      el('td', { cls: 'mono', text: kv.mod_revision }), el('td', { cls: 'mono', text: kv.version + note }),
      el('td', { cls: 'nw', text: human(v.length) }), prev));
  }
  function histDiff() {
    const a = document.querySelector('input[name="ha"]:checked');
    const b = document.querySelector('input[name="hb"]:checked');
    const out = $('hist-diff');
    if (!a || !b) { clear(out); return; }
    const va = unb64(H.versions[Number(a.value)].value);
    const vb = unb64(H.versions[Number(b.value)].value);
    const ta = asText(va);
    const tb = asText(vb);
    if (ta === null || tb === null) {
      clear(out);
      out.append(bytesEqual(va, vb) ? 'The two versions are identical.' : 'Binary values differ (' + human(va.length) + ' → ' + human(vb.length) + ').');
      return;
    }
    renderDiff(out, ta, tb);
  }

  function prettyJSON(s) {
    const t = s.trim();
    if (!t || !'{['.includes(t[0]) || s.length > 512 * 1024) return null;
    try { return JSON.stringify(JSON.parse(s), null, 2); } catch (e) { return null; }
  }

  // lineDiff is a line diff of a and b (arrays of lines): common head and
  // tail, then the longest common subsequence of the middle (or, when the
  // middle is too large for that, all of it removed and added).
  function lineDiff(a, b) {
    let h = 0;
    while (h < a.length && h < b.length && a[h] === b[h]) h++;
    let t = 0;
    while (t < a.length - h && t < b.length - h && a[a.length - 1 - t] === b[b.length - 1 - t]) t++;
    const A = a.slice(h, a.length - t);
    const B = b.slice(h, b.length - t);
    const ops = [];
    for (let i = 0; i < h; i++) ops.push([' ', a[i]]);
    if (A.length * B.length > 4e6) {
      for (const l of A) ops.push(['-', l]);
      for (const l of B) ops.push(['+', l]);
    } else {
      const n = A.length;
      const m = B.length;
      const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
      for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = A[i] === B[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
      let i = 0;
      let j = 0;
      while (i < n && j < m) {
        if (A[i] === B[j]) { ops.push([' ', A[i]]); i++; j++; }
        else if (L[i + 1][j] >= L[i][j + 1]) ops.push(['-', A[i++]]);
        else ops.push(['+', B[j++]]);
      }
      while (i < n) ops.push(['-', A[i++]]);
      while (j < m) ops.push(['+', B[j++]]);
    }
    for (let i = a.length - t; i < a.length; i++) ops.push([' ', a[i]]);
    return ops;
  }
  // renderDiff shows the diff of texts a → b, with three lines of context
  // around each change.
  function renderDiff(out, a, b) {
    clear(out);
    if (a === b) { out.append(el('span', { cls: 'same', text: 'No difference.' })); return; }
    // Two JSON documents are compared pretty-printed, a member a line.
    const pa = prettyJSON(a);
    const pb = prettyJSON(b);
    if (pa !== null && pb !== null) {
      if (pa === pb) { out.append(el('span', { cls: 'same', text: 'The same JSON, formatted differently.' })); return; }
      out.append(el('span', { cls: 'same', text: '(JSON, compared pretty-printed)' }));
      a = pa;
      b = pb;
    }
    const ops = lineDiff(a.split('\n'), b.split('\n'));
    const keep = new Uint8Array(ops.length);
    ops.forEach((o, i) => { if (o[0] !== ' ') for (let j = Math.max(0, i - 3); j <= Math.min(ops.length - 1, i + 3); j++) keep[j] = 1; });
    const frag = document.createDocumentFragment();
    let skipped = 0;
    ops.forEach((o, i) => {
      if (!keep[i]) { skipped++; return; }
      if (skipped) { frag.append(el('span', { cls: 'same', text: '… ' + skipped + ' unchanged lines' })); skipped = 0; }
      frag.append(el('span', { cls: o[0] === '+' ? 'add' : o[0] === '-' ? 'del' : 'same', text: o[0] + ' ' + o[1] }));
    });
    if (skipped) frag.append(el('span', { cls: 'same', text: '… ' + skipped + ' unchanged lines' }));
    out.append(frag);
  }

  // ---- watch ---------------------------------------------------------

  const W = { ctrl: null, last: 0, prefix: null, running: false };
  $('watch-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    stopWatch();
    W.prefix = enc.encode($('watch-prefix').value);
    W.last = 0;
    startWatch(0);
  });
  $('watch-pause').addEventListener('click', () => {
    stopWatch();
    watchState('Paused after revision ' + W.last + '. Resume replays everything since.');
    $('watch-resume').disabled = false;
  });
  $('watch-resume').addEventListener('click', () => { startWatch(W.last + 1); });
  $('watch-clear').addEventListener('click', () => clear($('watch-table').tBodies[0]));
  function watchState(s) { $('watch-state').textContent = s; }
  function stopWatch() {
    if (W.ctrl) W.ctrl.abort();
    W.ctrl = null;
    W.running = false;
    $('watch-pause').disabled = true;
  }

  async function startWatch(from) {
    const ctrl = new AbortController();
    W.ctrl = ctrl;
    W.running = true;
    $('watch-pause').disabled = false;
    $('watch-resume').disabled = true;
    const cr = { key: b64(W.prefix), range_end: b64(prefixEnd(W.prefix)), prev_kv: true };
    if (from) cr.start_revision = String(from);
    watchState(from ? 'Resuming from revision ' + from + '…' : 'Connecting…');
    try {
      const resp = await fetch('/v3/watch', { method: 'POST', headers: headers(), body: JSON.stringify({ create_request: cr }), signal: ctrl.signal, credentials: 'omit', cache: 'no-store' });
      if (!resp.ok) {
        const t = await resp.text();
        let m = t;
        try { m = JSON.parse(t).message || t; } catch (e) { /* plain text */ }
        throw new APIError(m, 0, resp.status);
      }
      const reader = resp.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) onWatchMessage(JSON.parse(line), from);
        }
      }
      if (W.ctrl === ctrl) { stopWatch(); watchState('The server ended the watch after revision ' + W.last + '. Resume to go on.'); $('watch-resume').disabled = false; }
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (W.ctrl === ctrl) stopWatch();
      $('watch-resume').disabled = !W.last;
      if (needsLogin(e)) { S.retry = () => startWatch(from); openLogin(e.message); return; }
      watchState('Watch failed: ' + e.message);
    }
  }
  function onWatchMessage(j, from) {
    if (j.error) { watchState('Watch error: ' + (j.error.message || JSON.stringify(j.error))); return; }
    const r = j.result || {};
    if (r.header && r.header.revision) setHeadRev(Number(r.header.revision));
    if (r.created) {
      if (!from && r.header) W.last = Math.max(W.last, Number(r.header.revision));
      watchState('Watching ' + (W.prefix.length ? 'keys starting with ' + showStr(W.prefix, 200) : 'every key') + ' from revision ' + (from || Number(r.header.revision) + 1) + '.');
    }
    if (r.canceled) {
      stopWatch();
      $('watch-resume').disabled = false;
      if (r.compact_revision && r.compact_revision !== '0') {
        W.last = Number(r.compact_revision) - 1;
        watchState('Revisions before ' + r.compact_revision + ' were compacted while paused: events between ' + from + ' and ' + r.compact_revision + ' are lost. Resume continues from ' + r.compact_revision + '.');
      } else watchState('The watch was canceled: ' + (r.cancel_reason || 'no reason given'));
      return;
    }
    const body = $('watch-table').tBodies[0];
    for (const ev of r.events || []) {
      const kv = ev.kv || {};
      const type = ev.type || 'PUT';
      W.last = Math.max(W.last, Number(kv.mod_revision || 0));
      const v = unb64(kv.value);
      const pv = ev.prev_kv ? unb64(ev.prev_kv.value) : null;
      const diffRow = el('tr', { hidden: '' }, el('td', { colspan: '5' }, el('pre', { cls: 'diff' })));
      const btn = pv && type === 'PUT' ? el('button', { type: 'button', text: 'diff', on: { click: () => {
        diffRow.hidden = !diffRow.hidden;
        const pre = diffRow.querySelector('pre');
        const ta = asText(pv);
        const tb = asText(v);
        if (ta === null || tb === null) { clear(pre); pre.append(bytesEqual(pv, v) ? 'identical' : 'binary values differ'); } else renderDiff(pre, ta, tb);
      } } }) : null;
      const row = el('tr', { cls: 'new', data: { rev: kv.mod_revision || '' } },
        el('td', { cls: 'mono', text: kv.mod_revision || '' }),
        el('td', { cls: type === 'DELETE' ? 't-delete' : 't-put', text: type }),
        el('td', { cls: 'mono' }, show(unb64(kv.key), 300)),
        el('td', { cls: 'val' }, type === 'DELETE' ? (pv ? show(pv, 120) : '') : show(v, 120)),
        el('td', {}, btn));
      body.prepend(diffRow);
      body.prepend(row);
    }
    while (body.rows.length > 2000) body.deleteRow(body.rows.length - 1);
  }

  // ---- cluster -------------------------------------------------------

  async function loadCluster() {
    const ml = await api('cluster/member/list', {});
    const members = (ml.members || []).sort((a, b) => (a.name || '').localeCompare(b.name || '') || (a.ID < b.ID ? -1 : 1));
    const statuses = await Promise.all(members.map(async (m) => {
      try { return { ok: true, s: await post('/ui/api/status?member=' + encodeURIComponent(m.ID), {}) }; }
      catch (e) { return { ok: false, err: e.message }; }
    }));
    let leader = '';
    for (const st of statuses) if (st.ok && st.s.leader && st.s.leader !== '0') leader = st.s.leader;
    const body = $('members').tBodies[0];
    clear(body);
    members.forEach((m, i) => {
      const st = statuses[i];
      const s = st.ok ? st.s : {};
      const role = m.isLearner ? 'learner' : m.ID === leader ? 'leader' : 'follower';
      const errs = (s.errors || []).join('; ');
      const health = !st.ok ? 'unreachable' : errs ? 'unhealthy' : 'healthy';
      body.append(el('tr', { data: { member: m.ID, health } },
        el('td', { text: (m.name || '(not started)') + (m.ID === ml.header.member_id ? ' (this page)' : '') }),
        el('td', { cls: 'mono', text: hexID(m.ID) }),
        el('td', { cls: role === 'leader' ? 'role-leader' : '', text: role }),
        el('td', { cls: health === 'healthy' ? 'h-ok' : 'h-bad', text: health, title: st.ok ? errs : st.err }),
        el('td', { cls: 'mono', text: s.raftTerm || '' }),
        el('td', { cls: 'mono', text: s.raftIndex || '' }),
        el('td', { cls: 'mono', text: s.raftAppliedIndex || '' }),
        el('td', { text: st.ok ? human(Number(s.dbSize || 0)) : '' }),
        el('td', { text: st.ok ? human(Number(s.dbSizeInUse || 0)) : '' }),
        el('td', { text: s.version || '' }),
        el('td', { cls: 'mono', text: (m.clientURLs || []).join(', ') })));
    });
    const al = await api('maintenance/alarm', { action: 'GET' });
    const box = $('alarms');
    clear(box);
    const alarms = (al.alarms || []).filter((a) => a.alarm && a.alarm !== 'NONE');
    if (!alarms.length) box.append(el('p', { cls: 'h-ok', text: 'No alarms.' }));
    for (const a of alarms) box.append(el('p', { cls: 'h-bad', text: a.alarm + ' on member ' + hexID(a.memberID) }));
    $('cluster-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }
  $('cluster-refresh').addEventListener('click', () => run(loadCluster));

  // ---- live charts ---------------------------------------------------

  // parseMetrics reads Prometheus' text format: name → [{labels, value}].
  function parseMetrics(text) {
    const m = new Map();
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const r = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
      if (!r) continue;
      const labels = {};
      if (r[3]) for (const kv of r[3].matchAll(/(\w+)="((?:\\.|[^"\\])*)"/g)) labels[kv[1]] = kv[2];
      if (!m.has(r[1])) m.set(r[1], []);
      m.get(r[1]).push({ labels, value: Number(r[4]) });
    }
    return m;
  }
  const sum = (m, name) => (m.get(name) || []).reduce((a, x) => a + x.value, 0);
  // quantile is q of the histogram's observations between two scrapes.
  function quantile(prev, cur, name, q) {
    const bucket = (m) => {
      const b = new Map();
      for (const x of m.get(name + '_bucket') || []) b.set(x.labels.le, (b.get(x.labels.le) || 0) + x.value);
      return b;
    };
    const a = bucket(prev);
    const b = bucket(cur);
    const les = [...b.keys()].sort((x, y) => (x === '+Inf' ? Infinity : Number(x)) - (y === '+Inf' ? Infinity : Number(y)));
    const total = (b.get('+Inf') || 0) - (a.get('+Inf') || 0);
    if (total <= 0) return null;
    for (const le of les) if ((b.get(le) || 0) - (a.get(le) || 0) >= q * total) return le === '+Inf' ? Infinity : Number(le);
    return null;
  }
  const C = { prev: null, prevT: 0, series: { writes: [], reads: [], fsync: [], db: [] } };
  async function loadCharts() {
    let text;
    try {
      const r = await fetch('/metrics', { credentials: 'omit', cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      text = await r.text();
    } catch (e) {
      $('charts-msg').textContent = 'No metrics from this member (' + e.message + ').';
      return;
    }
    const cur = parseMetrics(text);
    const now = performance.now();
    if (C.prev) {
      const dt = (now - C.prevT) / 1000;
      const w = (sum(cur, 'etcd_mvcc_put_total') + sum(cur, 'etcd_mvcc_delete_total') + sum(cur, 'etcd_mvcc_txn_total')) -
        (sum(C.prev, 'etcd_mvcc_put_total') + sum(C.prev, 'etcd_mvcc_delete_total') + sum(C.prev, 'etcd_mvcc_txn_total'));
      const rd = sum(cur, 'etcd_mvcc_range_total') - sum(C.prev, 'etcd_mvcc_range_total');
      push('writes', Math.max(0, w / dt), (v) => v.toFixed(1));
      push('reads', Math.max(0, rd / dt), (v) => v.toFixed(1));
      const p99 = quantile(C.prev, cur, 'etcd_disk_wal_fsync_duration_seconds', 0.99);
      push('fsync', p99 === null ? 0 : p99, (v) => (p99 === null ? 'no fsync' : p99 === Infinity ? '> max bucket' : (v * 1000).toFixed(1) + ' ms'));
    }
    push('db', sum(cur, 'etcd_mvcc_db_total_size_in_bytes'), human);
    C.prev = cur;
    C.prevT = now;
    $('charts-msg').textContent = '';
  }
  function push(name, v, fmt) {
    const s = C.series[name];
    s.push(v === Infinity ? 0 : v);
    if (s.length > 60) s.shift();
    $('c-' + name).textContent = fmt(v);
    draw($('ch-' + name), s);
  }
  function draw(cv, s) {
    const g = cv.getContext('2d');
    const css = getComputedStyle(document.documentElement);
    const w = cv.width;
    const h = cv.height;
    g.clearRect(0, 0, w, h);
    g.strokeStyle = css.getPropertyValue('--line').trim();
    g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
    if (s.length < 2) return;
    const max = Math.max(...s) || 1;
    g.strokeStyle = css.getPropertyValue('--accent').trim();
    g.lineWidth = 1.5;
    g.beginPath();
    s.forEach((v, i) => {
      const x = (i / (s.length - 1)) * w;
      const y = h - 2 - (v / max) * (h - 6);
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  }

  // ---- leases --------------------------------------------------------

  async function loadLeases() {
    const r = await api('lease/leases', {});
    const ls = r.leases || [];
    const shown = ls.slice(0, 200);
    $('leases-msg').textContent = ls.length + (ls.length === 1 ? ' lease' : ' leases') + (ls.length > shown.length ? ', the first ' + shown.length + ' shown' : '') + '.';
    const infos = await Promise.all(shown.map((l) => api('lease/timetolive', { ID: l.ID, keys: true }).catch((e) => ({ err: e.message }))));
    const body = $('leases').tBodies[0];
    clear(body);
    shown.forEach((l, i) => {
      const t = infos[i];
      const keys = (t.keys || []).map(unb64);
      const kcell = el('td', { cls: 'mono' });
      keys.slice(0, 5).forEach((k, j) => { if (j) kcell.append(', '); kcell.append(show(k, 100)); });
      if (keys.length > 5) kcell.append(' … (' + keys.length + ' keys)');
      body.append(el('tr', { data: { lease: l.ID } },
        el('td', { cls: 'mono', text: hexID(l.ID) }),
        el('td', { text: t.err ? t.err : Number(t.TTL) < 0 ? 'expired' : t.TTL + 's' }),
        el('td', { text: t.grantedTTL ? t.grantedTTL + 's' : '' }),
        kcell,
        el('td', {}, el('button', { type: 'button', cls: 'danger', text: 'Revoke', on: { click: () => run(async () => {
          const ok = await confirmDialog('Revoke lease ' + hexID(l.ID) + '?', 'Revoking it deletes the ' + keys.length + (keys.length === 1 ? ' key' : ' keys') + ' attached to it.', 'Revoke');
          if (!ok) return;
          await api('lease/revoke', { ID: l.ID });
          await loadLeases();
        }) } }))));
    });
  }
  $('leases-refresh').addEventListener('click', () => run(loadLeases));

  // ---- users and roles -----------------------------------------------

  async function loadAccess() {
    const st = await api('auth/status', {});
    $('auth-state').textContent = st.enabled ? 'Auth is enabled.' : 'Auth is disabled: every client has every permission. Users and roles can still be prepared here (enable auth with etcdctl auth enable).';
    const ul = await api('auth/user/list', {});
    const users = ul.users || [];
    const uinfo = await Promise.all(users.map((u) => api('auth/user/get', { name: u }).catch(() => ({}))));
    const ub = $('users').tBodies[0];
    clear(ub);
    users.forEach((u, i) => {
      const roles = el('td');
      for (const r of uinfo[i].roles || []) {
        roles.append(el('span', { cls: 'mono', text: r }), el('button', { type: 'button', cls: 'danger', 'aria-label': 'revoke role ' + r + ' from ' + u, text: '×', on: { click: () => run(async () => {
          if (!(await confirmDialog('Revoke role?', 'Revoke role ' + r + ' from user ' + u + '?', 'Revoke'))) return;
          await api('auth/user/revoke', { name: u, role: r });
          await loadAccess();
        }) } }), ' ');
      }
      const input = el('input', { placeholder: 'role', size: '8', 'aria-label': 'role to grant to ' + u });
      ub.append(el('tr', {}, el('td', { cls: 'mono', text: u }), roles,
        el('td', {}, input, el('button', { type: 'button', text: 'Grant role', on: { click: () => run(async () => {
          await api('auth/user/grant', { user: u, role: input.value });
          await loadAccess();
        }) } }))));
    });
    const rl = await api('auth/role/list', {});
    const roles = rl.roles || [];
    const rinfo = await Promise.all(roles.map((r) => api('auth/role/get', { role: r }).catch(() => ({}))));
    const rb = $('roles').tBodies[0];
    clear(rb);
    roles.forEach((r, i) => {
      const perms = el('td');
      for (const p of rinfo[i].perm || []) {
        const k = unb64(p.key);
        const e = unb64(p.range_end);
        const what = !e.length ? 'key ' : isNoEnd(e) ? 'from ' : bytesEqual(e, prefixEnd(k)) ? 'prefix ' : 'range from ';
        perms.append(el('div', {}, (p.permType || 'READ') + ' ' + what, el('span', { cls: 'mono' }, show(k, 200)), ' ',
          el('button', { type: 'button', cls: 'danger', 'aria-label': 'revoke this permission from ' + r, text: '×', on: { click: () => run(async () => {
            if (!(await confirmDialog('Revoke permission?', 'Revoke ' + (p.permType || 'READ') + ' on ' + what + showStr(k, 200) + ' from role ' + r + '?', 'Revoke'))) return;
            const req = { role: r, key: p.key || '' };
            if (p.range_end) req.range_end = p.range_end;
            await api('auth/role/revoke', req);
            await loadAccess();
          }) } })));
      }
      rb.append(el('tr', {}, el('td', { cls: 'mono', text: r }), perms));
    });
  }
  $('user-add').addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(async () => {
      await api('auth/user/add', { name: $('user-name').value, password: $('user-pass').value });
      $('user-name').value = $('user-pass').value = '';
      await loadAccess();
    });
  });
  $('role-add').addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(async () => { await api('auth/role/add', { name: $('role-name').value }); $('role-name').value = ''; await loadAccess(); });
  });
  $('perm-add').addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(async () => {
      const k = enc.encode($('perm-prefix').value);
      await api('auth/role/grant', { name: $('perm-role').value, perm: { permType: $('perm-type').value, key: b64(k), range_end: b64(prefixEnd(k)) } });
      await loadAccess();
    });
  });

  // ---- start ---------------------------------------------------------

  updateWho();
  post('/v3/auth/status', {}).then((j) => { S.authOn = !!j.enabled; updateWho(); }).catch(() => {});
  run(reloadTree);
  // For the browser tests: the page's helpers, read-only.
  window.cairnConsole = Object.freeze({ b64, unb64, lineDiff, detect: (s) => detect(enc.encode(s)).kind, state: () => ({ rev: S.rev, headRev: S.headRev, watchLast: W.last }) });
})();
