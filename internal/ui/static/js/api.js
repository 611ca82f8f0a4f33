// The /v1 API client: JSON in and out, the bearer token, and one error type.

import {askToken, authHeaders, getToken} from './auth.js';

/**
 * base is the path the API lives under: what precedes /ui/ in the page's own path, so that
 * the dashboard also works behind a reverse proxy that adds a path prefix.
 */
export const base = location.pathname.replace(/\/ui(\/.*)?$/, '');

/** ApiError is an answer other than 2xx, carrying the API's error envelope. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || [];
  }
}

/**
 * request sends one API call and returns the decoded JSON body. A 401 opens the token dialog
 * and retries with the token entered; closing the dialog rejects with AuthCancelled.
 */
export async function request(method, path, body, {signal} = {}) {
  for (;;) {
    const sent = getToken();
    const init = {method, headers: authHeaders({Accept: 'application/json'}), signal, cache: 'no-store'};
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(base + path, init);
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', `cannot reach the skyfleet server: ${err.message}`);
    }
    if (res.status === 401) {
      // Another request may have got a new token meanwhile; only ask when ours was refused.
      if (getToken() === sent) await askToken(true);
      continue;
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const e = data && data.error;
      throw new ApiError(res.status, e ? e.code : 'http', e ? e.message : `${method} ${path}: HTTP ${res.status}`, e && e.details);
    }
    return data;
  }
}

/** get is request('GET', …). */
export function get(path, opts) {
  return request('GET', path, undefined, opts);
}

/** infraPath is /v1/infrastructures/{id} with the id escaped. */
export function infraPath(id, rest = '') {
  return `/v1/infrastructures/${encodeURIComponent(id)}${rest}`;
}
