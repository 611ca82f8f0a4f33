// Small DOM helpers. Every text goes through textContent or attributes, never parsed as HTML, so
// names and messages coming from the API cannot inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h creates an HTML element: h('a', {href: '#/'}, 'text', child…). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** s creates an SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** replace empties el and appends the children. */
export function replace(el, ...children) {
  el.replaceChildren();
  build(el, {}, children);
  return el;
}

/** duration formats seconds as "42s", "3m 05s", "2h 04m", "3d 4h". */
export function duration(sec) {
  sec = Math.max(0, Math.floor(sec));
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${String(sec % 60).padStart(2, '0')}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false});
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'medium'});

/** clock formats a time as HH:MM:SS in the browser's zone. */
export function clock(t) {
  return timeFmt.format(t instanceof Date ? t : new Date(t));
}

/** dateTime formats a full date and time. */
export function dateTime(t) {
  return dateTimeFmt.format(t instanceof Date ? t : new Date(t));
}

/** shortId keeps the first 8 characters of a UUID-like id. */
export function shortId(id) {
  return id && id.length > 12 ? id.slice(0, 8) : id || '';
}

/** timeEl is a <time> element showing HH:MM:SS with the full date as its tooltip. */
export function timeEl(t) {
  const d = new Date(t);
  return h('time', {datetime: d.toISOString(), title: dateTime(d)}, clock(d));
}

// Icons: each state has its own shape, so it reads without colour (and the word is always
// next to it).
const ICONS = {
  check: [['circle', {cx: 8, cy: 8, r: 7}], ['path', {d: 'M4.5 8.2l2.3 2.3 4.7-4.9', fill: 'none', class: 'ink'}]],
  clock: [['circle', {cx: 8, cy: 8, r: 6.5, fill: 'none', 'stroke-width': 1.6}], ['path', {d: 'M8 4.5V8l2.5 1.6', fill: 'none', 'stroke-width': 1.6}]],
  ring: [['circle', {cx: 8, cy: 8, r: 6, fill: 'none', 'stroke-width': 1.8, 'stroke-dasharray': '3 2.2'}]],
  minus: [['circle', {cx: 8, cy: 8, r: 7}], ['path', {d: 'M4.5 8h7', class: 'ink'}]],
  cross: [['path', {d: 'M8 1.2l6.8 12.6H1.2z'}], ['path', {d: 'M8 6v3.6M8 11.4v.4', class: 'ink'}]],
  pause: [['rect', {x: 1, y: 1, width: 14, height: 14, rx: 3}], ['path', {d: 'M6 5v6M10 5v6', class: 'ink'}]],
  square: [['rect', {x: 2, y: 2, width: 12, height: 12, rx: 1}]],
  up: [['path', {d: 'M8 2l6 10H2z'}]],
  down: [['path', {d: 'M8 14L2 4h12z'}]],
  dot: [['circle', {cx: 8, cy: 8, r: 5, fill: 'none', 'stroke-width': 2}]],
  bell: [['path', {d: 'M8 1.5l6.5 6.5L8 14.5 1.5 8z'}], ['path', {d: 'M8 5v3.5M8 10.6v.4', class: 'ink'}]],
};

/** icon returns a 16×16 inline SVG icon, hidden from screen readers (the text says it). */
export function icon(name, cls) {
  const parts = ICONS[name] || ICONS.dot;
  return s('svg', {class: ['icon', cls], viewBox: '0 0 16 16', width: 16, height: 16, 'aria-hidden': 'true', focusable: 'false'},
    parts.map(([tag, attrs]) => s(tag, attrs)));
}

// State words, their icon and tone. The tone picks a colour; the icon shape and the word carry
// the meaning on their own.
const STATES = {
  ready: ['check', 'ok', 'ready'],
  creating: ['ring', 'busy', 'creating'],
  pending: ['clock', 'busy', 'pending'],
  draining: ['minus', 'leaving', 'draining'],
  destroying: ['minus', 'leaving', 'destroying'],
  shutdown: ['minus', 'leaving', 'shut down'],
  failed: ['cross', 'bad', 'failed'],
  temp_failed: ['pause', 'warn', 'stopped'],
  building: ['clock', 'busy', 'building'],
  destroying_infra: ['minus', 'leaving', 'destroying'],
  detached: ['pause', 'warn', 'detached'],
};

/** badge shows a state (instance state or infrastructure phase) as icon + word. */
export function badge(state, title) {
  const [ic, tone, word] = STATES[state] || ['dot', 'neutral', state || 'unknown'];
  return h('span', {class: `badge tone-${tone}`, title: title || null, dataset: {state: state || ''}}, icon(ic), h('span', {text: word}));
}

/** trimNumber prints a measured value with at most 3 significant decimals. */
export function num(v) {
  if (typeof v !== 'number' || !isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return String(Number(v.toPrecision(3)));
}
