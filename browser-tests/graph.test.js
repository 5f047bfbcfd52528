// `teipsum graph` renders in Mermaid: the output for every environment of
// config.ncl goes through the real Mermaid (the npm package, pinned in
// package-lock.json) in headless Chromium, and the SVG that comes out has a
// node for every service, topic, database and route of the plan.
//
//   TEIPSUM=target/debug/teipsum node --test graph.test.js

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const ROOT = new URL('../', import.meta.url).pathname;
const TEIPSUM = process.env.TEIPSUM ?? `${ROOT}target/debug/teipsum`;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('./artifacts/', import.meta.url).pathname;
const MERMAID = require.resolve('mermaid/dist/mermaid.min.js');

let browser;
let page;

function teipsum(...args) {
  return execFileSync(TEIPSUM, ['-f', `${ROOT}config.ncl`, ...args], { encoding: 'utf8' });
}

/** Mermaid's SVG for `text`, or the message of the error it threw. */
async function render(text) {
  return page.evaluate(async (source) => {
    try {
      const { svg } = await window.mermaid.render(`g${Math.random().toString(36).slice(2)}`, source);
      return { svg };
    } catch (error) {
      return { error: String(error?.message ?? error) };
    }
  }, text);
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage();
  await page.setContent('<!doctype html><html><body></body></html>');
  await page.addScriptTag({ path: MERMAID });
  await page.evaluate(() => window.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' }));
});

after(async () => {
  await browser?.close();
});

test('Mermaid refuses a broken graph, so a pass below means something', async () => {
  const result = await render('flowchart LR\n  a -->|"unclosed| b\n  c[[[');
  assert.ok(result.error, 'a broken graph rendered');
});

for (const env of ['prod', 'stage']) {
  test(`teipsum graph --env ${env} renders in Mermaid with every part of the plan`, async () => {
    const text = teipsum('graph', '--env', env, '--format', 'mermaid');
    const plan = JSON.parse(teipsum('plan', '--env', env));
    const result = await render(text);
    assert.equal(result.error, undefined, `Mermaid could not render the graph:\n${text}`);
    writeFileSync(`${ARTIFACTS}graph-${env}.svg`, result.svg);

    const labels = await page.evaluate((svg) => {
      // Mermaid's HTML labels hold `<br>`, which is not XML: parse as HTML.
      const doc = new DOMParser().parseFromString(svg, 'text/html');
      return [...doc.querySelectorAll('.node, .edgeLabel')].map((n) => n.textContent.trim());
    }, result.svg);
    const has = (name) => labels.some((label) => label.includes(name));
    const expected = [
      ...plan.services.map((s) => s.name),
      ...plan.kafka.topics.map((t) => t.name),
      ...plan.postgres.databases.map((d) => d.name),
    ];
    assert.ok(plan.services.length >= 6 && plan.kafka.topics.length >= 5, 'the plan is the full platform');
    for (const name of expected) {
      assert.ok(has(name), `no node for ${name} in the rendered graph; nodes: ${labels.join(' | ')}`);
    }
    for (const route of plan.services.flatMap((s) => s.routes)) {
      assert.ok(has(route), `the route ${route} is not drawn`);
    }
  });
}
