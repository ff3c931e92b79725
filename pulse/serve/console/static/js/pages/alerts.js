// Alerts: filter by status and severity, acknowledge / silence / close. Alert changes arrive live
// (opened, re-triggered, acknowledged elsewhere, closed) and the list re-reads itself.
import { API, get, patch } from '../api.js';
import { badge, fmtTime, h, replace, toast, throttle } from '../dom.js';
import { subscribe } from '../live.js';

const SEVERITY = { 1: 'info', 2: 'low', 3: 'medium', 4: 'high', 5: 'critical' };

export async function render(view) {
  const filters = { status: 'OPEN', min_severity: '', limit: 100 };
  const rows = h('tbody', { id: 'alert-rows' });
  const total = h('span', { class: 'muted', id: 'alert-total' });

  const load = async () => {
    const page = await get(`${API}/alerts`, filters);
    total.textContent = `${page.total} alert${page.total === 1 ? '' : 's'}`;
    replace(rows, page.alerts.length ? page.alerts.map((a) => row(a, act)) :
      h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No alerts.')));
  };

  const act = async (alert, action, body) => {
    try {
      await patch(`${API}/alerts/${alert.alert_id}/${action}`, body);
      toast(`Alert ${alert.alert_id}: ${action === 'acknowledge' ? 'acknowledged' : action === 'close' ? 'closed' : 'silenced'}`);
      await load();
    } catch (e) { toast(e.message, 'error'); }
  };

  replace(view,
    h('h1', {}, 'Alerts'),
    h('div', { class: 'toolbar' },
      h('select', { id: 'alert-status', onchange: (e) => { filters.status = e.target.value; load(); } },
        ['OPEN', 'ACKNOWLEDGED', 'CLOSED', 'ALL'].map((s) => h('option', { value: s }, s))),
      h('select', { id: 'alert-severity', onchange: (e) => { filters.min_severity = e.target.value; load(); } },
        h('option', { value: '' }, 'Any severity'),
        [2, 3, 4, 5].map((s) => h('option', { value: s }, `${SEVERITY[s]} and above`))),
      total),
    h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['Severity', 'Device', 'Type', 'Summary', 'Triggered', 'Status', ''].map((c) => h('th', {}, c)))),
      rows));
  await load();

  const reload = throttle(() => load().catch(() => {}), 500);
  return subscribe({ channels: ['alerts'] }, (ev) => { if (ev.type === 'alert') reload(); });
}

function row(a, act) {
  const open = a.status === 'OPEN';
  const silence = h('select', {
    class: 'silence', title: 'Silence for…',
    onchange: (e) => { if (e.target.value) act(a, 'silence', { minutes: Number(e.target.value) }); },
  }, h('option', { value: '' }, 'Silence…'), [15, 60, 240, 1440].map((m) => h('option', { value: m }, m < 60 ? `${m} min` : `${m / 60} h`)));
  return h('tr', { dataset: { alert: a.alert_id }, class: `sev-${a.severity}` },
    h('td', {}, badge(a.severity_label || SEVERITY[a.severity] || a.severity, `sev sev-${a.severity}`)),
    h('td', {}, h('a', { href: `#/devices/${encodeURIComponent(a.device_id)}` }, a.device_id)),
    h('td', {}, a.alert_type),
    h('td', {}, a.summary || ''),
    h('td', {}, fmtTime(a.last_triggered_at || a.triggered_at)),
    h('td', {}, badge(a.status), a.silenced_until ? h('span', { class: 'muted' }, ` silenced until ${fmtTime(a.silenced_until)}`) : ''),
    h('td', { class: 'actions' },
      open ? h('button', { class: 'ack', onclick: () => act(a, 'acknowledge') }, 'Acknowledge') : '',
      a.status !== 'CLOSED' ? silence : '',
      a.status !== 'CLOSED' ? h('button', { class: 'close', onclick: () => act(a, 'close') }, 'Close') : ''));
}
