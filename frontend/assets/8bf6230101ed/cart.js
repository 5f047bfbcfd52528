// The cart, kept in this browser (localStorage) until the order is placed.
// Each line remembers the name and price it was added with, so the cart can
// be shown at once; the cart page then refreshes them from the catalog.

const KEY = 'teipsum.cart';
/** What the order service accepts: 50 lines of 1 to 1000 units. */
export const MAX_LINES = 50;
export const MAX_QUANTITY = 1000;

const listeners = new Set();

function load() {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY) ?? 'null');
    if (stored && Array.isArray(stored.lines)) {
      return {
        lines: stored.lines.filter((l) => typeof l?.productId === 'string' && Number.isInteger(l.quantity) && l.quantity > 0),
        checkout: stored.checkout ?? null,
      };
    }
  } catch {
    // A damaged cart is an empty one.
  }
  return { lines: [], checkout: null };
}

function store(cart) {
  localStorage.setItem(KEY, JSON.stringify(cart));
  for (const listener of listeners) listener(cart.lines);
}

/** Call `listener(lines)` whenever the cart changes, here or in another tab. */
export function onChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

window.addEventListener('storage', (event) => {
  if (event.key !== KEY && event.key !== null) return;
  const { lines: now } = load();
  for (const listener of listeners) listener(now);
});

/** The lines `{ productId, name, quantity, price: { amount_minor, currency } }`. */
export function lines() {
  return load().lines;
}

/** Units in the cart, for the header. */
export function count() {
  return lines().reduce((sum, line) => sum + line.quantity, 0);
}

function clamp(quantity) {
  return Math.min(MAX_QUANTITY, Math.max(1, Math.trunc(Number(quantity) || 1)));
}

/** Add `quantity` units of a catalog product; false when the cart is full. */
export function add(product, quantity = 1) {
  const cart = load();
  const line = cart.lines.find((l) => l.productId === product.id);
  if (line) {
    line.quantity = clamp(line.quantity + quantity);
    line.name = product.name;
    line.price = product.price;
  } else {
    if (cart.lines.length >= MAX_LINES) return false;
    cart.lines.push({ productId: product.id, name: product.name, price: product.price, quantity: clamp(quantity) });
  }
  store(cart);
  return true;
}

/** Set the units of one line. */
export function setQuantity(productId, quantity) {
  const cart = load();
  const line = cart.lines.find((l) => l.productId === productId);
  if (!line) return;
  line.quantity = clamp(quantity);
  store(cart);
}

/** Update the name and price of a line from the catalog. */
export function refreshLine(product) {
  const cart = load();
  const line = cart.lines.find((l) => l.productId === product.id);
  if (!line || (line.name === product.name && line.price?.amount_minor === product.price?.amount_minor
      && line.price?.currency === product.price?.currency)) return;
  line.name = product.name;
  line.price = product.price;
  store(cart);
}

/** Remove one line. */
export function remove(productId) {
  const cart = load();
  cart.lines = cart.lines.filter((l) => l.productId !== productId);
  store(cart);
}

/** Empty the cart (after an order was placed). */
export function clear() {
  store({ lines: [], checkout: null });
}

/** What the cart asks for, to tell one order request from another. */
function signature(cartLines) {
  return cartLines.map((l) => `${l.productId}×${l.quantity}`).sort().join(',');
}

/**
 * The Idempotency-Key for ordering the cart as it is now. It stays the same
 * while the cart does, so a double click or a retry after a lost answer
 * places one order; any change to the cart makes a new key.
 */
export function checkoutKey() {
  const cart = load();
  const wanted = signature(cart.lines);
  if (cart.checkout?.signature === wanted && typeof cart.checkout.key === 'string') return cart.checkout.key;
  cart.checkout = { signature: wanted, key: crypto.randomUUID() };
  localStorage.setItem(KEY, JSON.stringify(cart));
  return cart.checkout.key;
}
