// The timeline chart: ready instances per node over time (from the event log), the target
// per node, the autoscaler's decisions and the alerts as markers, and for target tracking the
// measured value on a second axis. Plain SVG, drawn again whenever data or size change.

import {s, clock, num} from './dom.js';

// Okabe–Ito colours stay apart for the common colour-vision deficiencies; each node also gets
// its own point shape and a direct label, so colour is never the only cue.
export const PALETTE = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000'];
export const SHAPES = ['circle', 'square', 'triangle', 'diamond'];

// Events that move an instance out of the ready set.
const LEAVE = new Set(['nodefailed', 'nodedraining', 'nodedropping', 'nodedropped']);

/**
 * buildSeries replays the event log (sorted by seq) into step series per node: ready (count
 * of instances that became ready and have not left) and target (from scaling_applied and
 * infraready). Each series is a list of {t (ms), v}.
 */
export function buildSeries(events) {
  const readySets = new Map();
  const ready = new Map();
  const target = new Map();
  const push = (m, node, t, v) => {
    if (!m.has(node)) m.set(node, []);
    const pts = m.get(node);
    const last = pts[pts.length - 1];
    if (last && last.v === v) return;
    if (last && last.t === t) pts.pop();
    pts.push({t, v});
  };
  for (const ev of events) {
    const t = Date.parse(ev.at);
    const node = ev.node;
    switch (ev.type) {
      case 'infrastart':
      case 'infraupdated':
        for (const n of (ev.data && ev.data.nodes) || []) {
          if (!readySets.has(n)) {
            readySets.set(n, new Set());
            push(ready, n, t, 0);
          }
        }
        break;
      case 'nodecreated':
      case 'nodeadopted': {
        if (!node || !ev.node_id) break;
        if (!readySets.has(node)) readySets.set(node, new Set());
        const set = readySets.get(node);
        set.add(ev.node_id);
        push(ready, node, t, set.size);
        break;
      }
      case 'scaling_applied':
        if (node && ev.data && typeof ev.data.target === 'number') push(target, node, t, ev.data.target);
        break;
      case 'infraready':
        for (const [n, v] of Object.entries((ev.data && ev.data.targets) || {})) {
          if (typeof v === 'number') push(target, n, t, v);
        }
        break;
      default:
        if (LEAVE.has(ev.type) && node && ev.node_id) {
          const set = readySets.get(node);
          if (set && set.delete(ev.node_id)) push(ready, node, t, set.size);
        }
    }
  }
  return {ready, target};
}

/** measuredSeries collects target tracking's measured values per node from the decisions. */
export function measuredSeries(decisions) {
  const out = new Map();
  for (const d of decisions) {
    const c = d.cause;
    if (!c || typeof c.measured !== 'number' || !isFinite(c.measured)) continue;
    if (!out.has(d.node)) out.set(d.node, {points: [], targetValue: c.target_value});
    const m = out.get(d.node);
    m.points.push({t: Date.parse(d.at), v: c.measured});
    if (typeof c.target_value === 'number') m.targetValue = c.target_value;
  }
  return out;
}

/**
 * alertMarks lists alert firings as spans {name, kind, node, t, end, firing}: the alerts named
 * as causes in decisions (from their starts_at until the decision that resolved them or
 * found them stale, else the last decision naming them) and the currently active alerts of
 * this infrastructure (until now). end is null while the alert is firing.
 */
export function alertMarks(decisions, active, infraId) {
  const spans = new Map();
  const get = (name, kind, node, startsAt) => {
    const t = Date.parse(startsAt);
    if (!isFinite(t)) return null;
    const key = `${name}|${kind}|${node}|${t}`;
    if (!spans.has(key)) spans.set(key, {name, kind, node, t, end: t, firing: false});
    return spans.get(key);
  };
  for (const d of decisions) {
    const c = d.cause;
    if (!c || c.alert === undefined || !c.kind) continue;
    const sp = get(c.alert, c.kind, d.node, c.starts_at || c.received || d.at);
    if (!sp) continue;
    const at = Date.parse(d.at);
    if (at > sp.end) sp.end = at;
    if (d.outcome === 'resolved' || d.outcome === 'stale') sp.closed = true;
  }
  for (const a of active || []) {
    if (a.infra_id !== infraId || !a.firing) continue;
    const sp = get(a.name, a.kind, a.node, a.starts_at || a.received);
    if (sp && !sp.closed) {
      sp.firing = true;
      sp.end = null;
    }
  }
  return [...spans.values()].sort((a, b) => a.t - b.t);
}

const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((x) => x * 1000);

function timeTicks(from, to, maxTicks) {
  const span = to - from;
  const step = STEPS.find((st) => span / st <= maxTicks) || STEPS[STEPS.length - 1];
  const off = new Date(from).getTimezoneOffset() * 60000;
  const ticks = [];
  for (let t = Math.ceil((from - off) / step) * step + off; t <= to; t += step) ticks.push(t);
  return {ticks, step};
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function stepPath(points, x, y, from, to) {
  // The value in force at `from` is the last point at or before it.
  let start = 0;
  while (start + 1 < points.length && points[start + 1].t <= from) start++;
  const vis = points.slice(start).filter((p) => p.t <= to);
  if (!vis.length) return null;
  let d = '';
  let prev = null;
  for (const p of vis) {
    const px = x(Math.max(p.t, from));
    if (prev === null) d += `M${px.toFixed(1)},${y(p.v).toFixed(1)}`;
    else d += `H${px.toFixed(1)}V${y(p.v).toFixed(1)}`;
    prev = p;
  }
  d += `H${x(to).toFixed(1)}`;
  return {d, last: vis[vis.length - 1], changes: vis.filter((p) => p.t >= from)};
}

function shape(kind, cx, cy, r, attrs) {
  switch (kind) {
    case 'square': return s('rect', {x: cx - r, y: cy - r, width: 2 * r, height: 2 * r, ...attrs});
    case 'triangle': return s('path', {d: `M${cx},${cy - r * 1.2}L${cx + r * 1.1},${cy + r * 0.8}H${cx - r * 1.1}Z`, ...attrs});
    case 'diamond': return s('path', {d: `M${cx},${cy - r * 1.3}L${cx + r * 1.3},${cy}L${cx},${cy + r * 1.3}L${cx - r * 1.3},${cy}Z`, ...attrs});
    case 'down': return s('path', {d: `M${cx},${cy + r * 1.2}L${cx + r * 1.1},${cy - r * 0.8}H${cx - r * 1.1}Z`, ...attrs});
    default: return s('circle', {cx, cy, r, ...attrs});
  }
}

/** nodeStyle is the colour and point shape of the i-th node. */
export function nodeStyle(i) {
  return {color: PALETTE[i % PALETTE.length], shape: SHAPES[i % SHAPES.length]};
}

/**
 * render draws the chart into a new <svg> of the given width. data: {nodes (names in order),
 * series (buildSeries), target (current target per node), measured (measuredSeries),
 * decisions, alerts (alertMarks), from, to (ms)}.
 */
export function render(width, data) {
  const {nodes, series, measured, decisions, alerts, from, to} = data;
  const narrow = width < 560;
  const H = narrow ? 240 : 300;
  const hasMeasured = measured.size > 0;
  const M = {left: narrow ? 58 : 78, right: hasMeasured ? 112 : 70, top: 58, bottom: 28};
  const W = Math.max(width, 280);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const span = Math.max(to - from, 1000);
  const x = (t) => M.left + ((t - from) / span) * pw;

  let yMax = 1;
  for (const m of [series.ready, series.target]) {
    for (const pts of m.values()) for (const p of pts) if (p.t <= to) yMax = Math.max(yMax, p.v);
  }
  yMax = Math.max(2, Math.ceil(yMax * 1.15));
  const y = (v) => M.top + ph - (v / yMax) * ph;

  let mMax = 1;
  for (const m of measured.values()) {
    for (const p of m.points) mMax = Math.max(mMax, p.v);
    if (typeof m.targetValue === 'number') mMax = Math.max(mMax, m.targetValue);
  }
  mMax = niceMax(mMax * 1.1);
  const ym = (v) => M.top + ph - (v / mMax) * ph;

  const svg = s('svg', {class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': summary(nodes, series, decisions, alerts)});

  // Grid and axes.
  const grid = s('g', {class: 'grid'});
  const yStep = yMax <= 6 ? 1 : yMax <= 12 ? 2 : Math.ceil(yMax / 6);
  for (let v = 0; v <= yMax; v += yStep) {
    grid.append(s('line', {x1: M.left, x2: M.left + pw, y1: y(v), y2: y(v)}));
    grid.append(s('text', {class: 'tick', x: M.left - 8, y: y(v) + 4, 'text-anchor': 'end'}, String(v)));
  }
  const {ticks, step} = timeTicks(from, to, Math.max(2, Math.floor(pw / (narrow ? 70 : 90))));
  for (const t of ticks) {
    grid.append(s('line', {class: 'vgrid', x1: x(t), x2: x(t), y1: M.top, y2: M.top + ph}));
    const label = step >= 60000 ? clock(t).slice(0, 5) : clock(t);
    grid.append(s('text', {class: 'tick', x: x(t), y: H - 8, 'text-anchor': 'middle'}, label));
  }
  svg.append(grid);

  if (hasMeasured) {
    const ax = s('g', {class: 'grid measured-axis'});
    for (let i = 0; i <= 4; i++) {
      const v = (mMax / 4) * i;
      ax.append(s('text', {class: 'tick', x: M.left + pw + 6, y: ym(v) + 4}, num(v)));
    }
    ax.append(s('text', {class: 'axis-title', x: M.left + pw + 6, y: M.top - 10}, 'measured'));
    svg.append(ax);
  }

  // Bands for the markers above the plot.
  const decY = 12;
  const alertY = 29;
  svg.append(s('text', {class: 'band-label', x: M.left - 8, y: decY + 4, 'text-anchor': 'end'}, narrow ? 'scale' : 'decisions'));
  svg.append(s('text', {class: 'band-label', x: M.left - 8, y: alertY + 4, 'text-anchor': 'end'}, 'alerts'));
  svg.append(s('line', {class: 'band-rule', x1: M.left, x2: M.left + pw, y1: decY, y2: decY}));
  svg.append(s('line', {class: 'band-rule', x1: M.left, x2: M.left + pw, y1: alertY, y2: alertY}));

  const plot = s('g', {class: 'plot'});
  // Scaling steps get a faint guide line down through the plot.
  for (const d of decisions) {
    const t = Date.parse(d.at);
    if (t < from || t > to || d.outcome !== 'scaled') continue;
    plot.append(s('line', {class: 'decision-guide', x1: x(t), x2: x(t), y1: decY + 6, y2: M.top + ph}));
  }

  // Target tracking: measured values and the target value.
  let mi = 0;
  for (const [node, m] of measured) {
    const ni = Math.max(0, nodes.indexOf(node));
    const color = nodeStyle(ni).color;
    if (typeof m.targetValue === 'number') {
      plot.append(s('line', {class: 'target-value', x1: M.left, x2: M.left + pw, y1: ym(m.targetValue), y2: ym(m.targetValue), stroke: color}));
      plot.append(s('text', {class: 'series-label small', x: M.left + 6, y: ym(m.targetValue) - 5 - 12 * mi}, `${node} target value ${num(m.targetValue)}`));
    }
    const pts = m.points.filter((p) => p.t >= from && p.t <= to);
    if (pts.length) {
      plot.append(s('polyline', {class: 'measured', stroke: color, points: pts.map((p) => `${x(p.t).toFixed(1)},${ym(p.v).toFixed(1)}`).join(' ')}));
      for (const p of pts) {
        plot.append(s('rect', {class: 'measured-point', x: x(p.t) - 2.5, y: ym(p.v) - 2.5, width: 5, height: 5, stroke: color},
          s('title', {}, `${node} measured ${num(p.v)} at ${clock(p.t)}`)));
      }
    }
    mi++;
  }

  // Target (dashed) and ready (solid) per node, labelled at the right end.
  const labels = [];
  nodes.forEach((node, i) => {
    const {color, shape: sh} = nodeStyle(i);
    const tp = series.target.get(node);
    if (tp) {
      const p = stepPath(tp, x, y, from, to);
      if (p) plot.append(s('path', {class: 'target-line', d: p.d, stroke: color}));
    }
    const rp = series.ready.get(node);
    if (!rp) return;
    const p = stepPath(rp, x, y, from, to);
    if (!p) return;
    plot.append(s('path', {class: 'ready-line', d: p.d, stroke: color}));
    for (const c of p.changes) {
      const pt = shape(sh, x(c.t), y(c.v), 3.5, {class: 'point', fill: color});
      pt.append(s('title', {}, `${node}: ${c.v} ready at ${clock(c.t)}`));
      plot.append(pt);
    }
    labels.push({node, v: p.last.v, y: y(p.last.v), color, sh});
  });
  // Keep the end labels from overlapping.
  labels.sort((a, b) => a.y - b.y);
  for (let i = 1; i < labels.length; i++) labels[i].y = Math.max(labels[i].y, labels[i - 1].y + 14);
  for (const l of labels) {
    const lx = M.left + pw + (hasMeasured ? 40 : 8);
    plot.append(shape(l.sh, lx + 4, l.y, 3.5, {fill: l.color}));
    plot.append(s('text', {class: 'series-label', x: lx + 12, y: l.y + 4}, `${l.node} ${l.v}`));
  }

  // Decision markers: ▲ scaled out, ▼ scaled in, ○ no action.
  for (const d of decisions) {
    const t = Date.parse(d.at);
    if (t < from || t > to) continue;
    const title = s('title', {}, `${clock(t)} ${d.node}: ${d.reason}`);
    const cls = `decision outcome-${d.outcome}`;
    let mark;
    if (d.outcome === 'scaled' && d.direction === 'out') mark = shape('triangle', x(t), decY, 5, {class: cls});
    else if (d.outcome === 'scaled' && d.direction === 'in') mark = shape('down', x(t), decY, 5, {class: cls});
    else mark = s('circle', {class: `${cls} hollow`, cx: x(t), cy: decY, r: 3.5});
    mark.append(title);
    plot.append(mark);
  }
  // Alerts: a bar while firing, starting with ◆ (overloaded) or ◇ (underloaded).
  for (const a of alerts) {
    const end = a.end === null ? to : a.end;
    if (end < from || a.t > to) continue;
    const x1 = x(Math.max(a.t, from));
    const x2 = x(Math.min(end, to));
    if (x2 - x1 > 1) plot.append(s('rect', {class: `alert-span${a.kind === 'underloaded' ? ' hollow' : ''}`, x: x1, y: alertY - 2, width: x2 - x1, height: 4, rx: 2}));
    if (a.t < from) continue;
    const cls = a.kind === 'underloaded' ? 'alert-mark hollow' : 'alert-mark';
    const mark = shape('diamond', x(a.t), alertY, 4.5, {class: cls});
    mark.append(s('title', {}, `${clock(a.t)} alert ${a.name || a.kind} (${a.kind}) on ${a.node}${a.firing ? ', firing' : `, until ${clock(end)}`}`));
    plot.append(mark);
  }
  svg.append(plot);
  return svg;
}

function summary(nodes, series, decisions, alerts) {
  const parts = nodes.map((n) => {
    const r = series.ready.get(n);
    return `${n}: ${r && r.length ? r[r.length - 1].v : 0} ready`;
  });
  return `Timeline of ready instances per node (${parts.join(', ')}), ${decisions.length} autoscaling decisions and ${alerts.length} alerts; the decision log below lists them as text.`;
}
