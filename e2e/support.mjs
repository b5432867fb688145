// Helpers for agilekit's browser tests (run by scripts/test as `node --test e2e/`).
//
//   import { startServer, launchBrowser, checkA11y } from './support.mjs';
//
//   const server = await startServer();          // fresh demo instance, own data dir
//   const browser = await launchBrowser();       // Debian's /usr/bin/chromium, headless
//   const page = await newPage(browser);         // NOT browser.newPage(): see below
//   await page.goto(server.url + '/');
//   await checkA11y(page);                       // throws listing axe violations
//   await browser.close(); await server.stop();
//
// Environment: AGILEKIT_BIN (the server binary; scripts/test sets it to
// target/debug/agilekit), CHROMIUM (default /usr/bin/chromium).
// Never `npx playwright install`: browser downloads fail on these machines.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const LISTEN_RE = /agilekit listening on (http:\/\/\S+)/;

/**
 * Spawns `$AGILEKIT_BIN serve --demo --listen 127.0.0.1:0 --data-dir <fresh tmp dir>`,
 * waits (60 s at most) for its `agilekit listening on http://127.0.0.1:PORT` line.
 * @param {{args?: string[], env?: Record<string,string>, timeoutMs?: number}} [opts]
 *   extra CLI args appended after the defaults, extra environment variables.
 * @returns {Promise<{url: string, dataDir: string, process: import('node:child_process').ChildProcess, output: () => string, stop: () => Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const bin = process.env.AGILEKIT_BIN;
  if (!bin) throw new Error('AGILEKIT_BIN is not set (scripts/test sets it to target/debug/agilekit)');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const dataDir = await mkdtemp(join(tmpdir(), 'agilekit-e2e-'));
  const args = ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...(opts.args ?? [])];
  const child = spawn(bin, args, {
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // Keep the last lines of output for error messages; pass stderr through when asked.
  const lines = [];
  const keep = (line) => { lines.push(line); if (lines.length > 200) lines.shift(); };
  const output = () => lines.join('\n');
  const verbose = !!process.env.AGILEKIT_E2E_VERBOSE;
  createInterface({ input: child.stderr }).on('line', (l) => { keep(l); if (verbose) process.stderr.write(`[agilekit] ${l}\n`); });
  const stdout = createInterface({ input: child.stdout });

  let exited = false;
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => { exited = true; resolve({ code, signal }); }));

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitPromise;
      clearTimeout(killer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  try {
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`agilekit did not print "agilekit listening on …" within ${timeoutMs} ms`)),
        timeoutMs,
      );
      stdout.on('line', (line) => {
        keep(line);
        if (verbose) process.stderr.write(`[agilekit] ${line}\n`);
        const m = LISTEN_RE.exec(line);
        if (m) { clearTimeout(timer); resolve(m[1].replace(/\/$/, '')); }
      });
      child.once('error', (err) => { clearTimeout(timer); reject(err); });
      exitPromise.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`agilekit exited before listening (code ${code}, signal ${signal})`));
      });
    });
    return { url, dataDir, process: child, output, stop };
  } catch (err) {
    await stop();
    // Let the last stderr lines arrive before quoting them (at most 1 s).
    await new Promise((r) => { if (child.stderr.closed) r(); else { child.stderr.once('close', r); setTimeout(r, 1000); } });
    err.message += `\n--- agilekit ${args.join(' ')} output ---\n${output()}`;
    throw err;
  }
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Debian's Chromium headless through playwright-core (a fresh temporary
 * profile each time). Extra playwright launch options may be passed; `args` are appended.
 * @param {import('playwright-core').LaunchOptions} [opts]
 * @returns {Promise<import('playwright-core').Browser>}
 */
export async function launchBrowser(opts = {}) {
  const { args = [], ...rest } = opts;
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...CHROMIUM_ARGS, ...args],
    ...rest,
  });
}

/**
 * A page in a fresh browser context (own cookies/storage). Use this, or
 * `(await browser.newContext()).newPage()`, rather than `browser.newPage()`: axe's
 * analyze() opens a helper page in the same context, which Playwright refuses for
 * the single-page context that browser.newPage() makes ("Please use browser.newContext()").
 * Closing the page's context: `await page.context().close()` (or close the browser).
 * @param {import('playwright-core').Browser} browser
 * @param {import('playwright-core').BrowserContextOptions} [contextOptions] e.g. {locale: 'it-IT'}
 * @returns {Promise<import('playwright-core').Page>}
 */
export async function newPage(browser, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  return context.newPage();
}

/**
 * Runs axe-core on the page (which must come from browser.newContext(), see newPage); throws an Error listing every violation
 * (impact, rule id, help text, target selectors) when there is any.
 * @param {import('playwright-core').Page} page
 * @param {{exclude?: string[], disableRules?: string[], tags?: string[]}} [opts]
 * @returns {Promise<import('axe-core').AxeResults>} the full results when clean
 */
export async function checkA11y(page, opts = {}) {
  let builder = new AxeBuilder({ page });
  for (const sel of opts.exclude ?? []) builder = builder.exclude(sel);
  if (opts.disableRules?.length) builder = builder.disableRules(opts.disableRules);
  if (opts.tags?.length) builder = builder.withTags(opts.tags);
  let results;
  try {
    results = await builder.analyze();
  } catch (err) {
    if (/newContext/.test(err.message)) {
      err.message = `checkA11y: the page was made by browser.newPage(); make it with newPage(browser) `
        + `from support.mjs (or browser.newContext().newPage()) instead.\n${err.message}`;
    }
    throw err;
  }
  if (results.violations.length > 0) {
    const lines = [];
    for (const v of results.violations) {
      lines.push(`- [${v.impact ?? 'unknown'}] ${v.id}: ${v.help} (${v.helpUrl})`);
      for (const node of v.nodes) {
        lines.push(`    at ${node.target.map((t) => (Array.isArray(t) ? t.join(' >>> ') : t)).join(' ')}`);
      }
    }
    throw new Error(
      `${results.violations.length} accessibility violation(s) on ${page.url()}:\n${lines.join('\n')}`,
    );
  }
  return results;
}
