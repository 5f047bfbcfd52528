// Order history, and one order followed from placed to confirmed or rejected.

import { h, replace, notice, whileBusy } from '../dom.js';
import { ApiError, isAbort, plainMessage } from '../api.js';
import * as session from '../session.js';
import { money, dateTime, statusLabel, shortId, plural, ORDER_STATUS } from '../format.js';
import { show, heading, requireLogin, errorNotice, loading, pagination, previousCursors, sleep } from './common.js';

const PAGE_SIZE = 10;

/** `/orders?cursor=` */
export async function ordersView(context) {
  if (!requireLogin(context)) return;
  const { query, state, signal } = context;
  const cursor = query.get('cursor') ?? '';
  const cursors = previousCursors(state);
  const urlFor = (pageCursor) => (pageCursor ? `/orders?cursor=${encodeURIComponent(pageCursor)}` : '/orders');
  const list = h('div', {}, loading('Loading your orders…'));
  show(context, 'Your orders', heading('Your orders'), list);

  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) params.set('cursor', cursor);
  try {
    const { data } = await session.authRequest(`/api/orders/?${params}`, { signal });
    if (signal.aborted) return;
    const orders = Array.isArray(data?.items) ? data.items : [];
    replace(list,
      orders.length === 0
        ? h('p', { class: 'empty' }, 'You have not ordered anything yet. ', h('a', { href: '/' }, 'Browse the products'), '.')
        : h('ul', { class: 'order-list', 'aria-label': 'Orders' }, orders.map(orderSummary)),
      pagination({ urlFor, cursors, current: cursor, next: data?.next_cursor ?? null, label: 'Order pages' }) ?? '');
  } catch (error) {
    if (signal.aborted || isAbort(error)) return;
    replace(list, errorNotice(error, { retry: () => ordersView(context) }));
  }
}

function orderSummary(order) {
  const units = (order.items ?? []).reduce((sum, item) => sum + item.quantity, 0);
  const names = (order.items ?? []).map((item) => item.name).join(', ');
  return h('li', { class: 'order-summary' },
    h('a', { href: `/orders/${encodeURIComponent(order.id)}`, class: 'order-summary__link' },
      h('span', { class: 'order-summary__id' }, `Order ${shortId(order.id)}`),
      h('span', { class: 'order-summary__date' }, dateTime(order.created_at))),
    h('p', { class: 'order-summary__items' }, `${plural(units, 'item')}: ${names}`),
    h('p', { class: 'order-summary__total' }, money(order.total_minor, order.currency)),
    statusBadge(order.status));
}

function statusBadge(status) {
  return h('span', { class: `status status--${String(status).toLowerCase()}` }, statusLabel(status));
}

/** The reason of a rejection in words, naming the product rather than its id. */
function reasonText(order) {
  if (!order.reason) return null;
  const item = (order.items ?? []).find((i) => order.reason.includes(i.product_id));
  if (item && /stock/i.test(order.reason)) return `There is not enough stock of ${item.name}.`;
  return order.reason;
}

/** `/orders/:id`: polled while it is PLACED. */
export async function orderView(context) {
  if (!requireLogin(context)) return;
  const { params, state, signal } = context;
  const path = `/api/orders/${encodeURIComponent(params.id)}`;
  show(context, 'Order', heading('Order'), loading('Loading the order…'));
  let order;
  try {
    ({ data: order } = await session.authRequest(path, { signal }));
  } catch (error) {
    if (signal.aborted || isAbort(error)) return;
    if (error instanceof ApiError && (error.status === 404 || error.code === 'INVALID_INPUT')) {
      show(context, 'Order not found', heading('Order not found'),
        h('p', {}, 'We could not find this order. ', h('a', { href: '/orders' }, 'See your orders'), '.'));
    } else {
      show(context, 'Order', heading('Order'), errorNotice(error, { retry: () => orderView(context) }));
    }
    return;
  }

  const statusBox = h('div', { class: 'order__status', role: 'status', 'aria-live': 'polite' });
  const actions = h('div', { class: 'order__actions' });
  const message = h('div');

  const update = () => {
    const words = ORDER_STATUS[order.status];
    replace(statusBox,
      h('p', {}, 'Status: ', statusBadge(order.status)),
      h('p', { class: 'order__detail' },
        order.status === 'PLACED' ? h('span', { class: 'spinner', 'aria-hidden': 'true' }) : null,
        words?.detail ?? ''),
      order.status === 'REJECTED' && order.reason ? h('p', { class: 'order__reason' }, reasonText(order)) : null);
    statusBox.dataset.status = order.status;
    replace(actions, order.status === 'PLACED' || order.status === 'CONFIRMED' ? cancelControl() : '');
  };

  const cancelControl = () => {
    const box = h('div', { class: 'cancel' });
    const ask = h('button', { type: 'button', class: 'button button--danger' }, 'Cancel order');
    ask.addEventListener('click', () => {
      const yes = h('button', { type: 'button', class: 'button button--danger' }, 'Yes, cancel this order');
      const no = h('button', { type: 'button', class: 'button' }, 'Keep the order');
      no.addEventListener('click', () => { replace(box, ask); ask.focus(); });
      yes.addEventListener('click', async () => {
        replace(message);
        try {
          await whileBusy(yes, 'Cancelling…', async () => {
            ({ data: order } = await session.authRequest(`${path}/cancel`, { method: 'POST', signal }));
          });
          update();
        } catch (error) {
          if (signal.aborted || isAbort(error)) return;
          replace(message, notice('error', plainMessage(error)));
          // Show the state that made the cancellation fail.
          refetch().catch(() => {});
        }
      });
      replace(box, h('p', { class: 'cancel__question' }, 'Cancel this order? This cannot be undone.'), h('div', { class: 'cancel__buttons' }, yes, no));
      yes.focus();
    });
    box.append(ask);
    return box;
  };

  const refetch = async () => {
    ({ data: order } = await session.authRequest(path, { signal }));
    if (!signal.aborted) update();
  };

  show(context, `Order ${shortId(order.id)}`,
    heading(`Order ${shortId(order.id)}`),
    state?.placed ? notice('success', 'Thank you! Your order was placed.') : null,
    statusBox,
    h('table', { class: 'order__items' },
      h('caption', { class: 'visually-hidden' }, 'Items in this order'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Product'),
        h('th', { scope: 'col', class: 'number' }, 'Quantity'),
        h('th', { scope: 'col', class: 'number' }, 'Unit price'),
        h('th', { scope: 'col', class: 'number' }, 'Total'))),
      h('tbody', {}, (order.items ?? []).map((item) => h('tr', {},
        h('td', {}, h('a', { href: `/products/${encodeURIComponent(item.product_id)}` }, item.name)),
        h('td', { class: 'number' }, String(item.quantity)),
        h('td', { class: 'number' }, money(item.unit_price_minor, order.currency)),
        h('td', { class: 'number' }, money(item.line_total_minor, order.currency))))),
      h('tfoot', {}, h('tr', {},
        h('th', { scope: 'row', colspan: '3' }, 'Order total'),
        h('td', { class: 'number' }, h('strong', {}, money(order.total_minor, order.currency)))))),
    h('p', { class: 'order__meta' }, `Placed ${dateTime(order.created_at)}. Order number ${order.id}.`),
    message,
    actions,
    h('p', {}, h('a', { href: '/orders' }, '← All your orders')));
  update();
  follow();

  /** Ask again while the stock is being checked: every second, then every five. */
  async function follow() {
    const started = Date.now();
    try {
      while (order.status === 'PLACED' && !signal.aborted) {
        await sleep(Date.now() - started < 15_000 ? 1_000 : 5_000, signal);
        // The status box is a live region: the change is read out.
        await refetch();
      }
    } catch (error) {
      if (signal.aborted || isAbort(error)) return;
      replace(message, errorNotice(error, { retry: () => { replace(message); follow(); } }));
    }
  }
}
