// The shell in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: sign in, switch language and
// organisation, activate a service for an organisation, the keyboard's first stop, narrow screens; and axe-core
// on every page of the shell, in Italian and English, signed out and as each role, with each form's error state.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import {
  A11yLog, PASSWORD, checkA11y, companyTaxCode, engines, launchBrowser, login, newPage, setLang, startServer,
  submitForm, sweeps, totpCode,
} from './support.mjs';

// Screenshots for a person to look at (AGILEKIT_E2E_SHOTS=1): layout problems axe cannot see.
const SHOTS = process.env.AGILEKIT_E2E_SHOTS ? '/tmp/e2e-shots' : null;

const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

test('[harness] axe reports what it finds (a page with an unlabelled field and an image without text)', async () => {
  const page = await newPage(browser);
  await page.setContent('<!doctype html><html lang="it"><head><title>t</title></head><body><main><h1>t</h1>'
    + '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input type="text"></main></body></html>');
  const log = new A11yLog();
  await log.check(page, 'broken on purpose');
  assert.match(log.problems.join('\n'), /image-alt/);
  assert.match(log.problems.join('\n'), /label/);
  await assert.rejects(checkA11y(page), /accessibility violation/);
  await page.context().close();
});

// The engines side by side (one server each, one browser for both); within an engine the tests run one after
// the other (they share its data).
describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      /** Organisation ids by IPA code (r_lombar, arpa_lom, arifl, c_b157, …). */
      const org = {};

      const { fresh, signedIn, sweepBoth, go, send, follow } = sweeps({
        browser: () => browser, url: () => url, keys: ['account', 'admin', 'audit', 'join', 'login', 'oidc', 'nav', 'home', 'service', 'label'], homeCheck: true,
      });

      before(async () => {
        server = await startServer({ engine });
        url = server.url;
        const page = await signedIn('operatore@aria.example', 'it');
        await page.goto(url + '/admin/orgs');
        Object.assign(org, await page.$$eval('section[aria-labelledby="orgs-tree-title"] li', (items) => Object.fromEntries(
          items.map((li) => [li.querySelector(':scope > span .ak-mono').textContent.trim(), li.querySelector(':scope > a').getAttribute('href').split('/')[2]]),
        )));
        await page.context().close();
        for (const ipa of ['r_lombar', 'arpa_lom', 'arifl', 'c_b157']) assert.ok(org[ipa], `no ${ipa} in /admin/orgs: ${JSON.stringify(org)}`);
      });

      after(async () => {
        await server?.stop();
      });

      test(name('axe: signed-out pages and their forms\' error and done states'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { lang } = s;
          // Different people per language: a new reset link may void the previous one.
          const who = lang === 'it' ? 'cittadino@example.it' : 'manager@regione.example';
          const n = lang === 'it' ? 1 : 2;
          await go(s, 'home', '/');
          await go(s, 'login', '/login');
          await send(s, 'login, nothing typed', 'form[action="/login"]', {}, 422);
          await s.log.step(`[${lang}] login, nothing typed: the errors are tied to their fields`, async () => {
            assert.equal(await s.page.getAttribute('#f-email', 'aria-describedby'), 'f-email-error');
            assert.ok(await s.page.isVisible('#f-email-error'));
          }, s.page);
          await send(s, 'login, wrong password', 'form[action="/login"]', { email: who, password: 'non-la-password' }, 401);
          await go(s, 'login, after a password reset', '/login?notice=password-changed');
          await go(s, 'forgot password', '/password/forgot');
          await send(s, 'forgot password, bad email', 'form[action="/password/forgot"]', { email: 'non-una-email' }, 422);
          await send(s, 'forgot password, link sent', 'form[action="/password/forgot"]', { email: who });
          let secret;
          await s.log.step(`[${lang}] the reset link in the outbox`, async () => {
            let rows;
            try {
              rows = await server.sql(
                `SELECT payload FROM jobs WHERE kind = 'mail' AND payload LIKE '%${who}%' AND payload LIKE '%/password/reset/%' ORDER BY created_at DESC LIMIT 1`,
              );
            } catch (err) {
              // The database's own CLI is how the link is read; without it only the unknown-link page is checked.
              if (err.code !== 'ENOENT') throw err;
              s.log.notes.push(`[${lang}] the reset form was not checked: ${err.message}`);
              return;
            }
            secret = /\/password\/reset\/([A-Za-z0-9_-]+)/.exec(rows.join('\n'))?.[1];
            assert.ok(secret, `no reset link queued for ${who}: ${rows}`);
          });
          if (secret) {
            await go(s, 'reset password', `/password/reset/${secret}`);
            await send(s, 'reset password, passwords differ', `form[action="/password/reset/${secret}"]`,
              { password: 'una-password-nuova-e-lunga', password_confirm: 'un-altra-password-lunga' }, 422);
          }
          await go(s, 'reset password, unknown link', `/password/reset/${'x'.repeat(43)}`, 410);
          await go(s, 'join', '/join');
          await send(s, 'join, nothing typed', 'form[action="/join"]', {}, 422);
          await send(s, 'join, request sent', 'form[action="/join"]', {
            org_name: `Comune di Prova ${lang}`,
            ipa_code: `c_e2e${n}`,
            tax_code: companyTaxCode(`0${n}00000000`),
            pec: `protocollo@pec.prova${n}.example`,
            contact_name: 'Mario Rossi',
            contact_email: `mario.rossi${n}@prova.example`,
            services: true,
          });
          await go(s, 'sign-in with a provider, refused', '/auth/oidc/callback?state=forged&code=forged', 400);
          await go(s, 'accessibility statement', '/accessibility');
          await go(s, 'unknown page', '/no/such/page', 404);
        });
      });

      test(name('axe: an employee\'s pages (organisation, account: profile, password, API tokens)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { lang } = s;
          await go(s, 'organisation, as an employee', `/orgs/${org.r_lombar}`);
          await go(s, 'account', '/account');
          await send(s, 'account, profile errors', 'form[action="/account/profile"]', { display_name: '', tax_code: 'non-valido' }, 422);
          await send(s, 'account, profile saved', 'form[action="/account/profile"]', { display_name: 'Sara Dipendente', tax_code: '' });
          await send(s, 'account, password errors', 'form[action="/account/password"]', {}, 422);
          await send(s, 'account, token without a name', 'form[action="/account/tokens"]', {}, 422);
          await send(s, 'account, token created', 'form[action="/account/tokens"]', { token_name: `e2e ${lang}` });
          await go(s, 'account, with a token', '/account');
          await send(s, 'account, token revoked', `form[action^="/account/tokens/"]:has-text("e2e ${lang}")`, {});
          await go(s, 'a page for platform admins only', '/admin/orgs', [403, 404]);
        }, { email: 'dipendente@regione.example' });
      });

      // Turning the second factor on is one-way here (turning it off needs a code of a later 30 s step).
      const totpUser = (lang) => (lang === 'it' ? 'formatore@regione.example' : 'valutatore@regione.example');

      test(name('axe: two-factor authentication: setup, errors, the second step of a login'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, log, lang } = s;
          const email = totpUser(lang);
          await go(s, 'account, two-factor off', '/account');
          await send(s, 'two-factor setup', 'form[action="/account/totp/setup"]', {});
          let secret = '';
          await log.step(`[${lang}] the secret on the setup page`, async () => {
            secret = (await page.textContent('#totp-secret')).replace(/\s/g, '');
          }, page);
          if (!secret) return;
          const wrong = (code) => (code === '000000' ? '111111' : '000000');
          await send(s, 'two-factor setup, wrong code', 'form[action="/account/totp/enable"]', { code: wrong(totpCode(secret)) }, 422);
          await send(s, 'two-factor on', 'form[action="/account/totp/enable"]', { code: totpCode(secret) });
          await send(s, 'account, two-factor code missing to turn it off', 'form[action="/account/totp/disable"]', {}, 422);
          await log.step(`[${lang}] sign out and in again`, async () => {
            await submitForm(page, 'form[action="/logout"]');
            const response = await login(page, url, email);
            await log.check(page, `[${lang}] login, second step`, { response, status: 200, lang });
            assert.equal(new URL(page.url()).pathname, '/login/totp');
          }, page);
          // A code works once: the one that turned the second factor on is spent, so sign in with the next one.
          const next = totpCode(secret, Date.now() / 1000 + 30);
          await send(s, 'login, second step, wrong code', 'form[action="/login/totp"]', { code: wrong(next) }, 422);
          await send(s, 'login, second step passed', 'form[action="/login/totp"]', { code: next });
          await log.step(`[${lang}] signed in after the second step`, async () => {
            assert.ok(await page.isVisible('form[action="/logout"]'), `not signed in at ${page.url()}`);
          }, page);
        }, { email: totpUser });
      });

      test(name('axe: an organisation admin\'s pages (dashboard, members, audit log, sign-in providers)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { lang } = s;
          const rl = org.r_lombar;
          await go(s, 'organisation, as its admin', `/orgs/${rl}`);
          await go(s, 'second organisation, as its admin', `/orgs/${org.arpa_lom}`);
          await send(s, 'service request, nothing chosen', `form[action="/orgs/${org.arpa_lom}/services"]`, {}, 422);
          await go(s, 'members', `/orgs/${rl}/members`);
          await send(s, 'members, add with a bad email', `form[action="/orgs/${rl}/members"]`, { email: 'non-una-email' }, 422);
          await send(s, 'members, added', `form[action="/orgs/${rl}/members"]`,
            { email: `nuovo.${lang}@regione.example`, display_name: `Nuovo Collega ${lang}` });
          await send(s, 'members, grant with no role chosen', `form[action$="/roles"]`, {}, 422);
          await follow(s, 'members, revoke confirmation', 'a[href*="/revoke?role="]');
          await go(s, 'audit log', `/orgs/${rl}/audit`);
          await go(s, 'audit log, bad filters', `/orgs/${rl}/audit?from=2026-02-30&actor=non-una-email`, 422);
          await go(s, 'sign-in providers', `/orgs/${rl}/oidc`);
          await send(s, 'sign-in providers, nothing typed', `form[action="/orgs/${rl}/oidc"]`, {}, 422);
          await send(s, 'sign-in providers, added', `form[action="/orgs/${rl}/oidc"]`, {
            display_name: `IdP di prova ${lang}`,
            issuer: 'https://idp.example.org',
            client_id: `agilekit-${lang}`,
            client_secret: 'un-segreto-di-prova',
          });
          await follow(s, 'sign-in provider, delete confirmation', `tr:has-text("IdP di prova ${lang}") a[href$="/delete"]`);
          await send(s, 'sign-in provider, deleted', 'main form[action$="/delete"]', {});
        }, { email: 'admin@regione.example' });
      });

      test(name('axe: HR\'s read-only organisation pages'), async (t) => {
        await sweepBoth(t, async (s) => {
          const rl = org.r_lombar;
          await go(s, 'organisation, as HR', `/orgs/${rl}`);
          await go(s, 'members, read-only', `/orgs/${rl}/members`);
          await go(s, 'sign-in providers, read-only', `/orgs/${rl}/oidc`);
          await go(s, 'audit log, as HR', `/orgs/${rl}/audit`);
        }, { email: 'hr@regione.example' });
      });

      test(name('axe: the platform admin\'s pages (organisations, onboarding, catalogue, audit, providers, quotas)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { log, lang } = s;
          const n = lang === 'it' ? 3 : 4;
          await go(s, 'organisations', '/admin/orgs');
          await go(s, 'new organisation', '/admin/orgs/new');
          await send(s, 'new organisation, nothing typed', 'form[action="/admin/orgs/new"]', {}, 422);
          await send(s, 'new organisation, created', 'form[action="/admin/orgs/new"]', {
            name: `Ente di prova ${lang}`,
            ipa_code: `e2e_ente${n}`,
            tax_code: companyTaxCode(`0${n}00000000`),
            parent_id: org.r_lombar,
          });
          await go(s, 'edit organisation', `/admin/orgs/${org.c_b157}/edit`);
          await send(s, 'edit organisation, name missing', `form[action="/admin/orgs/${org.c_b157}/edit"]`, { name: '' }, 422);
          await log.step(`[${lang}] a request to join, to review`, async () => {
            const other = await fresh(lang);
            await other.goto(url + '/join');
            await submitForm(other, 'form[action="/join"]', {
              org_name: `Unione dei Comuni ${lang}`,
              ipa_code: `u_e2e${n}`,
              tax_code: companyTaxCode(`0${n}11111111`),
              pec: `protocollo@pec.unione${n}.example`,
              contact_name: 'Lucia Bianchi',
              contact_email: `lucia.bianchi${n}@unione.example`,
              services: true,
            });
            assert.equal(new URL(other.url()).pathname, '/join/thanks');
            await other.context().close();
          });
          await go(s, 'onboarding requests', '/admin/onboarding');
          const request = `li[id^="request-"]:has-text("Unione dei Comuni ${lang}")`;
          await send(s, 'onboarding, reject without a note', `${request} form[action$="/reject"]`, {}, 422);
          await send(s, 'onboarding, approved', `${request} form[action$="/approve"]`, {});
          await go(s, 'catalogue', '/admin/catalogue');
          // Each language toggles its own service, twice: the catalogue ends as it began.
          const row = `tbody tr:nth-last-child(${lang === 'it' ? 1 : 2}) form`;
          await send(s, 'catalogue, service toggled', row, {});
          await send(s, 'catalogue, service toggled back', row, {});
          await go(s, 'audit log, everything', '/admin/audit');
          await go(s, 'audit log, everything, bad date', '/admin/audit?to=31/12/2026', 422);
          await go(s, 'public sign-in providers', '/admin/oidc');
          await send(s, 'public sign-in providers, nothing typed', 'form[action="/admin/oidc"]', {}, 422);
          await send(s, 'public sign-in providers, added', 'form[action="/admin/oidc"]', {
            display_name: `SPID di prova ${lang}`,
            issuer: 'https://spid.example.org',
            client_id: `agilekit-public-${lang}`,
            client_secret: 'un-segreto-di-prova',
          });
          await log.step(`[${lang}] the login page, with a public provider to sign in with`, async () => {
            const other = await fresh(lang);
            const response = await other.goto(url + '/login');
            assert.ok(await other.isVisible(`a:has-text("SPID di prova ${lang}")`), 'the provider is not offered on /login');
            await log.check(other, `[${lang}] login with sign-in providers`, { response, status: 200, lang });
            await other.context().close();
          });
          const provider = `tr:has-text("SPID di prova ${lang}")`;
          await send(s, 'public sign-in provider, disabled', `${provider} form[action$="/enabled"]`, {});
          await follow(s, 'public sign-in provider, delete confirmation', `${provider} a[href$="/delete"]`);
          await go(s, 'organisation with a requested service, as the operator', `/orgs/${org.arifl}`);
          await go(s, 'organisation with active services, as the operator', `/orgs/${org.c_b157}`);
          const quota = `form[action^="/orgs/${org.c_b157}/services/remote_access/quotas/"]`;
          await send(s, 'quota, negative', quota, { vpn_seats: '-5' }, 422);
          await send(s, 'quota, set', quota, { vpn_seats: '150' });
          await go(s, 'members of an organisation, as the operator', `/orgs/${org.r_lombar}/members`);
        }, { email: 'operatore@aria.example' });
      });

      // -------------------------------------------------------------------------------------------------
      // Flows, each in a fresh context.

      test(name('sign in, switch language and organisation, sign out'), async () => {
        const page = await fresh('it');
        await login(page, url, 'admin@regione.example');
        await setLang(page, 'it', { force: true });
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

      test(name('login: a wrong password is refused keeping the email, then the right one signs in'), async () => {
        const page = await fresh('it');
        await page.goto(url + '/login');
        let response = await submitForm(page, 'form[action="/login"]', { email: 'admin@comune.example', password: 'password-sbagliata' });
        assert.equal(response.status(), 401);
        assert.match(await page.textContent('main [role=alert]'), /Email o password non corretti/);
        assert.equal(await page.inputValue('#f-email'), 'admin@comune.example');
        assert.equal(await page.inputValue('#f-password'), '', 'the password must never come back');
        assert.equal(await page.isVisible('form[action="/logout"]'), false);

        response = await submitForm(page, 'form[action="/login"]', { password: PASSWORD });
        assert.equal(response.status(), 200);
        assert.equal(new URL(page.url()).pathname, '/');
        assert.match(await page.textContent('h1'), /Benvenuto, Roberto Sindaco/);
        assert.match(await page.textContent('main'), /Comune di Brescia/);
        assert.ok(await page.isVisible('form[action="/logout"]'));
        await page.context().close();
      });

      test(name('language: the header button switches the page and <html lang>, and the choice sticks'), async () => {
        const page = await fresh('it');
        await page.goto(url + '/login');
        assert.equal(await page.getAttribute('html', 'lang'), 'it');
        assert.equal((await page.textContent('h1')).trim(), 'Accedi');

        await Promise.all([page.waitForNavigation(), page.click('form[action="/lang"] button[lang="en"]')]);
        assert.equal(new URL(page.url()).pathname, '/login', 'the switch comes back to the same page');
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        assert.equal((await page.textContent('h1')).trim(), 'Sign in');
        assert.equal((await page.textContent('form[action="/lang"] button')).trim(), 'Italiano');

        // The next page (by a link), and signing in, keep English although the browser asks for Italian.
        await Promise.all([page.waitForNavigation(), page.click('nav a[href="/join"]')]);
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        assert.equal((await page.textContent('h1')).trim(), 'Join the kit');
        await login(page, url, 'admin@arpa.example');
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        assert.match(await page.textContent('h1'), /Welcome, Chiara Ambiente/);

        // Signed in, the choice is the account's: it holds in a new browser too, until switched back.
        await Promise.all([page.waitForNavigation(), page.click('form[action="/lang"] button[lang="it"]')]);
        assert.equal(await page.getAttribute('html', 'lang'), 'it');
        assert.match(await page.textContent('h1'), /Benvenuto, Chiara Ambiente/);
        await page.context().close();
        const other = await fresh('en');
        await login(other, url, 'admin@arpa.example');
        assert.equal(await other.getAttribute('html', 'lang'), 'it', 'the account\'s language wins over the browser\'s');
        await other.context().close();
      });

      test(name('organisation: the header switcher shows the other organisation\'s dashboard'), async () => {
        const page = await signedIn('admin@regione.example', 'it');
        await page.goto(`${url}/orgs/${org.r_lombar}`);
        assert.equal((await page.textContent('h1')).trim(), 'Regione Lombardia');
        assert.deepEqual(
          await page.$$eval('#org-switch option', (os) => os.map((o) => o.textContent.trim()).sort()),
          ['ARPA Lombardia', 'Regione Lombardia'],
        );

        await page.selectOption('#org-switch', org.arpa_lom);
        await Promise.all([page.waitForNavigation(), page.click('form[action="/session/org"] button[type=submit]')]);
        assert.equal(new URL(page.url()).pathname, `/orgs/${org.arpa_lom}`);
        assert.equal((await page.textContent('h1')).trim(), 'ARPA Lombardia');
        assert.equal(await page.inputValue('#org-switch'), org.arpa_lom);
        assert.equal(await page.getAttribute('nav a[href^="/orgs/"]', 'href'), `/orgs/${org.arpa_lom}`);
        await page.goto(url + '/');
        assert.match(await page.textContent('main .lead'), /Stai lavorando per: ARPA Lombardia/);

        // Away from an organisation's pages, switching stays on the same page.
        await page.selectOption('#org-switch', org.r_lombar);
        await Promise.all([page.waitForNavigation(), page.click('form[action="/session/org"] button[type=submit]')]);
        assert.equal(new URL(page.url()).pathname, '/');
        assert.match(await page.textContent('main .lead'), /Stai lavorando per: Regione Lombardia/);
        await page.context().close();
      });

      test(name('service: the platform admin activates ARIFL\'s requested help desk and sets its quota'), async () => {
        const page = await signedIn('operatore@aria.example', 'it');
        const usingHelpdesk = async () => {
          await page.goto(url + '/admin/catalogue');
          return Number(await page.textContent('tr:has(th:text-is("Help desk")) td:nth-of-type(2)'));
        };
        const before = await usingHelpdesk();
        await page.goto(`${url}/orgs/${org.arifl}`);
        const svc = '#service-helpdesk';
        assert.match(await page.textContent(`${svc} .badge`), /Richiesto/);

        let response = await submitForm(page, `${svc} form[action$="/state"]`);
        assert.equal(response.status(), 200);
        assert.equal(new URL(page.url()).pathname, `/orgs/${org.arifl}`);
        assert.match(await page.textContent('main [role=status]'), /Stato del servizio aggiornato/);
        assert.match(await page.textContent(`${svc} .badge`), /Attivo/);
        assert.match(await page.textContent(`${svc} form[action$="/state"] button`), /Sospendi/);

        response = await submitForm(page, `${svc} form[action$="/quotas/agents"]`, { agents: '25' });
        assert.equal(response.status(), 200);
        assert.match(await page.textContent('main [role=status]'), /Quota aggiornata/);
        assert.equal(await page.getAttribute(`${svc} progress`, 'max'), '25');
        assert.match(await page.textContent(svc), /25/);
        assert.equal(await page.inputValue(`${svc} input[name=agents]`), '25');
        await checkA11y(page);

        // The catalogue counts one more organisation using the help desk.
        assert.equal(await usingHelpdesk(), before + 1);
        await page.context().close();
      });

      test(name('service: an org admin requests one, the platform admin activates it, the org admin sees it active'), async () => {
        const arpa = org.arpa_lom;
        const admin = await signedIn('admin@arpa.example', 'it');
        await admin.goto(`${url}/orgs/${arpa}`);
        assert.equal(await admin.isVisible('#service-workstations'), false);
        assert.equal(await admin.isVisible('form[action$="/state"]'), false, 'only the operator changes a state');
        let response = await submitForm(admin, `form[action="/orgs/${arpa}/services"]`, { service: 'workstations' });
        assert.equal(response.status(), 200);
        assert.match(await admin.textContent('main [role=status]'), /Richiesta inviata/);
        assert.match(await admin.textContent('#service-workstations .badge'), /Richiesto/);

        const operator = await signedIn('operatore@aria.example', 'it');
        await operator.goto(`${url}/orgs/${arpa}`);
        response = await submitForm(operator, '#service-workstations form[action$="/state"]');
        assert.equal(response.status(), 200);
        assert.match(await operator.textContent('#service-workstations .badge'), /Attivo/);
        await operator.context().close();

        await admin.reload();
        assert.match(await admin.textContent('#service-workstations .badge'), /Attivo/);
        await admin.goto(url + '/');
        assert.match(await admin.textContent('main ul'), /Postazioni remote/);
        await admin.context().close();
      });

      test(name('keyboard: the skip link is the first Tab stop and takes focus to the main content'), async () => {
        for (const path of ['/', '/login']) {
          const page = await fresh('it');
          await page.goto(url + path);
          await page.keyboard.press('Tab');
          const first = await page.evaluate(() => {
            const el = document.activeElement;
            const box = el.getBoundingClientRect();
            return { text: el.textContent.trim(), href: el.getAttribute('href'), width: box.width, height: box.height };
          });
          assert.equal(first.text, 'Vai al contenuto principale', `first Tab stop on ${path}`);
          assert.equal(first.href, '#main');
          assert.ok(first.width > 10 && first.height > 10, `the focused skip link is visible: ${JSON.stringify(first)}`);
          await page.keyboard.press('Enter');
          await page.waitForFunction(() => location.hash === '#main');
          const focus = await page.evaluate(() => document.activeElement.id);
          assert.equal(focus, 'main', 'focus is on <main>');
          // And the next Tab goes on inside the main content, not back to the header.
          await page.keyboard.press('Tab');
          assert.ok(await page.evaluate(() => !!document.activeElement.closest('main')), 'the next Tab stop is inside <main>');
          await page.context().close();
        }
      });

      test(name('narrow screens: at 375 px nothing runs off the side and axe passes'), async () => {
        if (SHOTS) await mkdir(SHOTS, { recursive: true });
        // axe too: a narrow screen has failures of its own (a scrolling table box must be reachable by keyboard).
        const log = new A11yLog();
        const look = async (page, path, who) => {
          const response = await page.goto(url + path);
          await log.check(page, `375px ${path} (${who})`, { response, status: 200, lang: 'it' });
          // A table may scroll inside its .table-responsive box; the page itself must not scroll sideways.
          const wide = await page.evaluate(() => {
            const w = window.innerWidth;
            if (document.documentElement.scrollWidth <= w + 1) return null;
            const out = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > w + 1);
            // What sticks out of a table's scrolling box (absolutely positioned) rather than scrolling inside it.
            const escaped = out.filter((el) => {
              const box = el.closest('.table-responsive');
              return !box || (getComputedStyle(el).position === 'absolute' && getComputedStyle(box).position === 'static');
            });
            return escaped.slice(0, 4).map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}`)
              .concat(`${document.documentElement.scrollWidth}px`);
          });
          if (wide) log.problems.push(`375px ${path} (${who}): wider than the screen: ${wide.join(', ')}`);
          if (SHOTS) {
            const file = (w) => `${SHOTS}/${engine.name}-${w}-${who}${path.replace(/[0-9a-f-]{36}/g, 'ID').replace(/\W+/g, '_')}.png`;
            await page.screenshot({ path: file(375), fullPage: true });
            await page.setViewportSize({ width: 1280, height: 800 });
            await page.screenshot({ path: file(1280), fullPage: true });
            await page.setViewportSize({ width: 375, height: 800 });
          }
        };
        const narrow = { viewport: { width: 375, height: 800 } };
        const rl = org.r_lombar;
        const pages = [
          [null, 'out', ['/', '/login', '/join']],
          ['admin@regione.example', 'orgadmin', ['/', `/orgs/${rl}`, `/orgs/${rl}/members`, '/account', `/orgs/${rl}/audit`, `/orgs/${rl}/oidc`]],
          ['hr@regione.example', 'hr', [`/orgs/${rl}/members`]],
          ['operatore@aria.example', 'operator', ['/admin/orgs', '/admin/onboarding', '/admin/catalogue', '/admin/audit', '/admin/oidc', `/orgs/${org.c_b157}`]],
        ];
        for (const [email, who, paths] of pages) {
          await log.step(`375px pages (${who})`, async () => {
            const page = await fresh('it', narrow);
            if (email) {
              await login(page, url, email);
              await setLang(page, 'it', { force: true });
            }
            for (const path of paths) await look(page, path, who);
            await page.context().close();
          });
        }
        log.assertClean();
      });

      test(name('no JavaScript, on a phone: sign in, switch language and organisation, sign out'), async () => {
        // The shell is links and forms only: everything works with scripts off.
        const page = await fresh('it', { javaScriptEnabled: false, viewport: { width: 375, height: 800 } });
        await login(page, url, 'admin@regione.example');
        await setLang(page, 'it', { force: true });
        assert.ok(await page.isVisible('form[action="/logout"]'), 'signed in');
        await Promise.all([page.waitForNavigation(), page.click('form[action="/lang"] button')]);
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        await page.goto(`${url}/orgs/${org.r_lombar}`);
        await page.selectOption('#org-switch', org.arpa_lom);
        await Promise.all([page.waitForNavigation(), page.click('form[action="/session/org"] button[type=submit]')]);
        assert.equal((await page.textContent('h1')).trim(), 'ARPA Lombardia');
        assert.equal(await page.getAttribute('html', 'lang'), 'en');
        await Promise.all([page.waitForNavigation(), page.click('form[action="/lang"] button')]);
        assert.equal(await page.getAttribute('html', 'lang'), 'it');
        await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button[type=submit]')]);
        assert.ok(await page.isVisible('header a[href="/login"]'), 'signed out');
        await page.context().close();
      });
    });
  }
});
