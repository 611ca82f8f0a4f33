// The bearer token: kept in sessionStorage only (it dies with the tab), asked for with the
// token dialog when the API answers 401.

const KEY = 'skyfleet.token';

/** AuthCancelled is thrown when the user closes the token dialog without a token. */
export class AuthCancelled extends Error {
  constructor() {
    super('a token is required to read this server; use the Token button to enter it');
    this.name = 'AuthCancelled';
  }
}

/** getToken returns the session's token, or ''. */
export function getToken() {
  try {
    return sessionStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

function setToken(t) {
  try {
    if (t) sessionStorage.setItem(KEY, t);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage refused (private mode with quota 0): the token lives for this request only.
  }
}

/** authHeaders adds the Authorization header when a token is set. */
export function authHeaders(headers = {}) {
  const t = getToken();
  if (t) headers.Authorization = `Bearer ${t}`;
  return headers;
}

let asking = null;
let cancelled = false;
const listeners = new Set();

/**
 * takeCancelled tells whether the token dialog was closed without a token since the last
 * call: the views gave up then, and must load again once a token is entered.
 */
export function takeCancelled() {
  const c = cancelled;
  cancelled = false;
  return c;
}

/** onTokenChange registers fn to run after the token changed (entered or forgotten). */
export function onTokenChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * askToken opens the token dialog (once, however many requests were refused at the same time)
 * and resolves when a token was entered; it rejects with AuthCancelled when the dialog is
 * closed without one. refused tells whether the current token was just refused.
 */
export function askToken(refused) {
  if (asking) return asking;
  const dlg = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const text = document.getElementById('token-text');
  const had = getToken();
  text.textContent = refused && had
    ? 'The server refused this token. Enter the token of this server (the content of its --token-file).'
    : 'This skyfleet server requires a bearer token. Enter it to continue.';
  input.value = '';
  asking = new Promise((resolve, reject) => {
    dlg.addEventListener('close', () => {
      asking = null;
      const v = input.value.trim();
      input.value = '';
      if (dlg.returnValue === 'forget') {
        setToken('');
        cancelled = true;
        listeners.forEach((fn) => fn());
        reject(new AuthCancelled());
      } else if (dlg.returnValue === 'ok' && v) {
        setToken(v);
        listeners.forEach((fn) => fn());
        resolve();
      } else {
        cancelled = true;
        reject(new AuthCancelled());
      }
    }, {once: true});
  });
  dlg.returnValue = '';
  dlg.showModal();
  input.focus();
  return asking;
}

/**
 * changeToken opens the dialog on the user's request (the Token button). Closing it without a
 * token changes nothing here, unlike closing it when the server asked.
 */
export function changeToken() {
  const before = cancelled;
  return askToken(false).catch(() => {
    cancelled = before;
  });
}
