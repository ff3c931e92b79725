// The console's one door to the API: same origin, JSON, errors as ApiError with the server's detail.
// Two ways in: the pulse_session cookie (set by sign-in; writes then echo the CSRF token the
// server hands out on GETs), or a pasted token sent as a Bearer header (no CSRF token needed).
const TOKEN_KEY = 'pulse.token';
const WHO_KEY = 'pulse.who';
let csrfToken = null;
const BUSY_RETRIES = 3;

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  get who() { return JSON.parse(sessionStorage.getItem(WHO_KEY) || 'null'); },
  set(token, who) {
    if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.setItem(WHO_KEY, JSON.stringify(who || null));
  },
  clear() { sessionStorage.removeItem(TOKEN_KEY); sessionStorage.removeItem(WHO_KEY); },
};

export const API = 'api/v1/customer';

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    for (const one of Array.isArray(v) ? v : [v]) q.append(k, one);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

async function primeCsrf() {
  // any GET hands the token out; healthz is the cheapest one
  const r = await fetch('healthz', { credentials: 'same-origin' });
  csrfToken = r.headers.get('X-CSRF-Token') || csrfToken;
}

export async function request(method, path, { body, params } = {}) {
  const headers = { Accept: 'application/json' };
  const token = session.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (method !== 'GET') {
    if (!csrfToken) await primeCsrf();
    headers['X-CSRF-Token'] = csrfToken;
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const init = { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) };
  let r = await fetch(path + query(params), init);
  // a busy server sheds with 503 + Retry-After (docs/operations.md); a read is safe to ask again
  for (let retry = 0; r.status === 503 && method === 'GET' && retry < BUSY_RETRIES; retry++) {
    const seconds = Number(r.headers.get('Retry-After')) || 1;
    await new Promise((done) => setTimeout(done, Math.min(seconds, 5) * 1000 * (0.5 + Math.random())));
    r = await fetch(path + query(params), init);
  }
  csrfToken = r.headers.get('X-CSRF-Token') || csrfToken;
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401 && !path.endsWith('/auth/login')) {
    window.dispatchEvent(new CustomEvent('pulse:unauthorized'));
  }
  if (!r.ok) {
    const detail = data && data.detail !== undefined ? data.detail : `${r.status} ${r.statusText}`;
    throw new ApiError(r.status, detail);
  }
  return data;
}

export const get = (path, params) => request('GET', path, { params });
export const post = (path, body) => request('POST', path, { body });
export const put = (path, body) => request('PUT', path, { body });
export const patch = (path, body) => request('PATCH', path, { body });
export const del = (path) => request('DELETE', path);

export async function login(email, password) {
  const s = await post('api/v1/auth/login', { email, password });
  session.set(null, { email, tenant_id: s.tenant_id, role: s.role });  // the cookie carries the token
  return s;
}

export async function useToken(token) {
  session.set(token, null);
  try {
    await get(`${API}/devices/summary`);  // proves the token before the console trusts it
    session.set(token, { email: 'token', tenant_id: claim(token, 'tenant_id'), role: claim(token, 'role') });
  } catch (e) {
    session.clear();
    throw e;
  }
}

function claim(token, name) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part))[name] ?? null;
  } catch { return null; }
}

export async function logout() {
  if (!session.token) {
    try { await post('api/v1/auth/logout'); } catch { /* the cookie may be gone already */ }
  }
  session.clear();
}
