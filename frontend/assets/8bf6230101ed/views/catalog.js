// The catalog: search, sort, filter by category, page through products.

import { h, replace, announce } from '../dom.js';
import { request } from '../api.js';
import * as cart from '../cart.js';
import { navigate } from '../router.js';
import { price, stockText, plural } from '../format.js';
import { show, heading, errorNotice, loading, pagination, previousCursors, productPicture } from './common.js';

const PAGE_SIZE = 12;
const SORTS = [
  ['newest', 'Newest first'],
  ['price_asc', 'Price: low to high'],
  ['price_desc', 'Price: high to low'],
  ['name', 'Name: A to Z'],
];

/** `/?q=&category=&sort=&cursor=` */
export async function catalogView(context) {
  const { query, state, signal } = context;
  const q = (query.get('q') ?? '').trim();
  const category = (query.get('category') ?? '').trim();
  const sort = SORTS.some(([value]) => value === query.get('sort')) ? query.get('sort') : 'newest';
  const cursor = query.get('cursor') ?? '';
  const cursors = previousCursors(state);

  const urlFor = (pageCursor) => {
    const params = new URLSearchParams();
    if (q) params.set('q', q);
    if (category) params.set('category', category);
    if (sort !== 'newest') params.set('sort', sort);
    if (pageCursor) params.set('cursor', pageCursor);
    const text = params.toString();
    return text ? `/?${text}` : '/';
  };

  const title = q ? `Results for “${q}”` : category ? `Category: ${category}` : 'Products';
  const results = h('div', { class: 'results' }, loading('Loading products…'));
  show(context, title,
    heading(title),
    searchForm({ q, category, sort }),
    category ? h('p', { class: 'filter' }, 'Showing the category ', h('strong', {}, category), '. ',
      h('a', { href: everyCategory({ q, sort }) }, 'Show all categories')) : null,
    results);

  const load = async () => {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), sort });
    if (q) params.set('q', q);
    if (category) params.set('category', category);
    if (cursor) params.set('cursor', cursor);
    try {
      const { data } = await request(`/api/products?${params}`, { signal });
      if (signal.aborted) return;
      const items = Array.isArray(data?.items) ? data.items : [];
      replace(results,
        items.length === 0
          ? h('p', { class: 'empty' }, q || category
            ? 'No products match your search. Try other words, or '
            : 'There are no products in the shop yet.', q || category ? h('a', { href: '/' }, 'see all products') : null, q || category ? '.' : null)
          : h('ul', { class: 'product-grid', 'aria-label': 'Products' }, items.map(productCard)),
        pagination({ urlFor, cursors, current: cursor, next: data?.next_cursor ?? null, label: 'Product pages' }) ?? '');
      if (q || category) announce(`${plural(items.length, 'product')} on this page.`);
    } catch (error) {
      if (signal.aborted) return;
      replace(results, errorNotice(error, { retry: () => { replace(results, loading('Loading products…')); load(); } }));
    }
  };
  await load();
}

/** The same search without the category filter. */
function everyCategory({ q, sort }) {
  const params = new URLSearchParams();
  if (q) params.set('q', q);
  if (sort !== 'newest') params.set('sort', sort);
  const text = params.toString();
  return text ? `/?${text}` : '/';
}

function searchForm({ q, category, sort }) {
  const input = h('input', { type: 'search', id: 'search-q', name: 'q', autocomplete: 'off', enterkeyhint: 'search', maxlength: '200' });
  input.value = q;
  const select = h('select', { id: 'search-sort', name: 'sort' },
    SORTS.map(([value, text]) => h('option', { value, selected: value === sort }, text)));
  return h('form', {
    class: 'search',
    role: 'search',
    action: '/',
    method: 'get',
    onsubmit: (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      if (input.value.trim()) params.set('q', input.value.trim());
      if (category) params.set('category', category);
      if (select.value !== 'newest') params.set('sort', select.value);
      const text = params.toString();
      navigate(text ? `/?${text}` : '/');
    },
  },
  h('div', { class: 'search__field' }, h('label', { for: 'search-q' }, 'Search products'), input),
  h('div', { class: 'search__field search__field--sort' }, h('label', { for: 'search-sort' }, 'Sort by'), select),
  category ? h('input', { type: 'hidden', name: 'category', value: category }) : null,
  h('button', { type: 'submit', class: 'button button--primary' }, 'Search'));
}

/** One product in the grid. */
export function productCard(product) {
  const href = `/products/${encodeURIComponent(product.id)}`;
  const soldOut = product.stock?.status === 'out_of_stock';
  const addButton = h('button', {
    type: 'button',
    class: 'button button--small',
    disabled: soldOut,
    'aria-label': `Add ${product.name} to cart`,
    onclick: () => {
      if (cart.add(product, 1)) announce(`Added ${product.name} to your cart.`);
      else announce('Your cart is full. Place an order or remove something first.');
    },
  }, soldOut ? 'Sold out' : 'Add to cart');
  return h('li', { class: 'card' },
    h('a', { href, class: 'card__media', tabindex: '-1', 'aria-hidden': 'true' }, productPicture(product)),
    h('div', { class: 'card__body' },
      h('h2', { class: 'card__title' }, h('a', { href }, product.name)),
      product.category ? h('p', { class: 'card__category' },
        h('a', { href: `/?category=${encodeURIComponent(product.category)}` }, product.category)) : null,
      h('p', { class: 'card__price' }, price(product.price)),
      h('p', { class: `stock stock--${product.stock?.status ?? 'unknown'}` }, stockText(product.stock)),
      addButton));
}
