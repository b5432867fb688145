// The review after admission in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: the region's
// administrator asks for an integration (refused first with errors beside the fields and in the summary), the
// company sends a document and answers it, the application is declared admissible and granted (a wrong amount first: kept as typed), the
// company reports its expenses (a wrong line first), and the staff approve them (an eligible amount above the
// reported one first). axe-core and the page checks on every page and state, in Italian and in English, each
// language with its own application.
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
/** The date `days` from today in Europe/Rome, YYYY-MM-DD. */
const day = (days) => new Date(Date.now() + days * 86_400_000).toLocaleDateString('sv-SE', { timeZone: 'Europe/Rome' });

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('grant review browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      /** Per language: the staff's and the company's page of its application. */
      const staffPath = {};
      const companyPath = {};

      const { fresh, sweepBoth, go, send } = sweeps({ browser: () => browser, url: () => url, keys: ['grv'] });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const headers = { origin: url };
        // The region's administrator publishes a call that is open now.
        const admin = await fresh('it');
        await login(admin, url, ADMIN);
        await admin.goto(url + '/');
        const org = (await admin.getAttribute('main a[href^="/orgs/"]', 'href')).split('/')[2];
        const api = admin.context().request;
        let r = await api.post(`${url}/api/v1/orgs/${org}/calls`, { headers, data: {
          title: 'Avviso prova istruttoria', summary: 'Contributi per piani di smart working.', body: '',
          budget_cents: 100_000_000, mode: 'sportello',
          grant_rule: { kind: 'bands', bands: [{ min_employees: 3, max_employees: null, amount: 750_000 }] },
          categories: [{ code: 'consulenza', label: 'Consulenza e formazione' }, { code: 'strumenti', label: 'Strumenti' }],
          eligibility: { min_employees: 3 },
          opens_at: instant(-1), closes_at: instant(60 * 24 * 30), de_minimis: false,
        } });
        assert.equal(r.status(), 201, await r.text());
        const callId = (await r.json()).id;
        r = await api.post(`${url}/api/v1/orgs/${org}/calls/${callId}/publish`, { headers });
        assert.equal(r.status(), 200, await r.text());
        await admin.context().close();
        // The citizen's companies apply and submit, one per language.
        const citizen = await fresh('it');
        await login(citizen, url, CITIZEN);
        const capi = citizen.context().request;
        for (const [i, lang] of ['it', 'en'].entries()) {
          r = await capi.post(`${url}/api/v1/companies`, { headers, data: {
            name: `Impresa Istruttoria ${lang} S.r.l.`, partita_iva: companyTaxCode(`0555444${i}21`), pec: `istruttoria-${lang}@pec.example.it`,
            legal_rep_name: 'Anna Bianchi', legal_rep_tax_code: 'RSSMRA85T10A562S', employees: 8, sector: '62.01.00', site_regions: ['03'],
          } });
          assert.equal(r.status(), 201, await r.text());
          const company = (await r.json()).id;
          r = await capi.post(`${url}/api/v1/companies/${company}/applications`, { headers, data: { call_id: callId, draft: {
            plan: 'Portatili e formazione per otto persone.', declaration: true,
            expenses: [{ category: 'consulenza', description: 'Formazione', amount_cents: 800_000 }],
          } } });
          assert.equal(r.status(), 201, await r.text());
          const application = (await r.json()).id;
          r = await capi.post(`${url}/api/v1/companies/${company}/applications/${application}/submit`, { headers: { ...headers, 'idempotency-key': `e2e-${lang}` } });
          assert.equal(r.status(), 200, await r.text());
          assert.equal((await r.json()).place, 'admitted');
          staffPath[lang] = `/orgs/${org}/calls/${callId}/applications/${application}`;
          companyPath[lang] = `/companies/${company}/applications/${application}/review`;
        }
        await citizen.context().close();
      });

      after(async () => {
        await server?.stop();
      });

      const stage = async (s, want) => step(s, `the stage is ${want}`, async () => {
        assert.equal(await s.page.getAttribute('#review-stage', 'data-stage'), want);
      });

      test(name('axe: integration, answer, admissible, grant, report, approval'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the formal check is due', staffPath[lang]);
          await stage(s, 'check');
          await send(s, 'an integration without message nor deadline', '#integration-form', { message: '', deadline: '' }, 422);
          await step(s, 'both errors beside their fields', async () => {
            assert.equal(await page.getAttribute('#f-integration-message', 'aria-invalid'), 'true');
            assert.equal(await page.locator('#f-integration-deadline-error').count(), 1);
          });
          await send(s, 'an integration requested', '#integration-form', { message: 'Allegare la visura camerale.', deadline: day(7) });
          await stage(s, 'integration');
        }, { email: ADMIN });

        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the integration asked of the company', companyPath[lang]);
          await step(s, 'the request is shown', async () => {
            assert.match(await page.textContent('main'), /Allegare la visura camerale\./);
          });
          await send(s, 'a document not chosen', '#files-form', {}, 422);
          await step(s, 'choose a document', async () => {
            await page.setInputFiles('#f-files-file', { name: `visura-${lang}.pdf`, mimeType: 'application/pdf', buffer: Buffer.from(`%PDF-1.4 visura ${lang}`) });
          });
          await send(s, 'the document uploaded', '#files-form', {});
          await step(s, 'the document is listed', async () => {
            assert.equal(await page.locator(`main a:has-text("visura-${lang}.pdf")`).count(), 1);
          });
          await send(s, 'an empty answer', '#answer-form', { text: '' }, 422);
          await send(s, 'the answer', '#answer-form', { text: 'Visura allegata alla PEC del 3 marzo.' });
          await stage(s, 'check');
        }, { email: CITIZEN });

        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the check goes on', staffPath[lang]);
          await step(s, 'the company\'s document can be downloaded', async () => {
            const href = await page.getAttribute(`main a:has-text("visura-${lang}.pdf")`, 'href');
            const r = await page.context().request.get(url + href);
            assert.equal(r.status(), 200);
            assert.equal((await r.body()).toString(), `%PDF-1.4 visura ${lang}`);
          });
          await send(s, 'declared admissible', '#admit-form', {});
          await stage(s, 'admissible');
          await send(s, 'a grant whose amount is not one', '#grant-form', { amount: 'settemila', act_number: 'D.D. 12', act_date: day(0) }, 422);
          await step(s, 'what was typed is kept', async () => {
            assert.equal(await page.inputValue('#f-grant-amount'), 'settemila');
            assert.equal(await page.inputValue('#f-grant-act_number'), 'D.D. 12');
          });
          await send(s, 'the grant', '#grant-form', { amount: '7.500,00', act_number: 'D.D. 12', act_date: day(0) });
          await stage(s, 'granted');
        }, { email: ADMIN });

        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the expense report is due', companyPath[lang]);
          const line = { 'lines.0.category': 'consulenza', 'lines.0.description': 'Corso sul lavoro agile', 'lines.0.invoice': 'FT 1/2026', 'lines.1.category': 'strumenti', 'lines.1.description': 'Portatili', 'lines.1.amount': '3.900', 'lines.1.invoice': 'FT 2/2026' };
          await send(s, 'a report with an amount that is not one', '#report-form', { ...line, 'lines.0.amount': 'xx' }, 422);
          await step(s, 'every line typed is kept', async () => {
            assert.equal(await page.inputValue('#f-report-lines-0-amount'), 'xx');
            assert.equal(await page.inputValue('#f-report-lines-1-invoice'), 'FT 2/2026');
            assert.equal(await page.inputValue('#f-report-lines-1-category'), 'strumenti');
          });
          await send(s, 'the report', '#report-form', { ...line, 'lines.0.amount': '8.000,00' });
          await stage(s, 'reported');
        }, { email: CITIZEN });

        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the report to approve', staffPath[lang]);
          await send(s, 'an eligible amount above the reported one', '#approve-form', { 'eligible.0': '9.000', 'eligible.1': '3.900,00' }, 422);
          await step(s, 'kept, with the error', async () => {
            assert.equal(await page.inputValue('#f-approve-eligible-0'), '9.000');
            assert.equal(await page.locator('#f-approve-eligible-0-error').count(), 1);
          });
          await send(s, 'approved', '#approve-form', { 'eligible.0': '7.000', 'eligible.1': '3.900,00' });
          await stage(s, 'approved');
          await step(s, 'the amount to pay', async () => {
            assert.match(await page.textContent('main'), /7\.500,00 €/);
          });
        }, { email: ADMIN });

        await sweepBoth(t, async (s) => {
          await go(s, 'the company sees the outcome and the history', companyPath[s.lang]);
          await stage(s, 'approved');
        }, { email: CITIZEN });
      });
    });
  }
});
