// The TeIpsum storefront: a single page over the TeIpsum API. No build step:
// the browser loads these ES modules as they are, from /assets/<hash>/.

import { h, replace, announce } from './dom.js';
import { route, start, navigate, refresh } from './router.js';
import { plainMessage } from './api.js';
import * as session from './session.js';
import * as cart from './cart.js';
import { catalogView } from './views/catalog.js';
import { productView } from './views/product.js';
import { cartView } from './views/cart.js';
import { ordersView, orderView } from './views/orders.js';
import { loginView, registerView } from './views/auth.js';
import { adminView, adminProductView } from './views/admin.js';
import { show, heading } from './views/common.js';

route('/', catalogView);
route('/products/:id', productView);
route('/cart', cartView);
route('/orders', ordersView);
route('/orders/:id', orderView);
route('/login', loginView);
route('/register', registerView);
route('/admin', adminView);
route('/admin/products/new', adminProductView);
route('/admin/products/:id', adminProductView);

function notFoundView(context) {
  show(context, 'Page not found', heading('Page not found'),
    h('p', {}, 'There is no page at this address. ', h('a', { href: '/' }, 'Browse the products'), '.'));
}

/** The header's links, with the cart's count and who is logged in. */
function renderNav() {
  const user = session.user();
  const units = cart.count();
  const here = window.location.pathname;
  const link = (href, ...text) => h('a', {
    href,
    'aria-current': (href === '/' ? here === '/' || here.startsWith('/products/') : here === href || here.startsWith(`${href}/`)) ? 'page' : null,
  }, ...text);
  const logout = h('button', { type: 'button', class: 'button button--small button--quiet' }, 'Log out');
  logout.addEventListener('click', async () => {
    logout.disabled = true;
    await session.logout();
    announce('You are logged out.');
    navigate('/');
  });
  replace(document.getElementById('nav'),
    h('li', {}, link('/', 'Products')),
    h('li', {}, link('/cart', 'Cart', ' ', h('span', { class: 'count', 'data-count': String(units) }, String(units)),
      h('span', { class: 'visually-hidden' }, units === 1 ? ' item' : ' items'))),
    user ? h('li', {}, link('/orders', 'Orders')) : null,
    user?.role === 'admin' ? h('li', {}, link('/admin', 'Admin')) : null,
    user
      ? h('li', { class: 'nav__user' }, h('span', { class: 'nav__name' }, user.displayName ?? user.email), logout)
      : [h('li', {}, link('/login', 'Log in')), h('li', {}, link('/register', 'Register'))]);
}

let shownUser = session.user()?.id ?? null;
session.onChange((user, { remote }) => {
  renderNav();
  const changed = (user?.id ?? null) !== shownUser;
  shownUser = user?.id ?? null;
  // Logged in or out in another tab: this page may no longer fit. (In this
  // tab, the view that logged in or out goes where it should by itself.)
  if (remote && changed) refresh();
});
cart.onChange(renderNav);

// Anything that escapes a view is still explained, not left as a blank page.
window.addEventListener('unhandledrejection', (event) => {
  if (event.reason?.name === 'AbortError') event.preventDefault();
});

start(async ({ view, params, query, state, signal, focus }) => {
  const main = document.getElementById('main');
  main.setAttribute('aria-busy', 'true');
  renderNav();
  const context = { main, params, query, state, signal };
  try {
    await (view ?? notFoundView)(context);
  } catch (error) {
    if (signal.aborted || error?.name === 'AbortError') return;
    show(context, 'Something went wrong', heading('Something went wrong'),
      h('div', { class: 'notice notice--error', role: 'alert' }, plainMessage(error)));
  } finally {
    if (!signal.aborted) {
      main.removeAttribute('aria-busy');
      if (focus) (main.querySelector('h1') ?? main).focus({ preventScroll: true });
    }
  }
});
