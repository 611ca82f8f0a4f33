// The dashboard's entry point: hash routing (#/ and #/infra/ID), the live indicator and the
// Token button.

import {changeToken, onTokenChange, takeCancelled} from './auth.js';
import {h, replace, icon} from './dom.js';
import {listView} from './list.js';
import {infraView} from './infra.js';

const main = document.getElementById('main');
const crumbs = document.getElementById('crumbs');
const live = document.getElementById('live');
let view = null;

const LIVE = {
  live: ['check', 'ok', 'Live'],
  connecting: ['ring', 'busy', 'Connecting…'],
  reconnecting: ['clock', 'warn', 'Reconnecting…'],
  auth: ['pause', 'warn', 'Token needed'],
  gone: ['minus', 'neutral', 'Ended'],
  '': null,
};

function setLive(state) {
  const v = LIVE[state];
  live.dataset.state = state || '';
  if (!v) {
    live.replaceChildren();
    return;
  }
  replace(live, h('span', {class: `badge tone-${v[1]}`}, icon(v[0]), h('span', {}, v[2])));
}

function setCrumbs(items) {
  replace(crumbs, h('ol', {},
    h('li', {}, h('a', {href: '#/'}, 'Infrastructures')),
    items.map((it) => h('li', {}, h('span', {'aria-current': 'page'}, it.label)))));
}

function route() {
  const hash = location.hash || '#/';
  view?.unmount();
  main.replaceChildren();
  setLive('');
  const m = hash.match(/^#\/infra\/([^/]+)$/);
  if (m) {
    setCrumbs([{label: '…'}]);
    view = infraView(decodeURIComponent(m[1]), {setLive, setCrumbs});
  } else {
    setCrumbs([]);
    document.title = 'Infrastructures · skyfleet';
    view = listView();
  }
  view.mount(main);
  // Move focus to the new content for keyboard and screen reader users, except on first load.
  if (route.done) {
    window.scrollTo(0, 0);
    main.focus({preventScroll: true});
  }
  route.done = true;
}

document.getElementById('token-button').addEventListener('click', () => changeToken());
// Requests waiting for a token retry by themselves once it is entered; a view whose requests
// gave up (the dialog was closed without a token) loads again.
onTokenChange(() => {
  if (takeCancelled()) route();
});
window.addEventListener('hashchange', route);
route();
