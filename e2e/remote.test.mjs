// Remote access in a real browser (Debian's Chromium), on SQLite and on PostgreSQL: the VPN pages (the employee's
// devices, enrolment by pasted key, by a key made in the browser and by the server; the organisation admin's
// networks, gateways, access groups and approvals) and the remote workstations (inventory, CSV import, a
// workstation's page, the employee's PCs and bookings). axe-core on every page and state, in Italian and English,
// with each form's error and done state; the flows that matter (a device's .conf, the private key that never
// reaches the server, a slot booked twice); the enrolment form by keyboard only, and without JavaScript.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  A11yLog, checkA11y, engines, launchBrowser, login, newPage, pageProblems, setLang, startServer, submitForm, sweeps,
} from './support.mjs';


const ENGINES = await engines();
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

// ------------------------------------------------------------------------------------------------------------------
// WireGuard keys and dates, made here to check the pages against.

const b64 = (b64url) => Buffer.from(b64url, 'base64url').toString('base64');

/** A fresh X25519 key pair, both halves as WireGuard writes them (standard base64 of the 32 raw bytes). */
function wgKeyPair() {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { pub: b64(publicKey.export({ format: 'jwk' }).x), priv: b64(privateKey.export({ format: 'jwk' }).d) };
}

/** The public key of a WireGuard private key (base64), computed by Node: what `wg pubkey` prints. */
function publicOf(privB64) {
  const raw = Buffer.from(privB64, 'base64');
  assert.equal(raw.length, 32, `a private key is 32 bytes: ${privB64}`);
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), raw]);
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  return b64(createPublicKey(key).export({ format: 'jwk' }).x);
}

/** A day `n` days from now on Rome's clock, as a date field wants it (YYYY-MM-DD). */
function romeDay(n) {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Rome' }).format(new Date(Date.now() + n * 86_400_000));
}

/** How a value travels in a form body (application/x-www-form-urlencoded). */
const formEncoded = (v) => new URLSearchParams({ v }).toString().slice(2);

const KEYS = ['vpn', 'ws'];

test('[harness] the page checks find an untranslated key, a summary link to nowhere, an undescribed invalid field', async () => {
  const page = await newPage(browser);
  await page.setContent('<!doctype html><html lang="it"><head><title>t</title></head><body><main><h1>vpn-title</h1>'
    + '<div id="error-summary"><a href="#f-missing">Nome</a></div>'
    + '<input id="f-name" aria-invalid="true" aria-describedby="f-name-hint"><small id="f-name-hint">x</small>'
    + '<input id="f-ok" aria-invalid="true" aria-describedby="f-ok-error"><div id="f-ok-error" class="invalid-feedback">no</div>'
    + '<p>vpn-it.regione.example is a host name, not a key</p></main></body></html>');
  const problems = (await pageProblems(page, KEYS)).join('\n');
  assert.match(problems, /untranslated text: vpn-title$/m);
  assert.match(problems, /#f-missing .* leads nowhere/);
  assert.match(problems, /#f-name is marked invalid but no error text/);
  assert.doesNotMatch(problems, /f-ok|vpn-it/);
  await page.context().close();
});

// The engines side by side (one server each, one browser for both); within an engine the tests run one after
// the other (they share its data).
describe('engines', { concurrency: true }, () => {
  for (const engine of ENGINES) {
    const name = (what) => `[${engine.name}] ${what}`;
    if (engine.skip) {
      test(name('remote access browser suite'), { skip: engine.skip }, () => {});
      continue;
    }

    describe(engine.name, { concurrency: 1 }, () => {
      let server;
      let url;
      /** Organisation ids by IPA code (r_lombar, arpa_lom, arifl, c_b157, …). */
      const org = {};

      const { fresh, signedIn, sweepBoth, checkHere, go, openDetails, send, follow } = sweeps({
        browser: () => browser, url: () => url, keys: KEYS,
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
        for (const ipa of ['r_lombar', 'arpa_lom', 'c_b157']) assert.ok(org[ipa], `no ${ipa} in /admin/orgs: ${JSON.stringify(org)}`);
      });

      after(async () => {
        await server?.stop();
      });

      /** Uploads `file` ({name, mimeType, buffer}) with the form `form` and checks the page. */
      async function upload(s, what, form, file, status = 200) {
        await s.log.step(`[${s.lang}] ${what}: upload ${file.name}`, async () => {
          await s.page.setInputFiles(`${form} input[type=file]`, file);
          const [response] = await Promise.all([s.page.waitForNavigation(), s.page.locator(`${form} button[type=submit]`).click()]);
          await checkHere(s, what, response, status);
        }, s.page);
      }

      /** Runs `fn` as a step of the sweep `s` (a throw is recorded under `what`). */
      const step = (s, what, fn) => s.log.step(`[${s.lang}] ${what}`, fn, s.page);

      /** The id of the network named `name`, from the admin page open in `page`. */
      async function networkId(page, netName) {
        const id = await page.$$eval('article[aria-labelledby^="net-"]', (arts, n) => arts
          .find((a) => a.querySelector('h3').textContent.trim() === n)?.getAttribute('aria-labelledby').slice(4), netName);
        assert.ok(id, `no network "${netName}" on ${page.url()}`);
        return id;
      }

      /** The value of the option of `select` whose text starts with `label`. */
      async function optionValue(page, select, label) {
        const v = await page.$eval(select, (s, l) => [...s.options].find((o) => o.textContent.trim().startsWith(l))?.value, label);
        assert.ok(v, `no option "${label}" in ${select}`);
        return v;
      }

      const DEMO_NET = 'Rete regionale (demo)';
      const ENROL = 'form#vpn-enrol';

      test(name('axe: an employee\'s VPN pages (enrol with errors, by pasted key and by the server, device page, rename, renew, revoke)'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const device = `Portatile ${lang}`;
          const { pub } = wgKeyPair();
          await go(s, 'VPN, no devices yet', '/vpn');
          await step(s, 'the empty page says there is no device and offers the form', async () => {
            assert.equal(await page.locator('section[aria-labelledby="vpn-devices-title"] table').count(), 0);
            assert.ok(await page.isVisible(`${ENROL} #f-public_key`));
          });
          await send(s, 'enrol, nothing typed', ENROL, {}, 422);
          await send(s, 'enrol, bad key and no name', ENROL, { name: '', public_key: 'non-una-chiave' }, 422);
          await step(s, 'enrol errors: tied to their fields, what was typed kept', async () => {
            assert.equal(await page.getAttribute('#f-public_key', 'aria-invalid'), 'true');
            assert.match(await page.getAttribute('#f-public_key', 'aria-describedby'), /f-public_key-error/);
            assert.equal(await page.inputValue('#f-public_key'), 'non-una-chiave');
            assert.ok(await page.isVisible('#error-summary a[href="#f-name"]'));
            assert.ok(await page.isVisible('#error-summary a[href="#f-public_key"]'));
          });
          await send(s, 'enrol, a name but a key of 43 characters', ENROL, { name: device, public_key: pub.slice(0, 43) }, 422);
          await step(s, 'choose the demo network', async () => {
            await page.selectOption(`${ENROL} #f-network_id`, { label: DEMO_NET });
          });
          await send(s, 'enrol by pasted key, done: the device page', ENROL, { name: device, public_key: pub, key_mode: 'device' });
          await step(s, 'the device page after enrolment', async () => {
            assert.match(page.url(), /\/vpn\/devices\/[0-9a-f-]{36}\?done=enrolled$/);
            assert.equal((await page.textContent('h1')).trim(), device);
            assert.ok(await page.isVisible('main [role=status]'));
            assert.ok(await page.isVisible('a[href$="/wg.conf"]'));
            assert.ok(await page.isVisible('main img[alt]'), 'a QR code');
            assert.equal((await page.textContent('#vpn-public-key')).trim(), pub);
          });
          await send(s, 'rename, empty name', 'form[action$="/rename"]', { name: '' }, 422);
          await send(s, 'rename, done', 'form[action$="/rename"]', { name: `${device} (casa)` });
          await send(s, 'renew, done', 'form[action$="/renew"]', {});
          await go(s, 'VPN, with a device', '/vpn');
          let created;
          await s.log.step(`[${lang}] enrol with a key made by the server`, async () => {
            await s.page.selectOption(`${ENROL} #f-network_id`, { label: DEMO_NET });
            created = await submitForm(page, ENROL, { name: `Telefono ${lang}`, public_key: '', key_mode: 'server' });
            await checkHere(s, 'enrol with a key made by the server: the key shown once', created, 201);
          }, page);
          let priv;
          await step(s, 'the server-generated key page has the key, the whole file and a QR code, and is not kept', async () => {
            assert.equal(created.headers()['cache-control'], 'no-store');
            assert.equal(new URL(page.url()).pathname, '/vpn/devices', 'the key is in no URL');
            priv = (await page.textContent('#vpn-private-key')).trim();
            const conf = await page.textContent('#vpn-config');
            assert.ok(conf.includes(`PrivateKey = ${priv}`), conf);
            assert.ok(await page.isVisible('main img[alt]'));
            assert.match(await page.getAttribute('main img', 'src'), /^data:image\//);
          });
          await follow(s, 'the server-generated device\'s page', 'main a[href^="/vpn/devices/"]');
          await step(s, 'the device\'s public key belongs to the private key shown once', async () => {
            assert.equal((await page.textContent('#vpn-public-key')).trim(), publicOf(priv));
          });
          await send(s, 'revoke, done', 'form[action$="/revoke"]', {});
          await step(s, 'the revoked device is listed as revoked', async () => {
            assert.match(page.url(), /\/vpn\?done=revoked$/);
            assert.match(await page.textContent(`tr:has-text("Telefono ${lang}")`), lang === 'it' ? /revocato/ : /revoked/);
          });
          await follow(s, 'a revoked device\'s page', `tr:has-text("Telefono ${lang}") a`);
          await step(s, 'a revoked device offers no file nor revoke', async () => {
            assert.equal(await page.locator('a[href$="/wg.conf"]').count(), 0);
            assert.equal(await page.locator('form[action$="/revoke"]').count(), 0);
          });
          await go(s, 'someone else\'s or no device', '/vpn/devices/00000000-0000-7000-8000-000000000000', 404);
        }, { email: (lang) => (lang === 'it' ? 'dipendente@regione.example' : 'manager@regione.example') });
      });

      test(name('axe: the organisation admin\'s VPN page (networks, gateways, token, access groups, approvals) with errors and done'), async (t) => {
        const rl = org.r_lombar;
        const admin = `/orgs/${rl}/vpn`;
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const net = `Rete ${lang}`;
          const cidr = lang === 'it' ? '10.96.0.0/19' : '10.97.0.0/19';
          const networks = `form[action="${admin}/networks"]`;
          await go(s, 'VPN admin', admin);
          await send(s, 'new network, nothing typed', networks, {}, 422);
          await send(s, 'new network, range overlapping the demo network', networks, { name: net, ipv4_cidr: '10.64.0.0/20' }, 422);
          await step(s, 'the overlap is told on the range field', async () => {
            assert.equal(await page.getAttribute('#nf-ipv4_cidr', 'aria-invalid'), 'true');
            assert.ok(await page.isVisible('#error-summary a[href="#nf-ipv4_cidr"]'));
            assert.equal(await page.inputValue('#nf-name'), net);
          });
          await send(s, 'new network, range too small for the seats', networks, { name: net, ipv4_cidr: '10.96.0.0/28' }, 422);
          await send(s, 'new network, done', networks,
            { name: net, ipv4_cidr: cidr, dns: '10.10.0.53', require_approval: true, default_expiry_days: '30' });
          let id;
          await step(s, 'the new network is listed', async () => { id = await networkId(page, net); });
          if (!id) return;
          const gateways = `form[action="${admin}/networks/${id}/gateways"]`;
          const groups = `form[action="${admin}/networks/${id}/access-groups"]`;
          await send(s, 'gateway, bad key and bad host', gateways, { name: 'gw', endpoint: 'non valido', public_key: 'abc' }, 422);
          await step(s, 'the gateway form is open, its errors linked', async () => {
            assert.ok(await page.isVisible(`${gateways} #gf-${id}-public_key`), 'the failed form is shown open');
            assert.ok(await page.isVisible(`#error-summary a[href="#gf-${id}-public_key"]`));
            assert.ok(await page.isVisible(`#error-summary a[href="#gf-${id}-endpoint"]`));
          });
          await send(s, 'gateway, bad port and bad route', gateways,
            { name: 'gw', endpoint: 'vpn.example', port: 'mille', public_key: wgKeyPair().pub, routes: '10.10.0.1/16' }, 422);
          let registered;
          await s.log.step(`[${lang}] register a gateway`, async () => {
            await openDetails(page, gateways);
            registered = await submitForm(page, gateways,
              { name: `Concentratore ${lang}`, endpoint: `vpn-${lang}.regione.example`, port: '51821', public_key: wgKeyPair().pub, routes: '10.10.0.0/16' });
            await checkHere(s, 'gateway registered: the token shown once', registered, 201);
          }, page);
          await step(s, 'the token page shows the token and the command, and is not kept', async () => {
            assert.equal(registered.headers()['cache-control'], 'no-store');
            const token = (await page.textContent('#vpn-gateway-token')).trim();
            assert.ok(token.length >= 32, token);
            assert.ok((await page.textContent('main pre')).includes(`--token ${token}`));
          });
          await follow(s, 'back to the VPN admin, with a gateway', `main a[href="${admin}"]`);
          await send(s, 'access group, nothing typed', groups, {}, 422);
          await send(s, 'access group, unknown person and bad range', groups,
            { name: 'Gruppo', accounts: 'nessuno@altrove.example', allow: '10.10.1.0/33' }, 422);
          await step(s, 'the roles and people are kept', async () => {
            assert.equal(await page.inputValue(`#af-${id}-accounts`), 'nessuno@altrove.example');
          });
          await send(s, 'access group, done', groups,
            { name: `Uffici ${lang}`, roles: true, accounts: 'dipendente@regione.example', allow: '10.10.1.0/24, 10.10.2.0/24' });
          await step(s, 'the group lists who and what', async () => {
            const li = page.locator(`article:has(h3:text-is("${net}")) li:has-text("Uffici ${lang}")`);
            assert.match(await li.textContent(), /dipendente@regione\.example/);
            assert.match(await li.textContent(), /10\.10\.1\.0\/24/);
          });
          // Two employees ask for a device on the network that needs approval.
          const askers = lang === 'it' ? ['agente@regione.example', 'valutatore@regione.example'] : ['formatore@regione.example', 'hr@regione.example'];
          for (const [i, who] of askers.entries()) {
            await step(s, `${who} asks for a device on ${net}`, async () => {
              const other = await signedIn(who, lang);
              await other.goto(url + '/vpn');
              await other.selectOption(`${ENROL} #f-network_id`, { label: net });
              const response = await submitForm(other, ENROL, { name: `Da approvare ${lang} ${i}`, public_key: wgKeyPair().pub });
              assert.equal(response.status(), 200);
              assert.match(await other.textContent('main dl'), lang === 'it' ? /in attesa/ : /waiting for approval/);
              if (i === 0) {
                const back = await other.goto(url + '/vpn');
                await checkHere({ ...s, page: other }, 'VPN, a device waiting for approval', back, 200);
              }
              await other.context().close();
            });
          }
          await go(s, 'VPN admin, devices to approve', admin);
          await step(s, 'the devices to approve are listed', async () => {
            assert.equal(await page.locator(`section[aria-labelledby="vpn-pending-title"] tbody tr:has-text("Da approvare ${lang}")`).count(), 2);
          });
          await send(s, 'approved, done', `tr:has-text("Da approvare ${lang} 0") form[action$="/approve"]`, {});
          await send(s, 'rejected, done', `tr:has-text("Da approvare ${lang} 1") form[action$="/revoke"]`, {});
          await step(s, 'the approved device is active, none waits', async () => {
            assert.equal(await page.locator(`section[aria-labelledby="vpn-pending-title"] tr:has-text("Da approvare ${lang}")`).count(), 0);
            assert.ok(await page.isVisible(`section[aria-labelledby="vpn-live-title"] tr:has-text("Da approvare ${lang} 0")`));
          });
          await send(s, 'active device revoked by the admin, done', `section[aria-labelledby="vpn-live-title"] tr:has-text("Da approvare ${lang} 0") form[action$="/revoke"]`, {});
          await send(s, 'access group deleted, done', `article:has(h3:text-is("${net}")) li:has-text("Uffici ${lang}") form[action$="/delete"]`, {});
          await send(s, 'gateway deleted, done', `article:has(h3:text-is("${net}")) li:has-text("Concentratore ${lang}") form[action$="/delete"]`, {});
          await go(s, 'VPN admin of an organisation with no network', `/orgs/${org.arpa_lom}/vpn`);
        }, { email: 'admin@regione.example' });
      });

      test(name('axe: the workstation inventory (board, filters, add and CSV import with errors, a workstation\'s page)'), async (t) => {
        const rl = org.r_lombar;
        const inv = `/orgs/${rl}/workstations`;
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const host = `pc-e2e-${lang}.regione.example`;
          const add = `form[action="${inv}"][method=post]`;
          const importForm = `form[action="${inv}/import"]`;
          await go(s, 'inventory', inv);
          await step(s, 'the board counts the demo\'s workstations', async () => {
            assert.ok(Number(await page.textContent('tfoot td:nth-of-type(1)')) >= 5);
          });
          await go(s, 'inventory, filtered', `${inv}?q=sala&status=offline&mode=pooled`);
          await go(s, 'inventory, a filter that is not valid', `${inv}?status=acceso&mode=x`);
          await go(s, 'inventory, nothing matches', `${inv}?q=non-esiste-affatto`);
          await send(s, 'add, nothing typed', add, {}, 422);
          await send(s, 'add, duplicate hostname', add, { hostname: 'pc-lom-0001.regione.example' }, 422);
          await step(s, 'the duplicate is told on the hostname', async () => {
            assert.equal(await page.getAttribute('#f-hostname', 'aria-invalid'), 'true');
            assert.ok(await page.isVisible('#error-summary a[href="#f-hostname"]'));
          });
          await send(s, 'add, bad host, address, port and MAC', add,
            { hostname: 'non valido!', address: '999.1.2.3', port: 'tremila', mac: 'zz:zz', mode: 'pooled', assignee: 'dipendente@regione.example' }, 422);
          await send(s, 'add, done', add,
            // Every field: the form keeps what was typed before (the bad port, the assignee).
            { hostname: host, address: '127.0.20.1', protocol: 'rdp', port: '', os: '', location: 'Sondrio', tags: 'e2e',
              mac: '00:1a:2b:00:01:0' + (lang === 'it' ? '1' : '2'), mode: 'pooled', assignee: '' });
          const csv = (text) => ({ name: 'postazioni.csv', mimeType: 'text/csv', buffer: Buffer.from(text) });
          await upload(s, 'CSV import with an unknown column', importForm, csv('hostname,colore\npc-blu.regione.example,blu\n'), 422);
          await step(s, 'the header\'s problem is on row 1', async () => {
            assert.match(await page.textContent('table:has(#import-errors-caption) tbody'), /colore/);
          });
          await upload(s, 'CSV import with bad rows: the problem table', importForm, csv([
            'hostname,address,mode,assignee',
            `imp-${lang}-1.regione.example,999.0.0.1,pooled,`,
            `imp-${lang}-1.regione.example,,pooled,`,
            'non valido!,,volante,',
            'pc-lom-0001.regione.example,,pooled,',
            'una,riga,corta',
          ].join('\n')), 422);
          await step(s, 'the problems are listed by row and column', async () => {
            const rows = await page.$$eval('table:has(#import-errors-caption) tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
            const has = (row, col) => rows.some(([r, c]) => r === row && c === col);
            assert.ok(has('2', 'address') && has('3', 'hostname') && has('4', 'hostname') && has('4', 'mode') && has('5', 'hostname') && has('6', ''),
              JSON.stringify(rows));
            assert.ok(await page.isVisible('#import-errors[role=alert]'));
          });
          await upload(s, 'CSV import with no rows', importForm, csv('hostname\n'), 422);
          await upload(s, 'CSV import, done', importForm, csv([
            'hostname;location;mode', `imp-${lang}-1.regione.example;Lecco;pooled`, `imp-${lang}-2.regione.example;Lecco;pooled`,
          ].join('\n')));
          await step(s, 'the import says how many', async () => {
            assert.match(await page.textContent('main [role=status]'), /2/);
          });
          await follow(s, 'the added workstation\'s page', `main a:text-is("${host}")`);
          await send(s, 'workstation, edit with a bad port', `form[action^="${inv}/"]:has(#f-hostname)`, { port: '70000' }, 422);
          await send(s, 'workstation, edit saved', `form[action^="${inv}/"]:has(#f-hostname)`, { port: '', location: 'Sondrio, piano 2' });
          await send(s, 'workstation, checked now', 'form[action$="/probe"]', {});
          await send(s, 'workstation, woken', 'main form[action$="/wake"]', {});
          await send(s, 'workstation, deleted', 'form[action$="/delete"]', {});
          // A booking, made by an employee, on a pooled workstation's page, cancelled by the admin.
          await step(s, 'an employee books pc-lom-0103', async () => {
            const other = await signedIn(lang === 'it' ? 'valutatore@regione.example' : 'formatore@regione.example', lang);
            await other.goto(url + '/workstations');
            const ws = await optionValue(other, '#f-workstation', 'pc-lom-0103');
            const [from, to] = lang === 'it' ? ['11:00', '12:00'] : ['13:00', '14:00'];
            const response = await submitForm(other, `form[action="${inv}/book"]`, { workstation: ws, date: romeDay(4), starts_at: from, ends_at: to });
            assert.equal(response.status(), 200, await other.textContent('main'));
            await other.context().close();
          });
          await go(s, 'inventory, after the imports', inv);
          await follow(s, 'a pooled workstation\'s page, with bookings and history', 'main a:text-is("pc-lom-0103.regione.example")');
          await send(s, 'workstation, booking cancelled by the admin', `main tr:has-text("${lang === 'it' ? 'Paolo Valutatore' : 'Elena Formatrice'}") form[action$="/cancel"]`, {});
          await step(s, 'the cancel comes back to the workstation\'s page', async () => {
            assert.match(page.url(), /\/workstations\/[0-9a-f-]{36}\?done=cancelled$/);
          });
        }, { email: 'admin@regione.example' });
      });

      test(name('axe: an employee\'s workstations (their PCs, booking with errors, booked, taken, cancelled)'), async (t) => {
        const book = `form[action="/orgs/${org.r_lombar}/workstations/book"]`;
        await sweepBoth(t, async (s) => {
          const { page, lang } = s;
          const pc = lang === 'it' ? 'pc-lom-0101' : 'pc-lom-0102';
          await go(s, 'my workstations', '/workstations');
          await step(s, 'the assigned PC is listed with its .rdp file', async () => {
            const mine = lang === 'it' ? 'pc-lom-0001' : 'pc-lom-0002';
            assert.ok(await page.isVisible(`section[aria-labelledby="mine-title"] tr:has-text("${mine}") a[href$="/connect.rdp"]`));
          });
          await send(s, 'woken, done', 'section[aria-labelledby="mine-title"] form[action$="/wake"]', {});
          await send(s, 'booking, nothing chosen', book, { date: '', starts_at: '', ends_at: '' }, 422);
          let ws;
          await step(s, 'the pooled workstation to book', async () => { ws = await optionValue(page, '#f-workstation', pc); });
          await send(s, 'booking, times not on quarter hours and the end first', book,
            { workstation: ws, date: romeDay(2), starts_at: '09:10', ends_at: '09:05' }, 422);
          await step(s, 'the slot errors are on the times, the choice kept', async () => {
            assert.equal(await page.getAttribute('#f-starts_at', 'aria-invalid'), 'true');
            assert.equal(await page.getAttribute('#f-ends_at', 'aria-invalid'), 'true');
            assert.equal(await page.inputValue('#f-workstation'), ws);
          });
          await send(s, 'booking, in the past and too long', book, { workstation: ws, date: romeDay(-2), starts_at: '07:00', ends_at: '20:00' }, 422);
          await send(s, 'booking, a day that is not a date', book, { workstation: ws, date: '2026-02-30', starts_at: '09:00', ends_at: '10:00' }, 422);
          await send(s, 'booked, done', book, { workstation: ws, date: romeDay(2), starts_at: '09:00', ends_at: '10:00' });
          await step(s, 'the booking is listed', async () => {
            assert.ok(await page.isVisible(`section[aria-labelledby="bookings-title"] tr:has-text("${pc}")`));
          });
          await send(s, 'booking the same slot again: taken', book, { workstation: ws, date: romeDay(2), starts_at: '09:30', ends_at: '10:30' }, 422);
          await send(s, 'booking, cancelled', `section[aria-labelledby="bookings-title"] tr:has-text("${pc}") form[action$="/cancel"]`, {});
        }, { email: (lang) => (lang === 'it' ? 'dipendente@regione.example' : 'manager@regione.example') });
      });

      test(name('axe: HR\'s read-only VPN and inventory pages'), async (t) => {
        const rl = org.r_lombar;
        await sweepBoth(t, async (s) => {
          const { page } = s;
          await go(s, 'VPN admin, read-only', `/orgs/${rl}/vpn`);
          await step(s, 'HR gets no form', async () => {
            assert.equal(await page.locator('main form').count(), 0);
          });
          await go(s, 'inventory, read-only', `/orgs/${rl}/workstations`);
          await follow(s, 'a workstation, read-only', 'main a:text-is("pc-lom-0001.regione.example")');
          await step(s, 'HR gets no form', async () => {
            assert.equal(await page.locator('main form').count(), 0);
          });
        }, { email: 'hr@regione.example' });
      });

      test(name('axe: an organisation with no VPN network and no workstations service'), async (t) => {
        await sweepBoth(t, async (s) => {
          const { page } = s;
          await go(s, 'VPN, no network to enrol in', '/vpn');
          await step(s, 'the page says why there is no form', async () => {
            assert.equal(await page.locator(ENROL).count(), 0);
            assert.ok(await page.isVisible('section[aria-labelledby="vpn-enrol-title"] [role=status]'));
          });
          await go(s, 'VPN admin, no network yet', `/orgs/${org.c_b157}/vpn`);
          await go(s, 'workstations, service not offered', '/workstations');
          await go(s, 'inventory, service not offered', `/orgs/${org.c_b157}/workstations`, [403, 404]);
        }, { email: 'admin@comune.example' });
      });

      test(name('narrow screens: at 375 px the VPN and workstation pages do not run off the side, and axe passes'), async () => {
        const log = new A11yLog();
        const rl = org.r_lombar;
        const look = async (page, path, who) => {
          const response = await page.goto(url + path);
          await log.check(page, `375px ${path} (${who})`, { response, status: 200, lang: 'it' });
          // A table may scroll inside its .table-responsive box, a <pre> inside itself; the page must not scroll sideways.
          const wide = await page.evaluate(() => {
            const w = window.innerWidth;
            if (document.documentElement.scrollWidth <= w + 1) return null;
            const out = [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > w + 1)
              .filter((el) => !el.closest('.table-responsive') && !el.parentElement?.closest('pre'));
            return out.slice(0, 4).map((el) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}.${[...el.classList].join('.')}`)
              .concat(`${document.documentElement.scrollWidth}px`);
          });
          if (wide) log.problems.push(`375px ${path} (${who}): wider than the screen: ${wide.join(', ')}`);
        };
        const narrow = { viewport: { width: 375, height: 800 } };
        for (const [email, who, paths] of [
          ['dipendente@regione.example', 'employee', ['/vpn', '/workstations']],
          ['admin@regione.example', 'orgadmin', [`/orgs/${rl}/vpn`, `/orgs/${rl}/workstations`]],
        ]) {
          await log.step(`375px pages (${who})`, async () => {
            const page = await signedIn(email, 'it', narrow);
            for (const path of paths) await look(page, path, who);
            if (who === 'employee') {
              // A device's page: the public key, the configuration and the QR code.
              await page.goto(url + '/vpn');
              const device = await page.getAttribute('main tbody tr a[href^="/vpn/devices/"]', 'href');
              await look(page, device, who);
            } else {
              await page.goto(`${url}/orgs/${rl}/workstations`);
              await look(page, await page.getAttribute('main a:text-is("pc-lom-0101.regione.example")', 'href'), who);
            }
            await page.context().close();
          });
        }
        log.assertClean();
      });

      // -------------------------------------------------------------------------------------------------------------
      // Flows, each in a fresh context.

      /** The demo gateway's public key, as its administrator's page shows it. */
      async function demoGatewayKey() {
        const page = await signedIn('admin@regione.example', 'it');
        await page.goto(`${url}/orgs/${org.r_lombar}/vpn`);
        const text = await page.textContent(`article:has(h3:text-is("${DEMO_NET}")) li:has-text("Concentratore Milano (demo)")`);
        await page.context().close();
        const key = /[A-Za-z0-9+/]{43}=/.exec(text)?.[0];
        assert.ok(key, `no gateway key in ${text}`);
        return key;
      }

      /** Enrols `key` by pasting it on /vpn, on the demo network; returns the device page's response. */
      async function enrolByPaste(page, deviceName, key) {
        await page.goto(url + '/vpn');
        await page.selectOption(`${ENROL} #f-network_id`, { label: DEMO_NET });
        return submitForm(page, ENROL, { name: deviceName, public_key: key, key_mode: 'device' });
      }

      /** Clicks `link` and returns the downloaded file's name and text. */
      async function download(page, link) {
        const [file] = await Promise.all([page.waitForEvent('download'), page.click(link)]);
        return { name: file.suggestedFilename(), text: await readFile(await file.path(), 'utf8') };
      }

      test(name('VPN: an employee enrols a device by its public key, downloads the .conf, and revokes it'), async () => {
        const gatewayKey = await demoGatewayKey();
        const page = await signedIn('agente@regione.example', 'it');
        const { pub } = wgKeyPair();
        const response = await enrolByPaste(page, 'Laptop di casa', pub);
        assert.equal(response.status(), 200);
        assert.match(await page.textContent('main [role=status]'), /Dispositivo registrato/);
        const address = (await page.textContent('main dl dd.ak-mono')).trim();
        const [v4, v6] = address.split(' · ');
        assert.match(v4, /^10\.64\.\d+\.\d+$/, address);
        assert.match(v6, /^fd00:64::[0-9a-f]+$/, address);

        const conf = await download(page, 'a[href$="/wg.conf"]');
        assert.equal(conf.name, 'vpn-Laptopdicas.conf');
        assert.ok(conf.text.includes(`Address = ${v4}/32, ${v6}/128\n`), conf.text);
        assert.ok(conf.text.includes('Endpoint = vpn.regione.example:51820\n'), conf.text);
        assert.ok(conf.text.includes(`PublicKey = ${gatewayKey}\n`), conf.text);
        assert.ok(conf.text.includes('DNS = 10.10.0.53\n'), conf.text);
        assert.ok(conf.text.includes('# PrivateKey = '), 'the server never had the private key: the line is for the user to fill');
        assert.doesNotMatch(conf.text, /^PrivateKey/m);
        assert.equal(conf.text, await page.textContent('#vpn-config'), 'the file is what the page shows');

        let done = await submitForm(page, 'form[action$="/revoke"]');
        assert.equal(done.status(), 200);
        assert.match(await page.textContent('main [role=status]'), /Dispositivo revocato/);
        assert.match(await page.textContent('tr:has-text("Laptop di casa")'), /revocato/);
        // The address is free again: the next device of the network takes it.
        const next = await enrolByPaste(page, 'Secondo laptop', wgKeyPair().pub);
        assert.equal(next.status(), 200);
        assert.equal((await page.textContent('main dl dd.ak-mono')).trim(), address);
        // And the revoked key may be enrolled again, as a new device.
        done = await enrolByPaste(page, 'Laptop di nuovo', pub);
        assert.equal(done.status(), 200, await page.textContent('main'));
        await checkA11y(page);
        await page.context().close();
      });

      test(name('VPN: the browser makes the key pair (WebCrypto X25519) and the private key never reaches the server'), async (t) => {
        const page = await signedIn('formatore@regione.example', 'en');
        const sent = [];
        page.on('request', (r) => sent.push({ method: r.method(), url: r.url(), body: r.postData() ?? '' }));
        await page.goto(url + '/vpn');
        const x25519 = await page.evaluate(() => crypto.subtle.generateKey({ name: 'X25519' }, true, ['deriveBits']).then(() => true, () => false));
        t.diagnostic(`this Chromium ${x25519 ? 'makes' : 'cannot make'} X25519 keys in WebCrypto`);
        if (!x25519) {
          // The fallback: no button, the page says so, pasting a key still works.
          assert.equal(await page.isVisible('#vpn-generate'), false);
          assert.match(await page.textContent('#vpn-browser-key-unsupported'), /paste/i);
          assert.ok(await page.isVisible('#f-public_key'));
          await page.context().close();
          return;
        }
        await page.waitForSelector('#vpn-generate', { state: 'visible' });
        assert.equal(await page.isVisible('#vpn-browser-key-unsupported'), false);
        await page.fill('#f-name', 'Browser laptop');
        await page.selectOption(`${ENROL} #f-network_id`, { label: DEMO_NET });
        await page.click('#vpn-generate');
        await page.waitForFunction(() => document.getElementById('vpn-private-key').value.length === 44);
        const priv = await page.inputValue('#vpn-private-key');
        const pub = await page.inputValue('#f-public_key');
        assert.equal(publicOf(priv), pub, 'the public key in the field belongs to the private key shown');
        assert.ok(await page.isVisible('#vpn-private-key'), 'the private key is shown for the user to keep');
        assert.equal(await page.evaluate(() => document.activeElement.id), 'vpn-private-key', 'focus moves to the key to copy');
        assert.equal(await page.getAttribute('#vpn-private-key', 'name'), null, 'the private key field is not part of the form');
        await checkA11y(page);

        const [response] = await Promise.all([page.waitForNavigation(), page.click(`${ENROL} button[type=submit]`)]);
        assert.equal(response.status(), 200);
        const post = sent.find((r) => r.method === 'POST' && new URL(r.url).pathname === '/vpn/devices');
        assert.ok(post, `no form submission among ${sent.map((r) => `${r.method} ${r.url}`).join(', ')}`);
        assert.ok(post.body.includes(`public_key=${formEncoded(pub)}`), post.body);
        for (const r of sent) {
          for (const form of [priv, formEncoded(priv), encodeURIComponent(priv)]) {
            assert.ok(!r.body.includes(form) && !r.url.includes(form), `the private key went to the server: ${r.method} ${r.url}`);
          }
        }
        assert.equal((await page.textContent('#vpn-public-key')).trim(), pub);
        assert.doesNotMatch(await page.content(), new RegExp(priv.replace(/[+/=]/g, '\\$&')), 'the server cannot show what it never got');

        // This browser still has the key: it builds the whole file, key included, without the server.
        await page.waitForSelector('#vpn-download-with-key', { state: 'visible' });
        const conf = await download(page, '#vpn-download-with-key');
        assert.ok(conf.text.includes(`PrivateKey = ${priv}\n`), conf.text);
        assert.doesNotMatch(conf.text, /# PrivateKey/);
        assert.match(conf.text, /Endpoint = vpn\.regione\.example:51820/);
        await checkA11y(page);
        await page.context().close();
      });

      test(name('VPN: where the browser cannot make X25519 keys, the page says so and pasting a key works'), async () => {
        const page = await fresh('it');
        // A browser without X25519 in WebCrypto (older ones, or a page served over plain http).
        await page.context().addInitScript(() => {
          const generate = crypto.subtle.generateKey.bind(crypto.subtle);
          crypto.subtle.generateKey = (alg, ...rest) => ((alg === 'X25519' || alg?.name === 'X25519')
            ? Promise.reject(new DOMException('Algorithm: Unrecognized name', 'NotSupportedError'))
            : generate(alg, ...rest));
        });
        await login(page, url, 'valutatore@regione.example');
        await setLang(page, 'it', { force: true });
        await page.goto(url + '/vpn');
        await page.waitForSelector('#vpn-browser-key-unsupported', { state: 'visible' });
        assert.match(await page.textContent('#vpn-browser-key-unsupported'), /incolla/i);
        assert.equal(await page.isVisible('#vpn-generate'), false);
        await checkA11y(page);
        const response = await enrolByPaste(page, 'Vecchio PC', wgKeyPair().pub);
        assert.equal(response.status(), 200);
        assert.match(await page.textContent('main [role=status]'), /Dispositivo registrato/);
        await page.context().close();
      });

      test(name('workstations: an employee books a shared PC and sees it; someone else is refused the same slot'), async () => {
        const book = `form[action="/orgs/${org.r_lombar}/workstations/book"]`;
        const day = romeDay(3);
        const first = await signedIn('agente@regione.example', 'it');
        await first.goto(url + '/workstations');
        const ws = await optionValue(first, '#f-workstation', 'pc-lom-0101');
        let response = await submitForm(first, book, { workstation: ws, date: day, starts_at: '14:00', ends_at: '16:00' });
        assert.equal(response.status(), 200);
        assert.match(await first.textContent('main [role=status]'), /Prenotazione registrata/);
        const row = await first.textContent('section[aria-labelledby="bookings-title"] tr:has-text("pc-lom-0101")');
        assert.ok(row.includes(`${day.split('-').reverse().join('/')}`) || row.includes(day), `the booking's day in ${row}`);
        assert.match(row, /14:00/);
        assert.match(row, /16:00/);

        const second = await signedIn('formatore@regione.example', 'en');
        await second.goto(url + '/workstations');
        response = await submitForm(second, book, { workstation: ws, date: day, starts_at: '15:00', ends_at: '17:00' });
        assert.equal(response.status(), 422);
        assert.match(await second.textContent('#error-summary'), /From: the workstation is already booked at this time/);
        assert.equal(await second.getAttribute('#f-starts_at', 'aria-invalid'), 'true');
        assert.match(await second.textContent('#f-starts_at-error'), /already booked/);
        assert.equal(await second.inputValue('#f-workstation'), ws, 'the choice is kept');
        assert.equal(await second.inputValue('#f-starts_at'), '15:00');
        assert.equal(await second.locator('section[aria-labelledby="bookings-title"] tr:has-text("pc-lom-0101")').count(), 0);
        await checkA11y(second);
        // The error summary's link takes focus to the field.
        await second.click('#error-summary a[href="#f-starts_at"]');
        assert.equal(await second.evaluate(() => document.activeElement.id), 'f-starts_at');
        // Right after, the slot is still the first person's.
        await first.reload();
        assert.ok(await first.isVisible('section[aria-labelledby="bookings-title"] tr:has-text("pc-lom-0101")'));
        await first.context().close();
        await second.context().close();
      });

      test(name('keyboard: the enrolment form is reached, filled and sent with the keyboard only'), async () => {
        const page = await signedIn('hr@regione.example', 'it');
        await page.goto(url + '/vpn');
        await page.waitForSelector('#vpn-generate', { state: 'visible' }).catch(() => {});
        const stops = [];
        const where = () => page.evaluate(() => {
          const el = document.activeElement;
          return { id: el.id, tag: el.tagName.toLowerCase(), type: el.getAttribute('type'), inEnrol: !!el.closest('#vpn-enrol') };
        });
        // Tab from the top of the page to the enrolment form's button, noting every stop in the form.
        for (let i = 0; i < 80; i += 1) {
          await page.keyboard.press('Tab');
          const at = await where();
          if (at.inEnrol) stops.push(at.type === 'submit' ? 'submit' : at.id);
          if (at.inEnrol && at.type === 'submit') break;
        }
        const expected = ['f-name', 'f-network_id', 'f-key_mode-device', 'f-public_key', 'submit'];
        assert.deepEqual(stops.filter((s) => expected.includes(s)), expected, `Tab stops in the form: ${stops.join(' → ')}`);
        if (await page.isVisible('#vpn-generate')) assert.ok(stops.includes('vpn-generate'), `the generate button is a Tab stop: ${stops}`);

        // Now fill it: back to the name, type, Tab on.
        await page.focus('#f-name');
        await page.keyboard.type('Tablet');
        await page.keyboard.press('Tab');
        assert.equal((await where()).id, 'f-network_id');
        await page.keyboard.press('Tab');
        assert.equal((await where()).id, 'f-key_mode-device');
        await page.keyboard.press('Tab');
        assert.equal((await where()).id, 'f-public_key');
        const { pub } = wgKeyPair();
        await page.keyboard.type(pub);
        let at = await where();
        while (at.type !== 'submit') {
          await page.keyboard.press('Tab');
          at = await where();
          assert.ok(at.inEnrol, `Tab left the form before its button: ${JSON.stringify(at)}`);
        }
        const [response] = await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
        assert.equal(response.status(), 200);
        assert.equal((await page.textContent('h1')).trim(), 'Tablet');
        assert.equal((await page.textContent('#vpn-public-key')).trim(), pub);
        await page.context().close();
      });

      test(name('no JavaScript: enrol by pasting a key, download the file, revoke'), async () => {
        const page = await signedIn('valutatore@regione.example', 'en', { javaScriptEnabled: false });
        await page.goto(url + '/vpn');
        assert.equal(await page.isVisible('#vpn-generate'), false, 'no key button without scripts');
        assert.equal(await page.isVisible('#vpn-browser-key-unsupported'), false, 'and no word about it either');
        await page.selectOption(`${ENROL} #f-network_id`, { label: DEMO_NET });
        let response = await submitForm(page, ENROL, { name: 'No script', public_key: 'short' });
        assert.equal(response.status(), 422);
        assert.match(await page.textContent('#f-public_key-error'), /not a WireGuard key/);
        const { pub } = wgKeyPair();
        response = await submitForm(page, ENROL, { name: 'No script', public_key: pub });
        assert.equal(response.status(), 200);
        assert.equal((await page.textContent('h1')).trim(), 'No script');
        const address = (await page.textContent('main dl dd.ak-mono')).trim().split(' · ')[0];
        const conf = await download(page, 'a[href$="/wg.conf"]');
        assert.ok(conf.text.includes(`Address = ${address}/32`), conf.text);
        assert.ok(conf.text.includes('Endpoint = vpn.regione.example:51820'), conf.text);
        assert.equal(await page.isVisible('#vpn-download-with-key'), false);
        response = await submitForm(page, 'form[action$="/revoke"]');
        assert.equal(response.status(), 200);
        assert.match(await page.textContent('tr:has-text("No script")'), /revoked/);
        await page.context().close();
      });
    });
  }
});
