// The one place that talks HTTP to the TeIpsum API (same origin, JSON), and
// the one place that turns its errors into sentences for shoppers.

/** An answer from the API that was not a success. */
export class ApiError extends Error {
  constructor(status, code, message, requestId = null) {
    super(message || code);
    this.name = 'ApiError';
    /** HTTP status; 0 when the API could not be reached at all. */
    this.status = status;
    /** The stable `error` code of the body, such as `EMAIL_TAKEN`. */
    this.code = code;
    /** The API's own sentence (`message`), for messages that explain input. */
    this.apiMessage = message;
    /** `X-Request-Id`, to quote when asking for help. */
    this.requestId = requestId;
  }
}

/** True for the rejection of a request that was cancelled on purpose. */
export function isAbort(error) {
  return error?.name === 'AbortError';
}

/**
 * Send one request. `body` is sent as JSON; `token` as a Bearer token.
 * Resolves to `{ status, data, etag }`, rejects with an ApiError.
 */
export async function request(path, { method = 'GET', body, token, headers = {}, signal, cache } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, signal, credentials: 'same-origin' };
  if (cache) init.cache = cache;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, 'NETWORK', '');
  }
  let data = null;
  if (response.status !== 204 && (response.headers.get('Content-Type') ?? '').includes('json')) {
    try {
      data = await response.json();
    } catch (error) {
      if (isAbort(error)) throw error;
      data = null;
    }
  }
  if (!response.ok) {
    const code = typeof data?.error === 'string' ? data.error : `HTTP_${response.status}`;
    const message = typeof data?.message === 'string' ? data.message : '';
    throw new ApiError(response.status, code, message, response.headers.get('X-Request-Id'));
  }
  return { status: response.status, data, etag: response.headers.get('ETag') };
}

// Codes whose API message is written for developers; these sentences are for
// shoppers. Codes not listed here (INVALID_INPUT above all) carry a message
// that names the field and what would be valid, which is shown as it is.
const PLAIN = {
  NETWORK: 'We could not reach the shop. Check your internet connection and try again.',
  UNAUTHORIZED: 'Your session has ended. Please log in again.',
  SESSION_ENDED: 'Your session has ended. Please log in again.',
  INVALID_REFRESH_TOKEN: 'Your session has ended. Please log in again.',
  FORBIDDEN: 'Your account is not allowed to do this.',
  NOT_FOUND: 'We could not find what you asked for. It may have been removed.',
  INVALID_CREDENTIALS: 'That e-mail address and password do not match an account. Check them and try again.',
  EMAIL_TAKEN: 'An account with this e-mail address already exists. Log in instead, or use another address.',
  SKU_TAKEN: 'Another product already has this SKU. Choose a different one.',
  PRECONDITION_FAILED: 'Someone changed this product after you opened it. Load the latest version and make your changes again.',
  PRECONDITION_REQUIRED: 'The shop could not tell which version of the product you edited. Reload the page and try again.',
  UNKNOWN_PRODUCT: 'A product in your cart is no longer sold. Remove it and try again.',
  PRODUCT_UNAVAILABLE: 'A product in your cart is not for sale at the moment. Remove it and try again.',
  MIXED_CURRENCY: 'Your cart has products priced in different currencies. Order them separately.',
  INVALID_STATE: 'This order can no longer be cancelled.',
  IDEMPOTENCY_KEY_REUSED: 'Your cart changed while the order was being placed. Check your cart and place the order again.',
  OUT_OF_STOCK: 'There is not enough stock for this order.',
  INSUFFICIENT_STOCK: 'There is not enough stock for this change.',
  QUANTITY_LIMIT: 'Your cart has more units of a product than one order may hold. Lower the quantity and try again.',
  TOO_MANY_OPEN_ORDERS: 'You already have as many open orders as the shop allows. Wait until one is settled or cancel one, then try again.',
  BELOW_RESERVED: 'Orders already hold more units than that. Enter at least the units reserved by orders.',
  PRODUCT_DELETED: 'This product is deleted, so it cannot be stocked.',
  PAYLOAD_TOO_LARGE: 'That is too much text to send at once. Shorten it and try again.',
};

/** A sentence for a shopper about `error` (an ApiError or anything else). */
export function plainMessage(error) {
  if (!(error instanceof ApiError)) return 'Something went wrong in this page. Reload it and try again.';
  if (PLAIN[error.code]) return PLAIN[error.code];
  if (error.status === 429) return 'Too many attempts in a short time. Wait a few seconds and try again.';
  if (error.status >= 500 || error.status === 0) {
    return 'Something went wrong on our side. Please try again in a moment.';
  }
  if (error.apiMessage) return sentence(error.apiMessage);
  return 'The shop could not do that. Please check what you entered and try again.';
}

/** `"name must have 1 to 200 characters"` → `"Name must have 1 to 200 characters."` */
function sentence(text) {
  const trimmed = text.trim();
  const capital = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}
