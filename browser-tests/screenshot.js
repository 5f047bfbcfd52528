// The README's picture of the storefront: fill a running `teipsum dev` with a
// small demo catalog and photograph it into frontend/screenshot.png.
//
//   TEIPSUM_URL=https://localhost:8443 node screenshot.js
//
//   TEIPSUM_ADMIN_FILE=<state dir>/admin.json TEIPSUM_URL=https://localhost:8443 node screenshot.js
//
// Best on a fresh stack (the catalog then shows only the demo products). It
// logs in as the administrator `teipsum dev` created and printed: from
// TEIPSUM_ADMIN_FILE (admin.json in its state directory), or
// TEIPSUM_ADMIN_EMAIL and TEIPSUM_ADMIN_PASSWORD.

import { readFileSync } from 'node:fs';
import { chromium, request as http } from 'playwright-core';

const BASE = (process.env.TEIPSUM_URL ?? 'https://localhost:8443').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = new URL('../frontend/screenshot.png', import.meta.url).pathname;
const ADMIN = process.env.TEIPSUM_ADMIN_FILE
  ? JSON.parse(readFileSync(process.env.TEIPSUM_ADMIN_FILE, 'utf8'))
  : { email: process.env.TEIPSUM_ADMIN_EMAIL, password: process.env.TEIPSUM_ADMIN_PASSWORD };
if (!ADMIN.email || !ADMIN.password) {
  throw new Error('no admin account: set TEIPSUM_ADMIN_FILE (<teipsum dev state dir>/admin.json) or TEIPSUM_ADMIN_EMAIL and TEIPSUM_ADMIN_PASSWORD (teipsum dev prints them)');
}

const DEMO = [
  ['Linen shirt', 'LINEN-SHIRT', 'clothing', 4900, 12, 'Washed linen, relaxed fit.'],
  ['Merino scarf', 'MERINO-SCARF', 'accessories', 3500, 3, 'Soft, warm and light.'],
  ['Stoneware mug', 'STONEWARE-MUG', 'kitchen', 1450, 40, 'Glazed by hand; holds 350 ml.'],
  ['Walnut desk lamp', 'WALNUT-LAMP', 'lighting', 8900, 7, 'Oiled walnut with a linen shade.'],
  ['Beeswax candle', 'BEESWAX-CANDLE', 'home', 990, 0, 'Burns for forty hours.'],
  ['Canvas tote bag', 'CANVAS-TOTE', 'accessories', 2400, 25, 'Heavy cotton canvas.'],
  ['Cast-iron pan', 'CAST-IRON-PAN', 'kitchen', 5900, 9, 'Pre-seasoned, 26 cm.'],
  ['Dotted notebook', 'DOTTED-NOTEBOOK', 'stationery', 1200, 60, 'A5, 160 pages.'],
];

const api = await http.newContext({ baseURL: BASE, ignoreHTTPSErrors: true });
const login = await api.post('/api/auth/login', { data: { email: ADMIN.email, password: ADMIN.password } });
if (!login.ok()) throw new Error(`login: ${login.status()} ${await login.text()}`);
const headers = { Authorization: `Bearer ${(await login.json()).access_token}` };

for (const [name, sku, category, amount, stock, description] of DEMO) {
  const created = await api.post('/api/admin/products/', {
    headers,
    data: { name, sku, category, description, price: { amount_minor: amount, currency: 'EUR' }, image_urls: [], active: true },
  });
  if (created.status() === 409) continue; // there from an earlier run
  if (!created.ok()) throw new Error(`${sku}: ${created.status()} ${await created.text()}`);
  const { id } = await created.json();
  // Inventory learns of the product from its event: 404 until then.
  let set;
  for (let tries = 0; tries < 50; tries += 1) {
    set = await api.put(`/api/admin/inventory/${id}`, { headers, data: { on_hand: stock } });
    if (set.status() !== 404) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if (!set.ok()) throw new Error(`stock of ${sku}: ${set.status()} ${await set.text()}`);
}

// Events carry products and stock to the catalog; wait until it shows them all.
for (let tries = 0; ; tries += 1) {
  const items = (await (await api.get('/api/products?limit=100')).json()).items;
  const ready = DEMO.every(([name, , , , stock]) =>
    items.some((p) => p.name === name && p.stock.status === (stock > 5 ? 'in_stock' : stock > 0 ? 'low_stock' : 'out_of_stock')));
  if (ready) break;
  if (tries > 60) throw new Error('the catalog did not show the demo products within a minute');
  await new Promise((resolve) => setTimeout(resolve, 1000));
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 }, locale: 'en-GB' });
await page.goto(`${BASE}/`);
await page.locator('.product-grid').waitFor();
await page.screenshot({ path: OUTPUT });
await browser.close();
await api.dispose();
console.log(`wrote ${OUTPUT}`);
