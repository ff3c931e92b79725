// The console's shell: a hash router (#/fleet, #/devices/<id>, #/alerts, #/dashboards[/<id>]),
// the header, and sign-in state. Each page module exports render(view, params) and may return a
// cleanup function (closes its live stream, destroys its charts) that runs when the page changes.
import { get, API, logout, session } from './api.js';
import { h, replace } from './dom.js';
import * as loginPage from './pages/login.js';
import * as fleetPage from './pages/fleet.js';
import * as devicePage from './pages/device.js';
import * as alertsPage from './pages/alerts.js';
import * as dashboardsPage from './pages/dashboards.js';

const view = document.getElementById('view');
const ROUTES = [
  [/^#\/login$/, loginPage, 'login'],
  [/^#\/fleet$/, fleetPage, 'fleet'],
  [/^#\/devices\/([^/]+)$/, devicePage, 'fleet'],
  [/^#\/alerts$/, alertsPage, 'alerts'],
  [/^#\/dashboards$/, dashboardsPage, 'dashboards'],
  [/^#\/dashboards\/(\d+)$/, dashboardsPage, 'dashboards'],
];

let cleanup = null;
let signedIn = false;

async function checkSession() {
  try {
    await get(`${API}/devices/summary`);
    return true;
  } catch {
    return false;
  }
}

function showHeader() {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('signout').hidden = !signedIn;
  const who = session.who;
  replace(document.getElementById('who'),
    signedIn && who ? `${who.email === 'token' ? 'token' : who.email}${who.tenant_id ? ` · ${who.tenant_id}` : ''}` : '');
}

async function route() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } cleanup = null; }
  const hash = location.hash || '#/fleet';
  if (!signedIn && hash !== '#/login') { location.hash = '#/login'; return; }
  const match = ROUTES.find(([re]) => re.test(hash));
  if (!match) { location.hash = '#/fleet'; return; }
  const [re, page, nav] = match;
  const params = hash.match(re).slice(1).map(decodeURIComponent);
  document.querySelectorAll('[data-nav]').forEach((a) => a.classList.toggle('active', a.dataset.nav === nav));
  showHeader();
  replace(view, h('p', { class: 'muted' }, 'Loading…'));
  try {
    cleanup = (await page.render(view, params)) || null;
  } catch (e) {
    replace(view, h('div', { class: 'error' }, `Could not load this page: ${e.message}`));
  }
}

export function signedInNow() {
  signedIn = true;
  location.hash = '#/fleet';
}

window.addEventListener('pulse:signed-in', () => signedInNow());
window.addEventListener('pulse:unauthorized', () => {
  if (!signedIn) return;
  signedIn = false;
  session.clear();
  location.hash = '#/login';
});
window.addEventListener('hashchange', route);
document.getElementById('signout').addEventListener('click', async () => {
  await logout();
  signedIn = false;
  location.hash = '#/login';
  route();
});

signedIn = await checkSession();
route();
