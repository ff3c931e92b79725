// Dashboard widgets: one renderer per widget type, drawn from the widget's validated config
// (docs/dashboards.md). A renderer fills its box and returns {refresh(), destroy(), wants(event)}:
// `wants` says which live events make it re-read its data (refreshes are throttled by the page).
import { API, get, post } from './api.js';
import { badge, fmtTime, fmtValue, h, replace } from './dom.js';
import { gaugeChart, lineChart, noData, pieChart, radarChart, scatterChart } from './chart.js';

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

// the query's summary holds min, max and avg of its bucket values: other aggregations read avg
const summaryValue = (summary, agg) => summary[agg === 'min' || agg === 'max' ? agg : 'avg'];

// One number per device, site or group (a series of the query): its bucket values aggregated the
// way the widget asks (sum and count add up; avg and p95 take the mean of the buckets' values).
async function perSeries(config, metric, groupBy) {
  const r = await analytics({ ...config, metric }, { group_by: groupBy });
  const agg = config.aggregation || 'avg';
  return r.series.map((s) => {
    const vs = s.points.map((p) => p.value).filter((v) => v !== null);
    if (!vs.length) return null;
    const sum = vs.reduce((a, b) => a + b, 0);
    const value = agg === 'min' ? Math.min(...vs) : agg === 'max' ? Math.max(...vs)
      : agg === 'sum' || agg === 'count' ? sum : sum / vs.length;
    return { label: s.label, value };
  }).filter(Boolean);
}

const RANGE_MS = { '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

const inScope = (config) => (ev) => !config.device_ids?.length || config.device_ids.includes(ev.device_id);

// a chart re-reads its data when one of its devices sends one of its metrics
const onTelemetry = (config, metrics) => (ev) =>
  ev.type === 'telemetry' && metrics.some((m) => m in ev.metrics) && inScope(config)(ev);

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

// pie_chart, radar: one value per device, site or group, drawn by `draw`
function breakdown(box, config, draw) {
  return {
    async refresh() {
      const items = await perSeries(config, config.metric, config.group_by || 'device');
      if (items.length) replace(box, draw(items)); else noData(box);
    },
    wants: onTelemetry(config, [config.metric]),
  };
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
        const value = summaryValue(r.summary, agg);
        replace(box, h('div', { class: 'big' }, fmtValue(value), config.unit ? h('small', {}, ` ${config.unit}`) : ''),
          h('div', { class: 'muted' }, `${agg} of ${config.metric} · ${config.time_range || '24h'}`));
      },
      wants: onTelemetry(config, [config.metric]),
    };
  },
  gauge(box, config) {
    return {
      async refresh() {
        const r = await analytics(config);
        const agg = config.aggregation || 'avg';
        const value = summaryValue(r.summary, agg);
        if (value === null || value === undefined) { noData(box); return; }
        replace(box, h('div', { class: 'gauge-box' }, gaugeChart(value, config),
          h('div', { class: 'muted' }, `${agg} of ${config.metric} · ${config.time_range || '1h'}`)));
      },
      wants: onTelemetry(config, [config.metric]),
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
    const metrics = config.metrics || [];
    return {
      async refresh() {
        const page = await get(`${API}/devices`, { limit: config.limit || 10, group_id: config.group_id });
        const wanted = config.device_ids?.length ? page.devices.filter((d) => config.device_ids.includes(d.device_id)) : page.devices;
        const ids = wanted.map((d) => d.device_id);
        const latest = metrics.length && ids.length
          ? await get(`${API}/telemetry/latest`, { device_id: ids, limit: ids.length }) : { devices: [] };
        const values = new Map(latest.devices.map((d) => [d.device_id, d.metrics]));
        replace(box, h('table', { class: 'grid compact' },
          h('thead', {}, h('tr', {}, ['Device', 'Status', 'Site'].map((c) => h('th', {}, c)), metrics.map((m) => h('th', {}, m)))),
          h('tbody', {}, wanted.map((d) => h('tr', {},
            h('td', {}, h('a', { href: `#/devices/${encodeURIComponent(d.device_id)}` }, d.device_id)),
            h('td', {}, badge(d.status)), h('td', {}, d.site_id || ''),
            metrics.map((m) => h('td', { class: 'num' }, fmtValue(values.get(d.device_id)?.[m]?.value))))))));
      },
      wants: (ev) => ev.type === 'status' || (metrics.length > 0 && onTelemetry(config, metrics)(ev)),
    };
  },
  pie_chart: (box, config) => breakdown(box, config, pieChart),
  radar: (box, config) => breakdown(box, config, radarChart),
  scatter(box, config) {
    return {
      async refresh() {
        const [xs, ys] = await Promise.all([config.x_metric, config.y_metric].map((m) => perSeries(config, m, 'device')));
        const y = new Map(ys.map((p) => [p.label, p.value]));
        const points = xs.filter((p) => y.has(p.label)).map((p) => ({ label: p.label, x: p.value, y: y.get(p.label) }));
        if (points.length) replace(box, scatterChart(points, { xLabel: config.x_metric, yLabel: config.y_metric }));
        else noData(box);
      },
      wants: onTelemetry(config, [config.x_metric, config.y_metric]),
    };
  },
};

// line_chart, area_chart, bar_chart: one series per `group_by` label, or per device when the widget
// selects devices, else one for the fleet
function timeSeries(kind) {
  return (box, config) => {
    let chart = null;
    return {
      async refresh() {
        if (!config.metric) { replace(box, h('p', { class: 'muted' }, 'Choose a metric.')); return; }
        const groupBy = config.group_by || (config.device_ids?.length || config.group_id ? 'device' : undefined);
        const r = await analytics(config, { group_by: groupBy, bucket_size: config.bucket_size || undefined });
        if (chart) chart.destroy();
        box.dataset.points = String(r.series.reduce((n, s) => n + s.points.length, 0));
        const now = Date.now();
        chart = await lineChart(box, r.series, { height: Math.max(120, box.clientHeight - 40 || 200), kind,
          xWindow: [now - RANGE_MS[config.time_range || '24h'], now] });
      },
      wants: onTelemetry(config, [config.metric]),
      destroy() { if (chart) chart.destroy(); },
    };
  };
}
RENDERERS.line_chart = timeSeries('line');
RENDERERS.area_chart = timeSeries('area');
RENDERERS.bar_chart = timeSeries('bars');
// types of docs/dashboards.md drawn by another type's view
RENDERERS.stat_card = RENDERERS.kpi_tile;
RENDERERS.fleet_overview = RENDERERS.fleet_status;
RENDERERS.health_score = RENDERERS.fleet_status;

// the types the add-widget form can configure (metric, aggregation, range, devices); scatter needs
// two metrics, so it is created through the API only
export const EDITABLE_TYPES = ['line_chart', 'area_chart', 'bar_chart', 'kpi_tile', 'gauge', 'pie_chart', 'radar',
  'fleet_status', 'device_count', 'alert_feed', 'table'];
export const NEEDS_METRIC = new Set(['line_chart', 'area_chart', 'bar_chart', 'kpi_tile', 'stat_card', 'gauge', 'pie_chart', 'radar']);

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
