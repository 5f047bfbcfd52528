// Shop administration: products (create, edit with If-Match, delete) and stock.
// The API checks the role on every request; these pages only spare a
// customer the forms they could not use.

import { h, replace, field, notice, whileBusy, announce } from '../dom.js';
import { ApiError, isAbort, plainMessage } from '../api.js';
import * as session from '../session.js';
import { navigate } from '../router.js';
import { price, toMajor, toMinor, fractionDigits } from '../format.js';
import { show, heading, requireLogin, errorNotice, loading, pagination, previousCursors } from './common.js';

const PAGE_SIZE = 20;
/** The currencies the admin-product service accepts. */
const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'HUF', 'RON', 'BGN', 'JPY', 'AUD', 'CAD', 'NZD'];

/**
 * The If-Match of an edit: the version the admin read, as the API's ETag
 * (`"<version>"`) states it. Built from the body rather than echoed from the
 * ETag header because nginx's gzip weakens the ETag of the answers it
 * compresses (`W/"2"`), and If-Match compares strongly: it would never match.
 */
function ifMatch(product) {
  return `"${product.version}"`;
}

function requireAdmin(context) {
  if (!requireLogin(context)) return false;
  if (session.isAdmin()) return true;
  show(context, 'Administrators only', heading('Administrators only'),
    h('p', {}, 'This part of the shop is for administrators. ', h('a', { href: '/' }, 'Back to the products'), '.'));
  return false;
}

/** `/admin?cursor=`: every product, active or not. */
export async function adminView(context) {
  if (!requireAdmin(context)) return;
  const { query, state, signal } = context;
  const cursor = query.get('cursor') ?? '';
  const cursors = previousCursors(state);
  const urlFor = (pageCursor) => (pageCursor ? `/admin?cursor=${encodeURIComponent(pageCursor)}` : '/admin');
  const list = h('div', {}, loading('Loading products…'));
  show(context, 'Manage products',
    h('div', { class: 'page-head' },
      heading('Manage products'),
      h('a', { href: '/admin/products/new', class: 'button button--primary' }, 'Add a product')),
    list);

  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) params.set('cursor', cursor);
  try {
    const { data } = await session.authRequest(`/api/admin/products/?${params}`, { signal });
    if (signal.aborted) return;
    const products = Array.isArray(data?.items) ? data.items : [];
    replace(list,
      products.length === 0
        ? h('p', { class: 'empty' }, 'There are no products yet. ', h('a', { href: '/admin/products/new' }, 'Add the first one'), '.')
        : h('div', { class: 'table-scroll' }, h('table', { class: 'admin-products' },
          h('caption', { class: 'visually-hidden' }, 'Products'),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Name'),
            h('th', { scope: 'col' }, 'SKU'),
            h('th', { scope: 'col' }, 'Category'),
            h('th', { scope: 'col', class: 'number' }, 'Price'),
            h('th', { scope: 'col' }, 'In the catalog'))),
          h('tbody', {}, products.map((product) => h('tr', {},
            h('th', { scope: 'row' }, h('a', { href: `/admin/products/${encodeURIComponent(product.id)}` }, product.name)),
            h('td', {}, product.sku),
            h('td', {}, product.category),
            h('td', { class: 'number' }, price(product.price)),
            h('td', {}, product.active ? 'Yes' : 'No (hidden)')))))),
      pagination({ urlFor, cursors, current: cursor, next: data?.next_cursor ?? null, label: 'Product pages' }) ?? '');
  } catch (error) {
    if (signal.aborted || isAbort(error)) return;
    replace(list, errorNotice(error, { retry: () => adminView(context) }));
  }
}

/** `/admin/products/new` and `/admin/products/:id` */
export async function adminProductView(context) {
  if (!requireAdmin(context)) return;
  const { params, state, signal } = context;
  const creating = !params.id;
  let product = null;
  let fresh = false;

  if (!creating) {
    show(context, 'Edit product', heading('Edit product'), loading('Loading the product…'));
    // Just created: the page already has the product, and no stock exists yet.
    if (state?.created?.id === params.id) {
      product = state.created;
      fresh = true;
      // A reload reads the product again rather than this copy.
      window.history.replaceState(null, '', window.location.pathname);
    } else {
      try {
        ({ data: product } = await session.authRequest(`/api/admin/products/${encodeURIComponent(params.id)}`, { signal }));
      } catch (error) {
        if (signal.aborted || isAbort(error)) return;
        if (error instanceof ApiError && (error.status === 404 || error.code === 'INVALID_INPUT')) {
          show(context, 'Product not found', heading('Product not found'),
            h('p', {}, 'This product does not exist (it may have been deleted). ', h('a', { href: '/admin' }, 'Back to the products'), '.'));
        } else {
          show(context, 'Edit product', heading('Edit product'), errorNotice(error, { retry: () => adminProductView(context) }));
        }
        return;
      }
    }
  }

  const form = productForm({
    product,
    onSave: async (input, formMessage, button) => {
      if (creating) {
        const created = await whileBusy(button, 'Saving…', () =>
          session.authRequest('/api/admin/products/', { method: 'POST', body: input, signal }));
        announce(`Product ${created.data.name} created.`);
        navigate(`/admin/products/${encodeURIComponent(created.data.id)}`, {
          replace: true,
          state: { created: created.data },
        });
        return;
      }
      const updated = await whileBusy(button, 'Saving…', () =>
        session.authRequest(`/api/admin/products/${encodeURIComponent(product.id)}`, {
          method: 'PUT',
          body: input,
          headers: { 'If-Match': ifMatch(product) },
          signal,
        }));
      product = updated.data;
      replace(formMessage, notice('success', 'Saved. The catalog shows the change within a few seconds.'));
    },
    onStale: () => adminProductView({ ...context, state: null }),
  });

  const title = creating ? 'Add a product' : `Edit ${product.name}`;
  show(context, title,
    h('p', { class: 'breadcrumbs' }, h('a', { href: '/admin' }, '← All products')),
    heading(title),
    fresh ? notice('success', 'Product created. It appears in the catalog within a few seconds; set its stock below so that it can be ordered.') : null,
    form,
    creating ? null : stockSection(product, { fresh, signal }),
    creating ? null : deleteSection(() => product, signal),
    creating ? null : h('p', {}, h('a', { href: `/products/${encodeURIComponent(product.id)}` }, 'See it in the catalog')));
}

/** The product form; `onSave(input, messageBox, button)` sends it. */
function productForm({ product, onSave, onStale }) {
  const currency = product?.price?.currency ?? 'EUR';
  const name = field({ label: 'Name', name: 'name', required: true, value: product?.name ?? '', attributes: { maxlength: '200' } });
  const sku = field({ label: 'SKU', name: 'sku', required: true, value: product?.sku ?? '', hint: '3 to 40 letters, digits or dashes, such as TEE-RED-M.', attributes: { maxlength: '40', autocapitalize: 'characters', spellcheck: 'false' } });
  const amount = field({ label: 'Price', name: 'price', required: true, value: product ? toMajor(product.price.amount_minor, currency) : '', hint: 'Such as 19.99.', attributes: { inputmode: 'decimal', autocomplete: 'off' } });
  const currencyField = field({ label: 'Currency', name: 'currency', type: 'select', value: currency, options: CURRENCIES.map((c) => [c, c]) });
  const category = field({ label: 'Category', name: 'category', required: true, value: product?.category ?? '', hint: 'Lowercase words joined by dashes, such as t-shirts.', attributes: { maxlength: '64', autocapitalize: 'none', spellcheck: 'false' } });
  const description = field({ label: 'Description', name: 'description', type: 'textarea', value: product?.description ?? '', rows: 5, attributes: { maxlength: '5000' } });
  const images = field({ label: 'Picture addresses', name: 'image_urls', type: 'textarea', value: (product?.image_urls ?? []).join('\n'), rows: 3, hint: 'One https:// address per line; the first is the main picture.', attributes: { spellcheck: 'false' } });
  const active = field({ label: 'Show in the catalog', name: 'active', type: 'checkbox', value: product ? product.active : true, hint: 'Untick to hide the product from shoppers without deleting it.' });
  const message = h('div');
  const submit = h('button', { type: 'submit', class: 'button button--primary' }, product ? 'Save changes' : 'Create product');

  const form = h('form', { class: 'form form--wide', novalidate: true },
    message,
    h('div', { class: 'form__grid' }, name.wrapper, sku.wrapper),
    h('div', { class: 'form__grid' }, amount.wrapper, currencyField.wrapper, category.wrapper),
    description.wrapper, images.wrapper, active.wrapper, submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(message);
    const chosen = currencyField.control.value;
    const minor = toMinor(amount.control.value, chosen);
    const urls = images.control.value.split('\n').map((u) => u.trim()).filter(Boolean);
    const digits = fractionDigits(chosen);
    name.showError(name.control.value.trim() ? null : 'Enter a name.');
    sku.showError(/^[A-Za-z0-9-]{3,40}$/.test(sku.control.value.trim()) ? null : 'Use 3 to 40 letters, digits or dashes, such as TEE-RED-M.');
    amount.showError(minor === null ? `Enter a price such as ${digits ? `19.${'9'.repeat(digits)}` : '1999'}${digits ? ` (at most ${digits} decimals)` : ' (no decimals)'}.` : null);
    category.showError(/^[a-z0-9]+(-[a-z0-9]+)*$/.test(category.control.value.trim().toLowerCase()) ? null : 'Use lowercase words joined by dashes, such as t-shirts.');
    images.showError(urls.every((u) => u.startsWith('https://')) ? null : 'Every picture address must start with https://.');
    const invalid = [name, sku, amount, category, images].find((f) => f.control.hasAttribute('aria-invalid'));
    if (invalid) { invalid.control.focus(); return; }
    const input = {
      name: name.control.value.trim(),
      description: description.control.value.trim(),
      sku: sku.control.value.trim().toUpperCase(),
      price: { amount_minor: minor, currency: chosen },
      category: category.control.value.trim().toLowerCase(),
      image_urls: urls,
      active: active.control.checked,
    };
    try {
      await onSave(input, message, submit);
    } catch (error) {
      if (isAbort(error)) return;
      const stale = error instanceof ApiError && error.code === 'PRECONDITION_FAILED';
      const reload = h('button', { type: 'button', class: 'button', onclick: onStale }, 'Load the latest version');
      replace(message, notice('error', h('p', {}, plainMessage(error)), stale ? h('p', {}, reload) : null));
      (stale ? reload : message.querySelector('[role=alert]'))?.focus?.();
    }
  });
  return form;
}

/**
 * PUT the units on hand. Inventory learns of a new product from its event a
 * moment after it is created: until then it answers UNKNOWN_PRODUCT, so ask
 * again for a few seconds before giving up.
 */
async function setStock(path, onHand, signal) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await session.authRequest(path, { method: 'PUT', body: { on_hand: onHand }, signal });
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 'UNKNOWN_PRODUCT') || attempt === 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (signal?.aborted) throw error;
    }
  }
}

/** Stock: see the level and set the units on hand (reserved ones included). */
function stockSection(product, { fresh, signal }) {
  const path = `/api/admin/inventory/${encodeURIComponent(product.id)}`;
  const level = h('p', { class: 'stock-level' }, loading('Loading the stock…'));
  const quantity = field({ label: 'Units on hand', name: 'on_hand', type: 'number', required: true, hint: '0 to 1000 units in stock, counting those reserved by orders: what can still be ordered is on hand minus reserved.', attributes: { min: '0', max: '1000', inputmode: 'numeric' } });
  const message = h('div');
  const submit = h('button', { type: 'submit', class: 'button' }, 'Set stock');

  const showLevel = (stock) => {
    if (!stock) {
      replace(level, 'No stock recorded yet: the product cannot be ordered.');
      return;
    }
    quantity.control.value = String(stock.on_hand);
    replace(level, `${stock.on_hand} on hand: ${stock.quantity} available, ${stock.reserved} reserved by orders.`);
  };

  const form = h('form', { class: 'form', novalidate: true },
    message, quantity.wrapper, submit);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    replace(message);
    const wanted = Number(quantity.control.value);
    quantity.showError(quantity.control.value !== '' && Number.isInteger(wanted) && wanted >= 0 && wanted <= 1000 ? null : 'Enter a whole number from 0 to 1000.');
    if (quantity.control.hasAttribute('aria-invalid')) { quantity.control.focus(); return; }
    try {
      const { data } = await whileBusy(submit, 'Saving…', () => setStock(path, wanted, signal));
      showLevel(data);
      replace(message, notice('success', `Stock set to ${data.on_hand} on hand.`));
    } catch (error) {
      if (isAbort(error)) return;
      // Inventory learns of a new product from its event, a moment after it is created.
      const early = error instanceof ApiError && error.code === 'UNKNOWN_PRODUCT';
      replace(message, notice('error', early ? 'The stock service has not heard of this product yet. Try again in a few seconds.' : plainMessage(error)));
    }
  });

  if (fresh) showLevel(null);
  else {
    session.authRequest(path, { signal })
      .then(({ data }) => showLevel(data))
      .catch((error) => {
        if (signal.aborted || isAbort(error)) return;
        if (error instanceof ApiError && error.status === 404) showLevel(null);
        else replace(level, errorNotice(error));
      });
  }
  return h('section', { class: 'panel', 'aria-labelledby': 'stock-heading' },
    h('h2', { id: 'stock-heading' }, 'Stock'), level, form);
}

/** Delete, after a second click that says what it does. */
function deleteSection(current, signal) {
  const box = h('div');
  const message = h('div');
  const ask = h('button', { type: 'button', class: 'button button--danger' }, 'Delete this product');
  ask.addEventListener('click', () => {
    const yes = h('button', { type: 'button', class: 'button button--danger' }, 'Yes, delete it');
    const no = h('button', { type: 'button', class: 'button' }, 'Keep it');
    no.addEventListener('click', () => { replace(box, ask); ask.focus(); });
    yes.addEventListener('click', async () => {
      const product = current();
      try {
        await whileBusy(yes, 'Deleting…', () => session.authRequest(`/api/admin/products/${encodeURIComponent(product.id)}`, {
          method: 'DELETE',
          headers: { 'If-Match': ifMatch(product) },
          signal,
        }));
        announce(`Product ${product.name} deleted.`);
        navigate('/admin', { replace: true });
      } catch (error) {
        if (isAbort(error)) return;
        replace(message, notice('error', plainMessage(error)));
      }
    });
    replace(box, h('p', {}, 'Delete this product? Shoppers can no longer see or order it. This cannot be undone.'), h('div', { class: 'cancel__buttons' }, yes, no));
    yes.focus();
  });
  box.append(ask);
  return h('section', { class: 'panel panel--danger', 'aria-labelledby': 'delete-heading' },
    h('h2', { id: 'delete-heading' }, 'Delete'), message, box);
}
