// The help desk's satisfaction survey and reports in a real browser (Debian's Chromium), on SQLite and on
// PostgreSQL: the requester's prompt (on their page and the ticket page), the survey page refused and done, the
// rating on the ticket as the agent sees it, and the reports page (a refused period, a period with figures). axe-core
// on every page and state, in Italian and English.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engines, launchBrowser, startServer, sweeps } from './support.mjs';

/** Requesters by language (two employees of Regione Lombardia), and the agent who resolves their tickets. */
const REQUESTER = { it: 'dipendente@regione.example', en: 'valutatore@regione.example' };
const AGENT = 'agente@regione.example';
/** The platform operator's agent, who sees the second level. */
const OPERATOR = 'operatore@aria.example';

const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('help desk survey and reports browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      let org;
      /** The resolved ticket of each language's requester (its path). */
      const ticket = {};

      const { signedIn, sweepBoth, go, send, follow } = sweeps({
        browser: () => browser, url: () => url, keys: ['hd', 'hdq', 'hdr'],
      });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const agent = await signedIn(AGENT, 'it');
        await agent.goto(url + '/helpdesk');
        org = (await agent.getAttribute('form[action$="/helpdesk/tickets"]', 'action')).split('/')[2];
        assert.ok(org, 'no organisation in the new-ticket form');
        // Each requester opens a ticket through the page's own form body; the agent resolves it.
        for (const [lang, email] of Object.entries(REQUESTER)) {
          const page = await signedIn(email, lang);
          await page.goto(url + '/helpdesk');
          const path = await page.evaluate(async ({ action, lang }) => {
            const body = new URLSearchParams({ category: 'vpn', subject: `VPN lenta (${lang})`, body: 'Molto lenta' });
            const r = await fetch(action, { method: 'POST', body });
            return new URL(r.url).pathname;
          }, { action: `/orgs/${org}/helpdesk/tickets`, lang });
          assert.match(path, /\/helpdesk\/tickets\/[^/]+$/);
          ticket[lang] = path;
          await page.context().close();
          const status = await agent.evaluate(async (action) => {
            const r = await fetch(action, { method: 'POST', body: new URLSearchParams({ state: 'resolved' }) });
            return r.status;
          }, `${path}/state`);
          assert.equal(status, 200, 'the agent resolves the ticket');
        }
        await agent.context().close();
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: the requester is prompted, rates (refused, then done) and sees the rating'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'help desk with a resolved ticket to rate', '/helpdesk');
          await step(s, 'the prompt lists the ticket', async () => {
            assert.ok(await page.isVisible(`section[aria-labelledby="hdq-prompts-title"] a[href="${ticket[lang]}/satisfaction"]`));
          });
          await go(s, 'ticket page, invited to rate', ticket[lang]);
          await follow(s, 'survey page from the ticket', `a[href="${ticket[lang]}/satisfaction"]`);
          const FORM = `form[action="${ticket[lang]}/satisfaction"]`;
          await send(s, 'survey, no rating', FORM, { comment: 'Commento senza voto' }, 422);
          await step(s, 'the error is tied to the rating; the comment is kept', async () => {
            assert.ok(await page.isVisible('#f-rating-error'));
            assert.equal(await page.inputValue('#f-comment'), 'Commento senza voto');
          });
          await step(s, 'choose 4', async () => {
            await page.click('label[for="f-rating-4"]');
            assert.ok(await page.isChecked('#f-rating-4'));
          });
          await send(s, 'survey, done', FORM, { comment: 'Gentili e veloci' });
          await step(s, 'thanks, and the choice is shown again', async () => {
            assert.ok(await page.isVisible('main [role=status]'));
            assert.ok(await page.isChecked('#f-rating-4'));
          });
          await go(s, 'ticket page with the rating', ticket[lang]);
          await step(s, 'the rating and the comment are shown', async () => {
            assert.match(await page.textContent('section[aria-labelledby="hdq-box-title"]'), /4/);
            assert.match(await page.textContent('section[aria-labelledby="hdq-box-title"]'), /Gentili e veloci/);
          });
        }, { email: (lang) => REQUESTER[lang] });
      });

      test(name('axe: the agent sees the ratings and the reports (a refused period, figures, links to CSV)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'ticket page as agent, rated', ticket[lang]);
          await step(s, 'the agent sees the rating', async () => {
            assert.match(await page.textContent('section[aria-labelledby="hdq-box-title"]'), /Gentili e veloci/);
          });
          await go(s, 'queue', `/orgs/${org}/helpdesk`);
          await step(s, 'the queue links to the reports', async () => {
            assert.equal(await page.locator(`a[href="/orgs/${org}/helpdesk/reports"]`).count(), 1);
          });
          await go(s, 'reports, the default period', `/orgs/${org}/helpdesk/reports`);
          await step(s, 'the default period\'s figures: two opened, two rated', async () => {
            assert.ok(await page.isVisible('#hdr-volume-title'));
            const total = await page.$$eval('section[aria-labelledby="hdr-sat-title"] tfoot td', (tds) => tds.map((td) => td.textContent.trim()));
            assert.deepEqual(total.slice(0, 7), ['2', '4.00', '0', '0', '0', '2', '0']);
          });
          const FORM = `form[action="/orgs/${org}/helpdesk/reports"]`;
          await send(s, 'reports, a period that ends before it starts', FORM, { from: '2025-03-09', to: '2025-03-03' }, 422);
          await step(s, 'the error is tied to the end date', async () => {
            assert.equal(await page.getAttribute('#f-to', 'aria-invalid'), 'true');
          });
          await send(s, 'reports, a past week', FORM, { from: '2025-03-03', to: '2025-03-09' });
          await step(s, 'the CSV links carry the period', async () => {
            const hrefs = await page.$$eval('a[href*="reports.csv"]', (as) => as.map((a) => a.getAttribute('href')));
            assert.equal(hrefs.length, 6);
            assert.ok(hrefs.every((h) => h.includes('from=2025-03-03&to=2025-03-09')), hrefs.join(' '));
          });
          // The last 60 days up to today (an empty end), per ISO week.
          const from = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
          await send(s, 'reports, volume per ISO week', FORM, { from, to: '', granularity: 'week' });
          await step(s, 'the volume per ISO week, this week\'s two tickets in it, and its CSV link', async () => {
            assert.equal(await page.inputValue('#f-granularity'), 'week');
            const rows = await page.$$eval('#hdr-over-time tbody tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent.trim())));
            assert.ok(rows.length >= 2 && rows.every((r) => /^\d{4}-W\d{2}$/.test(r[0])), JSON.stringify(rows.slice(0, 3)));
            assert.equal(rows.reduce((n, r) => n + Number(r[2]), 0), 2, 'two tickets opened in all');
            const volume = await page.getAttribute('a[href*="table=volume"]', 'href');
            assert.match(volume, /granularity=week/);
          });
        }, { email: AGENT });
      });

      test(name('axe: the operator\'s agent sees the second-level reports (a refused period, figures, CSV links)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page } = s;
          await go(s, 'second-level reports', '/helpdesk/escalated/reports');
          await step(s, 'nothing escalated in the default period; the links are the second level\'s', async () => {
            assert.ok(await page.isVisible('#hdr-volume-title'));
            const hrefs = await page.$$eval('a[href*="reports.csv"]', (as) => as.map((a) => a.getAttribute('href')));
            assert.equal(hrefs.length, 6);
            assert.ok(hrefs.every((h) => h.startsWith('/helpdesk/escalated/reports.csv?')), hrefs.join(' '));
          });
          const FORM = 'form[action="/helpdesk/escalated/reports"]';
          await send(s, 'second-level reports, a period that ends before it starts', FORM, { from: '2025-03-09', to: '2025-03-03' }, 422);
          await step(s, 'the error is tied to the end date', async () => {
            assert.equal(await page.getAttribute('#f-to', 'aria-invalid'), 'true');
          });
          await send(s, 'second-level reports, per ISO week', FORM, { from: '2025-03-03', to: '2025-03-16', granularity: 'week' });
          await step(s, 'two weeks, none escalated', async () => {
            const weeks = await page.$$eval('#hdr-over-time tbody th', (ths) => ths.map((th) => th.textContent.trim()));
            assert.deepEqual(weeks, ['2025-W10', '2025-W11']);
          });
        }, { email: OPERATOR });
      });
    });
  }
});
