// The funding calls' public pages and the companies' pages in a real browser (Debian's Chromium), on SQLite and on
// PostgreSQL: anyone reads the list of calls and a call's page (published by the region's admin through the API
// here); the demo's public account registers a company, first wrong on every count (each error by its field, what
// was typed kept), then right, and finds it listed and offered on the call's page. axe-core on every page and state,
// in Italian and English, and the registration once more with JavaScript disabled.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { A11yLog, companyTaxCode, engines, launchBrowser, login, startServer, submitForm, sweeps } from './support.mjs';

const ADMIN = 'admin@regione.example';
const CITIZEN = 'cittadino@example.it';
const TITLE = 'Avviso prova pagine pubbliche';

const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** An instant `days` from now, RFC 3339 without fractions. */
const instant = (days) => new Date(Date.now() + days * 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('funding calls public pages browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      let callId;

      const { fresh, signedIn, sweepBoth, go, send, follow, checkHere } = sweeps({
        browser: () => browser, url: () => url, keys: ['grp'],
      });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        // The region's admin publishes a call through the API, with the browser's session.
        const admin = await fresh('it');
        await login(admin, url, ADMIN);
        const api = admin.context().request;
        // The home page's dashboard link names the admin's organisation (the region).
        await admin.goto(url + '/');
        const org = (await admin.getAttribute('main a[href^="/orgs/"]', 'href')).split('/')[2];
        const headers = { origin: url };
        const body = {
          title: TITLE, summary: 'Contributi per piani di smart working.', body: '## Finalità\nSostenere lo smart working.',
          budget_cents: 450_000_000, mode: 'sportello',
          grant_rule: { kind: 'bands', bands: [
            { min_employees: 3, max_employees: 10, amount: 750_000 },
            { min_employees: 11, max_employees: null, amount: 1_050_000 }] },
          categories: [{ code: 'consulenza', label: 'Consulenza e formazione' }, { code: 'strumenti', label: 'Strumenti', max_share_bp: 3333 }],
          eligibility: { min_employees: 3, excluded_sectors: ['01'], site_region: '03' },
          required_attachments: [{ code: 'piano', label: 'Piano di smart working' }],
          opens_at: instant(7), closes_at: instant(37), de_minimis: true,
        };
        let r = await api.post(`${url}/api/v1/orgs/${org}/calls`, { data: body, headers });
        assert.equal(r.status(), 201, await r.text());
        callId = (await r.json()).id;
        r = await api.post(`${url}/api/v1/orgs/${org}/calls/${callId}/publish`, { headers });
        assert.equal(r.status(), 200, await r.text());
        r = await api.post(`${url}/api/v1/orgs/${org}/calls/${callId}/faqs`, {
          data: { question: 'Chi può partecipare?', answer: 'Le imprese con almeno 3 dipendenti.' }, headers,
        });
        assert.equal(r.status(), 201, await r.text());
        await admin.context().close();
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: anyone reads the list of calls and a call\'s page'), async (t) => {
        await sweepBoth(t, async (s) => {
          await go(s, 'home, signed out', '/');
          await follow(s, 'calls from the home page', 'main a[href="/calls"]');
          await step(s, 'the published call is listed', async () => {
            assert.ok(await s.page.isVisible(`main a[href="/calls/${callId}"]`));
          });
          await follow(s, 'the call\'s page', `main a[href="/calls/${callId}"]`);
          await step(s, 'bands, FAQ and a sign-in link, no form', async () => {
            const text = await s.page.textContent('main');
            assert.match(text, /7\.500,00 €/);
            assert.match(text, /Chi può partecipare\?/);
            assert.equal(await s.page.locator(`form[action="/calls/${callId}/apply"]`).count(), 0);
            assert.ok(await s.page.isVisible(`main a[href="/login?next=%2Fcalls%2F${callId}"]`));
          });
        });
      });

      // Each language registers its own company (the two sweeps run at once as the same person).
      const PIVA = { it: companyTaxCode('0112358132'), en: companyTaxCode('0213455891') };

      test(name('axe: the public account registers a company, wrong then right, and may apply for it'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const NEW = 'form[action="/companies/new"]';
          await go(s, 'the call\'s page, signed in', `/calls/${callId}`);
          await go(s, 'my companies', '/companies');
          await follow(s, 'register a company', 'main a[href="/companies/new"]');
          await send(s, 'registration, wrong on every count', NEW, {
            name: '', partita_iva: '12345678901', tax_code: 'XYZ', legal_rep_name: '', legal_rep_tax_code: 'RSSMRA85T10A562X',
            pec: 'non-una-pec', employees: 'dodici', sector: '6', address: 'Via Roma 1',
          }, 422);
          await step(s, 'each error by its field, what was typed kept', async () => {
            for (const f of ['name', 'partita_iva', 'tax_code', 'legal_rep_name', 'legal_rep_tax_code', 'pec', 'employees', 'sector', 'site_regions']) {
              assert.ok(await page.isVisible(`#f-${f}-error`), f);
            }
            assert.equal(await page.inputValue('#f-partita_iva'), '12345678901');
            assert.equal(await page.inputValue('#f-employees'), 'dodici');
            assert.equal(await page.inputValue('#f-address'), 'Via Roma 1');
          });
          await step(s, 'pick Lombardia', async () => {
            await page.click('label[for="f-site_regions-03"]');
            assert.ok(await page.isChecked('#f-site_regions-03'));
          });
          await send(s, 'registration, right', NEW, {
            name: `Impresa ${lang} S.r.l.`, partita_iva: PIVA[lang], tax_code: '', legal_rep_name: 'Mario Rossi',
            legal_rep_tax_code: 'RSSMRA85T10A562S', pec: `impresa-${lang}@pec.example.it`, employees: '12', sector: '62.01.00',
          });
          await step(s, 'on the company\'s page', async () => {
            assert.match(new URL(page.url()).pathname, /^\/companies\/[0-9a-f-]{36}$/);
            assert.match(await page.textContent('main'), new RegExp(PIVA[lang]));
          });
          await send(s, 'declared aid, refused', 'form[action$="/aid"]', { granted_on: '2099-01-01', amount: 'sette', granting_body: '' }, 422);
          await go(s, 'my companies, with the new one', '/companies');
          await go(s, 'the call\'s page, with the apply form', `/calls/${callId}`);
          await step(s, 'the company is offered', async () => {
            const options = await page.$$eval('select[name="company"] option', (os) => os.map((o) => o.textContent));
            assert.ok(options.some((o) => o.includes(PIVA[lang])), options.join(' | '));
          });
        }, { email: CITIZEN });
      });

      test(name('no JavaScript: a refused registration, then a registered company'), async () => {
        const page = await signedIn(CITIZEN, 'it', { javaScriptEnabled: false });
        // axe needs scripts: each state reached without them is checked as served, in a page that runs them.
        const checker = await fresh('it');
        await checker.goto(url + '/');
        const s = { page: checker, lang: 'it', log: new A11yLog() };
        const checkServed = async (what) => {
          await checker.setContent(await page.content(), { waitUntil: 'load' });
          await checkHere(s, what);
        };
        let response = await page.goto(url + '/companies/new');
        assert.equal(response.status(), 200);
        await checkServed('registration without JavaScript');
        response = await submitForm(page, 'form[action="/companies/new"]', { name: 'Senza JS S.r.l.', partita_iva: '1', pec: 'x' });
        assert.equal(response.status(), 422);
        assert.match(await page.textContent('#f-partita_iva-error'), /\S/);
        assert.equal(await page.inputValue('#f-name'), 'Senza JS S.r.l.');
        await checkServed('registration refused without JavaScript');
        const piva = companyTaxCode('0314159260');
        await page.click('label[for="f-site_regions-03"]');
        assert.ok(await page.isChecked('#f-site_regions-03'));
        response = await submitForm(page, 'form[action="/companies/new"]', {
          partita_iva: piva, legal_rep_name: 'Mario Rossi', legal_rep_tax_code: 'RSSMRA85T10A562S', pec: 'senzajs@pec.example.it',
          employees: '5', sector: '62.01',
        });
        assert.equal(response.status(), 200);
        assert.match(new URL(page.url()).pathname, /^\/companies\/[0-9a-f-]{36}$/);
        assert.match(await page.textContent('main'), new RegExp(piva));
        await checkServed('company page without JavaScript');
        await page.context().close();
        await checker.context().close();
        s.log.assertClean();
      });
    });
  }
});
