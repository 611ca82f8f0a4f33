// One infrastructure: nodes and their dependencies, every instance (live through the event
// stream), the scaling timeline, the decision log, and the scale and destroy actions.

import {get, request, infraPath, ApiError} from './api.js';
import {AuthCancelled} from './auth.js';
import {h, s, replace, badge, icon, shortId, timeEl, duration, clock, num, dateTime} from './dom.js';
import {confirm, toast} from './dialogs.js';
import {watch} from './sse.js';
import * as timeline from './timeline.js';
import {errorBox} from './list.js';

const DECISIONS_POLL_MS = 3000;
const REFRESH_DEBOUNCE_MS = 60;
const HISTORY_PAGE = 1000;
const HISTORY_MAX_PAGES = 50;
const DECISION_ROWS = 200;

const RANGES = [
  ['5m', 'Last 5 minutes', 5 * 60e3],
  ['15m', 'Last 15 minutes', 15 * 60e3],
  ['1h', 'Last hour', 3600e3],
  ['6h', 'Last 6 hours', 6 * 3600e3],
  ['24h', 'Last 24 hours', 24 * 3600e3],
  ['all', 'Everything', Infinity],
];

const OUTCOME_WORDS = {
  scaled: 'scaled', at_max: 'at maximum', at_min: 'at minimum', cooldown: 'cooldown',
  pending: 'pending', conflict: 'conflict', stale: 'stale alert', resolved: 'resolved',
  within_tolerance: 'within tolerance', stabilizing: 'stabilizing', rejected: 'rejected', error: 'error',
};

/** infraView shows the infrastructure with the given id. setLive reports the stream state. */
export function infraView(id, {setLive, setCrumbs}) {
  const st = {
    detail: null,
    events: [],
    lastSeq: 0,
    decisions: [],
    lastDecision: 0,
    decisionsServed: true,
    alerts: [],
    alertsServed: true,
    range: '15m',
    gone: false,
  };
  const abort = new AbortController();
  const timers = new Set();
  let stream = null;
  let stopped = false;
  let refreshTimer = null;
  let chartQueued = false;
  let resizeObs = null;
  const cards = new Map(); // node name → card parts

  // Static skeleton; the parts below are filled as data arrives.
  const title = h('h1', {id: 'page-title'}, 'Infrastructure');
  const phase = h('span', {class: 'phase'});
  const meta = h('dl', {class: 'meta'});
  const destroyBtn = h('button', {type: 'button', class: 'btn btn-danger-quiet', dataset: {action: 'destroy'}, onclick: destroy},
    icon('minus'), h('span', {}, 'Destroy…'));
  const notice = h('div', {class: 'notice-slot'});
  const topo = h('div', {class: 'topology', id: 'topology'});
  const nodeGrid = h('div', {class: 'node-grid', id: 'nodes'});
  const rangeSelect = h('select', {id: 'range', onchange: () => { st.range = rangeSelect.value; drawChart(); }},
    RANGES.map(([v, label]) => h('option', {value: v, selected: v === st.range}, label)));
  const firing = h('ul', {class: 'firing', 'aria-label': 'Firing alerts'});
  const chartBox = h('div', {class: 'chart-box', id: 'timeline'});
  const legend = h('ul', {class: 'legend', 'aria-label': 'Chart legend'});
  const decisionsBody = h('tbody', {});
  const decisionsNote = h('p', {class: 'subtle'});

  const root = h('article', {class: 'page', 'aria-labelledby': 'page-title', dataset: {infra: id}},
    h('div', {class: 'page-head infra-head'},
      h('div', {class: 'title-row'}, title, phase),
      h('div', {class: 'head-actions'}, destroyBtn)),
    meta,
    notice,
    h('section', {class: 'panel', 'aria-labelledby': 'nodes-title'},
      h('div', {class: 'panel-head'}, h('h2', {id: 'nodes-title'}, 'Nodes'),
        h('p', {class: 'subtle'}, 'Arrows point from a node to the nodes it waits for.')),
      topo,
      nodeGrid),
    h('section', {class: 'panel', 'aria-labelledby': 'timeline-title'},
      h('div', {class: 'panel-head'}, h('h2', {id: 'timeline-title'}, 'Timeline'),
        h('div', {class: 'field-inline'}, h('label', {for: 'range'}, 'Show'), rangeSelect)),
      firing,
      chartBox,
      legend),
    h('section', {class: 'panel', 'aria-labelledby': 'decisions-title'},
      h('div', {class: 'panel-head'}, h('h2', {id: 'decisions-title'}, 'Autoscaling decisions'),
        h('p', {class: 'subtle'}, 'Newest first; every decision, including each decision not to scale, with its reason.')),
      decisionsNote,
      h('div', {class: 'table-wrap'},
        h('table', {class: 'table stack decisions', id: 'decisions'},
          h('caption', {class: 'visually-hidden'}, 'Autoscaling decisions, newest first'),
          h('thead', {}, h('tr', {}, ['Time', 'Node', 'Decision', 'Target', 'Reason', 'Cause'].map((c) => h('th', {scope: 'col'}, c)))),
          decisionsBody))));

  function every(ms, fn) {
    const t = setInterval(fn, ms);
    timers.add(t);
  }

  // ---- data ----

  async function loadDetail() {
    try {
      const d = await get(infraPath(id), {signal: abort.signal});
      if (stopped) return;
      st.detail = d;
      drawDetail();
      queueChart();
    } catch (err) {
      if (stopped || err.name === 'AbortError') return;
      if (err instanceof ApiError && err.status === 404) {
        markGone();
        return;
      }
      replace(notice, errorBox(err));
    }
  }

  function scheduleRefresh() {
    // Coalesce a burst of events into one fetch, but never postpone it past the first
    // event's deadline, so a steady stream still refreshes the page.
    if (refreshTimer !== null) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      loadDetail();
    }, REFRESH_DEBOUNCE_MS);
  }

  async function loadHistory() {
    let after = 0;
    for (let page = 0; page < HISTORY_MAX_PAGES; page++) {
      const res = await get(`${infraPath(id, '/events')}?after=${after}&limit=${HISTORY_PAGE}`, {signal: abort.signal});
      addEvents(res.events || []);
      if (!res.events || res.events.length < HISTORY_PAGE) break;
      after = res.next;
    }
  }

  function addEvents(evs) {
    for (const ev of evs) {
      if (ev.seq <= st.lastSeq) continue;
      st.events.push(ev);
      st.lastSeq = ev.seq;
    }
  }

  function follow() {
    stream = watch(`${infraPath(id, '/events')}?watch=1`, {
      lastEventId: st.lastSeq ? String(st.lastSeq) : '',
      onEvent(ev) {
        let e;
        try {
          e = JSON.parse(ev.data);
        } catch {
          return;
        }
        if (typeof e.seq !== 'number') return;
        addEvents([e]);
        scheduleRefresh();
        queueChart();
      },
      onState(state) {
        setLive(state);
        if (state === 'gone') markGone();
      },
    });
  }

  async function pollDecisions() {
    if (st.gone) return; // the log went with the infrastructure
    if (st.decisionsServed) {
      try {
        const res = await get(`${infraPath(id, '/decisions')}?after=${st.lastDecision}`, {signal: abort.signal});
        const ds = res.decisions || [];
        for (const d of ds) {
          if (d.seq > st.lastDecision) {
            st.decisions.push(d);
            st.lastDecision = d.seq;
          }
        }
        if (ds.length || !decisionsBody.childElementCount) drawDecisions();
      } catch (err) {
        if (stopped || err.name === 'AbortError') return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 405)) {
          // Either the infrastructure is gone or the server has no decision log route.
          await loadDetail();
          if (!st.gone && !stopped) {
            st.decisionsServed = false;
            decisionsNote.textContent = 'This server does not serve the decision log.';
          }
        }
      }
    }
    if (st.alertsServed) {
      try {
        const res = await get('/v1/alerts', {signal: abort.signal});
        st.alerts = res.alerts || [];
        drawFiring();
      } catch (err) {
        if (stopped || err.name === 'AbortError') return;
        if (err instanceof ApiError && (err.status === 404 || err.status === 405)) st.alertsServed = false;
      }
    }
    queueChart();
  }

  function markGone() {
    if (st.gone) return;
    st.gone = true;
    stream?.close();
    setLive('gone');
    destroyBtn.disabled = true;
    for (const c of cards.values()) c.buttons.forEach((b) => { b.disabled = true; });
    replace(notice, h('div', {class: 'notice', role: 'status'},
      h('strong', {}, 'This infrastructure no longer exists. '),
      h('a', {href: '#/'}, 'Back to all infrastructures')));
  }

  // ---- drawing ----

  function drawDetail() {
    const d = st.detail;
    title.textContent = d.name || '(unnamed)';
    document.title = `${d.name || d.id} · skyfleet`;
    setCrumbs([{label: d.name || shortId(d.id)}]);
    replace(phase, badge(d.phase === 'destroying' ? 'destroying_infra' : d.phase));
    root.dataset.phase = d.phase;
    replace(meta,
      h('div', {}, h('dt', {}, 'ID'), h('dd', {}, h('code', {}, d.id))),
      h('div', {}, h('dt', {}, 'Created'), h('dd', {}, timeEl(d.created))),
      h('div', {}, h('dt', {}, 'Maintained'), h('dd', {}, d.maintained ? 'yes' : 'no (detached)')),
      h('div', {}, h('dt', {}, 'Generation'), h('dd', {}, String(d.generation))),
      d.user_id ? h('div', {}, h('dt', {}, 'User'), h('dd', {}, d.user_id)) : null);
    destroyBtn.disabled = st.gone || d.phase === 'destroying';
    drawTopology(d.nodes);
    drawNodes(d.nodes);
  }

  function drawTopology(nodes) {
    // Depth: a node without dependencies is 0, else one more than its deepest dependency.
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const depth = new Map();
    const visit = (n, seen) => {
      if (depth.has(n.name)) return depth.get(n.name);
      if (seen.has(n.name)) return 0; // a cycle cannot be submitted; stay safe anyway
      seen.add(n.name);
      let dd = 0;
      for (const dep of n.dependencies || []) if (byName.has(dep)) dd = Math.max(dd, visit(byName.get(dep), seen) + 1);
      depth.set(n.name, dd);
      return dd;
    };
    nodes.forEach((n) => visit(n, new Set()));
    const maxDepth = Math.max(0, ...depth.values());
    const cols = [];
    for (const n of nodes) {
      const col = maxDepth - depth.get(n.name); // dependents on the left, as traffic flows
      (cols[col] ||= []).push(n);
    }
    const BW = 148, BH = 56, GX = 64, GY = 16, PAD = 8;
    const rows = Math.max(...cols.map((c) => (c ? c.length : 0)));
    const W = PAD * 2 + cols.length * BW + (cols.length - 1) * GX;
    const H = PAD * 2 + rows * BH + (rows - 1) * GY;
    const pos = new Map();
    cols.forEach((c, ci) => (c || []).forEach((n, ri) => {
      const off = ((rows - c.length) * (BH + GY)) / 2;
      pos.set(n.name, {x: PAD + ci * (BW + GX), y: PAD + off + ri * (BH + GY)});
    }));
    const svg = s('svg', {class: 'topology-svg', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img',
      'aria-label': 'Dependencies: ' + nodes.map((n) => (n.dependencies && n.dependencies.length
        ? `${n.name} waits for ${n.dependencies.join(', ')}` : `${n.name} waits for nothing`)).join('; ')});
    svg.append(s('defs', {}, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
      s('path', {d: 'M0,0L10,5L0,10z', class: 'arrow-head'}))));
    for (const n of nodes) {
      const a = pos.get(n.name);
      for (const dep of n.dependencies || []) {
        const b = pos.get(dep);
        if (!b) continue;
        const x1 = a.x + BW, y1 = a.y + BH / 2, x2 = b.x - 2, y2 = b.y + BH / 2;
        const mx = (x1 + x2) / 2;
        svg.append(s('path', {class: 'edge', d: `M${x1},${y1}C${mx},${y1} ${mx},${y2} ${x2},${y2}`, 'marker-end': 'url(#arrow)'}));
      }
    }
    nodes.forEach((n, i) => {
      const p = pos.get(n.name);
      const {color} = timeline.nodeStyle(i);
      const full = n.ready >= n.target;
      const g = s('g', {class: `topo-node ${full ? 'is-full' : 'is-short'}`, transform: `translate(${p.x},${p.y})`});
      g.append(s('rect', {width: BW, height: BH, rx: 8}));
      g.append(s('rect', {class: 'topo-stripe', width: 5, height: BH, rx: 2, fill: color}));
      g.append(s('text', {class: 'topo-name', x: 16, y: 23}, n.name));
      g.append(s('text', {class: 'topo-count', x: 16, y: 42}, `${n.ready}/${n.target} ready`));
      svg.append(g);
    });
    replace(topo, svg);
  }

  function drawNodes(nodes) {
    const names = nodes.map((n) => n.name).join('\n');
    if (nodeGrid.dataset.names !== names) {
      nodeGrid.dataset.names = names;
      cards.clear();
      replace(nodeGrid, nodes.map((n, i) => makeCard(n, i)));
    }
    nodes.forEach((n) => fillCard(cards.get(n.name), n));
  }

  function makeCard(n, i) {
    const {color} = timeline.nodeStyle(i);
    const down = h('button', {type: 'button', class: 'btn', dataset: {action: 'scale-down', node: n.name},
      'aria-label': `Scale ${n.name} down by one instance`, onclick: () => scale(n.name, -1)}, h('span', {'aria-hidden': 'true', class: 'btn-glyph'}, '−'), h('span', {}, 'Remove one'));
    const up = h('button', {type: 'button', class: 'btn', dataset: {action: 'scale-up', node: n.name},
      'aria-label': `Scale ${n.name} up by one instance`, onclick: () => scale(n.name, 1)}, h('span', {'aria-hidden': 'true', class: 'btn-glyph'}, '+'), h('span', {}, 'Add one'));
    const parts = {
      counts: h('div', {class: 'counts'}),
      deps: h('p', {class: 'deps subtle'}),
      result: h('p', {class: 'node-result', role: 'status', 'aria-live': 'polite'}),
      tbody: h('tbody', {}),
      buttons: [down, up],
    };
    const headingId = `node-${i}-title`;
    parts.root = h('section', {class: 'card node-card', 'aria-labelledby': headingId, dataset: {node: n.name}},
      h('div', {class: 'card-head'},
        h('h3', {id: headingId}, h('span', {class: 'swatch', 'aria-hidden': 'true', dataset: {color}}), n.name),
        h('span', {class: 'subtle'}, `type ${n.type}`)),
      parts.counts,
      parts.deps,
      h('div', {class: 'actions'}, down, up),
      parts.result,
      h('div', {class: 'table-wrap'},
        h('table', {class: 'table stack instances'},
          h('caption', {class: 'visually-hidden'}, `Instances of ${n.name}`),
          h('thead', {}, h('tr', {}, ['State', 'Instance', 'Address', 'Age', 'Health'].map((c) => h('th', {scope: 'col'}, c)))),
          parts.tbody)));
    // The swatch colour comes from the palette (CSSOM, allowed by the style policy).
    parts.root.querySelector('.swatch').style.background = color;
    cards.set(n.name, parts);
    return parts.root;
  }

  function fillCard(c, n) {
    Object.assign(c.root.dataset, {ready: n.ready, target: n.target, actual: n.actual, instances: (n.instances || []).length});
    const stat = (value, label, cls) => h('div', {class: `stat ${cls || ''}`}, h('span', {class: 'stat-num'}, String(value)), h('span', {class: 'stat-label'}, label));
    replace(c.counts,
      stat(n.ready, 'ready', 'stat-ready'),
      stat(n.target, 'target'),
      stat(n.actual, 'total'),
      stat(`${n.min}–${n.max}`, 'min–max'));
    c.deps.textContent = n.dependencies && n.dependencies.length ? `Waits for ${n.dependencies.join(', ')}` : 'Waits for nothing';
    const [down, up] = c.buttons;
    down.disabled = st.gone;
    up.disabled = st.gone;
    const insts = [...(n.instances || [])].sort((a, b) => Date.parse(a.created) - Date.parse(b.created));
    const fetched = Date.now();
    if (!insts.length) {
      replace(c.tbody, h('tr', {class: 'empty-row'}, h('td', {colspan: 5}, 'No instance')));
      return;
    }
    replace(c.tbody, insts.map((in_) => {
      // Age from the server's own count, so a skewed browser clock does not matter.
      const born = fetched - in_.age_seconds * 1000;
      const addr = (in_.addresses || []).join(', ') || in_.private_address || '—';
      const health = in_.detail || in_.health || '';
      return h('tr', {dataset: {nodeId: in_.node_id, state: in_.state}},
        h('td', {'data-label': 'State'}, badge(in_.state, in_.detail || null)),
        h('td', {'data-label': 'Instance'}, h('code', {title: `node id ${in_.node_id}${in_.provider_id ? `, provider id ${in_.provider_id}` : ''}`}, shortId(in_.node_id))),
        h('td', {'data-label': 'Address'}, h('code', {}, addr)),
        h('td', {'data-label': 'Age'}, h('span', {class: 'age', dataset: {born: String(born)}, title: `created ${dateTime(in_.created)}`}, duration(in_.age_seconds))),
        h('td', {'data-label': 'Health', class: 'health'}, health || h('span', {class: 'subtle'}, '—')));
    }));
  }

  function tickAges() {
    const now = Date.now();
    for (const el of root.querySelectorAll('.age[data-born]')) el.textContent = duration((now - Number(el.dataset.born)) / 1000);
  }

  function decisionCell(d) {
    let ic = 'dot';
    let word = OUTCOME_WORDS[d.outcome] || d.outcome;
    if (d.outcome === 'resolved' || d.outcome === 'stale') {
      ic = 'bell';
      word = d.outcome === 'resolved' ? 'alert resolved' : 'alert stale';
    } else if (d.outcome === 'scaled') {
      ic = d.direction === 'in' ? 'down' : 'up';
      word = d.direction === 'in' ? 'scaled in' : 'scaled out';
    } else if (d.direction === 'out' || d.direction === 'in') {
      word = `no ${d.direction === 'out' ? 'scale-out' : 'scale-in'}: ${word}`;
    } else {
      word = `no: ${word}`;
    }
    return h('span', {class: `decision-word outcome-${d.outcome}`}, icon(ic), h('span', {}, word));
  }

  function causeText(c) {
    if (!c) return '';
    if (c.alert !== undefined && c.kind) return `alert ${c.alert || '(unnamed)'} (${c.kind})${c.source ? ` via ${c.source}` : ''}`;
    if (typeof c.measured === 'number') {
      let t = `measured ${num(c.measured)} vs target ${num(c.target_value)}`;
      if (typeof c.desired === 'number') t += `, wants ${c.desired}`;
      return t;
    }
    return Object.entries(c).map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' ');
  }

  function targetText(d) {
    // Resolved and stale alerts are recorded without counts.
    if ((d.outcome === 'resolved' || d.outcome === 'stale') && !d.from && !d.to) return '—';
    return d.from === d.to ? String(d.to) : `${d.from} → ${d.to}`;
  }

  function drawDecisions() {
    if (!st.decisions.length) {
      replace(decisionsBody, h('tr', {class: 'empty-row'}, h('td', {colspan: 6}, 'No autoscaling decision yet.')));
      return;
    }
    const rows = st.decisions.slice(-DECISION_ROWS).reverse().map((d) => h('tr', {dataset: {seq: d.seq, outcome: d.outcome}},
      h('td', {'data-label': 'Time'}, timeEl(d.at)),
      h('td', {'data-label': 'Node'}, d.node),
      h('td', {'data-label': 'Decision'}, decisionCell(d)),
      h('td', {'data-label': 'Target', class: 'num'}, targetText(d)),
      h('td', {'data-label': 'Reason'}, d.reason),
      h('td', {'data-label': 'Cause', class: 'cause'}, causeText(d.cause))));
    replace(decisionsBody, rows);
    decisionsNote.textContent = st.decisions.length > DECISION_ROWS ? `Showing the newest ${DECISION_ROWS} of ${st.decisions.length}.` : '';
  }

  function drawFiring() {
    const mine = st.alerts.filter((a) => a.infra_id === id && a.firing);
    replace(firing, mine.map((a) => h('li', {class: `chip chip-${a.kind}`},
      icon('bell'), h('span', {}, `${a.name || a.kind} on ${a.node} (${a.kind}) since ${clock(a.starts_at || a.received)}`))));
  }

  function queueChart() {
    if (chartQueued) return;
    chartQueued = true;
    requestAnimationFrame(() => {
      chartQueued = false;
      drawChart();
    });
  }

  function drawChart() {
    if (stopped || !st.detail) return;
    const nodes = st.detail.nodes.map((n) => n.name);
    const series = timeline.buildSeries(st.events);
    const now = Date.now();
    const first = st.events.length ? Date.parse(st.events[0].at) : Date.parse(st.detail.created);
    const span = RANGES.find(([v]) => v === st.range)[2];
    const from = Math.max(first, now - span);
    const to = Math.max(now, from + 10e3);
    const measured = timeline.measuredSeries(st.decisions);
    const alerts = timeline.alertMarks(st.decisions, st.alerts, id);
    const width = chartBox.clientWidth || 640;
    replace(chartBox, timeline.render(width, {nodes, series, measured, decisions: st.decisions, alerts, from, to}));
    drawLegend(nodes, measured.size > 0);
  }

  function drawLegend(nodes, measured) {
    const key = nodes.join(',') + measured;
    if (legend.dataset.key === key) return;
    legend.dataset.key = key;
    const sample = (...parts) => s('svg', {class: 'legend-sample', width: 28, height: 14, viewBox: '0 0 28 14', 'aria-hidden': 'true'}, parts);
    const items = [];
    nodes.forEach((n, i) => {
      const {color} = timeline.nodeStyle(i);
      items.push(h('li', {}, sample(s('line', {x1: 1, x2: 27, y1: 7, y2: 7, stroke: color, 'stroke-width': 2.5})), `${n} ready`));
      items.push(h('li', {}, sample(s('line', {x1: 1, x2: 27, y1: 7, y2: 7, stroke: color, 'stroke-width': 1.5, 'stroke-dasharray': '5 3'})), `${n} target`));
    });
    if (measured) items.push(h('li', {}, sample(s('polyline', {points: '1,11 9,5 19,8 27,3', fill: 'none', stroke: '#444', 'stroke-dasharray': '2 2'}), s('rect', {x: 7, y: 3, width: 4, height: 4, fill: '#fff', stroke: '#444'})), 'measured value (right axis)'));
    items.push(h('li', {}, sample(s('path', {d: 'M14,2L20,12H8Z', class: 'decision outcome-scaled'})), 'scaled out'));
    items.push(h('li', {}, sample(s('path', {d: 'M14,12L20,2H8Z', class: 'decision outcome-scaled'})), 'scaled in'));
    items.push(h('li', {}, sample(s('circle', {cx: 14, cy: 7, r: 3.5, class: 'decision hollow'})), 'decided not to scale'));
    items.push(h('li', {}, sample(s('path', {d: 'M14,1.5L19.5,7L14,12.5L8.5,7Z', class: 'alert-mark'})), 'overloaded alert'));
    items.push(h('li', {}, sample(s('path', {d: 'M14,1.5L19.5,7L14,12.5L8.5,7Z', class: 'alert-mark hollow'})), 'underloaded alert'));
    replace(legend, items);
  }

  // ---- actions ----

  async function scale(node, delta) {
    const n = st.detail && st.detail.nodes.find((x) => x.name === node);
    if (!n) return;
    const c = cards.get(node);
    let text;
    if (delta > 0) {
      text = n.target >= n.max
        ? `${node} is at its maximum of ${n.max}; the server will refuse another instance.`
        : `Adds one instance to ${node}: target ${n.target} → ${n.target + 1} (maximum ${n.max}).`;
    } else {
      text = n.target <= n.min
        ? `${node} is at its minimum of ${n.min}; the server will refuse to remove one.`
        : `Removes one instance from ${node}: target ${n.target} → ${n.target - 1} (minimum ${n.min}). The instance leaves the load balancers before it is stopped.`;
    }
    const ok = await confirm({title: `Scale ${node} ${delta > 0 ? 'up' : 'down'}?`, text, action: delta > 0 ? 'Scale up' : 'Scale down'});
    if (!ok) return;
    try {
      const r = await request('POST', infraPath(id, `/nodes/${encodeURIComponent(node)}/scale`), {delta});
      const msg = r.applied
        ? `${node}: target ${r.from} → ${r.target}${r.reason ? ` (${r.reason})` : ''}`
        : `ignored: ${r.reason}`;
      c.result.textContent = msg;
      c.result.dataset.applied = String(r.applied);
      toast(msg, r.applied ? 'ok' : 'info');
      scheduleRefresh();
    } catch (err) {
      if (err instanceof AuthCancelled) return;
      const msg = `scale ${node}: ${err.message}`;
      c.result.textContent = msg;
      c.result.dataset.applied = 'false';
      toast(msg, 'error');
    }
  }

  async function destroy() {
    const d = st.detail;
    if (!d) return;
    const ok = await confirm({
      title: `Destroy ${d.name || d.id}?`,
      text: `Every instance of every node of ${d.name || d.id} is stopped and the infrastructure is removed from skyfleet. This cannot be undone.`,
      action: 'Destroy',
      danger: true,
    });
    if (!ok) return;
    try {
      await request('DELETE', infraPath(id));
      toast(`Destruction of ${d.name || d.id} requested: its instances are being stopped.`, 'ok');
      scheduleRefresh();
    } catch (err) {
      if (err instanceof AuthCancelled) return;
      toast(`destroy ${d.name || d.id}: ${err.message}`, 'error');
    }
  }

  return {
    title: 'Infrastructure',
    async mount(main) {
      main.append(root);
      setLive('connecting');
      try {
        await loadDetail();
        if (st.gone || stopped) return;
        await loadHistory();
        if (stopped) return;
        follow();
      } catch (err) {
        if (stopped || err.name === 'AbortError') return;
        replace(notice, errorBox(err));
      }
      drawChart();
      pollDecisions();
      every(DECISIONS_POLL_MS, pollDecisions);
      every(1000, tickAges);
      every(5000, queueChart); // the right edge of the chart is "now"
      resizeObs = new ResizeObserver(() => queueChart());
      resizeObs.observe(chartBox);
    },
    unmount() {
      stopped = true;
      abort.abort();
      stream?.close();
      clearTimeout(refreshTimer);
      timers.forEach(clearInterval);
      resizeObs?.disconnect();
    },
  };
}
