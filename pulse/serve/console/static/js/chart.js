// Time-series charts with uPlot (docs/console.md): loaded on first use, so a console installed
// without its vendored files still works, just without charts.
import { h, replace } from './dom.js';

let uPlotModule = null;
async function uPlot() {
  if (!uPlotModule) uPlotModule = (await import('../vendor/uPlot.esm.js')).default;
  return uPlotModule;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

// series: [{label, points: [{time, value}]}] with ISO or ms times; returns {destroy()}
// `xWindow`: [start, end] (ISO or ms) pins the x axis to the requested range, however few points
export async function lineChart(container, series, { height = 260, unit = '', xWindow = null } = {}) {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => toSeconds(p.time))))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times, ...series.map((s) => {
    const ys = new Array(times.length).fill(null);
    for (const p of s.points) ys[index.get(toSeconds(p.time))] = p.value;
    return ys;
  })];
  if (!times.length) {
    replace(container, h('p', { class: 'muted chart-empty' }, 'No data in this range.'));
    return { destroy() {} };
  }
  let Plot;
  try { Plot = await uPlot(); } catch {
    replace(container, h('p', { class: 'error' }, 'Charts are unavailable: the console was installed without its vendored chart library (run `make install`).'));
    return { destroy() {} };
  }
  replace(container);
  const width = Math.max(300, container.clientWidth || 600);
  const plot = new Plot({
    width, height,
    scales: { x: xWindow ? { time: true, range: () => xWindow.map(toSeconds) } : { time: true } },
    axes: [{}, { label: unit, size: 60 }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
      points: { show: times.length < 60, size: 5 },
    }))],
  }, data, container);
  const resize = () => plot.setSize({ width: Math.max(300, container.clientWidth), height });
  const observer = new ResizeObserver(resize);
  observer.observe(container);
  return { plot, destroy() { observer.disconnect(); plot.destroy(); } };
}

function toSeconds(t) {
  return (typeof t === 'number' ? t : Date.parse(t)) / 1000;
}
