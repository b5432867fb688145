// Ticket attachments in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: a requester opens a ticket
// with a file after a first refused try (the file is kept as a pending file of the form, not uploaded twice), the
// ticket page lists it; an agent sees it on the ticket page and downloads it, bytes identical; axe-core on every
// page and state, in Italian and English.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { engines, launchBrowser, startServer, submitForm, sweeps } from './support.mjs';

/** Requesters by language: two employees of Regione Lombardia. */
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

/** A small PNG-like file per language: bytes of every value, NUL included. */
const fileOf = (lang) => {
  const buffer = Buffer.alloc(4096);
  for (let i = 0; i < buffer.length; i += 1) buffer[i] = (i * (lang === 'it' ? 7 : 11)) % 256;
  return { name: `schermata-${lang}.png`, mimeType: 'image/png', buffer };
};
const sha = (b) => createHash('sha256').update(b).digest('hex');

describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('help desk attachments browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      const { sweepBoth, go, send, signedIn } = sweeps({ browser: () => browser, url: () => url, keys: ['hd', 'hdf', 'kb'] });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);
      const NEW = 'form[action$="/helpdesk/tickets"]';
      /** Ticket paths opened by the requester sweep, by language. */
      const opened = {};

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: a requester opens a ticket with a file after a refused try; the file is kept, then attached'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const file = fileOf(lang);
          await go(s, 'help desk', '/helpdesk');
          await step(s, 'the new-ticket form takes files', async () => {
            assert.equal(await page.getAttribute(NEW, 'enctype'), 'multipart/form-data');
            assert.equal(await page.getAttribute('#f-attachments', 'type'), 'file');
            await page.setInputFiles('#f-attachments', file);
          });
          await send(s, 'new ticket with a file, no subject', NEW, { subject: '', body: 'Allego la schermata.' }, 422);
          await step(s, 'the file is kept as a pending file, listed with a remove box; the text stays', async () => {
            assert.equal(await page.locator(`${NEW} input[type=hidden][name=pending]`).count(), 1);
            assert.match(await page.textContent(`${NEW} fieldset`), new RegExp(file.name.replace('.', '\\.')));
            assert.equal(await page.locator(`${NEW} input[type=checkbox][name=remove]`).count(), 1);
            assert.equal(await page.inputValue('#f-body'), 'Allego la schermata.');
            assert.equal(await page.$eval('#f-attachments', (i) => i.files.length), 0, 'nothing to choose again');
          });
          await step(s, 'choose a category', async () => {
            const v = await page.$eval('#f-category', (sel) => [...sel.options].find((o) => o.value)?.value);
            await page.selectOption('#f-category', v);
          });
          await send(s, 'new ticket, done', NEW, { subject: `Schermo nero (${lang})` });
          await step(s, 'the ticket page lists the file once, with its size and type', async () => {
            assert.match(page.url(), /\/helpdesk\/tickets\/[^/?]+\?done=created/);
            opened[lang] = new URL(page.url()).pathname;
            const links = page.locator(`main a[href*="/attachments/"]:has-text("${file.name}")`);
            assert.equal(await links.count(), 1);
            assert.match(await page.textContent('main ol'), /4\.1 kB · image\/png/);
          });
        }, { email: (lang) => REQUESTER[lang] });
      });

      test(name('axe: the agent sees the file on the ticket page and downloads it, bytes identical'), async (t) => {
        assert.equal(Object.keys(opened).length, 2, 'the requester sweep opened no tickets');
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const file = fileOf(lang);
          await go(s, 'the ticket as agent', opened[lang]);
          await step(s, 'download the file', async () => {
            const [download] = await Promise.all([
              page.waitForEvent('download'),
              page.click(`main a[href*="/attachments/"]:has-text("${file.name}")`),
            ]);
            assert.equal(download.suggestedFilename(), file.name);
            const bytes = await readFile(await download.path());
            assert.equal(sha(bytes), sha(file.buffer));
          });
          await step(s, 'the download comes with headers that keep it from running', async () => {
            const href = await page.getAttribute(`main a[href*="/attachments/"]:has-text("${file.name}")`, 'href');
            const r = await page.context().request.get(url + href);
            assert.equal(r.status(), 200);
            assert.equal(r.headers()['content-security-policy'], 'sandbox');
            assert.equal(r.headers()['x-content-type-options'], 'nosniff');
            assert.match(r.headers()['content-disposition'], /^attachment;/);
          });
          await step(s, 'an internal note with a file', async () => {
            await page.setInputFiles('#f-note-attachments', { name: `nota-${lang}.txt`, mimeType: 'text/plain', buffer: Buffer.from('solo agenti') });
          });
          await send(s, 'internal note with a file, no text', 'form[action$="/note"]', { body: '' }, 422);
          await step(s, 'the note\'s file is kept', async () => {
            assert.match(await page.textContent('form[action$="/note"] fieldset'), new RegExp(`nota-${lang}`));
          });
          await send(s, 'internal note, done', 'form[action$="/note"]', { body: 'Allego le istruzioni interne.' });
          await step(s, 'the note lists its file', async () => {
            assert.equal(await page.locator(`main a[href*="/attachments/"]:has-text("nota-${lang}.txt")`).count(), 1);
          });
        }, { email: AGENT });
      });

      test(name('no JavaScript: a refused form keeps the file, the ticket opens with it, the agent downloads it'), async () => {
        const options = { javaScriptEnabled: false };
        const requester = await signedIn('manager@regione.example', 'it', options);
        await requester.goto(url + '/helpdesk');
        const file = { name: 'senza-js.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4\nsenza JavaScript\n') };
        await requester.setInputFiles('#f-attachments', file);
        let response = await submitForm(requester, NEW, { subject: 'Senza JavaScript', body: '' });
        assert.equal(response.status(), 422);
        assert.equal(await requester.locator(`${NEW} input[type=hidden][name=pending]`).count(), 1);
        const cat = await requester.$eval('#f-category', (sel) => [...sel.options].find((o) => o.value)?.value);
        response = await submitForm(requester, NEW, { category: cat, body: 'Il PDF è allegato.' });
        assert.equal(response.status(), 200);
        const path = new URL(requester.url()).pathname;
        const agent = await signedIn(AGENT, 'en', options);
        await agent.goto(url + path);
        const href = await agent.getAttribute('main a:has-text("senza-js.pdf")', 'href');
        const r = await agent.context().request.get(url + href);
        assert.equal(r.status(), 200);
        assert.equal(r.headers()['content-type'], 'application/pdf');
        assert.equal(sha(await r.body()), sha(file.buffer));
        await requester.context().close();
        await agent.context().close();
      });

      test(name('the requester does not see the note\'s file'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          await go(s, 'the ticket as requester', opened[lang]);
          await step(s, 'the public file is listed, the note\'s is not', async () => {
            assert.equal(await page.locator(`main a:has-text("${fileOf(lang).name}")`).count(), 1);
            assert.equal(await page.locator(`main a:has-text("nota-${lang}.txt")`).count(), 0);
          });
        }, { email: (lang) => REQUESTER[lang] });
      });
    });
  }
});
