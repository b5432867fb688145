// The graduatoria in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: a ranked call closes; the
// evaluator declares (no choice first, then a conflict without its reason: errors beside the fields and in the
// summary) and scores the grid (a score out of range first: kept as typed); the administrator reads the provisional
// ranking, confirms and publishes it. axe-core and the page checks on every page and state, in Italian and in
// English, each language with its own application.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { companyTaxCode, engines, launchBrowser, login, startServer, sweeps } from './support.mjs';

const ADMIN = 'admin@regione.example';
const EVALUATOR = 'valutatore@regione.example';
const CITIZEN = 'cittadino@example.it';

const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** An instant `seconds` from now, RFC 3339 without fractions. */
const instant = (seconds) => new Date(Date.now() + seconds * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('graduatoria browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      let list;
      let ranking;
      /** Per language: the evaluator's page of its application. */
      const appPath = {};

      const { fresh, sweepBoth, go, send, follow } = sweeps({ browser: () => browser, url: () => url, keys: ['grk'] });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const headers = { origin: url };
        // A ranked call, open now and closing in a few seconds (the click day is not what this suite is about).
        const admin = await fresh('it');
        await login(admin, url, ADMIN);
        await admin.goto(url + '/');
        const org = (await admin.getAttribute('main a[href^="/orgs/"]', 'href')).split('/')[2];
        const api = admin.context().request;
        const closes = Date.now() + 20_000;
        let r = await api.post(`${url}/api/v1/orgs/${org}/calls`, { headers, data: {
          title: 'Premio prova graduatoria', summary: 'Graduatoria di prova.', body: '',
          budget_cents: 1_000_000, mode: 'graduatoria',
          grant_rule: { kind: 'bands', bands: [{ min_employees: 3, max_employees: null, amount: 750_000 }] },
          categories: [{ code: 'consulenza', label: 'Consulenza e formazione' }],
          eligibility: { min_employees: 3 },
          criteria: [{ code: 'qualita', label: 'Qualità del piano', max_points: 10 }, { code: 'impatto', label: 'Impatto', max_points: 5 }],
          tie_breaks: ['impatto'],
          opens_at: instant(-60), closes_at: new Date(closes).toISOString().replace(/\.\d+Z$/, 'Z'), de_minimis: false,
        } });
        assert.equal(r.status(), 201, await r.text());
        const callId = (await r.json()).id;
        r = await api.post(`${url}/api/v1/orgs/${org}/calls/${callId}/publish`, { headers });
        assert.equal(r.status(), 200, await r.text());
        await admin.context().close();
        list = `/orgs/${org}/calls/${callId}/evaluation`;
        ranking = `/orgs/${org}/calls/${callId}/ranking`;
        // The citizen's companies submit, one per language.
        const citizen = await fresh('it');
        await login(citizen, url, CITIZEN);
        const capi = citizen.context().request;
        for (const [i, lang] of ['it', 'en'].entries()) {
          r = await capi.post(`${url}/api/v1/companies`, { headers, data: {
            name: `Impresa Graduatoria ${lang} S.r.l.`, partita_iva: companyTaxCode(`0555666${i}21`), pec: `graduatoria-${lang}@pec.example.it`,
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
          appPath[lang] = `${list}/${application}`;
        }
        await citizen.context().close();
        // Wait for the call to close.
        await new Promise((done) => setTimeout(done, Math.max(0, closes - Date.now()) + 1500));
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: declaration, scoring, provisional ranking, publication'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the evaluators\' index', `${list.split('/').slice(0, 3).join('/')}/evaluation`);
          await follow(s, 'the call\'s evaluation', `a[href="${list}"]`);
          await go(s, 'an application to declare', appPath[lang]);
          await send(s, 'a declaration without a choice', '#declare-form', {}, 422);
          await step(s, 'a conflict without its reason', async () => {
            await page.click('label[for="f-declare-conflict-yes"]');
          });
          await send(s, 'a conflict without its reason', '#declare-form', { reason: '' }, 422);
          await step(s, 'the choice is kept, the reason in error', async () => {
            assert.equal(await page.isChecked('#f-declare-conflict-yes'), true);
            assert.equal(await page.getAttribute('#f-declare-reason', 'aria-invalid'), 'true');
          });
          await step(s, 'no conflict', async () => {
            await page.click('label[for="f-declare-conflict"]');
          });
          await send(s, 'no conflict declared', '#declare-form', { reason: '' });
          await send(s, 'a score out of range', '#scores-form', { 'points.qualita': '12', 'note.qualita': 'Buon piano', 'points.impatto': '3' }, 422);
          await step(s, 'what was typed is kept', async () => {
            assert.equal(await page.inputValue('#f-scores-points-qualita'), '12');
            assert.equal(await page.inputValue('#f-scores-note-qualita'), 'Buon piano');
            assert.equal(await page.inputValue('#f-scores-points-impatto'), '3');
          });
          await send(s, 'the scores', '#scores-form', { 'points.qualita': lang === 'it' ? '8' : '6', 'note.qualita': 'Buon piano', 'points.impatto': '3' });
          await step(s, 'back on the list, scored', async () => {
            assert.ok(page.url().includes('done=scored'), page.url());
          });
        }, { email: EVALUATOR });

        await sweepBoth(t, async (s) => {
          const { page } = s;
          await go(s, 'the provisional ranking', ranking);
          await step(s, 'the higher score first; the budget funds one', async () => {
            const rows = await page.$$eval('#ranking tbody tr', (trs) => trs.map((tr) => tr.dataset.place));
            assert.deepEqual(rows, ['admitted', 'waiting']);
            const text = await page.textContent('#ranking');
            assert.ok(text.indexOf('Graduatoria it') < text.indexOf('Graduatoria en'), text);
          });
          await go(s, 'the confirmation page', `${ranking}/publish`);
        }, { email: ADMIN });

        await sweepBoth(t, async (s) => {
          // One publication: the Italian sweep confirms it.
          if (s.lang !== 'it') return;
          await go(s, 'the confirmation page, again', `${ranking}/publish`);
          await send(s, 'published', `form[action="${ranking}/publish"]`, {});
        }, { email: ADMIN });

        await sweepBoth(t, async (s) => {
          const { page } = s;
          await go(s, 'the published ranking', ranking);
          await step(s, 'no publish button any more', async () => {
            assert.equal(await page.locator(`a[href="${ranking}/publish"]`).count(), 0);
          });
          await go(s, 'the evaluator\'s list after publication', list);
        }, { email: ADMIN });
      });
    });
  }
});
