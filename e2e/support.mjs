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
// target/debug/agilekit), CHROMIUM (default /usr/bin/chromium), AGILEKIT_TEST_PG (a
// superuser URL: the suite runs on PostgreSQL too, in a database of its own; see engines()).
// Never `npx playwright install`: browser downloads fail on these machines.
// For local runs: AGILEKIT_E2E_ENGINES=sqlite (one engine only), AGILEKIT_E2E_VERBOSE=1 (server
// output), AGILEKIT_E2E_TIMING=1 (time of each axe run), AGILEKIT_E2E_SHOTS=1 (shell.test.mjs
// saves screenshots at 375 and 1280 px into /tmp/e2e-shots).
//
// Also here: engines() and startServer({engine}) to run on SQLite and PostgreSQL, server.sql()
// to peek at the database (the outbox, for a reset link), A11yLog to collect axe violations of
// many pages and fail once with all of them, and small form/login/TOTP helpers.

import { execFile, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

const LISTEN_RE = /agilekit listening on (http:\/\/\S+)/;

const run = promisify(execFile);

/** The PostgreSQL server a local run uses when AGILEKIT_TEST_PG is not set (if it answers). */
export const DEFAULT_PG = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The database engines to run the suite on: SQLite always; PostgreSQL at AGILEKIT_TEST_PG when set
 * (a broken URL then fails the run, it is not skipped), else at DEFAULT_PG when it answers, else
 * PostgreSQL comes back with `skip` set to the reason, for the caller to report as a skipped test.
 * AGILEKIT_E2E_ENGINES (a comma-separated list of names) keeps only those.
 * @returns {Promise<Array<{name: 'sqlite'|'postgres', adminUrl?: string, skip?: string}>>}
 */
export async function engines() {
  const list = [{ name: 'sqlite' }];
  // AGILEKIT_E2E_ENGINES=sqlite (or postgres) narrows a local run to one engine.
  const only = process.env.AGILEKIT_E2E_ENGINES?.split(',').map((e) => e.trim()).filter(Boolean);
  if (only?.length) return (await enginesAll(list)).filter((e) => only.includes(e.name));
  return enginesAll(list);
}

async function enginesAll(list) {
  const set = process.env.AGILEKIT_TEST_PG;
  if (set) {
    list.push({ name: 'postgres', adminUrl: set });
  } else {
    try {
      await run('psql', [DEFAULT_PG, '-Atqc', 'SELECT 1'], { timeout: 5_000 });
      list.push({ name: 'postgres', adminUrl: DEFAULT_PG });
    } catch (err) {
      list.push({ name: 'postgres', skip: `AGILEKIT_TEST_PG is not set and ${DEFAULT_PG} does not answer (${err.message.split('\n')[0]})` });
    }
  }
  return list;
}

/** `url` with its database (path) replaced by `db`. */
function withDatabase(url, db) {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}

/**
 * Spawns `$AGILEKIT_BIN serve --demo --listen 127.0.0.1:0 --data-dir <fresh tmp dir>`,
 * waits (60 s at most) for its `agilekit listening on http://127.0.0.1:PORT` line.
 * With `engine` PostgreSQL (from engines()), first creates a fresh database `agilekit_e2e_<random>`
 * on its server, passes it with `--database-url`, and drops it in stop().
 * @param {{args?: string[], env?: Record<string,string>, timeoutMs?: number, engine?: {name: string, adminUrl?: string}}} [opts]
 *   extra CLI args appended after the defaults, extra environment variables, the database engine.
 * @returns {Promise<{url: string, dataDir: string, engine: string, databaseUrl?: string, process: import('node:child_process').ChildProcess, output: () => string, sql: (query: string) => Promise<string[]>, stop: () => Promise<void>}>}
 */
export async function startServer(opts = {}) {
  const bin = process.env.AGILEKIT_BIN;
  if (!bin) throw new Error('AGILEKIT_BIN is not set (scripts/test sets it to target/debug/agilekit)');
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const engine = opts.engine?.name ?? 'sqlite';
  const dataDir = await mkdtemp(join(tmpdir(), 'agilekit-e2e-'));
  const dbArgs = [];
  let databaseUrl;
  let dropDatabase = async () => {};
  if (engine === 'postgres') {
    const admin = opts.engine.adminUrl;
    const name = `agilekit_e2e_${randomBytes(6).toString('hex')}`;
    try {
      await run('psql', [admin, '-Atqc', `CREATE DATABASE ${name}`], { timeout: 30_000 });
    } catch (err) {
      await rm(dataDir, { recursive: true, force: true });
      throw new Error(`cannot create the PostgreSQL database ${name} at ${admin}: ${err.message}`);
    }
    databaseUrl = withDatabase(admin, name);
    dbArgs.push('--database-url', databaseUrl);
    dropDatabase = async () => {
      await run('psql', [admin, '-Atqc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { timeout: 30_000 })
        .catch((err) => process.stderr.write(`could not drop ${name}: ${err.message}\n`));
    };
  }
  const args = ['serve', '--demo', '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...dbArgs, ...(opts.args ?? [])];
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
    await dropDatabase();
    await rm(dataDir, { recursive: true, force: true });
  };

  // One query through the engine's own CLI (sqlite3 or psql): one string per row, columns joined by `|`.
  // Without the CLI it throws an Error with code ENOENT.
  const sql = async (query) => {
    const [cmd, cmdArgs] = engine === 'postgres'
      ? ['psql', [databaseUrl, '-Atqc', query]]
      : ['sqlite3', [join(dataDir, 'agilekit.db'), query]];
    try {
      const { stdout } = await run(cmd, cmdArgs, { timeout: 30_000, maxBuffer: 16 << 20 });
      return stdout.split('\n').filter((l) => l !== '');
    } catch (err) {
      if (err.code === 'ENOENT') err.message = `${cmd} is not installed (apt-get install ${cmd === 'psql' ? 'postgresql-client' : 'sqlite3'})`;
      throw err;
    }
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
    return { url, dataDir, engine, databaseUrl, process: child, output, sql, stop };
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

const require = createRequire(import.meta.url);
let axeSource;

/**
 * Runs axe-core (all its default rules: WCAG 2.x A/AA and best practices) on the page and returns
 * the violations. A page without frames is checked in place (axe injected with page.evaluate,
 * which the CSP does not stop): about four times faster than AxeBuilder, which opens a helper
 * page for every run; a page with frames goes through AxeBuilder (so it must come from
 * browser.newContext(), see newPage).
 * @param {import('playwright-core').Page} page
 * @param {{exclude?: string[], disableRules?: string[], tags?: string[]}} [opts]
 * @returns {Promise<import('axe-core').Result[]>}
 */
export async function axeViolations(page, opts = {}) {
  if (page.frames().length > 1) {
    let builder = new AxeBuilder({ page });
    for (const sel of opts.exclude ?? []) builder = builder.exclude(sel);
    if (opts.disableRules?.length) builder = builder.disableRules(opts.disableRules);
    if (opts.tags?.length) builder = builder.withTags(opts.tags);
    try {
      return (await builder.analyze()).violations;
    } catch (err) {
      if (/newContext/.test(err.message)) {
        err.message = `checkA11y: the page was made by browser.newPage(); make it with newPage(browser) `
          + `from support.mjs (or browser.newContext().newPage()) instead.\n${err.message}`;
      }
      throw err;
    }
  }
  axeSource ??= readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  return page.evaluate(async ({ exclude, disableRules, tags }) => {
    const options = { resultTypes: ['violations'] };
    if (tags.length) options.runOnly = { type: 'tag', values: tags };
    if (disableRules.length) options.rules = Object.fromEntries(disableRules.map((r) => [r, { enabled: false }]));
    const context = exclude.length ? { include: [document], exclude: exclude.map((e) => [e]) } : document;
    const r = await window.axe.run(context, options);
    // Only what the report needs: the full nodes carry the whole DOM context.
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  }, { exclude: opts.exclude ?? [], disableRules: opts.disableRules ?? [], tags: opts.tags ?? [] });
}

/** Violations as readable lines: impact, rule, help, then each node's selector and why it fails. */
export function formatViolations(violations) {
  const lines = [];
  for (const v of violations) {
    lines.push(`- [${v.impact ?? 'unknown'}] ${v.id}: ${v.help} (${v.helpUrl})`);
    for (const node of v.nodes) {
      const target = node.target.map((t) => (Array.isArray(t) ? t.join(' >>> ') : t)).join(' ');
      const why = (node.failureSummary ?? '').split('\n').slice(1).map((l) => l.trim()).filter(Boolean).join('; ');
      lines.push(`    at ${target}${why ? ` — ${why}` : ''}`);
    }
  }
  return lines.join('\n');
}

/**
 * Runs axe-core on the page; throws an Error listing every violation (impact, rule id, help text,
 * target selectors) when there is any.
 * @param {import('playwright-core').Page} page
 * @param {{exclude?: string[], disableRules?: string[], tags?: string[]}} [opts]
 * @returns {Promise<void>}
 */
export async function checkA11y(page, opts = {}) {
  const violations = await axeViolations(page, opts);
  if (violations.length > 0) {
    throw new Error(`${violations.length} accessibility violation(s) on ${page.url()}:\n${formatViolations(violations)}`);
  }
}

/**
 * Collects the problems of many pages — axe violations, an unexpected HTTP status, a page in the
 * wrong language, a step that threw — so that one run reports all of them; assertClean() fails
 * with the whole list.
 *
 *   const log = new A11yLog();
 *   const resp = await page.goto(url);
 *   await log.check(page, 'login', { response: resp, status: 200, lang: 'it' });
 *   await log.step('join with errors', async () => { ... });   // a throw is recorded, not raised
 *   log.assertClean();
 */
export class A11yLog {
  constructor() {
    this.problems = [];
    this.checked = [];
    /** What could not be checked here (not a failure), for the test to report. */
    this.notes = [];
  }

  /**
   * Axe on the page as it is now, under the name `what`; `response` (from goto or a navigation)
   * is compared with `status` (a number or a list of them), `<html lang>` with `lang`, when given.
   */
  async check(page, what, { response, status, lang, axe = {} } = {}) {
    const where = `${what} (${page.url()})`;
    this.checked.push(where);
    if (status !== undefined) {
      const got = response ? response.status() : 'no response';
      const ok = Array.isArray(status) ? status.includes(got) : got === status;
      if (!ok) this.problems.push(`${where}: HTTP ${got}, expected ${[status].flat().join(' or ')}`);
    }
    if (lang !== undefined) {
      const got = await page.getAttribute('html', 'lang');
      if (got !== lang) this.problems.push(`${where}: <html lang="${got}">, expected "${lang}"`);
    }
    const t0 = Date.now();
    const violations = await axeViolations(page, axe);
    if (process.env.AGILEKIT_E2E_TIMING) process.stderr.write(`axe ${Date.now() - t0} ms: ${where}\n`);
    if (violations.length) {
      this.problems.push(`${where}: ${violations.length} axe violation(s):\n${formatViolations(violations)}`);
    }
  }

  /** Runs `fn`; an exception is recorded under `what` (with the page's URL if given) instead of raised. */
  async step(what, fn, page) {
    try {
      await fn();
    } catch (err) {
      this.problems.push(`${what}${page ? ` (${page.url()})` : ''}: ${err.message.split('\n').slice(0, 6).join('\n')}`);
    }
  }

  assertClean() {
    if (this.problems.length) {
      throw new Error(`${this.problems.length} problem(s) on ${this.checked.length} page state(s) checked:\n\n`
        + this.problems.join('\n\n'));
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Forms and signing in

/** The demo accounts' password (crates/server/src/demo.rs). */
export const PASSWORD = 'demo-agilekit-2026';

/**
 * Fills the form `form` (a selector) with `fields` ({name: value}; a select takes the option's
 * value, a checkbox `true`/`false`), presses its submit button, and waits for the next page.
 * The fields are set in one go through the DOM (what typing would leave in them, without a
 * round trip per key): the pages have no scripts listening, the server sees the same form.
 * @returns {Promise<import('playwright-core').Response | null>} the response of the new page
 */
export async function submitForm(page, form, fields = {}) {
  const target = page.locator(form).first();
  if (Object.keys(fields).length) {
    const missing = await target.evaluate((el, fields) => {
      const missing = [];
      for (const [name, value] of Object.entries(fields)) {
        const input = el.querySelector(`[name="${CSS.escape(name)}"]`);
        if (!input) { missing.push(name); continue; }
        if (input.type === 'checkbox') input.checked = !!value;
        else input.value = String(value);
        if (input.tagName === 'SELECT' && input.value !== String(value)) { missing.push(`${name}=${value}`); continue; }
        input.dispatchEvent(new Event('input', { bubbles: true }));
        input.dispatchEvent(new Event('change', { bubbles: true }));
      }
      return missing;
    }, fields);
    if (missing.length) throw new Error(`no field (or option) ${missing.join(', ')} in ${form}`);
  }
  const [response] = await Promise.all([
    page.waitForNavigation(),
    target.locator('button[type=submit]').first().click(),
  ]);
  return response;
}

/** Signs in through the login form; returns the response of the page it lands on. */
export async function login(page, baseUrl, email, password = PASSWORD) {
  await page.goto(baseUrl + '/login');
  return submitForm(page, 'form[action="/login"]', { email, password });
}

/**
 * Switches the shell's language with the header button when the page is not in `lang` already. With
 * `force`, a page already in `lang` is switched away and back: signed in, that makes the choice the
 * session's own, so that another session of the same account switching its language (which changes
 * the account's preference) does not change this one.
 */
export async function setLang(page, lang, { force = false } = {}) {
  if ((await page.getAttribute('html', 'lang')) === lang) {
    if (!force) return null;
    await submitForm(page, 'form[action="/lang"]');
  }
  return submitForm(page, 'form[action="/lang"]');
}

/** RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s) of a base32 secret (spaces ignored) at `unixSecs`. */
export function totpCode(secret, unixSecs = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${secret}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSecs / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[off] & 0x7f) << 24) | (mac[off + 1] << 16) | (mac[off + 2] << 8) | mac[off + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

/** An organisation's codice fiscale: the ten digits given and their check digit. */
export function companyTaxCode(first10) {
  const d = [...first10].map(Number);
  const x = d.filter((_, i) => i % 2 === 0).reduce((a, b) => a + b, 0);
  const y = d.filter((_, i) => i % 2 === 1).map((v) => (2 * v > 9 ? 2 * v - 9 : 2 * v)).reduce((a, b) => a + b, 0);
  return first10 + ((10 - ((x + y) % 10)) % 10);
}

// ------------------------------------------------------------------------------------------------
// Sweeps: every page and state of a suite checked in both languages

export const LANGS = ['it', 'en'];
export const LOCALE = { it: 'it-IT', en: 'en-GB' };

/**
 * What axe does not look at, on every page checked: no translation key left untranslated (a key starts with
 * one of `keys` or the shell's prefixes; `vpn-it.regione.example` is a host name, not a key), an error summary
 * whose links lead to fields, every invalid field described by its error text, and every image shown.
 */
export async function pageProblems(page, keys = []) {
  return page.evaluate((prefixes) => {
    const out = [];
    const main = document.querySelector('main');
    const key = new RegExp(`(?<![\\w.-])(?:${prefixes.join('|')})-[a-z][a-z0-9_-]*[a-z0-9](?![\\w.-])`, 'g');
    const raw = (main?.innerText ?? '').match(key);
    if (raw) out.push(`untranslated text: ${[...new Set(raw)].join(', ')}`);
    for (const a of document.querySelectorAll('#error-summary a[href^="#"]')) {
      const target = document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)));
      if (!target) out.push(`the error summary's link ${a.getAttribute('href')} ("${a.textContent.trim()}") leads nowhere`);
    }
    const invalid = [...document.querySelectorAll('[aria-invalid="true"]')];
    for (const el of invalid) {
      const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
      const described = ids.some((id) => document.getElementById(id)?.classList.contains('invalid-feedback'));
      if (!described) out.push(`#${el.id} is marked invalid but no error text describes it (aria-describedby="${ids.join(' ')}")`);
    }
    if (invalid.length && !document.getElementById('error-summary')) out.push('fields in error but no error summary at the top');
    for (const img of document.querySelectorAll('main img')) {
      if (!img.complete || img.naturalWidth === 0) out.push(`image not shown: ${img.getAttribute('alt')}`);
    }
    return out;
  }, ['field', 'form', 'error', 'orgs', ...keys]);
}

/**
 * The steps a suite's sweeps are made of, bound to one server and browser. `browser` and `url` are functions,
 * since both are known only once the suite's `before` has run. `keys`: the prefixes of the suite's translation keys
 * (for pageProblems). `homeCheck`: a signed-in sweep starts by checking the home page.
 *
 * A sweep runs as one person in one language and records every problem in its log (A11yLog) instead of stopping;
 * `sweepBoth` runs a sweep in both languages at once (separate contexts) and fails with the problems of both.
 * Each step takes `s` = { page, log, lang }.
 */
export function sweeps({ browser, url, keys = [], homeCheck = false }) {
  /** A page in a fresh context whose browser asks for `lang`, 1280 px wide; an element that never comes fails in 20 s. */
  async function fresh(lang, options = {}) {
    const page = await newPage(browser(), { locale: LOCALE[lang], viewport: { width: 1280, height: 900 }, ...options });
    page.setDefaultTimeout(20_000);
    return page;
  }

  /** Signed in as `email`, the shell switched to `lang` with the header button. */
  async function signedIn(email, lang, options = {}) {
    const page = await fresh(lang, options);
    const response = await login(page, url(), email);
    if (!(await page.isVisible('form[action="/logout"]'))) {
      throw new Error(`${email} is not signed in (${page.url()}, HTTP ${response?.status()})`);
    }
    await setLang(page, lang, { force: true });
    return page;
  }

  /** Runs `sweep(s)` for each language; fails with every problem found and reports the logs' notes on `t`. */
  async function sweepBoth(t, sweep, { email: who } = {}) {
    const logs = await Promise.all(LANGS.map(async (lang) => {
      const email = typeof who === 'function' ? who(lang) : who;
      const log = new A11yLog();
      let page;
      await log.step(`[${lang}] ${email ? `sign in as ${email}` : 'open a page'}`, async () => {
        page = email ? await signedIn(email, lang) : await fresh(lang);
      });
      if (page) {
        if (email && homeCheck) await log.check(page, `[${lang}] home, signed in`, { lang });
        await sweep({ page, log, lang });
        await page.context().close();
      }
      return log;
    }));
    const all = new A11yLog();
    for (const l of logs) {
      all.problems.push(...l.problems);
      all.checked.push(...l.checked);
      for (const note of l.notes) t.diagnostic(note);
    }
    t.diagnostic(`${all.checked.length} page states checked with axe`);
    all.assertClean();
  }

  /** axe and pageProblems on the page as it is now; an unexpected status is reported with what the page says. */
  async function checkHere({ page, log, lang }, what, response, status) {
    await log.check(page, `[${lang}] ${what}`, { response, status, lang });
    if (status !== undefined && response && ![status].flat().includes(response.status())) {
      const why = await page.locator('#error-summary, main [role=alert]').allTextContents();
      if (why.length) log.problems.push(`[${lang}] ${what}: the page says: ${why.join(' | ').replace(/\s+/g, ' ')}`);
    }
    for (const p of await pageProblems(page, keys)) log.problems.push(`[${lang}] ${what} (${page.url()}): ${p}`);
  }

  /** On a page with an error summary: each of its links takes the focus to its field (or into its group). */
  async function summaryFocus(s, what) {
    const hrefs = await s.page.$$eval('#error-summary a[href^="#"]', (as) => as.map((a) => a.getAttribute('href')));
    for (const href of hrefs) {
      await s.page.click(`#error-summary a[href="${href}"]`);
      const ok = await s.page.evaluate((id) => {
        const target = document.getElementById(id);
        return !!target && (document.activeElement === target || target.contains(document.activeElement));
      }, decodeURIComponent(href.slice(1)));
      if (!ok) s.log.problems.push(`[${s.lang}] ${what} (${s.page.url()}): the error summary's link ${href} does not move the focus to its field`);
    }
  }

  /** Opens `path` and checks the page (a throw is recorded, not raised). */
  async function go(s, what, path, status = 200) {
    await s.log.step(`[${s.lang}] ${what}: open ${path}`, async () => {
      const response = await s.page.goto(url() + path);
      await checkHere(s, what, response, status);
    }, s.page);
  }

  /** Opens the <details> around `form` as a person would (a click on its summary), when it is closed. */
  async function openDetails(page, form) {
    const details = page.locator('details', { has: page.locator(form) });
    if ((await details.count()) && !(await details.first().evaluate((d) => d.open))) {
      await details.first().locator(':scope > summary').click();
    }
  }

  /** Submits the form `form` with `fields` (see submitForm) and checks the page that comes back; on 422, summaryFocus. */
  async function send(s, what, form, fields, status = 200) {
    await s.log.step(`[${s.lang}] ${what}: submit ${form}`, async () => {
      await openDetails(s.page, form);
      const response = await submitForm(s.page, form, fields);
      await checkHere(s, what, response, status);
      if (response?.status() === 422) await summaryFocus(s, what);
    }, s.page);
  }

  /** Follows the link `link` and checks the page. */
  async function follow(s, what, link, status = 200) {
    await s.log.step(`[${s.lang}] ${what}: follow ${link}`, async () => {
      const [response] = await Promise.all([s.page.waitForNavigation(), s.page.locator(link).first().click()]);
      await checkHere(s, what, response, status);
    }, s.page);
  }

  return { fresh, signedIn, sweepBoth, checkHere, summaryFocus, go, openDetails, send, follow };
}
