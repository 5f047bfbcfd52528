// Who is logged in, and keeping their tokens fresh.
//
// The session (access token, refresh token, expiry) lives in localStorage so
// that it survives reloads and is shared by the tabs of one browser. Refresh
// tokens rotate and a reused one revokes the whole session, so two tabs must
// never spend the same one: a refresh runs under a Web Lock, re-reads the
// stored session first and adopts a token another tab has just obtained.

import { ApiError, request } from './api.js';

const KEY = 'teipsum.session';
/** Refresh this long before the access token expires. */
const MARGIN_MS = 60_000;

let current = load();
let timer = null;
let refreshing = null;
const listeners = new Set();

/** Decode the payload of a JWT (not verified: the API verifies it; the page only reads the role). */
export function decodeJwt(token) {
  const part = String(token).split('.')[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

function load() {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) ?? 'null');
    if (stored && typeof stored.accessToken === 'string' && typeof stored.refreshToken === 'string') {
      return stored;
    }
  } catch {
    // A damaged entry is the same as none.
  }
  return null;
}

function save(session) {
  current = session;
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  schedule();
  emit();
}

/** The session from a `Tokens` answer of login or refresh. */
function fromTokens(tokens) {
  return {
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    // From our own clock rather than the token's `exp`: the two clocks may differ.
    expiresAt: Date.now() + Number(tokens.expires_in ?? 0) * 1000,
    user: {
      id: tokens.user?.id,
      email: tokens.user?.email,
      displayName: tokens.user?.display_name,
    },
  };
}

function emit(remote = false) {
  for (const listener of listeners) listener(user(), { remote });
}

/**
 * Call `listener(user, { remote })` whenever someone logs in or out or the
 * tokens change; `remote` when it happened in another tab.
 */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * The logged-in user `{ id, email, displayName, role }`, or null. The role
 * comes from the access token's `role` claim, as the API decides by it.
 */
export function user() {
  if (!current) return null;
  const claims = decodeJwt(current.accessToken) ?? {};
  return { ...current.user, role: claims.role === 'admin' ? 'admin' : 'customer' };
}

/** True when the logged-in user is an administrator. */
export function isAdmin() {
  return user()?.role === 'admin';
}

/** Log in; resolves to the user, rejects with an ApiError. */
export async function login(email, password) {
  const { data } = await request('/api/auth/login', { method: 'POST', body: { email, password } });
  save(fromTokens(data));
  return user();
}

/** Create an account and log in to it. */
export async function register({ email, password, displayName }) {
  await request('/api/auth/register', {
    method: 'POST',
    body: { email, password, display_name: displayName },
  });
  return login(email, password);
}

/** Log out: revoke the refresh token on the server and forget the session here. */
export async function logout() {
  const session = current;
  save(null);
  if (!session) return;
  try {
    await request('/api/auth/logout', { method: 'POST', body: { refresh_token: session.refreshToken } });
  } catch {
    // The session is gone from this browser either way; a token that
    // cannot be revoked now expires on its own.
  }
}

/** The session ended on the server side (its refresh token was refused). */
function ended() {
  save(null);
  return new ApiError(401, 'SESSION_ENDED', '');
}

/**
 * Obtain a new access token, once per tab at a time and once per browser at
 * a time; `stale` is the access token that prompted it.
 */
function refresh(stale) {
  if (!refreshing) {
    const run = async () => {
      const stored = load();
      if (!stored) throw ended();
      // Another tab refreshed while we waited for the lock: use its tokens.
      if (stored.accessToken !== stale && stored.expiresAt - Date.now() > MARGIN_MS / 2) {
        current = stored;
        schedule();
        return stored;
      }
      try {
        const { data } = await request('/api/auth/refresh', {
          method: 'POST',
          body: { refresh_token: stored.refreshToken },
        });
        const session = fromTokens(data);
        save(session);
        return session;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 401 || error.status === 400)) throw ended();
        throw error;
      }
    };
    const locked = navigator.locks ? navigator.locks.request('teipsum.refresh', run) : run();
    refreshing = locked.finally(() => { refreshing = null; });
  }
  return refreshing;
}

/** Refresh ahead of expiry, so that requests rarely meet an expired token. */
function schedule() {
  window.clearTimeout(timer);
  timer = null;
  if (!current) return;
  const wait = Math.max(0, current.expiresAt - Date.now() - MARGIN_MS);
  timer = window.setTimeout(() => {
    refresh(current?.accessToken).catch(() => {
      // A failure ends the session (listeners are told) or is retried on the next request.
    });
  }, Math.min(wait, 2_147_483_647));
}

/**
 * A request as the logged-in user: the token is refreshed first when it is
 * about to expire, and once more if the API answers 401 anyway.
 */
export async function authRequest(path, options = {}) {
  if (!current) throw new ApiError(401, 'SESSION_ENDED', '');
  let session = current;
  if (session.expiresAt - Date.now() < MARGIN_MS / 2) session = await refresh(session.accessToken);
  // Personal answers are never cached by the browser.
  const send = (token) => request(path, { cache: 'no-store', ...options, token });
  try {
    return await send(session.accessToken);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    session = await refresh(session.accessToken);
    return send(session.accessToken);
  }
}

// Another tab logged in, out, or refreshed.
window.addEventListener('storage', (event) => {
  if (event.key !== KEY && event.key !== null) return;
  current = load();
  schedule();
  emit(true);
});

// Timers are throttled in background tabs; check again when the tab returns.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && current && current.expiresAt - Date.now() < MARGIN_MS) {
    refresh(current.accessToken).catch(() => {});
  }
});

schedule();
