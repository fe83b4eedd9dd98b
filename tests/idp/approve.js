#!/usr/bin/env node
// Headless "person with a browser" for the test IdP's device flow.
//
//   node approve.js --issuer URL --user-code CODE [--deny] [--deny-at consent|confirm|login]
//                   [--login alice] [--password wonderland] [--verification-uri URL]
//                   [--timeout-ms 10000] [--verbose]
//
// It opens the verification page, submits the user code (with the form's xsrf field),
// confirms the device, signs in, and allows (or denies) on the consent page, following
// redirects with a small cookie jar, exactly as a browser would.
//
// Exit 0: the provider showed "Sign-in Success" (or, with --deny, the "interrupted" page).
// Exit 1: anything else, with one line on stderr saying why. Nothing is printed on stdout
// except, with --verbose, a trace of the requests on stderr.

import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'user-code': { type: 'string' },
    'verification-uri': { type: 'string' },
    deny: { type: 'boolean', default: false },
    // where the person says no: on the consent page (default), on the device confirmation
    // page ("[ Abort ]"), or on the login page ("Cancel")
    'deny-at': { type: 'string', default: 'consent' },
    login: { type: 'string', default: 'alice' },
    password: { type: 'string', default: 'wonderland' },
    'timeout-ms': { type: 'string', default: '10000' },
    verbose: { type: 'boolean', default: false },
  },
  strict: true,
});

function fail(msg) {
  process.stderr.write(`approve.js: ${msg.replace(/\s+/g, ' ').trim()}\n`);
  process.exit(1);
}

if (!opts.issuer || !opts['user-code']) fail('usage: approve.js --issuer URL --user-code CODE [--deny]');
if (!['consent', 'confirm', 'login'].includes(opts['deny-at'])) fail('--deny-at must be consent, confirm or login');
const deny = opts.deny;
const denyAt = opts['deny-at'];

const timeoutMs = Number(opts['timeout-ms']);
setTimeout(() => fail(`gave up after ${timeoutMs} ms`), timeoutMs).unref();

const verificationUri = opts['verification-uri']
  || new URL('device', opts.issuer.endsWith('/') ? opts.issuer : `${opts.issuer}/`).href;

// ------------------------------------------------------------------ cookie jar
// name -> { value, path }; host-only, no expiry bookkeeping beyond deletion.
const jar = new Map();

function storeCookies(res, url) {
  for (const line of res.headers.getSetCookie()) {
    const [pair, ...attrs] = line.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) continue;
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    let path = url.pathname.replace(/\/[^/]*$/, '') || '/';
    let expired = value === '';
    for (const attr of attrs) {
      const [k, v = ''] = attr.split('=');
      const key = k.trim().toLowerCase();
      if (key === 'path') path = v.trim() || '/';
      if (key === 'max-age' && Number(v) <= 0) expired = true;
      if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
    }
    const id = `${name}\u0000${path}`;
    if (expired) jar.delete(id);
    else jar.set(id, { name, value, path });
  }
}

function cookieHeader(url) {
  const p = url.pathname;
  const out = [];
  for (const { name, value, path } of jar.values()) {
    if (p === path || p.startsWith(path.endsWith('/') ? path : `${path}/`) || path === '/') {
      out.push(`${name}=${value}`);
    }
  }
  return out.join('; ');
}

// ------------------------------------------------------------------ browser
let current; // URL of the page now shown

async function request(method, url, form) {
  let target = new URL(url, current);
  let body = form ? new URLSearchParams(form).toString() : undefined;
  for (let hops = 0; hops < 20; hops += 1) {
    const headers = { 'user-agent': 'approve.js (git-credential-iam tests)' };
    const cookies = cookieHeader(target);
    if (cookies) headers.cookie = cookies;
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    if (opts.verbose) process.stderr.write(`> ${method} ${target.href}\n`);
    const res = await fetch(target, { method, headers, body, redirect: 'manual' });
    storeCookies(res, target);
    if (opts.verbose) process.stderr.write(`< ${res.status} ${res.headers.get('location') || ''}\n`);
    if ([301, 302, 303, 307, 308].includes(res.status)) {
      await res.arrayBuffer();
      target = new URL(res.headers.get('location'), target);
      if (res.status !== 307 && res.status !== 308) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    const text = await res.text();
    current = target;
    return { status: res.status, url: target, text };
  }
  fail(`too many redirects from ${url}`);
  return undefined;
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  if (!m) return undefined;
  const raw = m[2] ?? m[3] ?? m[4];
  return raw.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// All forms on a page: { id, action, method, fields } where fields holds every named
// <input> with its value (hidden ones included).
function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const fields = {};
    for (const input of m[2].matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], 'name');
      if (name) fields[name] = attr(input[0], 'value') ?? '';
    }
    out.push({
      id: attr(`<form ${m[1]}>`, 'id'),
      action: attr(`<form ${m[1]}>`, 'action') ?? '',
      method: (attr(`<form ${m[1]}>`, 'method') ?? 'get').toUpperCase(),
      fields,
    });
  }
  return out;
}

function formOr(page, pred, what) {
  const f = forms(page.text).find(pred);
  if (!f) fail(`${what} not found on ${page.url.href} (status ${page.status}): ${summary(page)}`);
  return f;
}

function submit(form, extra) {
  return request(form.method, form.action, { ...form.fields, ...extra });
}

function title(page) {
  return page.text.match(/<title>([^<]*)<\/title>/i)?.[1]?.trim() ?? '';
}

function summary(page) {
  const text = page.text.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ').trim();
  return `[${title(page)}] ${text.slice(0, 200)}`;
}

const SUCCESS = /Sign-in Success/;
const INTERRUPTED = /The Sign-in request was interrupted/;
const BAD_CODE = /The code you entered is incorrect/;

function finish(page) {
  if (SUCCESS.test(page.text)) {
    if (deny) fail(`expected the request to be denied but the provider shows success`);
    process.exit(0);
  }
  if (INTERRUPTED.test(page.text)) {
    if (deny) process.exit(0);
    fail('the provider says the sign-in request was interrupted');
  }
  fail(`unexpected page ${page.url.href} (status ${page.status}): ${summary(page)}`);
}

// ------------------------------------------------------------------ the walk
try {
  // 1. the verification page with its user-code form
  let page = await request('GET', verificationUri);
  if (page.status !== 200) fail(`GET ${verificationUri} answered ${page.status}: ${summary(page)}`);
  const input = formOr(page, (f) => 'user_code' in f.fields, 'user code form');

  // 2. submit the code -> confirmation page
  page = await submit(input, { user_code: opts['user-code'] });
  if (BAD_CODE.test(page.text)) fail(`the provider rejected user code ${opts['user-code']}`);
  const confirm = formOr(page, (f) => 'confirm' in f.fields, 'device confirmation form');

  // 3. confirm the device (or abort on this page) -> login
  if (deny && denyAt === 'confirm') {
    finish(await submit(confirm, { abort: 'yes' }));
  }
  page = await submit(confirm, {});

  // 4. steps until the provider ends the flow (login, consent)
  for (let step = 0; step < 6; step += 1) {
    if (SUCCESS.test(page.text) || INTERRUPTED.test(page.text)) finish(page);
    const all = forms(page.text);
    const login = all.find((f) => 'password' in f.fields);
    const abort = all.find((f) => /\/abort$/.test(f.action));
    const allow = all.find((f) => /\/confirm$/.test(f.action));
    if (login) {
      if (/Invalid login or password/.test(page.text)) fail(`login rejected for ${opts.login}`);
      if (deny && denyAt === 'login' && abort) {
        page = await submit(abort, {});
      } else {
        page = await submit(login, { login: opts.login, password: opts.password });
      }
    } else if (allow) {
      if (deny && abort) page = await submit(abort, {});
      else page = await submit(allow, {});
    } else {
      finish(page);
    }
  }
  finish(page);
} catch (e) {
  fail(`${e.cause?.code || e.name}: ${e.cause?.message || e.message}`);
}
