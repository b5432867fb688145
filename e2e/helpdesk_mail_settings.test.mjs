// The help desk's mail settings page (/orgs/{org}/helpdesk/mail) in a real browser (Debian's Chromium), on SQLite
// and on PostgreSQL, as the organisation's admin: reached from the help desk settings, a refused form (each error by
// its field, what was typed kept but the password), saved, the delivery token shown once. axe-core on every page and
// state, in Italian and English.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { engines, launchBrowser, startServer, sweeps } from './support.mjs';

const ADMIN = 'admin@regione.example';
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
      test(name('help desk mail settings browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      let org;

      const { signedIn, sweepBoth, go, send, follow } = sweeps({
        browser: () => browser, url: () => url, keys: ['hd', 'hds', 'hdm'],
      });
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const agent = await signedIn(AGENT, 'it');
        await agent.goto(url + '/helpdesk');
        org = (await agent.getAttribute('form[action$="/helpdesk/tickets"]', 'action')).split('/')[2];
        assert.ok(org, 'no organisation in the new-ticket form');
        await agent.context().close();
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: the admin sets the mailbox (refused, then saved) and makes a delivery token seen once'), async (t) => {
        // Both languages save the same values, so that the two sweeps running at once agree on what is stored.
        const good = {
          enabled: true, host: 'imap.regione.example', port: '143', tls: 'starttls', username: 'casella-hd',
          password: 'Segreta-Casella-42', folder: 'INBOX', address: 'helpdesk@regione.example',
        };
        await sweepBoth(t, async (s) => {
          const { page } = s;
          const MAIL = `/orgs/${org}/helpdesk/mail`;
          const FORM = `form[action="${MAIL}"]`;
          await go(s, 'help desk settings', `/orgs/${org}/helpdesk/settings`);
          await follow(s, 'mail settings from the help desk settings', `a[href="${MAIL}"]`);
          await send(s, 'mail settings, wrong on every count', FORM, {
            ...good, host: 'bad host!', port: 'novecento', address: 'non-un-indirizzo',
          }, 422);
          await step(s, 'each error by its field; what was typed is kept, the password is not', async () => {
            for (const f of ['host', 'port', 'address']) assert.ok(await page.isVisible(`#f-${f}-error`), f);
            assert.equal(await page.inputValue('#f-host'), 'bad host!');
            assert.equal(await page.inputValue('#f-port'), 'novecento');
            assert.equal(await page.inputValue('#f-username'), 'casella-hd');
            assert.equal(await page.inputValue('#f-tls'), 'starttls');
            assert.ok(await page.isChecked('#f-enabled'));
            assert.equal(await page.inputValue('#f-password'), '');
            assert.ok(!(await page.content()).includes(good.password), 'the password came back');
          });
          await send(s, 'mail settings, saved', FORM, good);
          await step(s, 'saved: the values read back, the password only as set', async () => {
            assert.ok(await page.isVisible('main [role=status]'));
            assert.equal(await page.inputValue('#f-host'), 'imap.regione.example');
            assert.equal(await page.inputValue('#f-port'), '143');
            assert.equal(await page.inputValue('#f-password'), '');
            assert.ok(!(await page.content()).includes(good.password), 'the password came back');
          });
          const TOKEN = `form[action="${MAIL}/token"]`;
          await send(s, 'delivery token made', TOKEN, {});
          await step(s, 'the token is shown, with the header to send', async () => {
            assert.match((await page.textContent('#hdm-token')).trim(), /^hdm_[0-9a-f]{64}$/);
          });
          await go(s, 'mail settings again', MAIL);
          await step(s, 'the token is not shown again', async () => {
            assert.equal(await page.locator('#hdm-token').count(), 0);
            assert.doesNotMatch(await page.content(), /hdm_[0-9a-f]{64}/);
          });
        }, { email: ADMIN });
      });
    });
  }
});
