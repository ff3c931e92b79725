// One device: its latest values (live), twin (desired can be edited), commands (send and list)
// and a chart of any metric over a chosen range, bucketed on the server from the lake.
import { API, ApiError, get, patch, post } from '../api.js';
import { badge, fmtTime, fmtValue, h, replace, toast, throttle } from '../dom.js';
import { lineChart } from '../chart.js';
import { subscribe } from '../live.js';

const RANGES = ['1h', '6h', '24h', '7d', '30d'];

export async function render(view, [deviceId]) {
  const base = `${API}/devices/${encodeURIComponent(deviceId)}`;
  const device = await get(base);
  const latestBody = h('tbody', { id: 'latest-rows' });
  const twinBox = h('div', { id: 'twin' });
  const commandRows = h('tbody', { id: 'command-rows' });
  const chartBox = h('div', { class: 'chart', id: 'device-chart' });
  const metricSelect = h('select', { id: 'chart-metric' });
  const rangeSelect = h('select', { id: 'chart-range' }, RANGES.map((r) => h('option', { value: r, selected: r === '1h' }, `last ${r}`)));
  const chartInfo = h('span', { class: 'muted', id: 'chart-info' });
  let chart = null;
  let latest = {};

  const drawLatest = () => {
    const names = Object.keys(latest).sort();
    replace(latestBody, names.length ? names.map((m) => h('tr', { dataset: { metric: m } },
      h('td', {}, m), h('td', { class: 'num' }, fmtValue(latest[m].value)), h('td', {}, fmtTime(latest[m].ts)))) :
      h('tr', {}, h('td', { colspan: 3, class: 'muted' }, 'No telemetry yet.')));
  };

  const loadLatest = async () => {
    latest = (await get(`${base}/telemetry/latest`)).metrics || {};
    drawLatest();
    syncMetrics(Object.keys(latest));
  };

  const syncMetrics = (names) => {
    const have = new Set([...metricSelect.options].map((o) => o.value));
    const fresh = names.filter((n) => !have.has(n));
    for (const n of fresh.sort()) metricSelect.append(h('option', { value: n }, n));
    if (fresh.length && have.size === 0) loadChart();
  };

  const loadChart = async () => {
    const metric = metricSelect.value;
    if (!metric) { replace(chartBox, h('p', { class: 'muted' }, 'No metrics yet.')); return; }
    const hist = await get(`${base}/telemetry/history`, { metric, range: rangeSelect.value });
    if (chart) chart.destroy();
    const points = hist.points.map((p) => ({ time: p.time, value: p.avg }));
    chartBox.dataset.points = String(points.length);
    chartInfo.textContent = `${hist.count} bucket${hist.count === 1 ? '' : 's'} of ${hist.bucket_size}${hist.unit ? ` · ${hist.unit}` : ''}`;
    chart = await lineChart(chartBox, [{ label: `${metric} (avg)`, points }], { unit: hist.unit || '', xWindow: hist.start && hist.end ? [hist.start, hist.end] : null });
  };
  metricSelect.addEventListener('change', loadChart);
  rangeSelect.addEventListener('change', loadChart);

  const loadTwin = async () => {
    const twin = await get(`${base}/twin`);
    const desired = h('textarea', { id: 'twin-desired', rows: 6, spellcheck: false }, JSON.stringify(twin.desired, null, 2));
    replace(twinBox,
      h('div', { class: 'row' },
        h('div', {}, h('h3', {}, `Reported (v${twin.reported_version})`), h('pre', { id: 'twin-reported' }, JSON.stringify(twin.reported, null, 2))),
        h('div', {}, h('h3', {}, `Desired (v${twin.desired_version})`), desired,
          h('button', {
            id: 'twin-save',
            onclick: async () => {
              let value;
              try { value = JSON.parse(desired.value); } catch { toast('Desired state must be a JSON object', 'error'); return; }
              try { await patch(`${base}/twin/desired`, { desired: value }); toast('Desired state saved'); loadTwin(); } catch (e) { toast(e.message, 'error'); }
            },
          }, 'Save desired'))),
      h('p', {}, 'Sync: ', badge(twin.sync_status), ' Delta: ', h('code', {}, JSON.stringify(twin.delta))));
  };

  const loadCommands = async () => {
    const page = await get(`${base}/commands`, { limit: 20 });
    replace(commandRows, page.commands.length ? page.commands.map((c) => h('tr', {},
      h('td', {}, c.command_type), h('td', {}, h('code', {}, JSON.stringify(c.params))),
      h('td', {}, badge(c.status)), h('td', {}, fmtTime(c.created_at)), h('td', {}, fmtTime(c.acked_at)))) :
      h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No commands yet.')));
  };

  const cmdType = h('input', { id: 'command-type', placeholder: 'reboot', required: true });
  const cmdParams = h('input', { id: 'command-params', placeholder: '{"delay_s": 5}' });
  const commandForm = h('form', {
    class: 'toolbar', id: 'command-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      let params = {};
      try { params = cmdParams.value.trim() ? JSON.parse(cmdParams.value) : {}; } catch { toast('Parameters must be JSON', 'error'); return; }
      try { await post(`${base}/commands`, { type: cmdType.value.trim(), params }); toast('Command sent'); cmdType.value = ''; loadCommands(); } catch (e) { toast(e.message, 'error'); }
    },
  }, cmdType, cmdParams, h('button', { type: 'submit' }, 'Send command'));

  replace(view,
    h('p', {}, h('a', { href: '#/fleet' }, '‹ Fleet')),
    h('h1', {}, device.name || device.device_id, ' ', badge(device.status), ' ', device.presence?.status ? badge(device.presence.status) : ''),
    h('p', { class: 'muted' }, `id ${device.device_id}${device.site_id ? ` · site ${device.site_id}` : ''}`),
    h('section', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, 'Chart'), metricSelect, rangeSelect, chartInfo), chartBox),
    h('div', { class: 'row' },
      h('section', { class: 'card' }, h('h2', {}, 'Latest values'),
        h('table', { class: 'grid' }, h('thead', {}, h('tr', {}, h('th', {}, 'Metric'), h('th', {}, 'Value'), h('th', {}, 'At'))), latestBody)),
      h('section', { class: 'card' }, h('h2', {}, 'Twin'), twinBox)),
    h('section', { class: 'card' }, h('h2', {}, 'Commands'), commandForm,
      h('table', { class: 'grid' }, h('thead', {}, h('tr', {}, ['Type', 'Parameters', 'Status', 'Created', 'Acked'].map((c) => h('th', {}, c)))), commandRows)));

  const metrics = await get(`${base}/telemetry/metrics`).catch(() => ({ metrics: [] }));
  syncMetrics(metrics.metrics.map((m) => (typeof m === 'string' ? m : m.metric || m.name)).filter(Boolean));
  await Promise.all([loadLatest(), loadTwin().catch(showError(twinBox)), loadCommands()]);

  // live: new values update the table at once and the chart at most every 5 s
  const refreshChart = throttle(() => loadChart().catch(() => {}), 5000);
  const close = subscribe({ channels: ['telemetry'], device_ids: [deviceId] }, (ev) => {
    if (ev.type !== 'telemetry') return;
    for (const [m, v] of Object.entries(ev.metrics)) latest[m] = { value: v, ts: ev.ts_ms ?? ev.timestamp };
    drawLatest();
    syncMetrics(Object.keys(ev.metrics));
    if (metricSelect.value in ev.metrics) refreshChart();
  });
  return () => { close(); if (chart) chart.destroy(); };
}

function showError(box) {
  return (e) => replace(box, h('p', { class: 'error' }, e instanceof ApiError ? e.message : String(e)));
}
