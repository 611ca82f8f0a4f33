// The confirmation dialog and the toasts that report the API's answers.

import {h} from './dom.js';

/**
 * confirm opens the confirmation dialog and resolves true when the user confirms. danger
 * styles the confirm button as destructive. Escape or Cancel resolve false.
 */
export function confirm({title, text, action, danger = false}) {
  const dlg = document.getElementById('confirm-dialog');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  ok.textContent = action;
  ok.classList.toggle('btn-danger', danger);
  ok.classList.toggle('btn-primary', !danger);
  dlg.returnValue = '';
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), {once: true});
    dlg.showModal();
    // Start on Cancel for destructive actions, so that Enter alone does not destroy.
    (danger ? document.getElementById('confirm-cancel') : ok).focus();
  });
}

/** toast shows a message for a while; kind is 'ok', 'info' or 'error'. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const icons = {ok: '✓', info: 'i', error: '!'};
  const el = h('div', {class: `toast toast-${kind}`},
    h('span', {class: 'toast-icon', 'aria-hidden': 'true'}, icons[kind] || 'i'),
    h('span', {class: 'toast-text'}, message),
    h('button', {type: 'button', class: 'toast-close', 'aria-label': 'Dismiss message', onclick: () => el.remove()}, '×'));
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 12000 : 6000);
  return el;
}
