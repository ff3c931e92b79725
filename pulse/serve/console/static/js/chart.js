// Charts (docs/console.md): time series with uPlot, loaded on first use, so a console installed
// without its vendored files still works, just without those; gauge, pie, radar and scatter are
// small inline SVG built here, with no library at all.
import { fmtValue, h, replace } from './dom.js';

let uPlotModule = null;
async function uPlot() {
  if (!uPlotModule) uPlotModule = (await import('../vendor/uPlot.esm.js')).default;
  return uPlotModule;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
const color = (i) => COLORS[i % COLORS.length];

export function noData(container) {
  replace(container, h('p', { class: 'muted chart-empty' }, 'No data in this range.'));
}

// how each `kind` of time-series chart draws a series; area and bars start their y axis at zero
const KINDS = {
  line: () => ({}),
  area: (c) => ({ fill: `${c}22` }),
  bars: (c, Plot) => ({ fill: `${c}aa`, paths: Plot.paths.bars({ size: [0.8, 24], align: 1 }), points: { show: false } }),
};
const fromZero = (u, lo, hi) => [Math.min(0, lo), Math.max(0, hi) * 1.1 || 1];

// series: [{label, points: [{time, value}]}] with ISO or ms times; returns {destroy()}
// `xWindow`: [start, end] (ISO or ms) pins the x axis to the requested range, however few points
// `kind`: 'line', 'area' (filled below the line) or 'bars' (one bar per bucket, from its start)
export async function lineChart(container, series, { height = 260, unit = '', xWindow = null, kind = 'line' } = {}) {
  const times = [...new Set(series.flatMap((s) => s.points.map((p) => toSeconds(p.time))))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const data = [times, ...series.map((s) => {
    const ys = new Array(times.length).fill(null);
    for (const p of s.points) ys[index.get(toSeconds(p.time))] = p.value;
    return ys;
  })];
  if (!times.length) {
    noData(container);
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
    scales: {
      x: xWindow ? { time: true, range: () => xRange(xWindow, kind, width) } : { time: true },
      ...(kind === 'line' ? {} : { y: { range: fromZero } }),
    },
    axes: [{}, { label: unit, size: 60 }],
    series: [{}, ...series.map((s, i) => ({
      label: s.label, stroke: color(i), width: 2, spanGaps: true,
      points: { show: times.length < 60, size: 5 },
      ...KINDS[kind](color(i), Plot),
    }))],
  }, data, container);
  const resize = () => plot.setSize({ width: Math.max(300, container.clientWidth), height });
  const observer = new ResizeObserver(resize);
  observer.observe(container);
  return { plot, destroy() { observer.disconnect(); plot.destroy(); } };
}

// a bar starts at its bucket's start: the window's end leaves room for the last one (≤ 24 px wide)
function xRange(xWindow, kind, width) {
  const [start, end] = xWindow.map(toSeconds);
  return [start, kind === 'bars' ? end + ((end - start) * 26) / Math.max(100, width - 80) : end];
}

function toSeconds(t) {
  return (typeof t === 'number' ? t : Date.parse(t)) / 1000;
}

// --- inline SVG: `svg()` is dom.js's `h()` for the SVG namespace ---
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

const round = (n) => Math.round(n * 100) / 100;
const polar = (cx, cy, r, angle) => [round(cx + r * Math.cos(angle)), round(cy + r * Math.sin(angle))];
const short = (label, n = 14) => (label.length > n ? `${label.slice(0, n - 1)}…` : label);

// a half-circle arc from min (left) to max (right), filled up to the value: green, then amber from
// 70 % of the range and red from 90 %
export function gaugeChart(value, { min, max, unit = '' }) {
  const f = Math.min(1, Math.max(0, (value - min) / (max - min)));
  const arc = (t) => `M 10 60 A 50 50 0 0 1 ${polar(60, 60, 50, Math.PI * (1 + t)).join(' ')}`;
  const level = f < 0.7 ? 'ok' : f < 0.9 ? 'warn' : 'bad';
  return svg('svg', { viewBox: '0 0 120 74', class: 'chart-svg gauge', role: 'img' },
    svg('path', { d: arc(1), class: 'gauge-track' }),
    f > 0 ? svg('path', { d: arc(f), class: `gauge-value ${level}` }) : null,
    svg('text', { x: 60, y: 54, class: 'gauge-text' }, fmtValue(value), unit ? svg('tspan', { class: 'gauge-unit' }, ` ${unit}`) : null),
    svg('text', { x: 10, y: 72, class: 'axis-label' }, fmtValue(min)),
    svg('text', { x: 110, y: 72, class: 'axis-label' }, fmtValue(max)));
}

// items: [{label, value}]; values of zero or less have no slice (they stay in the legend)
export function pieChart(items) {
  const total = items.reduce((sum, it) => sum + Math.max(0, it.value), 0);
  let angle = -Math.PI / 2;
  const slices = items.map((it, i) => {
    const share = Math.max(0, it.value) / total;
    if (!share) return null;
    const title = svg('title', {}, `${it.label}: ${fmtValue(it.value)}`);
    if (share > 0.9999) return svg('circle', { cx: 50, cy: 50, r: 45, fill: color(i) }, title);
    const [a0, a1] = [angle, (angle += 2 * Math.PI * share)];
    const d = `M 50 50 L ${polar(50, 50, 45, a0).join(' ')} A 45 45 0 ${share > 0.5 ? 1 : 0} 1 ${polar(50, 50, 45, a1).join(' ')} Z`;
    return svg('path', { d, fill: color(i) }, title);
  });
  return h('div', { class: 'pie' },
    svg('svg', { viewBox: '0 0 100 100', class: 'chart-svg', role: 'img' }, slices),
    h('ul', { class: 'chart-legend' }, items.map((it, i) => h('li', {},
      h('span', { class: 'swatch', style: `background:${color(i)}` }), ` ${it.label} `,
      h('span', { class: 'muted' }, `${fmtValue(it.value)}${total > 0 && it.value > 0 ? ` · ${Math.round((100 * it.value) / total)}%` : ''}`)))));
}

// items: [{label, value}]: one axis each, from the smaller of 0 and the least value (centre) to
// the greatest value (rim)
export function radarChart(items) {
  const values = items.map((it) => it.value);
  const lo = Math.min(0, ...values), hi = Math.max(...values);
  const angle = (i) => -Math.PI / 2 + (2 * Math.PI * i) / items.length;
  const at = (i, share) => polar(100, 72, 55 * share, angle(i));
  const ring = (share) => items.map((_, i) => at(i, share).join(',')).join(' ');
  const shape = items.map((it, i) => at(i, hi > lo ? (it.value - lo) / (hi - lo) : 1));
  return svg('svg', { viewBox: '-40 0 280 144', class: 'chart-svg radar', role: 'img' },
    svg('polygon', { points: ring(1), class: 'grid-line' }), svg('polygon', { points: ring(0.5), class: 'grid-line' }),
    items.map((it, i) => {
      const [x, y] = at(i, 1.12), cos = Math.cos(angle(i));
      return [svg('line', { x1: 100, y1: 72, x2: at(i, 1)[0], y2: at(i, 1)[1], class: 'grid-line' }),
        svg('text', { x, y: y + 3, class: 'axis-label', 'text-anchor': cos > 0.3 ? 'start' : cos < -0.3 ? 'end' : 'middle' },
          `${short(it.label)} ${fmtValue(it.value)}`)];
    }),
    svg('polygon', { points: shape.map((p) => p.join(',')).join(' '), class: 'radar-shape' }),
    shape.map(([x, y], i) => svg('circle', { cx: x, cy: y, r: 2.5, class: 'radar-point' },
      svg('title', {}, `${items[i].label}: ${fmtValue(items[i].value)}`))));
}

// points: [{label, x, y}]; axes span the values (a little padded), labelled at their ends
export function scatterChart(points, { xLabel, yLabel }) {
  const extent = (vs) => {
    const [a, b] = [Math.min(...vs), Math.max(...vs)], pad = (b - a) * 0.1 || Math.abs(a) * 0.1 || 1;
    return [a - pad, b + pad];
  };
  const [x0, x1] = extent(points.map((p) => p.x)), [y0, y1] = extent(points.map((p) => p.y));
  const px = (x) => round(44 + (306 * (x - x0)) / (x1 - x0)), py = (y) => round(150 - (140 * (y - y0)) / (y1 - y0));
  return svg('svg', { viewBox: '0 0 360 180', class: 'chart-svg scatter', role: 'img' },
    svg('path', { d: 'M 44 10 V 150 H 350', class: 'axis' }),
    svg('text', { x: 40, y: 14, class: 'axis-label', 'text-anchor': 'end' }, fmtValue(round(y1))),
    svg('text', { x: 40, y: 150, class: 'axis-label', 'text-anchor': 'end' }, fmtValue(round(y0))),
    svg('text', { x: 44, y: 162, class: 'axis-label' }, fmtValue(round(x0))),
    svg('text', { x: 350, y: 162, class: 'axis-label', 'text-anchor': 'end' }, fmtValue(round(x1))),
    svg('text', { x: 197, y: 174, class: 'axis-title' }, xLabel),
    svg('text', { x: 12, y: 80, class: 'axis-title', transform: 'rotate(-90 12 80)' }, yLabel),
    points.map((p, i) => svg('g', {},
      svg('circle', { cx: px(p.x), cy: py(p.y), r: 4, fill: color(i) },
        svg('title', {}, `${p.label}: ${xLabel} ${fmtValue(p.x)}, ${yLabel} ${fmtValue(p.y)}`)),
      points.length <= 12 ? svg('text', { x: px(p.x) + (px(p.x) > 197 ? -6 : 6), y: py(p.y) + 3, class: 'point-label',
        'text-anchor': px(p.x) > 197 ? 'end' : 'start' }, short(p.label)) : null)));
}
