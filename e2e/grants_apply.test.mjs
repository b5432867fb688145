// Applying to a funding call in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: the demo's public
// account opens its company's application, saves a draft with a wrong amount (the typed text kept, the error beside
// the field and in the summary), fixes it, uploads the required attachment, is refused before the opening, then
// submits once the call is open and sees the receipt. axe-core on every page and state, in Italian and English; the
// same path once more with JavaScript disabled.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { companyTaxCode, engines, launchBrowser, login, startServer, sweeps } from './support.mjs';

const ADMIN = 'admin@regione.example';
const CITIZEN = 'cittadino@example.it';

const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** An instant `minutes` from now, RFC 3339 without fractions. */
const instant = (minutes) => new Date(Date.now() + minutes * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('grant application browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      let callId;
      /** The citizen's companies, one per run: language (or `nojs`) → id. */
      const companies = {};

      const { fresh, signedIn, sweepBoth, go, checkHere, summaryFocus } = sweeps({ browser: () => browser, url: () => url, keys: ['gap'] });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);
      const FORM = '#draft-form';

      /** Clicks the form's button `value` and checks the page that comes back. */
      async function press(s, what, value, status = 200) {
        await s.log.step(`[${s.lang}] ${what}: press ${value}`, async () => {
          const [response] = await Promise.all([s.page.waitForNavigation(), s.page.click(`${FORM} button[name=action][value=${value}]`)]);
          await checkHere(s, what, response, status);
          if (response?.status() === 422) await summaryFocus(s, what);
        }, s.page);
      }

      /** Opens the application from the call page's form (POST /calls/{call}/apply) and returns its path. */
      async function apply(page, company) {
        const r = await page.context().request.post(`${url}/calls/${callId}/apply`, { form: { company }, headers: { origin: url }, maxRedirects: 0 });
        assert.equal(r.status(), 303, await r.text());
        return r.headers().location;
      }

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        // The region's admin publishes a call that opens in an hour and requires one attachment.
        const admin = await fresh('it');
        await login(admin, url, ADMIN);
        await admin.goto(url + '/');
        const org = (await admin.getAttribute('main a[href^="/orgs/"]', 'href')).split('/')[2];
        const headers = { origin: url };
        const api = admin.context().request;
        let r = await api.post(`${url}/api/v1/orgs/${org}/calls`, { headers, data: {
          title: 'Avviso prova domande', summary: 'Contributi per piani di smart working.', body: '',
          budget_cents: 450_000_000, mode: 'sportello',
          grant_rule: { kind: 'bands', bands: [{ min_employees: 3, max_employees: null, amount: 750_000 }] },
          categories: [{ code: 'consulenza', label: 'Consulenza e formazione' }, { code: 'strumenti', label: 'Strumenti', max_share_bp: 3333 }],
          eligibility: { min_employees: 3 },
          required_attachments: [{ code: 'piano', label: 'Piano di smart working firmato' }],
          opens_at: instant(60), closes_at: instant(60 * 24 * 30), de_minimis: false,
        } });
        assert.equal(r.status(), 201, await r.text());
        callId = (await r.json()).id;
        r = await api.post(`${url}/api/v1/orgs/${org}/calls/${callId}/publish`, { headers });
        assert.equal(r.status(), 200, await r.text());
        await admin.context().close();
        // The citizen's companies, through the API.
        const citizen = await fresh('it');
        await login(citizen, url, CITIZEN);
        const capi = citizen.context().request;
        for (const [i, run] of ['it', 'en', 'nojs', 'auto-it', 'auto-en'].entries()) {
          r = await capi.post(`${url}/api/v1/companies`, { headers, data: {
            name: `Impresa Domanda ${run} S.r.l.`, partita_iva: companyTaxCode(`0987654${i}21`), pec: `domanda-${run}@pec.example.it`,
            legal_rep_name: 'Anna Bianchi', legal_rep_tax_code: 'RSSMRA85T10A562S', employees: 8, sector: '62.01.00', site_regions: ['03'],
          } });
          assert.equal(r.status(), 201, await r.text());
          companies[run] = (await r.json()).id;
        }
        await citizen.context().close();
      });

      after(async () => {
        await server?.stop();
      });

      /** Opens the call: its opening moved to the instant the call was created (the same stored format on both engines). */
      async function openCall() {
        await server.sql(`UPDATE grant_calls SET opens_at = created_at WHERE id = ${engine.name === 'postgres' ? `'${callId}'` : `X'${callId.replace(/-/g, '')}'`}`);
      }

      test(name('axe: a draft with an error, fixed, with its attachment, refused before the opening, then submitted'), async (t) => {
        const paths = {};
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await step(s, 'apply from the call page\'s form', async () => {
            paths[lang] = await apply(page, companies[lang]);
            assert.match(paths[lang], /^\/companies\/[^/]+\/applications\/[^/]+$/);
          });
          await go(s, 'the empty draft', paths[lang]);
          await step(s, 'type a plan and an expense whose amount is not one', async () => {
            await page.fill('#f-plan', 'Portatili e formazione per otto persone: attività in sede e a casa.');
            await page.selectOption('#f-expenses-0-category', 'consulenza');
            await page.fill('#f-expenses-0-description', 'Formazione');
            await page.fill('#f-expenses-0-amount_cents', 'settemila');
          });
          await press(s, 'draft saved with errors', 'save', 422);
          await step(s, 'what was typed is there, the error beside the field and in the summary', async () => {
            assert.equal(await page.inputValue('#f-expenses-0-amount_cents'), 'settemila');
            assert.equal(await page.inputValue('#f-plan'), 'Portatili e formazione per otto persone: attività in sede e a casa.');
            assert.equal(await page.getAttribute('#f-expenses-0-amount_cents', 'aria-invalid'), 'true');
            assert.equal(await page.locator('#f-expenses-0-amount_cents-error').count(), 1);
            assert.equal(await page.locator('#error-summary a[href="#f-expenses-0-amount_cents"]').count(), 1);
          });
          await step(s, 'fix the amount, declare, choose the attachment', async () => {
            await page.fill('#f-expenses-0-amount_cents', '7.500,00');
            if (!(await page.isChecked('#f-declaration'))) await page.click('label[for="f-declaration"]');
            await page.setInputFiles('#f-attachments-piano', { name: `piano-${lang}.pdf`, mimeType: 'application/pdf', buffer: Buffer.from(`%PDF-1.4 piano ${lang}`) });
          });
          await press(s, 'draft saved', 'save');
          await step(s, 'saved: no errors, the file listed', async () => {
            assert.match(page.url(), /\?done=saved$/);
            assert.equal(await page.locator('#error-summary').count(), 0);
            assert.equal(await page.locator(`main a:has-text("piano-${lang}.pdf")`).count(), 1);
            assert.equal(await page.inputValue('#f-expenses-0-amount_cents'), '7.500,00');
          });
          await press(s, 'submitted before the opening', 'submit', 409);
          await step(s, 'refused with a message, still a draft', async () => {
            assert.equal(await page.locator('#alert').count(), 1);
            assert.equal(await page.locator(FORM).count(), 1);
          });
        }, { email: CITIZEN });

        await openCall();
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the draft, call open', paths[lang]);
          await press(s, 'submitted', 'submit');
          await step(s, 'the receipt with its protocol and fingerprint', async () => {
            assert.match(page.url(), /\/receipt$/);
            assert.match(await page.textContent('#receipt-protocol'), /^\d+$/);
            assert.match(await page.textContent('#receipt-sha256'), /^[0-9a-f]{64}$/);
          });
          await go(s, 'the submitted application', paths[lang]);
          await go(s, 'the company\'s applications', paths[lang].replace(/\/[^/]+$/, ''));
          await go(s, 'the withdrawal\'s confirmation', `${paths[lang]}/withdraw`);
        }, { email: CITIZEN });
      });

      test(name('axe: the draft saves itself as you type, and is there after a reload'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          let path;
          let key;
          const plan = `Piano salvato da solo (${lang}): formazione e portatili per otto persone.`;
          await step(s, 'apply from the call page\'s form', async () => {
            path = await apply(page, companies[`auto-${lang}`]);
          });
          await go(s, 'the empty draft, before any typing', path);
          await step(s, 'type in the plan; the status says the draft was saved, without leaving the page', async () => {
            key = await page.inputValue(`${FORM} input[name=key]`);
            assert.equal((await page.textContent('#draft-autosave-status')).trim(), '');
            await page.locator('#f-plan').pressSequentially(plan.slice(0, 20));
            await page.fill('#f-plan', plan);
            const saved = lang === 'it' ? /^Bozza salvata alle \d{1,2}[:.]\d{2}/ : /^Draft saved at \d{1,2}[:.]\d{2}/;
            await page.waitForFunction((re) => new RegExp(re).test(document.getElementById('draft-autosave-status').textContent), saved.source);
            assert.equal(await page.getAttribute('#draft-autosave-status', 'aria-live'), 'polite');
            assert.ok(page.url().endsWith(path), `no navigation: ${page.url()}`);
            assert.equal(await page.inputValue(`${FORM} input[name=key]`), key, 'the idempotency key untouched');
          });
          await checkHere(s, 'the draft with its status shown');
          await step(s, 'an amount that cannot be read: the status says so', async () => {
            await page.selectOption('#f-expenses-0-category', 'consulenza');
            await page.fill('#f-expenses-0-amount_cents', 'tremila');
            await page.locator('#f-expenses-0-amount_cents').blur();
            const notRead = lang === 'it' ? /^Non salvata del tutto/ : /^Not fully saved/;
            await page.waitForFunction((re) => new RegExp(re).test(document.getElementById('draft-autosave-status').textContent), notRead.source);
          });
          await checkHere(s, 'the draft with the not-saved status shown');
          await go(s, 'the draft reloaded', path);
          await step(s, 'what was typed is there', async () => {
            assert.equal(await page.inputValue('#f-plan'), plan);
            assert.equal(await page.inputValue('#f-expenses-0-category'), 'consulenza');
            assert.equal(await page.inputValue('#f-expenses-0-amount_cents'), '', 'an unreadable amount is stored empty');
          });
        }, { email: CITIZEN });
      });

      test(name('no JavaScript: save with an error, fix, upload, submit'), async () => {
        const page = await signedIn(CITIZEN, 'it', { javaScriptEnabled: false });
        const path = await apply(page, companies.nojs);
        await page.goto(url + path);
        await page.fill('#f-plan', 'Piano senza JavaScript');
        await page.selectOption('#f-expenses-0-category', 'consulenza');
        await page.fill('#f-expenses-0-description', 'Formazione');
        await page.fill('#f-expenses-0-amount_cents', '-5');
        let [response] = await Promise.all([page.waitForNavigation(), page.click(`${FORM} button[value=save]`)]);
        assert.equal(response.status(), 422);
        assert.equal(await page.inputValue('#f-expenses-0-amount_cents'), '-5');
        await page.fill('#f-expenses-0-amount_cents', '7500');
        if (!(await page.isChecked('#f-declaration'))) await page.click('label[for="f-declaration"]');
        await page.setInputFiles('#f-attachments-piano', { name: 'piano.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4 senza js') });
        [response] = await Promise.all([page.waitForNavigation(), page.click(`${FORM} button[value=submit]`)]);
        assert.equal(response.status(), 200);
        assert.match(page.url(), /\/receipt$/);
        assert.match(await page.textContent('#receipt-sha256'), /^[0-9a-f]{64}$/);
        await page.context().close();
      });
    });
  }
});
