// One product: pictures, price, stock, description, add to cart.

import { h, replace, announce, notice } from '../dom.js';
import { ApiError, request } from '../api.js';
import * as cart from '../cart.js';
import { price, stockText } from '../format.js';
import { show, heading, errorNotice, loading, productPicture } from './common.js';

/** `/products/:id` */
export async function productView(context) {
  const { params, signal } = context;
  show(context, 'Product', heading('Product'), loading('Loading the product…'));
  let product;
  try {
    // Revalidate (ETag) rather than trust the 5-second cache: stock matters here.
    ({ data: product } = await request(`/api/products/${encodeURIComponent(params.id)}`, { signal, cache: 'no-cache' }));
  } catch (error) {
    if (signal.aborted) return;
    if (error instanceof ApiError && (error.status === 404 || error.code === 'INVALID_INPUT')) {
      show(context, 'Product not found', heading('Product not found'),
        h('p', {}, 'This product does not exist or is no longer sold. ', h('a', { href: '/' }, 'Browse the products'), '.'));
    } else {
      show(context, 'Product', heading('Product'), errorNotice(error, { retry: () => productView(context) }));
    }
    return;
  }

  const soldOut = product.stock?.status === 'out_of_stock';
  const quantity = h('input', {
    id: 'product-quantity',
    name: 'quantity',
    type: 'number',
    inputmode: 'numeric',
    min: '1',
    max: String(cart.MAX_QUANTITY),
    value: '1',
    required: true,
    disabled: soldOut,
  });
  const message = h('div', { class: 'product__message' });
  const form = h('form', {
    class: 'product__buy',
    onsubmit: (event) => {
      event.preventDefault();
      const wanted = Number.parseInt(quantity.value, 10);
      if (!Number.isInteger(wanted) || wanted < 1 || wanted > Number(quantity.max)) {
        replace(message, notice('error', `Choose a quantity from 1 to ${quantity.max}.`));
        quantity.focus();
        return;
      }
      if (!cart.add(product, wanted)) {
        replace(message, notice('error', 'Your cart is full. Place an order or remove something first.'));
        return;
      }
      const text = `Added ${wanted} × ${product.name} to your cart.`;
      replace(message, notice('success', text, ' ', h('a', { href: '/cart' }, 'View your cart')));
      announce(text);
    },
  },
  h('div', { class: 'field field--inline' }, h('label', { for: 'product-quantity' }, 'Quantity'), quantity),
  h('button', { type: 'submit', class: 'button button--primary', disabled: soldOut }, soldOut ? 'Sold out' : 'Add to cart'));

  const pictures = (product.image_urls ?? []).filter((u) => typeof u === 'string' && u.startsWith('https://'));
  show(context, product.name,
    h('nav', { class: 'breadcrumbs', 'aria-label': 'Breadcrumbs' },
      h('a', { href: '/' }, 'Products'),
      product.category ? [' › ', h('a', { href: `/?category=${encodeURIComponent(product.category)}` }, product.category)] : null),
    h('article', { class: 'product' },
      h('div', { class: 'product__pictures' },
        productPicture(product, 'large'),
        pictures.length > 1 ? h('ul', { class: 'product__more-pictures', 'aria-label': 'More pictures' },
          pictures.slice(1).map((url, i) => h('li', {}, productPicture({ ...product, image_urls: [url], name: `${product.name}, picture ${i + 2}` }, 'thumb')))) : null),
      h('div', { class: 'product__details' },
        heading(product.name),
        h('p', { class: 'product__price' }, price(product.price)),
        h('p', { class: `stock stock--${product.stock?.status ?? 'unknown'}` }, stockText(product.stock)),
        form,
        message,
        product.description ? h('div', { class: 'product__description' }, h('h2', {}, 'Description'), h('p', {}, product.description)) : null,
        h('dl', { class: 'product__facts' },
          h('dt', {}, 'SKU'), h('dd', {}, product.sku),
          product.category ? [h('dt', {}, 'Category'), h('dd', {}, product.category)] : null))));
}
