// The shell in a real browser (Debian's Chromium): sign in, switch language, switch organisation, and axe-core
// on every page of the shell, signed out and signed in, in both languages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, newPage, checkA11y } from './support.mjs';

const PASSWORD = 'demo-agilekit-2026';
let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function login(page, email) {
  await page.goto(server.url + '/login');
  await page.fill('#f-email', email);
  await page.fill('#f-password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('form[action="/login"] button[type=submit]')]);
}

test('signed-out pages pass axe in Italian and English', async () => {
  const page = await newPage(browser, { locale: 'it-IT' });
  for (const path of ['/', '/login', '/accessibility', '/no/such/page']) {
    await page.goto(server.url + path);
    await checkA11y(page);
  }
  // A failed login shows inline errors: those must be accessible too.
  await page.goto(server.url + '/login');
  await page.click('form[action="/login"] button[type=submit]');
  await page.waitForSelector('#f-email-error');
  await checkA11y(page);
  await page.context().close();
});

test('sign in, switch language and organisation, sign out', async () => {
  const page = await newPage(browser, { locale: 'it-IT' });
  await login(page, 'admin@regione.example');
  assert.match(await page.textContent('h1'), /Marco Amministratore/);
  await checkA11y(page);

  await Promise.all([page.waitForNavigation(), page.click('button[lang="en"]')]);
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.match(await page.textContent('h1'), /Welcome/);
  await checkA11y(page);

  await page.selectOption('#org-switch', { label: 'ARPA Lombardia' });
  await Promise.all([page.waitForNavigation(), page.click('form[action="/session/org"] button[type=submit]')]);
  assert.match(await page.textContent('main'), /ARPA Lombardia/);

  await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button[type=submit]')]);
  assert.ok(await page.isVisible('a[href="/login"]'));
  await page.context().close();
});
