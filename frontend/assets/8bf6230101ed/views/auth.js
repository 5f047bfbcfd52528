// Log in and create an account.

import { h, replace, field, notice, whileBusy, announce } from '../dom.js';
import { ApiError, plainMessage } from '../api.js';
import * as session from '../session.js';
import { navigate } from '../router.js';
import { show, heading } from './common.js';

/** Where to go after logging in: a path on this site only (never another origin). */
function nextPath(query) {
  const next = query.get('next') ?? '/';
  return next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\') ? next : '/';
}

/** `/login?next=` */
export function loginView(context) {
  const next = nextPath(context.query);
  const email = field({ label: 'E-mail address', name: 'email', type: 'email', required: true, attributes: { autocomplete: 'username', maxlength: '254' } });
  const password = field({ label: 'Password', name: 'password', type: 'password', required: true, attributes: { autocomplete: 'current-password', maxlength: '128' } });
  const errors = h('div');
  const submit = h('button', { type: 'submit', class: 'button button--primary' }, 'Log in');
  const user = session.user();

  const form = h('form', { class: 'form', novalidate: true, 'aria-labelledby': 'login-heading' },
    errors, email.wrapper, password.wrapper, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(errors);
    email.showError(email.control.value.trim() ? null : 'Enter your e-mail address.');
    password.showError(password.control.value ? null : 'Enter your password.');
    const invalid = [email, password].find((f) => f.control.hasAttribute('aria-invalid'));
    if (invalid) { invalid.control.focus(); return; }
    try {
      await whileBusy(submit, 'Logging in…', () => session.login(email.control.value.trim(), password.control.value));
      announce('You are logged in.');
      navigate(next, { replace: true });
    } catch (error) {
      replace(errors, notice('error', plainMessage(error)));
      if (error instanceof ApiError && error.code === 'INVALID_CREDENTIALS') password.control.select();
    }
  });

  show(context, 'Log in',
    h('div', { class: 'narrow' },
      h('h1', { id: 'login-heading', tabindex: '-1' }, 'Log in'),
      user ? notice('info', `You are logged in as ${user.email}. Logging in again switches accounts.`) : null,
      form,
      h('p', {}, 'New here? ', h('a', { href: `/register${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}` }, 'Create an account'), '.')));
}

/** `/register?next=` */
export function registerView(context) {
  const next = nextPath(context.query);
  const name = field({ label: 'Your name', name: 'display_name', required: true, hint: 'How we greet you; 1 to 64 characters.', attributes: { autocomplete: 'name', maxlength: '64' } });
  const email = field({ label: 'E-mail address', name: 'email', type: 'email', required: true, attributes: { autocomplete: 'email', maxlength: '254' } });
  const password = field({ label: 'Password', name: 'password', type: 'password', required: true, hint: '12 to 128 characters. A few unrelated words make a strong password.', attributes: { autocomplete: 'new-password', minlength: '12', maxlength: '128' } });
  const errors = h('div');
  const submit = h('button', { type: 'submit', class: 'button button--primary' }, 'Create account');

  const form = h('form', { class: 'form', novalidate: true, 'aria-labelledby': 'register-heading' },
    errors, name.wrapper, email.wrapper, password.wrapper, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(errors);
    const displayName = name.control.value.trim();
    const address = email.control.value.trim();
    name.showError(displayName.length >= 1 && displayName.length <= 64 ? null : 'Enter your name (1 to 64 characters).');
    email.showError(/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(address) ? null : 'Enter an e-mail address such as name@example.org.');
    const length = [...password.control.value].length;
    password.showError(length >= 12 && length <= 128 ? null : 'Choose a password of 12 to 128 characters.');
    const invalid = [name, email, password].find((f) => f.control.hasAttribute('aria-invalid'));
    if (invalid) { invalid.control.focus(); return; }
    try {
      await whileBusy(submit, 'Creating your account…', () =>
        session.register({ email: address, password: password.control.value, displayName }));
      announce('Your account was created and you are logged in.');
      navigate(next, { replace: true });
    } catch (error) {
      replace(errors, notice('error', plainMessage(error),
        error instanceof ApiError && error.code === 'EMAIL_TAKEN' ? [' ', h('a', { href: `/login${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}` }, 'Log in')] : null));
    }
  });

  show(context, 'Create an account',
    h('div', { class: 'narrow' },
      h('h1', { id: 'register-heading', tabindex: '-1' }, 'Create an account'),
      form,
      h('p', {}, 'Already have an account? ', h('a', { href: `/login${next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}` }, 'Log in'), '.')));
}
