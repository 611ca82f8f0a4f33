// A server-sent events client on fetch(): EventSource cannot send an Authorization header.
// SSEParser follows the WHATWG "event stream interpretation" rules; watch() reconnects with
// Last-Event-ID as EventSource does.

import {askToken, authHeaders, getToken, AuthCancelled} from './auth.js';
import {base} from './api.js';

/**
 * SSEParser turns text chunks (any split, \n, \r\n or \r line ends) into events
 * {type, data, lastEventId}. Comment lines (": …") go to onComment. lastEventId survives
 * between events and connections, as the specification's "last event ID string".
 */
export class SSEParser {
  constructor(onEvent, onComment) {
    this.onEvent = onEvent;
    this.onComment = onComment || (() => {});
    this.lastEventId = '';
    this.retry = null;
    this.reset();
  }

  /** reset forgets a partial line and event (a new connection starts clean). */
  reset() {
    this.buf = '';
    this.skipLF = false;
    this.data = [];
    this.type = '';
    this.idBuf = this.lastEventId;
  }

  /** feed parses the next chunk of the stream. */
  feed(chunk) {
    if (this.skipLF && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.skipLF = false;
    const text = this.buf + chunk;
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== '\n' && c !== '\r') continue;
      this.line(text.slice(start, i));
      if (c === '\r') {
        if (i + 1 < text.length) {
          if (text[i + 1] === '\n') i++;
        } else {
          this.skipLF = true; // a \r\n may be split between two chunks
        }
      }
      start = i + 1;
    }
    this.buf = text.slice(start);
  }

  line(l) {
    if (l === '') {
      this.dispatch();
      return;
    }
    if (l[0] === ':') {
      this.onComment(l.slice(1).trimStart());
      return;
    }
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event': this.type = value; break;
      case 'data': this.data.push(value); break;
      case 'id': if (!value.includes('\0')) this.idBuf = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.retry = Number(value); break;
      default: break; // unknown fields are ignored
    }
  }

  dispatch() {
    this.lastEventId = this.idBuf;
    if (this.data.length === 0) {
      this.type = '';
      return;
    }
    const ev = {type: this.type || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId};
    this.data = [];
    this.type = '';
    this.onEvent(ev);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, {once: true});
  });
}

/**
 * watch follows an event stream at path (relative to the API base) until close() is called or
 * the server sends "gone" (or answers 404). onEvent gets every event as {type, data,
 * lastEventId}; onState gets 'connecting', 'live', 'reconnecting', 'auth' (no token given) or
 * 'gone'. A lost connection is retried after 250 ms doubling to 5 s (or the stream's retry:),
 * sending Last-Event-ID so that the server continues where the stream stopped.
 */
export function watch(path, {lastEventId = '', onEvent, onState = () => {}}) {
  const stop = new AbortController();
  const parser = new SSEParser((ev) => {
    if (ev.type === 'gone') {
      finish('gone');
      return;
    }
    onEvent(ev);
  });
  parser.lastEventId = String(lastEventId || '');
  let finished = false;
  function finish(state) {
    if (finished) return;
    finished = true;
    onState(state);
    stop.abort();
  }

  (async () => {
    let delay = 250;
    while (!stop.signal.aborted) {
      onState('connecting');
      parser.reset();
      let opened = false;
      try {
        const sent = getToken();
        const headers = authHeaders({Accept: 'text/event-stream'});
        if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId;
        const res = await fetch(base + path, {headers, signal: stop.signal, cache: 'no-store'});
        if (res.status === 401) {
          if (getToken() === sent) await askToken(true);
          continue;
        }
        if (res.status === 404) {
          finish('gone');
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        opened = true;
        delay = 250;
        onState('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const {value, done} = await reader.read();
          if (done || finished) break;
          parser.feed(value);
        }
      } catch (err) {
        if (err instanceof AuthCancelled) {
          finish('auth');
          return;
        }
        // A network error or an aborted read: reconnect below unless closed.
      }
      if (stop.signal.aborted || finished) return;
      onState('reconnecting');
      await sleep(parser.retry ?? delay, stop.signal);
      if (!opened) delay = Math.min(delay * 2, 5000);
    }
  })();

  return {
    close() {
      finished = true;
      stop.abort();
    },
  };
}
