// Sign in with a local user (email + password: the server sets an HttpOnly session cookie), or
// paste an API token (kept in this tab's sessionStorage and sent as a Bearer header).
import { login, useToken } from '../api.js';
import { h, replace } from '../dom.js';

export function render(view) {
  const error = h('p', { class: 'error', id: 'login-error', hidden: true });
  const fail = (e) => { error.textContent = e.message; error.hidden = false; };
  const done = () => window.dispatchEvent(new CustomEvent('pulse:signed-in'));

  const email = h('input', { id: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const signIn = h('form', {
    class: 'card', id: 'login-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try { await login(email.value.trim(), password.value); done(); } catch (e) { fail(e); }
    },
  },
  h('h2', {}, 'Sign in'),
  h('label', {}, 'Email', email),
  h('label', {}, 'Password', password),
  h('button', { type: 'submit', id: 'signin' }, 'Sign in'));

  const token = h('textarea', { id: 'token', rows: 4, placeholder: 'eyJhbGciOi…', spellcheck: false });
  const paste = h('form', {
    class: 'card', id: 'token-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      try { await useToken(token.value.trim()); done(); } catch (e) { fail(e); }
    },
  },
  h('h2', {}, 'Or use an API token'),
  h('label', {}, 'Token (from `pulse up` or `pulse token`)', token),
  h('button', { type: 'submit', id: 'use-token' }, 'Use token'));

  replace(view, h('section', { class: 'login' }, h('h1', {}, 'Pulse console'), error, h('div', { class: 'row' }, signIn, paste)));
}
