// A tiny OpenID Provider for agilekit's test suite, built on oidc-provider 9
// (an OpenID-certified implementation). Not for production: in-memory storage,
// "development interactions" (any login name + any password signs in).
//
// Install: `npm ci` in this folder (scripts/test does it). Node 20 works; oidc-provider
// prints "Unsupported runtime. Use Node.js v22.x LTS" on stderr — harmless here.
//
// Run:  PORT=0 CLIENT_ID=agilekit CLIENT_SECRET=s3cret \
//       REDIRECT_URI=http://127.0.0.1:8080/auth/oidc/callback \
//       ACCOUNTS='{"mario":{"email":"mario.rossi@example.it","email_verified":true,"name":"Mario Rossi","fiscal_number":"TINIT-RSSMRA85T10A562S"}}' \
//       node server.mjs
//
// Environment:
//   PORT            port on 127.0.0.1 (default 0 = any free port; read the real one from stdout)
//   CLIENT_ID       the one client's id          (default "agilekit")
//   CLIENT_SECRET   its secret                   (default "agilekit-secret")
//   REDIRECT_URI    its redirect URI(s), exact match; several may be separated by spaces or commas
//   POST_LOGOUT_REDIRECT_URI  optional, likewise (for RP-initiated logout at /session/end)
//   TOKEN_ENDPOINT_AUTH_METHOD  client_secret_basic (default) or client_secret_post
//   ACCOUNTS        JSON map login -> {email, email_verified, name, fiscal_number}.
//                   The `sub` of an account is its login name. A login that is not in the
//                   map still signs in (dev interactions accept anything) but gets only `sub`.
//   CLAIMS_IN_ID_TOKEN  "1" (default): scope claims go into the ID token as well as /me;
//                   "0": spec-conformant, ID token carries only sub when an access token is issued.
//   SIGNING_KEY_FILE  optional: a JWK file for the RS256 key; read when it exists, else generated
//                   and written there, so that a suite starting many providers makes one key
//                   (RSA generation is the slow part of a start on a loaded machine).
//
// Stdout, once ready (exactly one line, flushed):  oidc listening on http://127.0.0.1:PORT
// The issuer is that URL (no trailing slash); discovery at /.well-known/openid-configuration.
//
// Client contract: authorization code flow, PKCE with S256 REQUIRED, scopes
// `openid email profile`. Claims: email, email_verified (scope email), name and
// fiscal_number (scope profile) — fiscal_number is SPID-style, e.g. "TINIT-RSSMRA85T10A562S".
// Signing: RS256 with a key generated at start (JWKS at /jwks).
// Endpoints: /auth, /token, /me (userinfo), /jwks, /session/end, /interaction/:uid.
//
// ---------------------------------------------------------------------------------------
// Logging in WITHOUT a browser (what a Rust test does with a cookie-keeping HTTP client
// that does NOT follow redirects; every step is checked with curl below):
//
//  1. GET  {issuer}/auth?client_id=…&redirect_uri=…&response_type=code
//          &scope=openid%20email%20profile&state=…&nonce=…
//          &code_challenge=<BASE64URL(SHA256(verifier))>&code_challenge_method=S256
//     -> 303, Location: /interaction/<uid>   (sets cookies _interaction, _interaction.sig,
//        _interaction_resume, _interaction_resume.sig; keep them — they are path-scoped)
//  2. POST {issuer}/interaction/<uid>   Content-Type: application/x-www-form-urlencoded
//          body: prompt=login&login=<login name>&password=<anything>
//     -> 303, Location: {issuer}/auth/<uid>
//  3. GET  {issuer}/auth/<uid>
//     -> 303, Location: /interaction/<uid2>   (the consent prompt; uid2 is a NEW uid;
//        sets _session cookies)
//  4. POST {issuer}/interaction/<uid2>  body: prompt=consent
//     -> 303, Location: {issuer}/auth/<uid2>
//  5. GET  {issuer}/auth/<uid2>
//     -> 303, Location: <redirect_uri>?code=<code>&state=…&iss=<issuer, url-encoded>
//  (A second /auth for the same client in the same cookie jar skips 2–5: the session
//   and grant are remembered, so /auth answers 303 to the redirect_uri at once.)
//  6. POST {issuer}/token  (HTTP Basic auth CLIENT_ID:CLIENT_SECRET)
//          body: grant_type=authorization_code&code=<code>&redirect_uri=…&code_verifier=<verifier>
//     -> 200 JSON {access_token, id_token, expires_in, token_type:"Bearer", scope}
//  7. GET  {issuer}/me   Authorization: Bearer <access_token>
//     -> 200 JSON {sub, email, email_verified, name, fiscal_number}
//  Relative Location values (steps 1 and 3) resolve against the issuer; cookies are scoped
//  to /interaction/<uid> and /auth/<uid> paths, so the client's jar must honour cookie paths
//  (reqwest's `cookies` feature does). The password is ignored; `login` becomes `sub`.
//  Abort instead of login (user cancels): GET {issuer}/interaction/<uid>/abort
//     -> 303 {issuer}/auth/<uid> -> 303 <redirect_uri>?error=access_denied
//        &error_description=End-User+aborted+interaction&state=…&iss=…
//  Wrong code_verifier at /token -> 400 {"error":"invalid_grant"}; /auth without
//  code_challenge -> 303 <redirect_uri>?error=invalid_request (PKCE required).
//  In a browser (Playwright): fill input[name=login] and input[name=password], click the
//  "Sign-in" button, then the "Continue" button on the consent page.
//
// The same steps with curl (`-c/-b jar` keeps the cookies; no -L):
//   I=http://127.0.0.1:$PORT; R=http://127.0.0.1:8080/cb; J=$(mktemp)
//   V=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | head -c 64)
//   C=$(printf %s "$V" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d =)
//   loc() { curl -s -o /dev/null -w '%{redirect_url}' -c $J -b $J "$@"; }
//   L1=$(loc "$I/auth?client_id=agilekit&redirect_uri=$R&response_type=code&scope=openid%20email%20profile&state=st1&nonce=n1&code_challenge=$C&code_challenge_method=S256")
//   L2=$(loc -d prompt=login -d login=mario -d password=x "$L1")
//   L3=$(loc "$L2")
//   L4=$(loc -d prompt=consent "$L3")
//   L5=$(loc "$L4")      # = $R?code=…&state=st1&iss=…
//   CODE=$(sed -E 's/.*[?&]code=([^&]*).*/\1/' <<<"$L5")
//   TOK=$(curl -s -u agilekit:s3cret -d grant_type=authorization_code -d code=$CODE \
//         --data-urlencode redirect_uri=$R -d code_verifier=$V $I/token)
//   curl -s -H "Authorization: Bearer $(jq -r .access_token <<<"$TOK")" $I/me
// ---------------------------------------------------------------------------------------

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const env = process.env;
const port = Number.parseInt(env.PORT ?? '0', 10);
const clientId = env.CLIENT_ID || 'agilekit';
const clientSecret = env.CLIENT_SECRET || 'agilekit-secret';
const list = (v) => (v ?? '').split(/[\s,]+/).filter(Boolean);
const redirectUris = list(env.REDIRECT_URI);
if (redirectUris.length === 0) {
  console.error('oidc: REDIRECT_URI is required (the client\'s callback URL)');
  process.exit(2);
}
const postLogoutRedirectUris = list(env.POST_LOGOUT_REDIRECT_URI);

let accounts = {};
try {
  accounts = JSON.parse(env.ACCOUNTS || '{}');
} catch (err) {
  console.error(`oidc: ACCOUNTS is not valid JSON: ${err.message}`);
  process.exit(2);
}

const CLAIM_NAMES = ['email', 'email_verified', 'name', 'fiscal_number'];

async function findAccount(_ctx, sub) {
  const data = Object.hasOwn(accounts, sub) ? accounts[sub] : {};
  return {
    accountId: sub,
    async claims(_use, _scope) {
      const claims = { sub };
      for (const name of CLAIM_NAMES) if (data[name] !== undefined) claims[name] = data[name];
      return claims;
    },
  };
}

function loadOrMakeKey(file) {
  if (file) {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // missing or half-written by nobody (writes are atomic): make one below
    }
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  if (file) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(jwk));
    renameSync(tmp, file);
  }
  return jwk;
}
const signingKey = { ...loadOrMakeKey(env.SIGNING_KEY_FILE), kid: 'test-rs256', alg: 'RS256', use: 'sig' };

const server = createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      post_logout_redirect_uris: postLogoutRedirectUris,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: env.TOKEN_ENDPOINT_AUTH_METHOD || 'client_secret_basic',
    }],
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'offline_access'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'fiscal_number'],
    },
    conformIdTokenClaims: env.CLAIMS_IN_ID_TOKEN === '0',
    findAccount,
    features: {
      devInteractions: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
      Interaction: 3600,
      Grant: 86400,
      Session: 86400,
      RefreshToken: 86400,
    },
  });
  provider.on('server_error', (_ctx, err) => console.error('oidc server_error:', err));
  server.on('request', provider.callback());
  process.stdout.write(`oidc listening on ${issuer}\n`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => server.close(() => process.exit(0)).closeAllConnections());
}
