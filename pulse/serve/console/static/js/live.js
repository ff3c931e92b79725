// Live push (docs/live.md): one stream per page, filtered server-side to the page's devices and
// channels. Signed in by cookie: Server-Sent Events (EventSource sends the cookie). With a pasted
// token: the WebSocket, which takes the token in its query (browsers cannot set headers on either).
import { API, session } from './api.js';

const state = document.getElementById('live-state');

function showState(text, kind) {
  state.hidden = false;
  state.textContent = text;
  state.className = `live-state ${kind}`;
}

function url(base, filters, extra = {}) {
  const q = new URLSearchParams();
  if (filters.channels?.length) q.set('channels', filters.channels.join(','));
  if (filters.device_ids?.length) q.set('device_id', filters.device_ids.join(','));
  if (filters.group_ids?.length) q.set('group_id', filters.group_ids.join(','));
  if (filters.metrics?.length) q.set('metric', filters.metrics.join(','));
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return `${base}?${q}`;
}

// filters: {channels: ['telemetry'|'alerts'|'status'], device_ids, group_ids, metrics}
// onEvent(event) gets every telemetry/alert/status event; returns a function that closes the stream.
export function subscribe(filters, onEvent) {
  let closed = false, source = null, retry = 1000, timer = null;

  const deliver = (raw) => {
    let event;
    try { event = JSON.parse(raw); } catch { return; }
    if (['telemetry', 'alert', 'status'].includes(event.type)) onEvent(event);
  };

  const open = () => {
    if (closed) return;
    const token = session.token;
    if (token) {
      const base = new URL(`${API}/telemetry/stream`, document.baseURI);
      base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(url(base.href, filters, { token }));
      ws.onopen = () => { retry = 1000; showState('live', 'on'); };
      ws.onmessage = (m) => deliver(m.data);
      ws.onclose = () => again();
      source = ws;
    } else {
      const es = new EventSource(url(`${API}/telemetry/stream/sse`, filters), { withCredentials: true });
      es.onopen = () => { retry = 1000; showState('live', 'on'); };
      es.onmessage = (m) => deliver(m.data);
      es.onerror = () => { es.close(); again(); };
      source = es;
    }
  };

  const again = () => {
    if (closed) return;
    showState('reconnecting…', 'off');
    timer = setTimeout(open, retry);
    retry = Math.min(retry * 2, 15000);
  };

  open();
  return () => {
    closed = true;
    clearTimeout(timer);
    if (source) source.close();
    state.hidden = true;
  };
}
