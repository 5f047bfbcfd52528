// Pieces shared by the views: page frame, sign-in guard, errors, pagination,
// product pictures.

import { h, replace, notice } from '../dom.js';
import { ApiError, plainMessage } from '../api.js';
import { navigate } from '../router.js';
import * as session from '../session.js';

/** Set the document title and replace the page's content (unless the visitor already left). */
export function show(context, title, ...children) {
  if (context.signal.aborted) return;
  document.title = title ? `${title} · TeIpsum` : 'TeIpsum';
  replace(context.main, ...children);
}

/** The page heading; focused after each navigation so screen readers start there. */
export function heading(text) {
  return h('h1', { tabindex: '-1' }, text);
}

/**
 * Send visitors who are not logged in to the login page, coming back here
 * afterwards. Returns the user, or null after redirecting.
 */
export function requireLogin(context) {
  const user = session.user();
  if (user) return user;
  const here = `${window.location.pathname}${window.location.search}`;
  navigate(`/login?next=${encodeURIComponent(here)}`, { replace: true });
  return null;
}

/** An error box for `error`, with a way forward when there is one. */
export function errorNotice(error, { retry } = {}) {
  const ended = error instanceof ApiError && (error.code === 'SESSION_ENDED' || error.status === 401);
  const here = `${window.location.pathname}${window.location.search}`;
  return notice('error',
    h('p', {}, plainMessage(error)),
    ended ? h('p', {}, h('a', { href: `/login?next=${encodeURIComponent(here)}` }, 'Log in')) : null,
    retry && !ended ? h('p', {}, h('button', { type: 'button', class: 'button', onclick: retry }, 'Try again')) : null,
    error instanceof ApiError && error.requestId && error.status >= 500
      ? h('p', { class: 'notice__small' }, `If this keeps happening, quote this reference: ${error.requestId}`)
      : null);
}

/** A line that says something is on its way. */
export function loading(text) {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

/**
 * Previous/next links over cursor pages. `cursors` are the cursors of the
 * pages before this one (`''` for the first), carried in history.state so that
 * "Previous" works without the API going backwards.
 */
export function pagination({ urlFor, cursors, current, next, label }) {
  const previousCursor = cursors.length > 0 ? cursors[cursors.length - 1] : null;
  const onFirst = !current;
  const link = (text, cursor, state, rel) => h('a', {
    href: urlFor(cursor),
    class: 'button',
    rel,
    onclick: (event) => {
      // A new tab or window opens the plain link (and starts a fresh "Previous" trail).
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      navigate(urlFor(cursor), { state });
    },
  }, text);
  if (onFirst && !next) return null;
  return h('nav', { class: 'pagination', 'aria-label': label },
    onFirst ? h('span') : previousCursor !== null
      ? link('← Previous page', previousCursor, { cursors: cursors.slice(0, -1) }, 'prev')
      : link('← First page', '', { cursors: [] }, null),
    h('span', { class: 'pagination__page' }, previousCursor !== null || onFirst ? `Page ${cursors.length + 1}` : ''),
    next ? link('Next page →', next, { cursors: [...cursors, current ?? ''] }, 'next') : h('span'));
}

/** The cursors before this page, from history.state. */
export function previousCursors(state) {
  return Array.isArray(state?.cursors) ? state.cursors.filter((c) => typeof c === 'string') : [];
}

/** A product's first picture, or a tile with its initial when it has none. */
export function productPicture(product, size = 'card') {
  const url = (product.image_urls ?? []).find((u) => typeof u === 'string' && u.startsWith('https://'));
  const placeholder = () => {
    // A colour per category, always the same one (FNV-1a of the name).
    let hash = 2166136261;
    for (const c of product.category || product.name || '') hash = Math.imul(hash ^ c.charCodeAt(0), 16777619) >>> 0;
    const tone = hash % 6;
    return h('div', { class: `picture picture--${size} picture--tone${tone}`, 'aria-hidden': 'true' },
      h('span', { class: 'picture__initial' }, (product.name ?? '?').trim().charAt(0).toUpperCase()));
  };
  if (!url) return placeholder();
  const img = h('img', {
    class: `picture picture--${size}`,
    src: url,
    alt: size === 'card' ? '' : product.name,
    loading: 'lazy',
    decoding: 'async',
    referrerpolicy: 'no-referrer',
  });
  img.addEventListener('error', () => img.replaceWith(placeholder()), { once: true });
  return img;
}

/** Wait `ms`, or reject as soon as `signal` aborts. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      window.clearTimeout(timer);
      reject(new DOMException('left the page', 'AbortError'));
    }, { once: true });
  });
}
