// The list of infrastructures, refreshed every few seconds.

import {get, ApiError} from './api.js';
import {AuthCancelled} from './auth.js';
import {h, replace, badge, shortId, timeEl} from './dom.js';

const REFRESH_MS = 4000;

/** listView shows every infrastructure with its phase and node counts. */
export function listView() {
  let timer = null;
  let stopped = false;
  const abort = new AbortController();
  const body = h('div', {class: 'list-body'}, h('p', {class: 'loading'}, 'Loading infrastructures…'));
  const root = h('section', {class: 'page', 'aria-labelledby': 'page-title'},
    h('div', {class: 'page-head'},
      h('h1', {id: 'page-title'}, 'Infrastructures'),
      h('p', {class: 'subtle'}, 'Every infrastructure this server maintains. Select one to see its nodes, instances, scaling timeline and decisions.')),
    body);

  async function refresh() {
    try {
      const data = await get('/v1/infrastructures', {signal: abort.signal});
      if (stopped) return;
      draw(data.infrastructures || []);
    } catch (err) {
      if (stopped || err.name === 'AbortError') return;
      replace(body, errorBox(err));
      if (err instanceof AuthCancelled) return; // wait for the Token button
    }
    if (!stopped) timer = setTimeout(refresh, REFRESH_MS);
  }

  function draw(infras) {
    if (!infras.length) {
      replace(body, h('div', {class: 'empty'},
        h('p', {}, 'No infrastructure yet.'),
        h('p', {class: 'subtle'}, 'Import node definitions and build one: ', h('code', {}, 'skyfleet import nodes.yaml && skyfleet build infra.yaml'))));
      return;
    }
    infras.sort((a, b) => (a.name || '').localeCompare(b.name || '') || a.id.localeCompare(b.id));
    const rows = infras.map((inf) => {
      const nodes = Object.entries(inf.nodes || {}).sort(([a], [b]) => a.localeCompare(b));
      return h('tr', {dataset: {infra: inf.id}},
        h('td', {'data-label': 'Name'}, h('a', {class: 'row-link', href: `#/infra/${encodeURIComponent(inf.id)}`}, inf.name || '(unnamed)')),
        h('td', {'data-label': 'ID'}, h('code', {title: inf.id}, shortId(inf.id))),
        h('td', {'data-label': 'Phase'}, badge(inf.phase === 'destroying' ? 'destroying_infra' : inf.phase),
          inf.maintained ? null : h('span', {class: 'subtle small'}, ' not maintained')),
        h('td', {'data-label': 'Nodes'}, h('ul', {class: 'node-counts'}, nodes.map(([name, c]) =>
          h('li', {dataset: {node: name, ready: c.ready, total: c.total, target: c.target}},
            h('strong', {}, name), ' ',
            h('span', {class: 'count'}, `${c.ready}/${c.target}`), h('span', {class: 'subtle'}, ' ready'),
            c.total !== c.ready ? h('span', {class: 'subtle'}, ` · ${c.total} total`) : null)))),
        h('td', {'data-label': 'Updated'}, timeEl(inf.updated)));
    });
    replace(body, h('div', {class: 'table-wrap'},
      h('table', {class: 'table stack', id: 'infra-table'},
        h('caption', {class: 'visually-hidden'}, 'Infrastructures'),
        h('thead', {}, h('tr', {}, ['Name', 'ID', 'Phase', 'Nodes (ready/target)', 'Updated'].map((c) => h('th', {scope: 'col'}, c)))),
        h('tbody', {}, rows))));
  }

  return {
    title: 'Infrastructures',
    crumbs: [],
    mount(main) {
      main.append(root);
      refresh();
    },
    unmount() {
      stopped = true;
      abort.abort();
      clearTimeout(timer);
    },
  };
}

/** errorBox shows an API error in words. */
export function errorBox(err) {
  let msg = err.message || String(err);
  if (err instanceof ApiError && err.status) msg = `${msg} (HTTP ${err.status})`;
  return h('div', {class: 'notice notice-error', role: 'alert'}, h('strong', {}, 'Could not load: '), msg);
}
