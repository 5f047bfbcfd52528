// Money, dates and order states in words.

const locale = navigator.language || 'en';

/** Digits after the decimal point in `currency` (2 for EUR, 0 for JPY). */
export function fractionDigits(currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** `money(1999, 'EUR')` → `€19.99` in the visitor's locale. */
export function money(amountMinor, currency) {
  const digits = fractionDigits(currency);
  const amount = Number(amountMinor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(amount);
  } catch {
    return `${amount.toFixed(digits)} ${currency}`;
  }
}

/** A price object of the API (`{ amount_minor, currency }`) in words. */
export function price(p) {
  return p ? money(p.amount_minor, p.currency) : '';
}

/** Minor units → the text an admin edits (`1999` → `19.99`). */
export function toMajor(amountMinor, currency) {
  const digits = fractionDigits(currency);
  if (digits === 0) return String(amountMinor);
  const text = String(amountMinor).padStart(digits + 1, '0');
  return `${text.slice(0, -digits)}.${text.slice(-digits)}`;
}

/**
 * The text an admin typed → minor units, exactly (no floating point):
 * `19.99`, `19,99` and `19.9` in EUR are 1999, 1999 and 1990. Null when it
 * is not an amount with at most the currency's decimals.
 */
export function toMinor(text, currency) {
  const digits = fractionDigits(currency);
  const match = /^\s*(\d{1,10})(?:[.,](\d*))?\s*$/.exec(String(text));
  if (!match) return null;
  const fraction = match[2] ?? '';
  if (fraction.length > digits) return null;
  return Number(match[1]) * 10 ** digits + Number(fraction.padEnd(digits, '0') || '0');
}

/** A timestamp in the visitor's words: `24 Nov 2026, 14:05`. */
export function dateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

/** Order states as a shopper reads them. */
export const ORDER_STATUS = {
  PLACED: { label: 'Placed', detail: 'We are checking that everything is in stock…' },
  CONFIRMED: { label: 'Confirmed', detail: 'Your order is confirmed and the items are reserved for you.' },
  REJECTED: { label: 'Rejected', detail: 'We could not confirm this order.' },
  CANCELLED: { label: 'Cancelled', detail: 'This order was cancelled.' },
  EXPIRED: { label: 'Expired', detail: 'We could not confirm this order in time, so nothing is reserved for it. Place it again if you still want it.' },
};

/** The label of an order status, such as `Confirmed`. */
export function statusLabel(status) {
  return ORDER_STATUS[status]?.label ?? status;
}

/** The last eight characters of an id (the random part of a UUIDv7), enough to tell orders apart on screen. */
export function shortId(id) {
  return String(id).split('-').slice(-1)[0].slice(-8).toUpperCase();
}

/** Stock as a shopper reads it. */
export function stockText(stock) {
  if (!stock) return 'Availability unknown';
  switch (stock.status) {
    case 'in_stock': return 'In stock';
    case 'low_stock': return 'Only a few left';
    case 'out_of_stock': return 'Out of stock';
    default: return 'Availability unknown';
  }
}

/** Plural: `plural(2, 'item')` → `2 items`. */
export function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
