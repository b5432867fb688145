// The help desk in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: the requester's page (no tickets
// yet, a new ticket with errors and done, the ticket page with a reply), the agents' queue (filters, a bad filter,
// paging) and the ticket page as an agent (reply, internal note, state, assignment, priority, escalation), the
// knowledge base (search and browse, an article with its feedback form, the authors' list and editor). axe-core on
// every page and state, in Italian and English, with each form's error and done state; the flow that matters (a
// requester opens a ticket, an agent answers and adds an internal note, the requester sees the answer and not the
// note), once more without JavaScript.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engines, launchBrowser, startServer, submitForm, sweeps } from './support.mjs';

/** Requesters by language: two employees of Regione Lombardia, so that each sweep starts with no tickets. */
const REQUESTER = { it: 'dipendente@regione.example', en: 'valutatore@regione.example' };
const AGENT = 'agente@regione.example';

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
      test(name('help desk browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      /** Regione Lombardia's id, from the requester's new-ticket form. */
      let org;

      const { signedIn, sweepBoth, go, send, follow } = sweeps({
        browser: () => browser, url: () => url, keys: ['hd', 'kb'],
      });

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const page = await signedIn(AGENT, 'it');
        await page.goto(url + '/helpdesk');
        const action = await page.getAttribute('form[action$="/helpdesk/tickets"]', 'action');
        org = action.split('/')[2];
        await page.context().close();
        assert.ok(org, 'no organisation in the new-ticket form');
        // More tickets than a page of the queue (25), from another employee, for its next-page link: posted by the
        // page itself (same origin, the same form body the new-ticket form sends).
        const filler = await signedIn('formatore@regione.example', 'it');
        await filler.goto(url + '/helpdesk');
        const category = await filler.$eval('#f-category', (sel) => [...sel.options].find((o) => o.value)?.value);
        const statuses = await filler.evaluate(async ({ action, category }) => {
          const out = [];
          for (let i = 1; i <= 26; i += 1) {
            const body = new URLSearchParams({ category, subject: `Richiesta di riempimento ${i}`, body: `Testo ${i}` });
            out.push((await fetch(action, { method: 'POST', body })).status);
          }
          return out;
        }, { action: `/orgs/${org}/helpdesk/tickets`, category });
        assert.ok(statuses.every((st) => st === 200), `filler tickets: ${statuses.join(' ')}`);
        await filler.context().close();
      });

      after(async () => {
        await server?.stop();
      });

      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      const NEW = () => `form[action="/orgs/${org}/helpdesk/tickets"]`;
      const ACT = (a) => `form[action$="/${a}"]`;
      const subjectOf = (lang) => `Stampante guasta (${lang})`;
      /** Ticket paths opened by the requester sweep, by language. */
      const opened = {};

      test(name('axe: the requester\'s help desk (no tickets, new ticket with errors and done, the ticket page, reply)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'help desk, no tickets yet', '/helpdesk');
          await step(s, 'no tickets: no table, the form is there', async () => {
            assert.equal(await page.locator('section[aria-labelledby="hd-mine-title"] table').count(), 0);
            assert.ok(await page.isVisible(`${NEW()} #f-subject`));
          });
          await send(s, 'new ticket, nothing typed', NEW(), {}, 422);
          await step(s, 'new ticket errors: summary, fields tied to their errors', async () => {
            assert.ok(await page.isVisible('#error-summary'));
            assert.equal(await page.getAttribute('#f-subject', 'aria-invalid'), 'true');
            assert.equal(await page.getAttribute('#f-body', 'aria-invalid'), 'true');
          });
          await send(s, 'new ticket, a subject but no text', NEW(), { subject: subjectOf(lang) }, 422);
          await step(s, 'what was typed is kept', async () => {
            assert.equal(await page.inputValue('#f-subject'), subjectOf(lang));
          });
          await step(s, 'choose a category', async () => {
            const v = await page.$eval('#f-category', (sel) => [...sel.options].find((o) => o.value)?.value);
            assert.ok(v, 'no category to choose');
            await page.selectOption('#f-category', v);
          });
          await send(s, 'new ticket, done: the ticket page', NEW(), { subject: subjectOf(lang), body: 'La stampante del piano 3 non stampa.' });
          await step(s, 'the ticket page after opening', async () => {
            assert.match(page.url(), /\/helpdesk\/tickets\/[^/?]+\?done=created/);
            opened[lang] = new URL(page.url()).pathname;
            assert.ok(await page.isVisible('main [role=status]'));
            assert.match(await page.textContent('h1'), new RegExp(subjectOf(lang).replace(/[()]/g, '\\$&')));
            assert.equal(await page.locator(ACT('note')).count(), 0, 'a requester has no agent forms');
          });
          await send(s, 'ticket as requester, empty reply', ACT('reply'), { body: '' }, 422);
          await step(s, 'reply error tied to the field', async () => {
            assert.equal(await page.getAttribute('#f-body', 'aria-invalid'), 'true');
          });
          await send(s, 'ticket as requester, reply done', ACT('reply'), { body: 'Aggiungo: il modello è HP 4250.' });
          await go(s, 'help desk, with a ticket', '/helpdesk');
          await step(s, 'the ticket is listed', async () => {
            assert.ok(await page.isVisible(`section[aria-labelledby="hd-mine-title"] a:has-text("${subjectOf(lang)}")`));
          });
          await follow(s, 'the ticket page from the list', `section[aria-labelledby="hd-mine-title"] a:has-text("${subjectOf(lang)}")`);
        }, { email: (lang) => REQUESTER[lang] });
      });

      test(name('axe: the agents\' queue and the ticket page as an agent (reply, note, state, assign, priority, escalate)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const queue = `/orgs/${org}/helpdesk`;
          await go(s, 'queue', queue);
          await step(s, 'the queue lists the requesters\' tickets', async () => {
            assert.ok(await page.isVisible(`main table a:has-text("${subjectOf(lang)}")`));
          });
          await step(s, 'filter by the first state', async () => {
            const v = await page.$eval('#q-state', (sel) => [...sel.options].find((o) => o.value)?.value);
            await page.selectOption('#q-state', v);
          });
          await send(s, 'queue, filtered by state', `form[action="${queue}"]`, {});
          await send(s, 'queue, only mine', `form[action="${queue}"]`, { state: '', assignee: true });
          await go(s, 'queue, a bad filter', `${queue}?state=bogus&priority=nope`, 422);
          await step(s, 'the bad filter is said', async () => {
            assert.ok(await page.isVisible('main [role=alert]'));
          });
          await go(s, 'queue again', queue);
          // 26 filler tickets and the requesters' two: more than a page (25).
          await follow(s, 'queue, next page', 'nav a[rel=next]');
          await step(s, 'the next page has the rest and a link back to the first', async () => {
            assert.ok((await page.locator('main table tbody tr').count()) >= 1);
            assert.ok(await page.isVisible('nav a:not([rel=next])'));
          });
          await follow(s, 'queue, back to the first page', 'nav a:not([rel=next])');
          await go(s, 'queue, a bad page cursor', `${queue}?after=not-a-cursor`, 422);
          await follow(s, 'ticket as agent', `main table a:has-text("${subjectOf(lang)}")`);
          await send(s, 'agent reply, empty', ACT('reply'), { body: '' }, 422);
          await send(s, 'agent reply, done', ACT('reply'), { body: 'Mandiamo un tecnico domani.' });
          await send(s, 'internal note, empty', ACT('note'), { body: '' }, 422);
          await step(s, 'note error on the note field', async () => {
            assert.equal(await page.getAttribute('#f-note', 'aria-invalid'), 'true');
          });
          await send(s, 'internal note, done', ACT('note'), { body: 'Nota interna: toner finito.' });
          await step(s, 'a state the ticket does not know', async () => {
            await page.$eval('#f-state', (sel) => { sel.add(new Option('???', 'bogus')); sel.value = 'bogus'; });
          });
          await send(s, 'state change, bad state', ACT('state'), {}, 422);
          await step(s, 'choose another state', async () => {
            const v = await page.$eval('#f-state', (sel) => [...sel.options].find((o) => o.value && o.value !== 'bogus' && !o.selected)?.value);
            assert.ok(v, 'no other state');
            await page.selectOption('#f-state', v);
          });
          await send(s, 'state change, done', ACT('state'), {});
          await step(s, 'assign: a bogus agent', async () => {
            if (!(await page.locator(ACT('assign')).count())) return;
            await page.$eval('#f-assignee', (sel) => { sel.add(new Option('???', 'nobody')); sel.value = 'nobody'; });
          });
          if (await page.locator(ACT('assign')).count()) {
            await send(s, 'assign, a bogus agent', ACT('assign'), {}, 422);
            await step(s, 'assign to someone', async () => {
              const v = await page.$eval('#f-assignee', (sel) => [...sel.options].find((o) => o.value && o.value !== 'nobody')?.value);
              await page.selectOption('#f-assignee', v);
            });
            await send(s, 'assign, done', ACT('assign'), {});
            await step(s, 'priority: choose another', async () => {
              const v = await page.$eval('#f-priority', (sel) => [...sel.options].find((o) => o.value && !o.selected)?.value);
              await page.selectOption('#f-priority', v);
            });
            await send(s, 'priority, done', ACT('priority'), {});
          } else {
            s.log.notes.push(`[${lang}] no assign/priority forms after the state change`);
          }
          if (await page.locator(ACT('escalate')).count()) {
            await send(s, 'escalate, no reason', ACT('escalate'), { reason: '' }, 422);
            await send(s, 'escalate, done', ACT('escalate'), { reason: 'Ufficio senza stampanti da due giorni.' });
          } else {
            s.log.notes.push(`[${lang}] no escalate form for ${AGENT}`);
          }
        }, { email: AGENT });
      });

      const KB_TITLE = (lang) => `Come collegare la stampante (${lang})`;

      test(name('axe: the knowledge base authors\' list and editor (errors keep the text, preview, publish)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const base = `/orgs/${org}/helpdesk/kb`;
          await go(s, 'KB authors, list', base);
          await follow(s, 'KB new article', `a[href="${base}/new"]`);
          await send(s, 'KB new, nothing typed', `form[action="${base}"]`, {}, 422);
          await send(s, 'KB new, a body but no title', `form[action="${base}"]`, { title: '', body: 'Apri **Impostazioni**.' }, 422);
          await step(s, 'the typed body is kept', async () => {
            assert.equal(await page.inputValue('#f-body'), 'Apri **Impostazioni**.');
          });
          await step(s, 'choose a category', async () => {
            const v = await page.$eval('#f-category', (sel) => [...sel.options].find((o) => o.value)?.value);
            assert.ok(v, 'no category to choose');
            await page.selectOption('#f-category', v);
          });
          await send(s, 'KB new, done: the editor with preview', `form[action="${base}"]`, {
            title: KB_TITLE(lang), tags: 'stampante, rete', body: `# Stampante\n\nApri **Impostazioni** e scegli *Stampanti* (${lang}).\n\n- uno\n- due`,
          });
          await step(s, 'the preview shows the body as HTML', async () => {
            assert.ok(await page.isVisible('section[aria-labelledby="kb-preview-title"] strong'));
          });
          await send(s, 'KB edit, title emptied', `form[action^="${base}/"]:has(#f-title)`, { title: '' }, 422);
          await step(s, 'the typed body is kept on the edit error', async () => {
            assert.match(await page.inputValue('#f-body'), /Impostazioni/);
          });
          await send(s, 'KB edit, saved', `form[action^="${base}/"]:has(#f-title)`, { title: KB_TITLE(lang) });
          await send(s, 'KB publish', ACT('publish'), {});
          await go(s, 'KB authors, list with articles', base);
        }, { email: AGENT });
      });

      test(name('axe: the knowledge base for readers (browse, search with and without results, article, feedback)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'KB, browse (no query)', '/helpdesk/kb');
          await go(s, 'KB, a query with results', `/helpdesk/kb?q=${encodeURIComponent('stampante')}`);
          await step(s, 'the article is found', async () => {
            assert.ok(await page.isVisible(`section[aria-labelledby="kb-results"] a:has-text("${KB_TITLE(lang)}")`));
          });
          await go(s, 'KB, a query with none', `/helpdesk/kb?q=${encodeURIComponent('zzzqqqxxx')}`);
          await go(s, 'KB, search form again', '/helpdesk/kb');
          await send(s, 'KB, search by the form', 'form[role=search]', { q: 'Impostazioni' });
          await follow(s, 'KB article', `a:has-text("${KB_TITLE(lang)}")`);
          await send(s, 'KB feedback, nothing chosen', 'form[action$="/feedback"]', {}, 422);
          await step(s, 'choose "no" (a click on its label, as a person would)', async () => {
            await page.click('label[for="f-helpful-no"]');
            assert.ok(await page.isChecked('#f-helpful-no'));
          });
          await send(s, 'KB feedback, done', 'form[action$="/feedback"]', { comment: 'Manca il passo per Windows.' });
          await step(s, 'feedback thanks', async () => {
            assert.ok(await page.isVisible('#feedback [role=status]'));
          });
        }, { email: (lang) => REQUESTER[lang] });
      });

      // -------------------------------------------------------------------------------------------------------------
      // The flow.

      async function flow(options = {}) {
        const subject = `Accesso VPN negato ${options.javaScriptEnabled === false ? '(no js)' : ''}`.trim();
        const requester = await signedIn('manager@regione.example', 'it', options);
        await requester.goto(url + '/helpdesk');
        const cat = await requester.$eval('#f-category', (sel) => [...sel.options].find((o) => o.value)?.value);
        let response = await submitForm(requester, NEW(), { category: cat, subject, body: 'Non riesco a collegarmi alla VPN.' });
        assert.equal(response.status(), 200);
        const path = new URL(requester.url()).pathname;

        const agent = await signedIn(AGENT, 'en', options);
        await agent.goto(`${url}/orgs/${org}/helpdesk`);
        const [r] = await Promise.all([agent.waitForNavigation(), agent.click(`main table a:has-text("${subject}")`)]);
        assert.equal(r.status(), 200);
        assert.equal(new URL(agent.url()).pathname, path);
        response = await submitForm(agent, ACT('reply'), { body: 'Abbiamo rinnovato il suo certificato: riprovi.' });
        assert.equal(response.status(), 200);
        response = await submitForm(agent, ACT('note'), { body: 'SEGRETO: il certificato era scaduto da un mese.' });
        assert.equal(response.status(), 200);
        assert.match(await agent.textContent('section[aria-labelledby="hd-thread-title"]'), /SEGRETO/);

        await requester.goto(url + path);
        const thread = await requester.textContent('section[aria-labelledby="hd-thread-title"]');
        assert.match(thread, /rinnovato il suo certificato/, 'the requester sees the answer');
        assert.doesNotMatch(thread, /SEGRETO/, 'the requester does not see the internal note');
        assert.doesNotMatch(await requester.content(), /SEGRETO|scaduto da un mese/, 'nor anywhere in the page');
        // And in the list, the ticket is there.
        await requester.goto(url + '/helpdesk');
        assert.ok(await requester.isVisible(`section[aria-labelledby="hd-mine-title"] a:has-text("${subject}")`));
        await requester.context().close();
        await agent.context().close();
      }

      test(name('axe: the help desk settings and canned responses (errors keep what was typed, saved, a canned response put in a reply)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const base = `/orgs/${org}/helpdesk`;
          const SETTINGS = `form[action="${base}/settings"]`;
          const CANNED = `form[action="${base}/canned"]`;
          await go(s, 'help desk settings', `${base}/settings`);
          await send(s, 'settings, a threshold over 100 and a closing before the opening', SETTINGS,
            { warning_percent: '150', 'calendar.monday.0.end': '08:00' }, 422);
          await step(s, 'settings errors: what was typed is kept', async () => {
            assert.equal(await page.inputValue('#f-warning_percent'), '150');
            assert.equal(await page.getAttribute('#f-warning_percent', 'aria-invalid'), 'true');
          });
          await send(s, 'settings, saved', SETTINGS, { warning_percent: '75', 'calendar.monday.0.end': '13:00' });
          await go(s, 'canned responses', `${base}/canned`);
          await send(s, 'canned response, nothing typed', CANNED, { title: '', body: '' }, 422);
          const title = `Riavvio del PC (${lang})`;
          await send(s, 'canned response, saved', CANNED, { title, body: 'Gentile {{requester_name}}, riavvii il PC e ci scriva sul ticket {{ticket}}.' });
          await go(s, 'the queue', base);
          await follow(s, 'a ticket as the admin', 'main table a[href*="/helpdesk/tickets/"]');
          await step(s, 'choose the canned response', async () => {
            const v = await page.$eval('#f-canned', (sel, t) => [...sel.options].find((o) => o.textContent.trim() === t)?.value, title);
            assert.ok(v, `no canned response "${title}" to choose`);
            await page.selectOption('#f-canned', v);
          });
          await send(s, 'canned response put in the reply box', 'form[method="get"]:has(#f-canned)', {});
          await step(s, 'the reply box holds the text with the placeholders filled', async () => {
            const text = await page.locator('form[action$="/reply"] textarea').first().inputValue();
            assert.match(text, /riavvii il PC e ci scriva sul ticket #\d+\./);
            assert.doesNotMatch(text, /\{\{/);
          });
        }, { email: 'admin@regione.example' });
      });

      test(name('flow: a requester opens a ticket, an agent answers and adds a note, the requester sees the answer and not the note'), async () => {
        await flow();
      });

      test(name('no JavaScript: the same flow'), async () => {
        await flow({ javaScriptEnabled: false });
      });
    });
  }
});
