#!/usr/bin/env node
// Test OpenID provider for git-credential-iam's integration tests, built on npm `oidc-provider`.
//
//   node server.js [--port N] [--trailing-slash] [--access-ttl SECS] [--device-ttl SECS]
//                  [--refresh-ttl SECS] [--interval SECS|none] [--slow-down N]
//                  [--extra-scopes "a b"] [--ignore-stdin]
//                  [--tls-key FILE --tls-cert FILE] [--audience-resource]
//                  [--client-access-ttl CLIENT=SECS]...
//
// Listens on 127.0.0.1 only. When ready it prints exactly one JSON line on stdout,
// {"issuer":"http://127.0.0.1:PORT","port":PORT}, and nothing else ever goes to stdout
// (every log line goes to stderr). It exits when stdin reaches EOF (so a killed test parent
// does not leave it behind; pass --ignore-stdin to run it by hand in the background) and on
// SIGTERM/SIGINT.
//
// --tls-key/--tls-cert: serve https (issuer https://127.0.0.1:PORT) with that PEM key and
// certificate chain. --audience-resource: like INDIGO IAM, an `audience` form parameter on the
// device authorization and token requests asks for a token with that `aud`; here it becomes an
// RFC 8707 `resource` (an absolute URI), whose tokens carry `aud` and only the extra scopes.
// --client-access-ttl CLIENT=SECS: that client's access tokens live SECS (overrides --access-ttl).
//
// Everything lives in memory: a restart forgets all grants, tokens and registered clients.
// See README.md next to this file for the clients, the account and the extra endpoints.

import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { parseArgs } from 'node:util';

// oidc-provider prints its notices with console.info (stdout): keep stdout for the ready line.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

function die(msg) {
  process.stderr.write(`server.js: ${msg}\n`);
  process.exit(2);
}

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'trailing-slash': { type: 'boolean', default: false },
    'access-ttl': { type: 'string', default: '3600' },
    'device-ttl': { type: 'string', default: '600' },
    'refresh-ttl': { type: 'string', default: String(14 * 24 * 3600) },
    interval: { type: 'string', default: '1' },
    'slow-down': { type: 'string', default: '0' },
    'extra-scopes': { type: 'string', default: 'read:git write:git' },
    'ignore-stdin': { type: 'boolean', default: false },
    'tls-key': { type: 'string' },
    'tls-cert': { type: 'string' },
    'audience-resource': { type: 'boolean', default: false },
    'client-access-ttl': { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});

function nonNegInt(name) {
  const v = opts[name];
  if (!/^\d+$/.test(v)) die(`--${name} needs a non-negative integer, got ${JSON.stringify(v)}`);
  return Number(v);
}

const PORT = nonNegInt('port');
const ACCESS_TTL = nonNegInt('access-ttl');
const DEVICE_TTL = nonNegInt('device-ttl');
const REFRESH_TTL = nonNegInt('refresh-ttl');
const INTERVAL = opts.interval === 'none' ? undefined : nonNegInt('interval');
const SLOW_DOWN = nonNegInt('slow-down');
const EXTRA_SCOPES = opts['extra-scopes'].split(/\s+/).filter(Boolean);
if (!opts['tls-key'] !== !opts['tls-cert']) die('--tls-key and --tls-cert go together');
const TLS = opts['tls-key']
  ? { key: fs.readFileSync(opts['tls-key']), cert: fs.readFileSync(opts['tls-cert']) }
  : undefined;
const AUDIENCE_RESOURCE = opts['audience-resource'];
const CLIENT_ACCESS_TTL = new Map(opts['client-access-ttl'].map((v) => {
  const m = v.match(/^([^=]+)=(\d+)$/);
  if (!m) die(`--client-access-ttl needs CLIENT=SECS, got ${JSON.stringify(v)}`);
  return [m[1], Number(m[2])];
}));
const accessTtl = (client) => CLIENT_ACCESS_TTL.get(client?.clientId) ?? ACCESS_TTL;

const { default: Provider, errors } = await import('oidc-provider');

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

// ---------------------------------------------------------------- the one test account
const ACCOUNTS = new Map([
  ['alice', {
    password: 'wonderland',
    claims: {
      sub: 'alice',
      name: 'Alice Liddell',
      preferred_username: 'alice',
      email: 'alice@example.org',
      email_verified: true,
    },
  }],
]);

function findAccount(_ctx, sub) {
  const account = ACCOUNTS.get(sub);
  if (!account) return undefined;
  return {
    accountId: sub,
    async claims() { return { ...account.claims }; },
  };
}

// ---------------------------------------------------------------- counters
function freshCounters() {
  return {
    device_authorization: 0,
    token: { [DEVICE_GRANT]: 0, refresh_token: 0, password: 0 },
    introspection: 0,
    revocation: 0,
    registration: 0,
    // every matched oidc-provider route by name (discovery, code_verification, ...)
    routes: {},
  };
}
let counters = freshCounters();
const slowDownSeen = new Map(); // device_code -> polls answered with slow_down so far

// ---------------------------------------------------------------- config
const SCOPES = ['openid', 'offline_access', 'profile', 'email', ...EXTRA_SCOPES];

const sameGrants = [DEVICE_GRANT, 'refresh_token'];
const CONF_SECRET = 's3c+r%t with space';
const clients = [
  {
    client_id: 'public-cli',
    client_name: 'git-credential-iam tests (public)',
    token_endpoint_auth_method: 'none',
    grant_types: sameGrants,
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'conf-cli',
    client_secret: CONF_SECRET,
    client_name: 'git-credential-iam tests (confidential)',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: sameGrants,
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'pw-cli',
    client_name: 'git-credential-iam tests (password, public)',
    token_endpoint_auth_method: 'none',
    grant_types: ['password', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'pw-conf-cli',
    client_secret: CONF_SECRET,
    client_name: 'git-credential-iam tests (password, confidential)',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['password', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'rs',
    client_secret: 'rs-secret',
    client_name: 'git server (introspection only)',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  },
];

const configuration = {
  clients,
  // Dynamic registration: a client that registers without response_types gets none (so it
  // needs no redirect_uris, like a device-flow CLI at INDIGO IAM); grant_types still default
  // to authorization_code as RFC 7591 says, which then leaves it with no usable grant.
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  },
  findAccount,
  scopes: SCOPES,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  cookies: { keys: ['git-credential-iam-test-cookie-key'] },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // `rs` (and any confidential client) may introspect every token; a public client only its own.
      async allowedPolicy(ctx, client, token) {
        if (client.clientId === 'rs') return true;
        if (client.clientAuthMethod === 'none') return token.clientId === client.clientId;
        return true;
      },
    },
    registration: { enabled: true, initialAccessToken: false },
    // Without --audience-resource every `resource` is refused (oidc-provider's default).
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, resourceIndicator, client) {
        if (!AUDIENCE_RESOURCE) throw new errors.InvalidTarget();
        return {
          audience: resourceIndicator,
          scope: EXTRA_SCOPES.join(' '),
          accessTokenFormat: 'opaque',
          accessTokenTTL: accessTtl(client),
        };
      },
    },
  },
  rotateRefreshToken: true,
  async issueRefreshToken(_ctx, client, source) {
    return client.grantTypeAllowed('refresh_token') && source.scopes.has('offline_access');
  },
  pkce: { required: () => false },
  ttl: {
    AccessToken: (_ctx, _token, client) => accessTtl(client),
    DeviceCode: () => DEVICE_TTL,
    RefreshToken: () => REFRESH_TTL,
    Grant: () => 14 * 24 * 3600,
    Session: () => 14 * 24 * 3600,
    Interaction: () => 3600,
    IdToken: () => 3600,
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // Anything thrown from here is rendered by renderError; keep it short and readable.
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1>${Object.entries(out)
      .map(([k, v]) => `<p class="error"><strong>${esc(k)}</strong>: ${esc(String(v))}</p>`).join('')}`);
  },
};

// ---------------------------------------------------------------- html helpers
function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

function page(title, body) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
${body}
</body></html>
`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

// ---------------------------------------------------------------- start
const server = TLS ? https.createServer(TLS) : http.createServer();
server.listen(PORT, '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
}).catch((e) => die(`cannot listen: ${e.message}`));
const { port } = server.address();
const issuer = `${TLS ? 'https' : 'http'}://127.0.0.1:${port}${opts['trailing-slash'] ? '/' : ''}`;

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// ---------------------------------------------------------------- password grant
const PASSWORD_PARAMS = ['username', 'password', 'scope'];
async function passwordGrant(ctx) {
  const { client, params } = ctx.oidc;
  if (!client.grantTypeAllowed('password')) {
    throw new errors.UnauthorizedClient('client is not allowed to use the password grant');
  }
  if (!params.username || !params.password) {
    throw new errors.InvalidRequest('username and password are required');
  }
  const account = ACCOUNTS.get(params.username);
  if (!account || account.password !== params.password) {
    throw new errors.InvalidGrant('invalid username or password');
  }
  const requested = new Set((params.scope || '').split(' ').filter(Boolean));
  if (!client.grantTypeAllowed('refresh_token')) requested.delete('offline_access');
  // like the device flow: scopes the provider does not know are dropped, not refused
  const scope = [...requested].filter((s) => SCOPES.includes(s)).join(' ');

  const accountId = params.username;
  const grant = new provider.Grant({ accountId, clientId: client.clientId });
  if (scope) grant.addOIDCScope(scope);
  const grantId = await grant.save();

  const at = new provider.AccessToken({
    accountId, client, grantId, gty: 'password', scope: scope || undefined,
  });
  ctx.oidc.entity('AccessToken', at);
  const accessToken = await at.save();

  let refreshToken;
  if (await configuration.issueRefreshToken(ctx, client, { scopes: new Set(scope.split(' ')) })) {
    const rt = new provider.RefreshToken({
      accountId,
      client,
      grantId,
      gty: 'password',
      scope,
      rotations: 0,
      authTime: Math.floor(Date.now() / 1000),
    });
    ctx.oidc.entity('RefreshToken', rt);
    refreshToken = await rt.save();
  }

  let idToken;
  if (requested.has('openid')) {
    const token = new provider.IdToken({ ...account.claims }, { ctx });
    token.scope = 'openid';
    idToken = await token.issue({ use: 'idtoken' });
  }

  ctx.body = {
    access_token: accessToken,
    expires_in: at.expiration,
    token_type: 'Bearer',
    scope: scope || undefined,
    refresh_token: refreshToken,
    id_token: idToken,
  };
}
provider.registerGrantType('password', passwordGrant, PASSWORD_PARAMS);

// ---------------------------------------------------------------- middleware
// 1. test-only endpoints, interactions (login + consent pages), counters, interval, slow_down.
provider.use(async (ctx, next) => {
  const { path, method } = ctx;

  if (path === '/__counters' && method === 'GET') {
    ctx.set('cache-control', 'no-store');
    ctx.body = counters;
    return;
  }
  if (path === '/__counters/reset' && method === 'POST') {
    counters = freshCounters();
    slowDownSeen.clear();
    ctx.set('cache-control', 'no-store');
    ctx.body = counters;
    return;
  }

  const im = path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (im) {
    await interaction(ctx, im[1], im[2]);
    return;
  }

  // --audience-resource: IAM's `audience` parameter becomes a `resource` (the body is read
  // here and oidc-provider then uses ctx.req.body)
  if (AUDIENCE_RESOURCE && method === 'POST' && ctx.is('application/x-www-form-urlencoded')
      && [provider.pathFor('token'), provider.pathFor('device_authorization')].includes(path)) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    if (form.has('audience') && !form.has('resource')) form.set('resource', form.get('audience'));
    form.delete('audience');
    ctx.req.body = Buffer.from(form.toString(), 'utf8');
  }

  // --slow-down: read the token request body here (oidc-provider then uses ctx.req.body)
  if (SLOW_DOWN > 0 && method === 'POST' && path === provider.pathFor('token')
      && ctx.is('application/x-www-form-urlencoded')) {
    let raw = ctx.req.body;
    if (!raw) {
      const chunks = [];
      for await (const chunk of ctx.req) chunks.push(chunk);
      raw = Buffer.concat(chunks);
      ctx.req.body = raw;
    }
    const form = new URLSearchParams(raw.toString('utf8'));
    if (form.get('grant_type') === DEVICE_GRANT && form.get('device_code')) {
      const dc = form.get('device_code');
      const seen = slowDownSeen.get(dc) || 0;
      if (seen < SLOW_DOWN) {
        slowDownSeen.set(dc, seen + 1);
        counters.token[DEVICE_GRANT] += 1;
        counters.routes.token = (counters.routes.token || 0) + 1;
        ctx.status = 400;
        ctx.set('cache-control', 'no-store');
        ctx.body = { error: 'slow_down', error_description: 'polling too fast (test server --slow-down)' };
        return;
      }
    }
  }

  try {
    await next();
  } finally {
    const route = ctx.oidc?.route;
    if (route) {
      counters.routes[route] = (counters.routes[route] || 0) + 1;
      if (route === 'device_authorization') counters.device_authorization += 1;
      if (route === 'introspection') counters.introspection += 1;
      if (route === 'revocation') counters.revocation += 1;
      if (route === 'registration') counters.registration += 1;
      if (route === 'token') {
        const gt = ctx.oidc.params?.grant_type ?? ctx.oidc.body?.grant_type ?? '(none)';
        counters.token[gt] = (counters.token[gt] || 0) + 1;
      }
    }
  }

  const route = ctx.oidc?.route;
  // RFC 8628 `interval`: oidc-provider never sends one.
  if (route === 'device_authorization' && ctx.status === 200 && ctx.body
      && typeof ctx.body === 'object' && INTERVAL !== undefined) {
    ctx.body = { ...ctx.body, interval: INTERVAL };
  }
  // RFC 6749 5.2: oidc-provider says invalid_request for a grant type the client may not use;
  // for the password grant answer unauthorized_client as the RFC (and the tests) expect.
  if (route === 'token' && ctx.status === 400 && ctx.body?.error === 'invalid_request'
      && /grant type is not allowed/.test(ctx.body.error_description || '')
      && (ctx.oidc.params?.grant_type ?? ctx.oidc.body?.grant_type) === 'password') {
    ctx.body = {
      error: 'unauthorized_client',
      error_description: 'the client is not allowed to use the password grant',
    };
  }
});

// ---------------------------------------------------------------- interactions
async function interaction(ctx, uid, action) {
  ctx.set('cache-control', 'no-store');
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (e) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', `<h1>Error</h1><p class="error">interaction not found: ${esc(e.message)}</p>`);
    return;
  }
  if (details.uid !== uid) {
    ctx.status = 400;
    ctx.type = 'html';
    ctx.body = page('Error', '<h1>Error</h1><p class="error">interaction mismatch</p>');
    return;
  }
  const { prompt, params, session } = details;
  const client = await provider.Client.find(params.client_id);
  const clientName = client?.clientName || params.client_id;

  const finish = async (result, merge) => {
    const to = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: merge,
    });
    ctx.redirect(to);
    ctx.status = 303;
  };

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = loginPage(uid, clientName);
    } else if (prompt.name === 'consent') {
      ctx.body = consentPage(uid, clientName, prompt.details);
    } else {
      ctx.status = 501;
      ctx.body = page('Error', `<h1>Error</h1><p class="error">unknown prompt ${esc(prompt.name)}</p>`);
    }
    return;
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return;
  }
  const form = await readForm(ctx.req);

  if (action === 'abort') {
    await finish({
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, false);
    return;
  }

  if (action === 'login') {
    if (prompt.name !== 'login') {
      ctx.status = 400;
      ctx.body = page('Error', '<h1>Error</h1><p class="error">not at the login step</p>');
      return;
    }
    const account = ACCOUNTS.get(form.login);
    if (!account || account.password !== form.password) {
      ctx.type = 'html';
      ctx.body = loginPage(uid, clientName, 'Invalid login or password.');
      return;
    }
    await finish({ login: { accountId: form.login } }, false);
    return;
  }

  if (action === 'confirm') {
    if (prompt.name !== 'consent') {
      ctx.status = 400;
      ctx.body = page('Error', '<h1>Error</h1><p class="error">not at the consent step</p>');
      return;
    }
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    await finish({ consent: { grantId: await grant.save() } }, true);
    return;
  }
  ctx.status = 404;
}

function loginPage(uid, clientName, error) {
  return page('Sign-in', `<h1>Sign-in</h1>
<p>Sign in to authorize <strong>${esc(clientName)}</strong>.</p>
${error ? `<p class="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
  <input type="text" name="login" placeholder="login" autofocus>
  <input type="password" name="password" placeholder="password">
  <button type="submit">Sign-in</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Cancel</button>
</form>`);
}

function consentPage(uid, clientName, details) {
  const scopes = [...(details.missingOIDCScope || [])];
  return page('Authorize', `<h1>Authorize</h1>
<p><strong>${esc(clientName)}</strong> asks for: <span class="scopes">${esc(scopes.join(' '))}</span></p>
<form id="confirm" method="post" action="/interaction/${esc(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Deny</button>
</form>`);
}

// ---------------------------------------------------------------- serve
provider.on('server_error', (_ctx, err) => console.error('server_error:', err));
provider.on('grant.error', (_ctx, err) => console.error('grant.error:', err.error, '-', err.error_detail || err.error_description || err.message));

server.on('request', provider.callback());

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (!opts['ignore-stdin']) {
  process.stdin.on('end', shutdown);
  process.stdin.on('close', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
console.error(`test IdP ready at ${issuer} (access ttl ${ACCESS_TTL}s, device ttl ${DEVICE_TTL}s, interval ${INTERVAL ?? 'none'}, slow_down ${SLOW_DOWN})`);
