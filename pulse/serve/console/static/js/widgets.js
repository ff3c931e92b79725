// Dashboard widgets: one renderer per widget type, drawn from the widget's validated config
// (docs/dashboards.md). A renderer fills its box and returns {refresh(), destroy(), wants(event)}:
// `wants` says which live events make it re-read its data (refreshes are throttled by the page).
import { API, get, post } from './api.js';
import { badge, fmtTime, fmtValue, h, replace } from './dom.js';
import { lineChart } from './chart.js';

function deviceFilter(config) {
  const out = {};
  if (config.device_ids?.length) out.device_ids = config.device_ids;
  if (config.group_id) out.group_id = config.group_id;
  return out;
}

function analytics(config, extra = {}) {
  return post(`${API}/analytics/query`, {
    metric: config.metric, aggregation: config.aggregation || 'avg', time_range: config.time_range || config.range || '24h',
    ...deviceFilter(config), ...extra,
  });
}

const RANGE_MS = { '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

const inScope = (config) => (ev) => !config.device_ids?.length || config.device_ids.includes(ev.device_id);

async function fleetKpi(box, kpi) {
  if (kpi === 'open_alerts') {
    const page = await get(`${API}/alerts`, { status: 'OPEN', limit: 1 });
    replace(box, h('div', { class: 'big' }, page.total), h('div', { class: 'muted' }, 'open alerts'));
    return;
  }
  const s = await get(`${API}/devices/summary`);
  const values = { online_devices: s.ONLINE, offline_devices: s.OFFLINE, total_devices: s.total,
    online_percent: s.total ? `${Math.round((100 * s.ONLINE) / s.total)}%` : '—' };
  replace(box, h('div', { class: 'big' }, values[kpi] ?? '—'), h('div', { class: 'muted' }, kpi.replace('_', ' ')));
}

const RENDERERS = {
  fleet_status(box) {
    return {
      async refresh() {
        const s = await get(`${API}/devices/summary`);
        const total = s.total || 0;
        const part = (k) => (total ? (100 * (s[k] || 0)) / total : 0);
        replace(box,
          h('div', { class: 'stack-bar' }, ['ONLINE', 'STALE', 'OFFLINE'].map((k) =>
            h('span', { class: k.toLowerCase(), style: `width:${part(k)}%`, title: `${k}: ${s[k] || 0}` }))),
          h('div', { class: 'legend' }, ['ONLINE', 'STALE', 'OFFLINE'].map((k) => h('span', {}, badge(k), ` ${s[k] || 0}`))));
      },
      wants: (ev) => ev.type === 'status',
    };
  },
  device_count(box) {
    return {
      async refresh() {
        const s = await get(`${API}/devices/summary`);
        replace(box, h('div', { class: 'big' }, s.total), h('div', { class: 'muted' }, `${s.ONLINE || 0} online`));
      },
      wants: (ev) => ev.type === 'status',
    };
  },
  kpi_tile(box, config) {
    return {
      async refresh() {
        if (config.kpi && config.kpi !== 'metric') { await fleetKpi(box, config.kpi); return; }
        if (!config.metric) { replace(box, h('p', { class: 'muted' }, 'Choose a metric.')); return; }
        const r = await analytics(config);
        const agg = config.aggregation || 'avg';
        const value = r.summary[agg === 'min' || agg === 'max' ? agg : 'avg'];
        replace(box, h('div', { class: 'big' }, fmtValue(value), config.unit ? h('small', {}, ` ${config.unit}`) : ''),
          h('div', { class: 'muted' }, `${agg} of ${config.metric} · ${config.time_range || '24h'}`));
      },
      wants: (ev) => ev.type === 'telemetry' && config.metric in ev.metrics && inScope(config)(ev),
    };
  },
  alert_feed(box, config) {
    return {
      async refresh() {
        const page = await get(`${API}/alerts`, { status: config.status || 'OPEN', limit: config.limit || 8 });
        replace(box, page.alerts.length ? h('ul', { class: 'feed' }, page.alerts.map((a) => h('li', {},
          badge(a.severity_label || a.severity, `sev sev-${a.severity}`), ' ',
          h('a', { href: `#/devices/${encodeURIComponent(a.device_id)}` }, a.device_id), ` ${a.summary || a.alert_type} `,
          h('span', { class: 'muted' }, fmtTime(a.last_triggered_at || a.triggered_at))))) : h('p', { class: 'muted' }, 'No open alerts.'));
      },
      wants: (ev) => ev.type === 'alert',
    };
  },
  table(box, config) {
    return {
      async refresh() {
        const page = await get(`${API}/devices`, { limit: config.limit || 10, group_id: config.group_id });
        const wanted = config.device_ids?.length ? page.devices.filter((d) => config.device_ids.includes(d.device_id)) : page.devices;
        replace(box, h('table', { class: 'grid compact' },
          h('thead', {}, h('tr', {}, h('th', {}, 'Device'), h('th', {}, 'Status'), h('th', {}, 'Site'))),
          h('tbody', {}, wanted.map((d) => h('tr', {},
            h('td', {}, h('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id)),
            h('td', {}, badge(d.status)), h('td', {}, d.site_id || ''))))));
      },
      wants: (ev) => ev.type === 'status',
    };
  },
  line_chart(box, config) {
    let chart = null;
    return {
      async refresh() {
        if (!config.metric) { replace(box, h('p', { class: 'muted' }, 'Choose a metric.')); return; }
        const r = await analytics(config, { group_by: config.device_ids?.length || config.group_id ? 'device' : undefined });
        if (chart) chart.destroy();
        box.dataset.points = String(r.series.reduce((n, s) => n + s.points.length, 0));
        const now = Date.now();
        chart = await lineChart(box, r.series, { height: Math.max(120, box.clientHeight - 40 || 200),
          xWindow: [now - RANGE_MS[config.time_range || '24h'], now] });
      },
      wants: (ev) => ev.type === 'telemetry' && config.metric in ev.metrics && inScope(config)(ev),
      destroy() { if (chart) chart.destroy(); },
    };
  },
};
// types of docs/dashboards.md drawn by the same view (an area or bar chart as a line, for now)
RENDERERS.area_chart = RENDERERS.line_chart;
RENDERERS.bar_chart = RENDERERS.line_chart;
RENDERERS.stat_card = RENDERERS.kpi_tile;
RENDERERS.fleet_overview = RENDERERS.fleet_status;
RENDERERS.health_score = RENDERERS.fleet_status;

export const EDITABLE_TYPES = ['line_chart', 'kpi_tile', 'fleet_status', 'device_count', 'alert_feed', 'table'];
export const NEEDS_METRIC = new Set(['line_chart', 'area_chart', 'bar_chart', 'kpi_tile', 'stat_card']);

export function renderWidget(box, widget) {
  const make = RENDERERS[widget.widget_type];
  if (!make) {
    replace(box, h('p', { class: 'muted' }, `No view for widget type ${widget.widget_type}.`));
    return { refresh: async () => {}, wants: () => false, destroy() {} };
  }
  const w = make(box, widget.config || {});
  const refresh = async () => {
    try { await w.refresh(); } catch (e) { replace(box, h('p', { class: 'error' }, e.message)); }
  };
  return { refresh, wants: w.wants, destroy: w.destroy || (() => {}) };
}
