// The fleet: connectivity counts, then the devices with search and filters (lifecycle status,
// group, site), paged on the server. Status changes arrive live and update the counts and rows.
import { API, get } from '../api.js';
import { badge, debounce, fmtTime, h, replace, throttle } from '../dom.js';
import { subscribe } from '../live.js';

const PAGE = 25;

export async function render(view) {
  const filters = { search: '', status: '', group_id: '', site_id: '', offset: 0 };
  const counts = h('div', { class: 'tiles', id: 'fleet-counts' });
  const table = h('tbody', { id: 'fleet-rows' });
  const pager = h('div', { class: 'pager' });
  const groups = await get(`${API}/device-groups`).catch(() => ({ groups: [] }));

  const loadCounts = async () => {
    const s = await get(`${API}/devices/summary`);
    replace(counts,
      tile('Devices', s.total, 'total'), tile('Online', s.ONLINE, 'online'),
      tile('Stale', s.STALE, 'stale'), tile('Offline', s.OFFLINE, 'offline'));
  };

  const load = async () => {
    const page = await get(`${API}/devices`, { ...filters, limit: PAGE, sort: 'device_id' });
    replace(table, page.devices.length ? page.devices.map(row) :
      h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No devices match.')));
    const last = Math.min(filters.offset + PAGE, page.total);
    replace(pager,
      h('span', { class: 'muted' }, page.total ? `${filters.offset + 1}–${last} of ${page.total}` : ''),
      h('button', { disabled: filters.offset === 0, onclick: () => { filters.offset -= PAGE; load(); } }, '‹ Prev'),
      h('button', { disabled: last >= page.total, onclick: () => { filters.offset += PAGE; load(); } }, 'Next ›'));
  };

  const set = (key) => (ev) => { filters[key] = ev.target.value.trim(); filters.offset = 0; load(); };
  const toolbar = h('div', { class: 'toolbar' },
    h('input', { id: 'fleet-search', type: 'search', placeholder: 'Search id, name, site…', oninput: debounce(set('search'), 250) }),
    h('select', { id: 'fleet-status', onchange: set('status') },
      h('option', { value: '' }, 'Any status'),
      ['ACTIVE', 'INACTIVE', 'SUSPENDED', 'REVOKED'].map((s) => h('option', { value: s }, s))),
    h('select', { id: 'fleet-group', onchange: set('group_id') },
      h('option', { value: '' }, 'Any group'),
      (groups.groups || []).map((g) => h('option', { value: g.group_id }, g.name || g.group_id))),
    h('input', { id: 'fleet-site', placeholder: 'Site id', onchange: set('site_id') }));

  replace(view,
    h('h1', {}, 'Fleet'), counts, toolbar,
    h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['Device', 'Name', 'Status', 'Connectivity', 'Site', 'Updated'].map((c) => h('th', {}, c)))),
      table),
    pager);
  await Promise.all([loadCounts(), load()]);

  // live: a device going ONLINE/STALE/OFFLINE updates its row and the counts
  const refreshCounts = throttle(() => loadCounts().catch(() => {}), 2000);
  return subscribe({ channels: ['status'] }, (ev) => {
    const cell = table.querySelector(`[data-presence="${CSS.escape(ev.device_id)}"]`);
    if (cell) replace(cell, badge(ev.status));
    refreshCounts();
  });
}

function tile(label, value, kind) {
  return h('div', { class: `tile ${kind}` }, h('div', { class: 'tile-value' }, value ?? 0), h('div', { class: 'tile-label' }, label));
}

function row(d) {
  const presence = d.presence?.status || d.connectivity || d.connection_status || null;
  return h('tr', { dataset: { device: d.device_id } },
    h('td', {}, h('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id)),
    h('td', {}, d.name || ''),
    h('td', {}, badge(d.status)),
    h('td', { dataset: { presence: d.device_id } }, presence ? badge(presence) : h('span', { class: 'muted' }, '—')),
    h('td', {}, d.site_id || ''),
    h('td', {}, fmtTime(d.updated_at)));
}
