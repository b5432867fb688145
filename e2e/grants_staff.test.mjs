// The staff's pages of funding calls in a real browser (Debian's Chromium), on SQLite and on PostgreSQL, as the
// region's administrator: the organisation's calls, a new call refused (each error beside its field and in the
// summary, what was typed kept), then created, published after its confirmation page, its applications and the
// public open-data index. axe-core on every page and state, in Italian and English; the same flow once more with
// JavaScript disabled, with rows added by the form's own button.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engines, launchBrowser, startServer, submitForm, sweeps } from './support.mjs';

const ADMIN = 'admin@regione.example';

const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** A good call as the editor's form takes it. */
function goodCall(title) {
  return {
    title, summary: 'Contributi alle imprese per piani di lavoro agile.', body: '## Finalità\nSostenere il lavoro agile.',
    budget: '4.500.000,00', 'grant_rule.bands.0.min_employees': '3', 'grant_rule.bands.0.max_employees': '10',
    'grant_rule.bands.0.amount': '7.500,00', 'grant_rule.bands.1.min_employees': '11', 'grant_rule.bands.1.max_employees': '',
    'grant_rule.bands.1.amount': '10.500,00', 'categories.0.code': 'consulenza', 'categories.0.label': 'Consulenza e formazione',
    'categories.1.code': 'strumenti', 'categories.1.label': 'Strumenti tecnologici', 'categories.1.max_share_bp': '33,33',
    'eligibility.min_employees': '3', 'eligibility.excluded_sectors': '01, 64.19', 'eligibility.site_region': '03',
    'required_attachments.0.code': 'piano', 'required_attachments.0.label': 'Piano di lavoro agile',
    opens_at: '2030-04-02T12:00', closes_at: '2030-06-30T16:00',
  };
}

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('grants staff browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      /** Regione Lombardia's id, from the organisation switcher. */
      let org;

      const { signedIn, sweepBoth, go, send, follow } = sweeps({
        browser: () => browser, url: () => url, keys: ['gst'],
      });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const page = await signedIn(ADMIN, 'it');
        org = await page.$eval('#org-switch', (sel) => [...sel.options].find((o) => o.textContent.includes('Regione Lombardia'))?.value);
        await page.context().close();
        assert.ok(org, 'no Regione Lombardia in the organisation switcher');
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: a call refused, created, published; its applications; the open data index'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page } = s;
          const NEW = `form[action="/orgs/${org}/calls/new"]`;
          const title = `Avviso lavoro agile (${s.lang})`;
          await go(s, "the organisation's calls", `/orgs/${org}/calls`);
          await follow(s, 'new call', `a[href="/orgs/${org}/calls/new"]`);
          await send(s, 'new call, wrong', NEW, {
            ...goodCall(''), budget: 'tanti soldi', 'grant_rule.bands.0.amount': '0', 'categories.0.code': 'B C', closes_at: '',
            'eligibility.excluded_sectors': '01, x9',
          }, 422);
          await step(s, 'each error beside its field; what was typed is kept', async () => {
            for (const id of ['title', 'budget', 'grant_rule-bands-0-amount', 'categories-0-code', 'closes_at', 'eligibility-excluded_sectors']) {
              assert.ok(await page.isVisible(`#f-${id}-error`), id);
            }
            assert.ok(await page.isVisible('#error-summary'));
            assert.equal(await page.inputValue('#f-budget'), 'tanti soldi');
            assert.equal(await page.inputValue('#f-categories-0-code'), 'B C');
            assert.equal(await page.inputValue('#f-eligibility-excluded_sectors'), '01, x9');
            assert.equal(await page.inputValue('#f-categories-1-max_share_bp'), '33,33');
          });
          await send(s, 'new call, right', NEW, goodCall(title));
          let call;
          await step(s, 'created: its page, with the values as typed', async () => {
            assert.ok(await page.isVisible('main [role=status]'));
            call = new URL(page.url()).pathname;
            assert.match(call, new RegExp(`^/orgs/${org}/calls/[0-9a-f-]{36}$`));
            assert.equal(await page.inputValue('#f-title'), title);
            assert.equal(await page.inputValue('#f-budget'), '4.500.000,00');
            assert.equal(await page.inputValue('#f-opens_at'), '2030-04-02T12:00');
          });
          await follow(s, 'publish: the confirmation', `a[href$="/publish"]`);
          await send(s, 'published', `form[action$="/publish"]`, {});
          await step(s, 'published: no publish link any more', async () => {
            assert.ok(await page.isVisible('main [role=status]'));
            assert.equal(await page.locator('a[href$="/publish"]').count(), 0);
          });
          await send(s, 'a FAQ refused', `form[action$="/faqs"]`, { 'faq-new.question': 'Chi può partecipare?', 'faq-new.answer': '' }, 422);
          await send(s, 'a FAQ added', `form[action$="/faqs"]`, { 'faq-new.question': 'Chi può partecipare?', 'faq-new.answer': 'Le imprese lombarde.' });
          await send(s, 'a budget cut refused (not an amount)', `form[action$="/budget"]`, { budget_change: 'molti' }, 422);
          await send(s, 'a document refused (no title, no file)', `form[action$="/documents"]`, { 'doc.title': '' }, 422);
          await step(s, "the document's errors beside its fields", async () => {
            assert.ok(await page.isVisible('#f-doc-title-error'));
            assert.ok(await page.isVisible('#f-doc-file-error'));
          });
          await page.setInputFiles('#f-doc-file', { name: 'decreto.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4 decreto') });
          await send(s, 'a document added', `form[action$="/documents"]`, { 'doc.title': 'Decreto di approvazione' });
          await step(s, 'the document is listed', async () => {
            assert.ok((await page.textContent('table[data-documents]')).includes('decreto.pdf'));
          });
          await go(s, 'the public page with its document', call.replace(`/orgs/${org}`, ''));
          await step(s, 'the public page lists the document', async () => {
            assert.ok((await page.textContent('section[data-documents]')).includes('Decreto di approvazione'));
          });
          await go(s, 'applications received', `${call}/applications`);
          await go(s, 'open data index', '/opendata');
          await go(s, 'the list again', `/orgs/${org}/calls`);
          await step(s, 'the call is listed', async () => {
            assert.ok((await page.textContent('main')).includes(title));
          });
        }, { email: ADMIN });
      });

      test(name('without JavaScript: rows added by the form, a call refused then created and published'), async () => {
        const page = await signedIn(ADMIN, 'it', { javaScriptEnabled: false });
        try {
          await page.goto(`${url}/orgs/${org}/calls/new`);
          assert.equal(await page.locator('#f-grant_rule-bands-6-amount').count(), 0);
          await page.fill('#f-title', 'Avviso senza script');
          await Promise.all([page.waitForNavigation(), page.click('button[value=more]')]);
          assert.equal(await page.locator('#f-grant_rule-bands-6-amount').count(), 1, 'three more band rows');
          assert.equal(await page.inputValue('#f-title'), 'Avviso senza script');
          const FORM = `form[action="/orgs/${org}/calls/new"]`;
          let r = await submitForm(page, FORM, { ...goodCall('Avviso senza script'), budget: '' });
          assert.equal(r.status(), 422);
          assert.ok(await page.isVisible('#f-budget-error'));
          r = await submitForm(page, FORM, { ...goodCall('Avviso senza script'), 'grant_rule.bands.6.min_employees': '' });
          assert.equal(r.status(), 200);
          assert.ok(await page.isVisible('main [role=status]'));
          await Promise.all([page.waitForNavigation(), page.click('a[href$="/publish"]')]);
          r = await submitForm(page, 'form[action$="/publish"]', {});
          assert.equal(r.status(), 200);
          assert.match(await page.textContent('#phase'), /Pubblicato/);
        } finally {
          await page.context().close();
        }
      });
    });
  }
});
