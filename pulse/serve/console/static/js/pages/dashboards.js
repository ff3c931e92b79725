// Dashboards: the list (create, bootstrap the defaults), and one dashboard's widgets drawn from
// their config and kept live. Edit mode: add and remove widgets, reorder (drag, or the arrows),
// resize (width and height in grid cells), then save the layout; share with the tenant or not.
import { API, del, get, post, put } from '../api.js';
import { h, replace, toast, throttle } from '../dom.js';
import { subscribe } from '../live.js';
import { EDITABLE_TYPES, NEEDS_METRIC, renderWidget } from '../widgets.js';

const COLUMNS = 12;
// [width, height] in grid cells of an added widget, when not the default 3 × 2
const NEW_WIDGET_SIZE = { line_chart: [6, 3], area_chart: [6, 3], bar_chart: [6, 3], table: [6, 3], pie_chart: [4, 3], radar: [4, 3] };

export async function render(view, [id]) {
  return id ? renderOne(view, Number(id)) : renderList(view);
}

async function renderList(view) {
  const list = await get(`${API}/dashboards`);
  const name = h('input', { id: 'new-dashboard-name', placeholder: 'New dashboard name', required: true, maxlength: 100 });
  replace(view,
    h('h1', {}, 'Dashboards'),
    h('div', { class: 'toolbar' },
      h('form', {
        class: 'toolbar', id: 'new-dashboard',
        onsubmit: async (ev) => {
          ev.preventDefault();
          try { const d = await post(`${API}/dashboards`, { name: name.value.trim() }); location.hash = `#/dashboards/${d.id}`; } catch (e) { toast(e.message, 'error'); }
        },
      }, name, h('button', { type: 'submit' }, 'Create')),
      h('button', {
        id: 'bootstrap',
        onclick: async () => {
          try { const r = await post(`${API}/dashboards/bootstrap`, {}); location.hash = `#/dashboards/${r.id}`; } catch (e) { toast(e.message, 'error'); }
        },
      }, 'Set up default dashboards')),
    list.dashboards.length ? h('table', { class: 'grid', id: 'dashboard-list' },
      h('thead', {}, h('tr', {}, ['Name', 'Widgets', 'Shared', 'Updated'].map((c) => h('th', {}, c)))),
      h('tbody', {}, list.dashboards.map((d) => h('tr', {},
        h('td', {}, h('a', { href: `#/dashboards/${d.id}` }, d.name), d.is_default ? h('span', { class: 'muted' }, ' (default)') : ''),
        h('td', {}, d.widget_count), h('td', {}, d.is_shared ? 'tenant' : 'only me'),
        h('td', {}, new Date(d.updated_at || d.created_at).toLocaleString())))))
      : h('p', { class: 'muted' }, 'No dashboards yet: create one, or set up the defaults.'));
}

// positions flow left to right, top to bottom in the order given (the editor's one layout rule)
function flow(widgets) {
  let x = 0, y = 0, rowHeight = 0;
  for (const w of widgets) {
    const p = w.position;
    if (x + p.w > COLUMNS) { x = 0; y += rowHeight; rowHeight = 0; }
    Object.assign(p, { x, y });
    x += p.w;
    rowHeight = Math.max(rowHeight, p.h);
  }
}

function byPosition(a, b) {
  return (a.position.y - b.position.y) || (a.position.x - b.position.x) || (a.id - b.id);
}

async function renderOne(view, id) {
  const base = `${API}/dashboards/${id}`;
  let dash = await get(base);
  let editing = false, dirty = false;
  let mounted = [];
  const grid = h('div', { class: 'dash-grid', id: 'dash-grid' });
  const toolbar = h('div', { class: 'toolbar' });

  const normalise = (w) => {
    const p = w.position || {};
    w.position = { x: p.x ?? 0, y: p.y ?? 0, w: Math.min(COLUMNS, Math.max(1, p.w ?? 4)), h: Math.max(1, p.h ?? 2) };
    return w;
  };
  dash.widgets = dash.widgets.map(normalise).sort(byPosition);

  const unmount = () => { mounted.forEach((m) => m.destroy()); mounted = []; };

  const draw = () => {
    unmount();
    replace(grid, dash.widgets.map((w, i) => {
      const body = h('div', { class: 'widget-body' });
      const card = h('div', {
        class: `widget${editing ? ' editing' : ''}`, dataset: { widget: w.id, type: w.widget_type },
        style: `grid-column: span ${w.position.w}; grid-row: span ${w.position.h}`,
        draggable: editing ? 'true' : 'false',
        ondragstart: (ev) => { ev.dataTransfer.setData('text/plain', String(i)); },
        ondragover: (ev) => { if (editing) ev.preventDefault(); },
        ondrop: (ev) => { ev.preventDefault(); move(Number(ev.dataTransfer.getData('text/plain')), i); },
      },
      h('div', { class: 'widget-head' }, h('span', { class: 'widget-title' }, w.title || w.widget_type), editing ? controls(w, i) : ''),
      body);
      const m = renderWidget(body, w);
      mounted.push(m);
      return card;
    }));
    if (!dash.widgets.length) grid.append(h('p', { class: 'muted' }, 'No widgets yet: Edit layout → Add widget.'));
    mounted.forEach((m) => m.refresh());
    drawToolbar();
  };

  const move = (from, to) => {
    if (from === to || to < 0 || to >= dash.widgets.length) return;
    const [w] = dash.widgets.splice(from, 1);
    dash.widgets.splice(to, 0, w);
    flow(dash.widgets); dirty = true; draw();
  };
  const resize = (w, dw, dh) => {
    w.position.w = Math.min(COLUMNS, Math.max(1, w.position.w + dw));
    w.position.h = Math.min(8, Math.max(1, w.position.h + dh));
    flow(dash.widgets); dirty = true; draw();
  };

  const controls = (w, i) => h('span', { class: 'widget-controls' },
    h('button', { class: 'up', title: 'Move earlier', onclick: () => move(i, i - 1) }, '◀'),
    h('button', { class: 'down', title: 'Move later', onclick: () => move(i, i + 1) }, '▶'),
    h('button', { class: 'narrower', title: 'Narrower', onclick: () => resize(w, -1, 0) }, '−W'),
    h('button', { class: 'wider', title: 'Wider', onclick: () => resize(w, 1, 0) }, '+W'),
    h('button', { class: 'shorter', title: 'Shorter', onclick: () => resize(w, 0, -1) }, '−H'),
    h('button', { class: 'taller', title: 'Taller', onclick: () => resize(w, 0, 1) }, '+H'),
    h('button', {
      class: 'remove', title: 'Remove widget',
      onclick: async () => {
        try { await del(`${base}/widgets/${w.id}`); dash.widgets.splice(i, 1); flow(dash.widgets); draw(); } catch (e) { toast(e.message, 'error'); }
      },
    }, '✕'));

  const saveLayout = async () => {
    const layout = dash.widgets.map((w) => ({ widget_id: w.id, ...w.position }));
    try { await put(`${base}/layout`, { layout }); dirty = false; toast('Layout saved'); drawToolbar(); } catch (e) { toast(e.message, 'error'); }
  };

  const drawToolbar = () => replace(toolbar,
    h('button', { id: 'edit-layout', onclick: () => { editing = !editing; draw(); } }, editing ? 'Done editing' : 'Edit layout'),
    editing ? h('button', { id: 'save-layout', disabled: !dirty, onclick: saveLayout }, dirty ? 'Save layout' : 'Layout saved') : '',
    h('label', { class: 'inline' }, h('input', {
      type: 'checkbox', id: 'share', checked: !!dash.is_shared, disabled: dash.is_owner === false && !dash.is_shared,
      onchange: async (e) => {
        try { const r = await put(`${base}/share`, { shared: e.target.checked }); dash.is_shared = r.is_shared; toast(r.is_shared ? 'Shared with your tenant' : 'Now only yours'); } catch (err) { e.target.checked = !!dash.is_shared; toast(err.message, 'error'); }
      },
    }), ' Shared with tenant'),
    h('button', {
      class: 'danger', id: 'delete-dashboard',
      onclick: async () => {
        if (!confirm(`Delete dashboard “${dash.name}”?`)) return;
        try { await del(base); location.hash = '#/dashboards'; } catch (e) { toast(e.message, 'error'); }
      },
    }, 'Delete'));

  replace(view,
    h('p', {}, h('a', { href: '#/dashboards' }, '‹ Dashboards')),
    h('h1', { id: 'dashboard-name' }, dash.name),
    dash.description ? h('p', { class: 'muted' }, dash.description) : '',
    toolbar, addForm(base, dash, (w) => { dash.widgets.push(normalise(w)); flow(dash.widgets); dirty = true; draw(); }),
    grid);
  draw();

  // live: every widget says which events concern it; each refreshes at most every 2 s
  const throttled = new Map();
  const close = subscribe({ channels: ['telemetry', 'alerts', 'status'] }, (ev) => {
    mounted.forEach((m) => {
      if (!m.wants(ev)) return;
      if (!throttled.has(m)) throttled.set(m, throttle(() => m.refresh(), 2000));
      throttled.get(m)();
    });
  });
  return () => { close(); unmount(); };
}

function addForm(base, dash, added) {
  const type = h('select', { id: 'widget-type' }, EDITABLE_TYPES.map((t) => h('option', { value: t }, t.replace('_', ' '))));
  const title = h('input', { id: 'widget-title', placeholder: 'Title', maxlength: 100 });
  const metric = h('input', { id: 'widget-metric', placeholder: 'metric, e.g. temperature' });
  const devices = h('input', { id: 'widget-devices', placeholder: 'devices: d1, d2 (empty = all)' });
  const aggregation = h('select', { id: 'widget-aggregation' }, ['avg', 'min', 'max', 'sum', 'count', 'p95'].map((a) => h('option', { value: a }, a)));
  const range = h('select', { id: 'widget-range' }, ['1h', '6h', '24h', '7d', '30d'].map((r) => h('option', { value: r, selected: r === '24h' }, r)));
  return h('form', {
    class: 'toolbar add-widget', id: 'add-widget',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const config = {};
      if (NEEDS_METRIC.has(type.value)) {
        Object.assign(config, { metric: metric.value.trim(), aggregation: aggregation.value, time_range: range.value });
      }
      const ids = devices.value.split(',').map((s) => s.trim()).filter(Boolean);
      if (ids.length) config.device_ids = ids;
      const [w, hgt] = NEW_WIDGET_SIZE[type.value] || [3, 2];
      const body = { widget_type: type.value, title: title.value.trim(), config, position: { x: 0, y: 1000, w, h: hgt } };
      try { added(await post(`${base}/widgets`, body)); title.value = ''; toast('Widget added'); } catch (e) { toast(e.message, 'error'); }
    },
  }, h('strong', {}, 'Add widget'), type, title, metric, aggregation, range, devices, h('button', { type: 'submit', id: 'add-widget-submit' }, 'Add'));
}
