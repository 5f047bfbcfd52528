// The storefront end to end, in headless Chromium, against a running
// `teipsum dev` (scripts/browser-test.sh starts one):
//
//   TEIPSUM_URL=https://localhost:8443 node --test storefront.test.js
//
// An admin adds a product that then appears for a shopper; the shopper
// registers, searches, orders and sees the confirmation. All along, any
// console error, page error or Content-Security-Policy violation fails the
// run. Screenshots of the main pages go to artifacts/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const BASE = (process.env.TEIPSUM_URL ?? 'https://localhost:8443').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
/** Letters unique to this run, so that it can also run against a stack that has seen others. */
const RUN = [...randomBytes(6)].map((b) => String.fromCharCode(97 + (b % 26))).join('');
const PRODUCT = {
  name: `Walnut desk lamp ${RUN}`,
  sku: `LAMP-${RUN.toUpperCase()}`,
  category: `lighting-${RUN}`,
  description: 'A warm reading lamp of oiled walnut.\nDimmable, with a linen shade.',
};
/**
 * The stack's administrator: `teipsum dev` registers it as a customer and
 * promotes it with `teipsum-auth promote-admin` (registration never makes an
 * admin), then writes its random password to admin.json in its state
 * directory. TEIPSUM_ADMIN_FILE names that file (scripts/browser-test.sh sets
 * it), or TEIPSUM_ADMIN_EMAIL and TEIPSUM_ADMIN_PASSWORD give the account.
 */
const ADMIN = process.env.TEIPSUM_ADMIN_FILE
  ? JSON.parse(readFileSync(process.env.TEIPSUM_ADMIN_FILE, 'utf8'))
  : { email: process.env.TEIPSUM_ADMIN_EMAIL, password: process.env.TEIPSUM_ADMIN_PASSWORD };
if (!ADMIN.email || !ADMIN.password) {
  throw new Error('no admin account: set TEIPSUM_ADMIN_FILE (<teipsum dev state dir>/admin.json) or TEIPSUM_ADMIN_EMAIL and TEIPSUM_ADMIN_PASSWORD (teipsum dev prints them)');
}
const SHOPPER = { name: 'Ada Shopper', email: `ada-${RUN}@example.org`, password: 'a long shopper passphrase' };
/** The storefront's policy, as config.ncl's nginx.frontend_csp states it. */
const CSP = "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** Everything that went wrong in any page: console errors, page errors, CSP violations, 5xx answers. */
const problems = [];
/** Per page, the error answers a test provokes on purpose: `{ status, path }`. */
const provoked = new WeakMap();
let browser;
let adminPage;
let shopperPage;
let orderId;

mkdirSync(ARTIFACTS, { recursive: true });

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh, temporary --user-data-dir.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
});

/** A page in a fresh browser profile (its own cookies and localStorage), watched for problems. */
async function openPage(who, { phone = false, watch = problems } = {}) {
  const context = await browser.newContext({
    // The development certificate is signed by the stack's own CA.
    ignoreHTTPSErrors: true,
    locale: 'en-GB',
    timezoneId: 'UTC',
    ...(phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 900 } }),
  });
  // The CSP's own report, from a document-level listener installed before any page script.
  await context.exposeBinding('__reportCspViolation', ({ page }, v) => {
    watch.push(`${who}: CSP violation on ${page.url()}: ${v.directive} blocked ${v.blocked || 'inline code'} (${v.source}:${v.line}) ${v.sample}`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__reportCspViolation({
        directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, sample: e.sample,
      });
    });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  provoked.set(page, []);
  page.on('console', (message) => {
    // Chromium logs every 4xx answer to fetch(); the ones a test asks for are not problems.
    const answered = /Failed to load resource: the server responded with a status of (\d+)/.exec(message.text());
    if (answered) {
      const path = new URL(message.location().url ?? '', BASE).pathname;
      const expected = provoked.get(page);
      const i = expected.findIndex((e) => e.status === Number(answered[1]) && e.path === path);
      if (i >= 0) {
        expected.splice(i, 1);
        return;
      }
    }
    // Chromium also reports CSP refusals ("Refused to ...") as console errors.
    if (message.type() === 'error' || /Content.Security.Policy|Refused to/i.test(message.text())) {
      watch.push(`${who}: console ${message.type()} on ${page.url()}: ${message.text()} ${message.location().url ?? ''}`);
    }
  });
  page.on('pageerror', (error) => watch.push(`${who}: page error on ${page.url()}: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 500) watch.push(`${who}: ${response.status()} from ${response.request().method()} ${response.url()}`);
  });
  return page;
}

/** The next `status` answer from `path` on `page` is on purpose (a wrong password, say). */
function provoke(page, status, path) {
  provoked.get(page).push({ status, path });
}

async function screenshot(page, name) {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

/**
 * Nothing on the page carries a style attribute, no value leaks as `null` or
 * `undefined`, and nothing is wider than the screen.
 */
async function assertTidy(page) {
  const { styled, overflow, text } = await page.evaluate(() => ({
    styled: document.querySelectorAll('[style]').length,
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    text: document.body.innerText,
  }));
  assert.equal(styled, 0, `elements with a style attribute on ${page.url()}`);
  assert.doesNotMatch(text, /\b(null|undefined|NaN)\b|\[object Object\]/, `a raw value shows on ${page.url()}`);
  assert.ok(overflow <= 0, `${page.url()} is ${overflow}px wider than the screen`);
}

/** Repeat `attempt` until it returns true, once a second. */
async function waitFor(what, attempt, { timeout = 30_000 } = {}) {
  const deadline = Date.now() + timeout;
  while (!(await attempt())) {
    if (Date.now() > deadline) assert.fail(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** Repeat `attempt` until it returns true, reloading in between: events take a moment to reach the catalog. */
async function eventually(page, what, attempt, { timeout = 30_000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await attempt()) return;
    if (Date.now() > deadline) assert.fail(`gave up waiting: ${what}`);
    await page.waitForTimeout(1_000);
    await page.reload();
  }
}

test('the storefront is served with its CSP, a no-cache index and immutable hashed assets', async () => {
  const page = await openPage('headers');
  const index = await page.goto(`${BASE}/`);
  assert.equal(index.status(), 200);
  assert.equal(index.headers()['content-security-policy'], CSP);
  assert.equal(index.headers()['cache-control'], 'no-cache');
  const html = await index.text();
  const script = /<script type="module" src="(\/assets\/[0-9a-f]{12}\/app\.js)">/.exec(html)?.[1];
  assert.ok(script, 'index.html loads /assets/<hash>/app.js');
  const asset = await page.request.get(`${BASE}${script}`);
  assert.equal(asset.status(), 200);
  assert.equal(asset.headers()['cache-control'], 'public, max-age=31536000, immutable');
  assert.match(asset.headers()['content-type'], /javascript/);
  // A deep link is answered with the page itself (SPA fallback), which then routes.
  await page.goto(`${BASE}/orders`);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await page.context().close();
});

test('an admin adds a product, edits it with If-Match and sets its stock', { timeout: 120_000 }, async () => {
  adminPage = await openPage('admin');
  const page = adminPage;
  await page.goto(`${BASE}/`);
  await page.getByRole('link', { name: 'Log in' }).click();
  await page.getByLabel('E-mail address').fill(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.getByRole('heading', { name: 'Manage products' }).waitFor();

  await page.getByRole('link', { name: 'Add a product' }).click();
  await page.getByLabel('Name').fill(PRODUCT.name);
  await page.getByLabel('SKU').fill(PRODUCT.sku.toLowerCase());
  await page.getByLabel('Price').fill('24.50');
  await page.getByLabel('Category').fill(PRODUCT.category);
  await page.getByLabel('Description').fill(PRODUCT.description);
  // Mistakes are explained before anything is sent.
  await page.getByLabel('Price').fill('24.505');
  await page.getByRole('button', { name: 'Create product' }).click();
  await page.getByText('Enter a price such as 19.99 (at most 2 decimals).').waitFor();
  await page.getByLabel('Price').fill('24.50');
  await page.getByRole('button', { name: 'Create product' }).click();
  await page.getByText('Product created.').waitFor();
  await page.getByText('No stock recorded yet').waitFor();
  assert.match(page.url(), /\/admin\/products\/[0-9a-f-]{36}$/);

  // Inventory learns of the product from its event, a moment later (longer
  // on a busy machine). Until then the page's "Set stock" asks again, and
  // Chromium logs each 404 to the console; so wait for it through the API,
  // outside the page (setting the 0 units a new product has: inventory
  // answers UNKNOWN_PRODUCT until it knows it), and a 404 left in the
  // console is a real one.
  const id = page.url().split('/').pop();
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('teipsum.session')).accessToken);
  await waitFor('inventory to hear of the new product', async () => {
    const set = await page.request.put(`${BASE}/api/admin/inventory/${id}`, {
      headers: { Authorization: `Bearer ${token}` },
      data: { on_hand: 0 },
    });
    if (set.status() === 200) return true;
    assert.equal((await set.json()).code, 'UNKNOWN_PRODUCT', `PUT /api/admin/inventory/${id}: ${set.status()}`);
    return false;
  });

  await page.getByLabel('Units on hand').fill('12');
  await page.getByRole('button', { name: 'Set stock' }).click();
  await page.getByText('Stock set to 12 on hand.').waitFor();
  await page.getByText('12 on hand: 12 available, 0 reserved by orders.').waitFor();

  // An edit sends the version it read (If-Match); the answer's ETag is the next one.
  const put = page.waitForRequest((r) => r.method() === 'PUT' && r.url().includes('/api/admin/products/'));
  await page.getByLabel('Price').fill('19.90');
  await page.getByRole('button', { name: 'Save changes' }).click();
  assert.equal((await put).headers()['if-match'], '"1"');
  await page.getByText('Saved.').waitFor();
  const second = page.waitForRequest((r) => r.method() === 'PUT' && r.url().includes('/api/admin/products/'));
  await page.getByRole('button', { name: 'Save changes' }).click();
  assert.equal((await second).headers()['if-match'], '"2"');
  await page.getByText('Saved.').waitFor();
  await assertTidy(page);
  await screenshot(page, 'admin-product');

  await page.getByRole('link', { name: '← All products' }).click();
  await page.getByRole('link', { name: PRODUCT.name }).waitFor();
  await screenshot(page, 'admin');

  // Thirteen more in one category, through the API, to page through as a shopper.
  for (let i = 1; i <= 13; i += 1) {
    const created = await page.request.post(`${BASE}/api/admin/products/`, {
      headers: { Authorization: `Bearer ${token}` },
      data: {
        name: `Candle ${String(i).padStart(2, '0')} ${RUN}`,
        description: 'Beeswax.',
        sku: `CANDLE-${i}-${RUN.toUpperCase()}`,
        price: { amount_minor: 500 + i, currency: 'EUR' },
        category: `candles-${RUN}`,
        image_urls: [],
        active: true,
      },
    });
    assert.equal(created.status(), 201);
  }
});

test('a shopper registers, searches, orders and sees the confirmation', { timeout: 180_000 }, async () => {
  shopperPage = await openPage('shopper');
  const page = shopperPage;
  await page.goto(`${BASE}/`);
  await page.getByRole('heading', { name: 'Products' }).waitFor();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Create an account' }).waitFor();
  await screenshot(page, 'register');
  await page.getByLabel('Your name').fill(SHOPPER.name);
  await page.getByLabel('E-mail address').fill(SHOPPER.email);
  await page.getByLabel('Password').fill('too short');
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText('Choose a password of 12 to 128 characters.').waitFor();
  await page.getByLabel('Password').fill(SHOPPER.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByText(SHOPPER.name).waitFor();
  await page.getByRole('button', { name: 'Log out' }).waitFor();

  // Search until the admin's product has reached the catalog, with its stock.
  const search = page.getByRole('search');
  await search.getByLabel('Search products').fill(`lamp ${RUN}`);
  await search.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('heading', { name: `Results for “lamp ${RUN}”` }).waitFor();
  const card = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: PRODUCT.name }) });
  await eventually(page, 'the new product in the search results, in stock', async () => {
    await page.locator('.results .loading').waitFor({ state: 'detached' });
    return (await card.count()) === 1 && (await card.getByText('In stock').count()) === 1;
  });
  await card.getByText('€19.90').waitFor();
  await screenshot(page, 'search');

  await card.getByRole('link', { name: PRODUCT.name }).click();
  await page.getByRole('heading', { name: PRODUCT.name, level: 1 }).waitFor();
  await page.getByText('€19.90').waitFor();
  await page.getByText('In stock').waitFor();
  await page.getByText('Dimmable, with a linen shade.').waitFor();
  await assertTidy(page);
  await screenshot(page, 'product');

  await page.getByLabel('Quantity').fill('2');
  await page.getByRole('button', { name: 'Add to cart' }).click();
  await page.getByText(`Added 2 × ${PRODUCT.name} to your cart.`).waitFor();
  await page.getByRole('link', { name: 'View your cart' }).click();
  await page.getByRole('heading', { name: 'Your cart' }).waitFor();
  await page.getByText('Total: €39.80').waitFor();
  await assertTidy(page);
  await screenshot(page, 'cart');

  // A double click places one order (the button locks, and both clicks would carry one Idempotency-Key).
  const posts = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/orders/') posts.push(r.headers()['idempotency-key']);
  });
  await page.getByRole('button', { name: 'Place order' }).dblclick();
  await page.waitForURL(/\/orders\/[0-9a-f-]{36}$/);
  orderId = page.url().split('/').pop();
  assert.ok(posts.length >= 1 && new Set(posts).size === 1 && posts[0], `one Idempotency-Key for the order: ${posts}`);
  await page.getByText('Thank you! Your order was placed.').waitFor();
  await page.locator('.order__status[data-status="CONFIRMED"]').waitFor({ timeout: 30_000 });
  await page.getByText('Your order is confirmed').waitFor();
  await page.getByRole('link', { name: 'Cart 0 items' }).waitFor();
  await assertTidy(page);
  await screenshot(page, 'order');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Orders' }).click();
  await page.getByRole('heading', { name: 'Your orders' }).waitFor();
  const orders = page.locator('.order-summary');
  await orders.first().waitFor();
  assert.equal(await orders.count(), 1, 'the double click made one order');
  await orders.first().getByText('Confirmed').waitFor();
  await orders.first().getByText('€39.80').waitFor();
  await screenshot(page, 'orders');
});

test('an order beyond the stock is rejected, in plain words', { timeout: 120_000 }, async () => {
  const page = shopperPage;
  await page.goto(`${BASE}/?q=${encodeURIComponent(`lamp ${RUN}`)}`);
  const card = page.getByRole('listitem').filter({ has: page.getByRole('heading', { name: PRODUCT.name }) });
  await card.getByRole('button', { name: `Add ${PRODUCT.name} to cart` }).click();
  await page.getByRole('link', { name: 'Cart 1 item' }).click();
  // More than the 10 left, within the 20 units one order may hold. The
  // catalog shows no count, only "in stock", so the cart cannot warn.
  await page.getByLabel(`Quantity of ${PRODUCT.name}`).fill('11');
  await page.getByLabel(`Quantity of ${PRODUCT.name}`).press('Enter');
  await page.getByRole('button', { name: 'Place order' }).click();
  await page.locator('.order__status[data-status="REJECTED"]').waitFor({ timeout: 30_000 });
  await page.getByText(`There is not enough stock of ${PRODUCT.name}.`).waitFor();
  // A rejected order cannot be cancelled.
  assert.equal(await page.getByRole('button', { name: 'Cancel order' }).count(), 0);
});

test('the catalog pages through a category', { timeout: 120_000 }, async () => {
  const page = shopperPage;
  await page.goto(`${BASE}/?category=candles-${RUN}&sort=price_asc`);
  const cards = page.locator('.product-grid > li');
  await eventually(page, 'thirteen candles in the catalog', async () => {
    await page.locator('.results .loading').waitFor({ state: 'detached' });
    return (await page.getByRole('link', { name: 'Next page →' }).count()) === 1;
  });
  assert.equal(await cards.count(), 12);
  await cards.first().getByText(`Candle 01 ${RUN}`).waitFor();
  await page.getByText('Page 1').waitFor();
  await page.getByRole('link', { name: 'Next page →' }).click();
  await page.getByText('Page 2').waitFor();
  assert.equal(await cards.count(), 1);
  await cards.first().getByText(`Candle 13 ${RUN}`).waitFor();
  await page.getByRole('link', { name: '← Previous page' }).click();
  await page.getByText('Page 1').waitFor();
  assert.equal(await cards.count(), 12);
  await page.getByRole('link', { name: 'Show all categories' }).click();
  await page.getByRole('heading', { name: 'Products' }).waitFor();
  await screenshot(page, 'catalog');
});

test('an expiring access token is refreshed, and the order can be cancelled', { timeout: 60_000 }, async () => {
  const page = shopperPage;
  // Pretend the access token is about to expire (as after a laptop's sleep):
  // the page refreshes it as soon as it loads, before any request needs it.
  const before = await page.evaluate(() => {
    const session = JSON.parse(localStorage.getItem('teipsum.session'));
    localStorage.setItem('teipsum.session', JSON.stringify({ ...session, expiresAt: Date.now() }));
    return session.refreshToken;
  });
  const refreshed = page.waitForResponse((r) => r.url().endsWith('/api/auth/refresh'));
  await page.reload();
  assert.equal((await refreshed).status(), 200);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Orders' }).click();
  await page.getByRole('heading', { name: 'Your orders' }).waitFor();
  const after = await page.evaluate(() => JSON.parse(localStorage.getItem('teipsum.session')).refreshToken);
  assert.notEqual(after, before, 'the refresh token rotated');

  // An access token the API refuses (401) is refreshed once and the request retried.
  await page.evaluate(() => {
    const session = JSON.parse(localStorage.getItem('teipsum.session'));
    localStorage.setItem('teipsum.session', JSON.stringify({ ...session, accessToken: 'e30.e30.refused' }));
  });
  provoke(page, 401, '/api/orders/');
  const retried = page.waitForResponse((r) => r.url().endsWith('/api/auth/refresh'));
  await page.reload();
  await page.getByRole('link', { name: /^Order / }).first().waitFor();
  assert.equal((await retried).status(), 200);

  await page.goto(`${BASE}/orders/${orderId}`);
  await page.locator('.order__status[data-status="CONFIRMED"]').waitFor();
  await page.getByRole('button', { name: 'Cancel order' }).click();
  await page.getByRole('button', { name: 'Keep the order' }).click();
  await page.getByRole('button', { name: 'Cancel order' }).click();
  await page.getByRole('button', { name: 'Yes, cancel this order' }).click();
  await page.locator('.order__status[data-status="CANCELLED"]').waitFor();
  await page.getByText('This order was cancelled.').waitFor();
});

test('logging out revokes the session', async () => {
  const page = shopperPage;
  const logout = page.waitForResponse((r) => r.url().endsWith('/api/auth/logout'));
  await page.getByRole('button', { name: 'Log out' }).click();
  assert.equal((await logout).status(), 204);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Log in' }).waitFor();
  assert.equal(await page.evaluate(() => localStorage.getItem('teipsum.session')), null);
  // A page for customers now asks to log in.
  await page.goto(`${BASE}/orders`);
  await page.getByRole('heading', { name: 'Log in' }).waitFor();
  await screenshot(page, 'login');
  await page.getByLabel('E-mail address').fill(SHOPPER.email);
  await page.getByLabel('Password').fill('not the password at all');
  provoke(page, 401, '/api/auth/login');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('That e-mail address and password do not match an account.').waitFor();
});

test('the admin product appears for the shopper in the catalog on a phone', { timeout: 60_000 }, async () => {
  const page = await openPage('phone', { phone: true });
  await page.goto(`${BASE}/?q=${encodeURIComponent(`lamp ${RUN}`)}`);
  await page.getByRole('heading', { name: PRODUCT.name }).waitFor();
  await assertTidy(page);
  await screenshot(page, 'catalog-phone');
  await page.getByRole('link', { name: PRODUCT.name }).click();
  await page.getByRole('heading', { name: PRODUCT.name, level: 1 }).waitFor();
  await assertTidy(page);
  await screenshot(page, 'product-phone');
  await page.context().close();
});

test('the watch for CSP violations is not blind', async () => {
  // Inline style and inline script, as an injected attacker would try: both must be refused and reported.
  const caught = [];
  const page = await openPage('control', { watch: caught });
  await page.goto(`${BASE}/`);
  await page.getByRole('heading', { name: 'Products' }).waitFor();
  await page.evaluate(() => {
    document.body.setAttribute('style', 'outline: 5px solid red');
    const script = document.createElement('script');
    script.textContent = 'window.__inline = true';
    document.body.append(script);
  });
  await page.waitForTimeout(500);
  assert.equal(await page.evaluate(() => window.__inline), undefined, 'the inline script did not run');
  assert.ok(caught.some((p) => p.includes('CSP violation') && p.includes('style-src')), `style-src violation reported: ${caught}`);
  assert.ok(caught.some((p) => p.includes('CSP violation') && p.includes('script-src')), `script-src violation reported: ${caught}`);
  await page.context().close();
});

test('no console errors, page errors or CSP violations anywhere', () => {
  assert.deepEqual(problems, []);
});
