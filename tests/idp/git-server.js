#!/usr/bin/env node
// git smart-HTTP server that accepts only requests carrying an access token the test IdP
// says is active (RFC 7662 introspection), then serves the request with `git http-backend`.
//
//   node git-server.js --root DIR --issuer URL --mode bearer|basic
//                      [--introspect-client rs] [--introspect-secret rs-secret]
//                      [--port N] [--git PATH] [--ignore-stdin]
//
// bearer mode: needs `Authorization: Bearer TOKEN`; otherwise 401 with
//   `WWW-Authenticate: Bearer realm="git"` (plus `, error="invalid_token"` when a token was
//   sent but is not active).
// basic mode: needs `Authorization: Basic base64(USER:TOKEN)` (any USER); otherwise 401 with
//   `WWW-Authenticate: Basic realm="git"`.
//
// Every repository under --root is served (GIT_HTTP_EXPORT_ALL) and pushable
// (http.receivepack=true). REMOTE_USER is the token's `sub`.
// Listens on 127.0.0.1 only; prints one JSON line {"url":"http://127.0.0.1:PORT","port":PORT}
// on stdout when ready, nothing else on stdout; exits on stdin EOF and on SIGTERM/SIGINT.
// GET /__counters (no auth): {"requests":N,"unauthorized":N,"authorized":N,"basic_users":{..}};
// POST /__counters/reset zeroes them.

import http from 'node:http';
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import path from 'node:path';
import fs from 'node:fs';

const { values: opts } = parseArgs({
  options: {
    root: { type: 'string' },
    issuer: { type: 'string' },
    mode: { type: 'string', default: 'bearer' },
    'introspect-client': { type: 'string', default: 'rs' },
    'introspect-secret': { type: 'string', default: 'rs-secret' },
    port: { type: 'string', default: '0' },
    git: { type: 'string', default: 'git' },
    'ignore-stdin': { type: 'boolean', default: false },
  },
  strict: true,
});

function die(msg) {
  process.stderr.write(`git-server.js: ${msg}\n`);
  process.exit(2);
}
function log(msg) {
  process.stderr.write(`git-server.js: ${msg}\n`);
}

if (!opts.root || !opts.issuer) die('usage: git-server.js --root DIR --issuer URL --mode bearer|basic');
if (!['bearer', 'basic'].includes(opts.mode)) die('--mode must be bearer or basic');
const ROOT = path.resolve(opts.root);
if (!fs.statSync(ROOT, { throwIfNoEntry: false })?.isDirectory()) die(`--root ${ROOT} is not a directory`);

// ---------------------------------------------------------------- discovery
const discoveryUrl = `${opts.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
let introspectionEndpoint;
try {
  const res = await fetch(discoveryUrl, { signal: AbortSignal.timeout(10000) });
  if (!res.ok) die(`discovery ${discoveryUrl} answered ${res.status}`);
  introspectionEndpoint = (await res.json()).introspection_endpoint;
} catch (e) {
  die(`discovery ${discoveryUrl} failed: ${e.cause?.message || e.message}`);
}
if (!introspectionEndpoint) die('the provider announces no introspection_endpoint');

const formEnc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
const rsAuth = `Basic ${Buffer.from(`${formEnc(opts['introspect-client'])}:${formEnc(opts['introspect-secret'])}`).toString('base64')}`;

// returns the introspection response when the token is active, else undefined
async function introspect(token) {
  const res = await fetch(introspectionEndpoint, {
    method: 'POST',
    headers: {
      authorization: rsAuth,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    signal: AbortSignal.timeout(10000),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    log(`introspection answered ${res.status} ${JSON.stringify(body)}`);
    return undefined;
  }
  return body.active === true ? body : undefined;
}

// ---------------------------------------------------------------- counters
function freshCounters() {
  return {
    requests: 0, unauthorized: 0, authorized: 0, basic_users: {},
  };
}
let counters = freshCounters();

// ---------------------------------------------------------------- auth
function challenge(res, error) {
  const scheme = opts.mode === 'bearer' ? 'Bearer' : 'Basic';
  const extra = error && opts.mode === 'bearer' ? `, error="${error}"` : '';
  res.writeHead(401, {
    'www-authenticate': `${scheme} realm="git"${extra}`,
    'content-type': 'text/plain',
  });
  res.end('authentication required\n');
}

// -> { token, user } or undefined when the header has not the expected form
function credentials(header) {
  if (!header) return undefined;
  const m = header.match(/^(\S+)\s+(\S+)\s*$/);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (opts.mode === 'bearer' && scheme === 'bearer') return { token: m[2] };
  if (opts.mode === 'basic' && scheme === 'basic') {
    const decoded = Buffer.from(m[2], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    return { user: decoded.slice(0, colon), token: decoded.slice(colon + 1) };
  }
  return undefined;
}

// ---------------------------------------------------------------- CGI
function runBackend(req, res, url, remoteUser) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || '/nonexistent',
    GIT_PROJECT_ROOT: ROOT,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_COUNT: '2',
    GIT_CONFIG_KEY_0: 'http.receivepack',
    GIT_CONFIG_VALUE_0: 'true',
    GIT_CONFIG_KEY_1: 'safe.directory',
    GIT_CONFIG_VALUE_1: '*',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    SERVER_SOFTWARE: 'git-credential-iam-test-git-server',
    REQUEST_METHOD: req.method,
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.replace(/^\?/, ''),
    REMOTE_USER: remoteUser,
    REMOTE_ADDR: req.socket.remoteAddress || '127.0.0.1',
  };
  if (req.headers['content-type']) env.CONTENT_TYPE = req.headers['content-type'];
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  // http-backend inflates gzip bodies itself when told the encoding
  if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
  if (req.headers['git-protocol']) env.GIT_PROTOCOL = req.headers['git-protocol'];

  const child = spawn(opts.git, ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.on('data', (d) => process.stderr.write(`http-backend: ${d}`));
  child.on('error', (e) => {
    log(`cannot run ${opts.git} http-backend: ${e.message}`);
    if (!res.headersSent) {
      res.writeHead(500, { 'content-type': 'text/plain' });
    }
    res.end();
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => {});

  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on('data', (chunk) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    let end = head.indexOf('\r\n\r\n');
    let sepLen = 4;
    if (end < 0) {
      end = head.indexOf('\n\n');
      sepLen = 2;
    }
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    const headers = {};
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = parseInt(value, 10) || 500;
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    const rest = head.subarray(end + sepLen);
    if (rest.length) res.write(rest);
  });
  child.stdout.on('end', () => {
    if (!headersDone) {
      log('http-backend ended without CGI headers');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    }
    res.end();
  });
}

// ---------------------------------------------------------------- server
const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/__counters' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(counters));
    return;
  }
  if (url.pathname === '/__counters/reset' && req.method === 'POST') {
    counters = freshCounters();
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(counters));
    return;
  }

  counters.requests += 1;
  try {
    const cred = credentials(req.headers.authorization);
    const info = cred?.token ? await introspect(cred.token) : undefined;
    if (!info) {
      counters.unauthorized += 1;
      req.resume();
      challenge(res, cred ? 'invalid_token' : undefined);
      return;
    }
    counters.authorized += 1;
    if (cred.user !== undefined) {
      counters.basic_users[cred.user] = (counters.basic_users[cred.user] || 0) + 1;
    }
    runBackend(req, res, url, info.sub || cred.user || 'token');
  } catch (e) {
    log(`request failed: ${e.stack || e}`);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
    res.end();
  }
});

server.listen(Number(opts.port), '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
}).catch((e) => die(`cannot listen: ${e.message}`));
const { port } = server.address();

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

process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, port })}\n`);
log(`ready on http://127.0.0.1:${port} (${opts.mode}, root ${ROOT}, introspection ${introspectionEndpoint})`);
