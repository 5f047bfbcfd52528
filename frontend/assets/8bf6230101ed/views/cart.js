// The cart: change quantities, see totals, place the order.

import { h, replace, announce, notice, whileBusy } from '../dom.js';
import { ApiError, isAbort, plainMessage, request } from '../api.js';
import * as cart from '../cart.js';
import * as session from '../session.js';
import { navigate } from '../router.js';
import { money, price } from '../format.js';
import { show, heading } from './common.js';

/** `/cart` */
export async function cartView(context) {
  const { signal } = context;
  // What the catalog says now about each product in the cart, by id:
  // a CatalogProduct, or 'gone' when it is no longer sold.
  const latest = new Map();
  const status = h('div', { class: 'cart__status', 'aria-live': 'polite' });
  const body = h('div');
  let placing = false;

  const render = () => {
    if (signal.aborted) return;
    // Re-rendering replaces the inputs; keep the keyboard where it was.
    const focused = document.activeElement?.id;
    draw();
    if (focused && document.activeElement?.id !== focused) document.getElementById(focused)?.focus();
  };

  const draw = () => {
    const lines = cart.lines();
    if (lines.length === 0) {
      replace(body, h('p', { class: 'empty' }, 'Your cart is empty. ', h('a', { href: '/' }, 'Browse the products'), '.'));
      return;
    }
    const totals = new Map();
    for (const line of lines) {
      if (latest.get(line.productId) === 'gone' || !line.price) continue;
      const currency = line.price.currency;
      totals.set(currency, (totals.get(currency) ?? 0) + line.price.amount_minor * line.quantity);
    }
    const problems = lines.filter((line) => latest.get(line.productId) === 'gone'
      || latest.get(line.productId)?.stock?.status === 'out_of_stock');
    const user = session.user();
    const placeButton = h('button', {
      type: 'button',
      class: 'button button--primary button--large',
      disabled: problems.length > 0 || totals.size > 1,
    }, 'Place order');
    placeButton.addEventListener('click', () => placeOrder(placeButton));

    replace(body,
      h('ul', { class: 'cart-lines', 'aria-label': 'Products in your cart' }, lines.map((line) => cartLine(line, latest.get(line.productId)))),
      h('div', { class: 'cart__summary' },
        h('p', { class: 'cart__total' }, 'Total: ',
          h('strong', {}, [...totals].map(([currency, minor]) => money(minor, currency)).join(' + ') || money(0, 'EUR'))),
        totals.size > 1 ? notice('error', 'Your cart has products priced in different currencies. Order them separately.') : null,
        problems.length > 0 ? notice('error', 'Remove the products that are no longer available to place your order.') : null,
        user
          ? h('div', { class: 'cart__actions' }, placeButton, h('p', { class: 'cart__hint' }, `Ordering as ${user.displayName ?? user.email}.`))
          : h('p', { class: 'cart__actions' },
            h('a', { class: 'button button--primary button--large', href: '/login?next=%2Fcart' }, 'Log in to place your order'),
            ' ', h('a', { href: '/register?next=%2Fcart' }, 'or create an account'))));
  };

  const placeOrder = async (button) => {
    // The button is disabled while busy; this also stops a second click that
    // lands before the browser repaints. Both clicks would send the same key anyway.
    if (placing) return;
    placing = true;
    replace(status);
    const key = cart.checkoutKey();
    const items = cart.lines().map((line) => ({ product_id: line.productId, quantity: line.quantity }));
    try {
      await whileBusy(button, 'Placing your order…', async () => {
        const { data: order } = await session.authRequest('/api/orders/', {
          method: 'POST',
          body: { items },
          headers: { 'Idempotency-Key': key },
        });
        cart.clear();
        announce('Your order was placed.');
        navigate(`/orders/${encodeURIComponent(order.id)}`, { state: { placed: true } });
      });
    } catch (error) {
      if (isAbort(error)) return;
      replace(status, notice('error', plainMessage(error),
        error instanceof ApiError && error.code === 'SESSION_ENDED' ? [' ', h('a', { href: '/login?next=%2Fcart' }, 'Log in')] : null));
    } finally {
      placing = false;
    }
  };

  show(context, 'Your cart', heading('Your cart'), status, body);
  render();
  const unsubscribe = cart.onChange(render);
  signal.addEventListener('abort', unsubscribe, { once: true });

  // Bring names, prices and stock up to date.
  const ids = [...new Set(cart.lines().map((line) => line.productId))];
  const answers = await Promise.allSettled(ids.map((id) =>
    request(`/api/products/${encodeURIComponent(id)}`, { signal, cache: 'no-cache' })));
  if (signal.aborted) return;
  answers.forEach((answer, i) => {
    if (answer.status === 'fulfilled') {
      latest.set(ids[i], answer.value.data);
      cart.refreshLine(answer.value.data);
    } else if (answer.reason instanceof ApiError && answer.reason.status === 404) {
      latest.set(ids[i], 'gone');
    }
  });
  render();
}

/** One line of the cart, with its quantity and a way to remove it. */
function cartLine(line, product) {
  const gone = product === 'gone';
  const id = `quantity-${line.productId}`;
  const quantity = h('input', {
    id,
    type: 'number',
    inputmode: 'numeric',
    min: '1',
    max: String(cart.MAX_QUANTITY),
    value: String(line.quantity),
    disabled: gone,
  });
  quantity.addEventListener('change', () => {
    const wanted = Number.parseInt(quantity.value, 10);
    if (Number.isInteger(wanted) && wanted >= 1) {
      cart.setQuantity(line.productId, wanted);
      announce(`${line.name}: quantity ${Math.min(wanted, cart.MAX_QUANTITY)}.`);
    } else {
      quantity.value = String(line.quantity);
    }
  });
  let warning = null;
  if (gone) warning = 'This product is no longer sold.';
  else if (product?.stock?.status === 'out_of_stock') warning = 'This product is out of stock.';
  else if (product?.stock?.status === 'low_stock') warning = 'Only a few left; the order may be rejected.';
  return h('li', { class: `cart-line${gone ? ' cart-line--gone' : ''}` },
    h('div', { class: 'cart-line__name' },
      gone ? h('span', {}, line.name) : h('a', { href: `/products/${encodeURIComponent(line.productId)}` }, line.name),
      h('span', { class: 'cart-line__unit' }, `${price(line.price)} each`)),
    h('div', { class: 'cart-line__quantity field field--inline' },
      h('label', { for: id }, 'Quantity', h('span', { class: 'visually-hidden' }, ` of ${line.name}`)), quantity),
    h('p', { class: 'cart-line__total' }, line.price ? money(line.price.amount_minor * line.quantity, line.price.currency) : ''),
    h('button', {
      type: 'button',
      class: 'button button--small button--quiet',
      onclick: () => {
        cart.remove(line.productId);
        announce(`Removed ${line.name} from your cart.`);
      },
    }, 'Remove', h('span', { class: 'visually-hidden' }, ` ${line.name}`)),
    warning ? h('p', { class: 'cart-line__warning' }, warning) : null);
}

