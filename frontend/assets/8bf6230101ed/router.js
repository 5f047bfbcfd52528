// Client-side routing on real paths (/products/…, /cart): nginx answers every
// path that is not a file with index.html, so a reload or a shared link lands
// on the same view.

const routes = [];
let onRoute = null;
let controller = null;

/**
 * Declare a route: `pattern` such as `/products/:id`; `view(context)` renders
 * into `context.main` and gets `{ params, query, state, signal }`.
 */
export function route(pattern, view) {
  const names = [];
  const source = pattern.replace(/:([a-z]+)/g, (_, name) => {
    names.push(name);
    return '([^/]+)';
  });
  routes.push({ regex: new RegExp(`^${source}/?$`), names, view });
}

function match(pathname) {
  for (const { regex, names, view } of routes) {
    const found = regex.exec(pathname);
    if (found) {
      const params = Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1])]));
      return { view, params };
    }
  }
  return null;
}

/** Go to `url` (a path with an optional query) and render it. */
export function navigate(url, { replace = false, state = null } = {}) {
  const target = new URL(url, window.location.origin);
  const path = `${target.pathname}${target.search}${target.hash}`;
  if (replace) window.history.replaceState(state, '', path);
  else window.history.pushState(state, '', path);
  return render({ focus: true, scroll: !replace });
}

/** Render the current location again (after logging in or out). */
export function refresh() {
  return render({ focus: false, scroll: false });
}

async function render({ focus, scroll }) {
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  const location = new URL(window.location.href);
  const found = match(location.pathname);
  if (scroll) window.scrollTo(0, 0);
  await onRoute({
    view: found?.view ?? null,
    params: found?.params ?? {},
    query: location.searchParams,
    state: window.history.state,
    signal,
    focus,
  });
}

/** Start: render the current location and follow links and the back button. */
export function start(handler) {
  onRoute = handler;
  window.addEventListener('popstate', () => render({ focus: true, scroll: false }));
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
    if (!link || link.target || link.hasAttribute('download')) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/assets/')) return;
    // A link to a fragment of this page is left to the browser (the skip link).
    if (url.pathname === window.location.pathname && url.search === window.location.search && url.hash) return;
    event.preventDefault();
    navigate(url.href);
  });
  return render({ focus: false, scroll: false });
}
