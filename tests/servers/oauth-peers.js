#!/usr/bin/env node
// OAuth 2.0 + XOAUTH2 SMTP peers for smtp-connector's integration tests.
//
//   node tests/servers/oauth-peers.js --oauth-port P --smtp-port Q --spool DIR
//        --ready FILE --client-id ID --client-secret S [--token-ttl S]
//        [--user U:PASS]... [--token-fault 500|nonjson] [--token-fault-file F]
//        [--starttls CERT KEY] [--auth-optional]
//
// * An OAuth 2.0 authorization server (npm oauth2-mock-server) on
//   127.0.0.1:P, issuer = its URL.  Grants: authorization_code (with PKCE),
//   refresh_token, client_credentials.  The only client is ID/S, sent in the
//   form body or with HTTP Basic; anything else gets 401 {"error":"invalid_client"}.
//   Codes are single-use and bound to their redirect_uri and PKCE challenge;
//   refresh tokens must be ones this server issued.  --token-ttl sets the
//   access token lifetime (default 3600 s).  --token-fault makes the token
//   endpoint answer 500 or a 200 that is not JSON; --token-fault-file F does
//   the same while F exists, with F's content ("500" or "nonjson") as the mode,
//   so a test can switch it on and off.
// * An SMTP server (npm smtp-server) on 127.0.0.1:Q offering
//   AUTH PLAIN LOGIN XOAUTH2.  XOAUTH2 succeeds only with a token the mock
//   issued (RS256 signature checked with node:crypto against the mock's JWKS,
//   fetched over HTTP), from this issuer, not expired.  PLAIN/LOGIN accept the
//   --user credentials.  With --starttls, STARTTLS is offered and AUTH and MAIL
//   need it.  MAIL needs AUTH unless --auth-optional.
// * Spool DIR: msg-NNNN.json (each accepted message), auth-NNNN.json (each
//   AUTH attempt: method, user, ok, reason, tls), token-NNNN.json (each token
//   endpoint request).  Tokens and passwords are never written or printed.
// * Ready FILE: JSON {oauth_url, token_url, auth_url, jwks_url, smtp_url,
//   oauth_port, smtp_port, pid}, written once both listen.
// SIGTERM/SIGINT stop both servers (exit 0).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { SMTPServer } = require('smtp-server');

function parseArgs(argv) {
  const o = { users: [], tokenTtl: 3600, oauthPort: 0, smtpPort: 0, authOptional: false };
  const need = (i) => {
    if (i >= argv.length) usage(`${argv[i - 1]} needs a value`);
    return argv[i];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--oauth-port': o.oauthPort = Number(need(++i)); break;
      case '--smtp-port': o.smtpPort = Number(need(++i)); break;
      case '--spool': o.spool = need(++i); break;
      case '--ready': o.ready = need(++i); break;
      case '--client-id': o.clientId = need(++i); break;
      case '--client-secret': o.clientSecret = need(++i); break;
      case '--token-ttl': o.tokenTtl = Number(need(++i)); break;
      case '--user': o.users.push(need(++i)); break;
      case '--token-fault': o.tokenFault = need(++i); break;
      case '--token-fault-file': o.tokenFaultFile = need(++i); break;
      case '--starttls': o.cert = need(++i); o.key = need(++i); break;
      case '--auth-optional': o.authOptional = true; break;
      case '--help': usage(null); break;
      default: usage(`unknown option ${a}`);
    }
  }
  for (const k of ['spool', 'ready', 'clientId', 'clientSecret']) {
    if (o[k] === undefined) usage(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
  }
  if (o.tokenFault && !['500', 'nonjson'].includes(o.tokenFault)) usage('--token-fault: 500 or nonjson');
  return o;
}

function usage(err) {
  const text = fs.readFileSync(__filename, 'utf8').split('\n').filter((l) => l.startsWith('//'))
    .map((l) => l.slice(3)).join('\n');
  if (err) {
    process.stderr.write(`oauth-peers: ${err}\n`);
    process.exit(2);
  }
  process.stdout.write(text + '\n');
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));
fs.mkdirSync(opts.spool, { recursive: true });

// ---------------------------------------------------------------- spool
const counters = {};
function record(kind, obj) {
  counters[kind] = (counters[kind] || 0) + 1;
  const id = String(counters[kind]).padStart(4, '0');
  const file = path.join(opts.spool, `${kind}-${id}.json`);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(obj, null, 1));
  fs.renameSync(`${file}.tmp`, file);
  return id;
}

function writeAtomic(file, text) {
  fs.writeFileSync(`${file}.tmp`, text);
  fs.renameSync(`${file}.tmp`, file);
}

// ---------------------------------------------------------------- OAuth side
function formDecode(s) {
  return decodeURIComponent(String(s).replace(/\+/g, ' '));
}

// RFC 6749 2.3.1: HTTP Basic with form-urlencoded id and secret, or both in the body.
function clientAuth(req, body) {
  const h = req.headers.authorization || '';
  const m = /^Basic\s+(\S+)\s*$/i.exec(h);
  if (m) {
    const raw = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = raw.indexOf(':');
    if (colon < 0) return { method: 'basic', id: raw, secret: undefined };
    let id; let secret;
    try {
      id = formDecode(raw.slice(0, colon));
      secret = formDecode(raw.slice(colon + 1));
    } catch (e) {
      id = raw.slice(0, colon);
      secret = raw.slice(colon + 1);
    }
    return { method: 'basic', id, secret };
  }
  if (body && body.client_secret !== undefined) {
    return { method: 'post', id: body.client_id, secret: body.client_secret };
  }
  return { method: 'none', id: body ? body.client_id : undefined, secret: undefined };
}

function safeEqual(a, b) {
  if (typeof a !== 'string' || typeof b !== 'string') return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function currentFault() {
  if (opts.tokenFaultFile) {
    try {
      return fs.readFileSync(opts.tokenFaultFile, 'utf8').trim() || '500';
    } catch (e) {
      return opts.tokenFault;
    }
  }
  return opts.tokenFault;
}

const codes = new Map(); // code -> { redirectUri, challenge }
const refreshTokens = new Set();
let jwks = null;
let issuerUrl = null;

function fetchJson(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          reject(e);
        }
      });
    }).on('error', reject);
  });
}

async function startOAuth() {
  // oauth2-mock-server 8 is an ES module: load it with import() from CommonJS.
  const { OAuth2Issuer, OAuth2Service } = await import('oauth2-mock-server');
  const issuer = new OAuth2Issuer();
  await issuer.keys.generate('RS256');
  const service = new OAuth2Service(issuer);

  service.on('beforeAuthorizeRedirect', (redirect, req) => {
    const code = redirect.url.searchParams.get('code');
    if (code) {
      codes.set(code, {
        redirectUri: req.query.redirect_uri,
        challenge: req.query.code_challenge,
        clientId: req.query.client_id,
      });
    }
  });

  service.on('beforeTokenSigning', (token) => {
    token.payload.exp = token.payload.iat + opts.tokenTtl;
  });

  service.on('beforeResponse', (response, req) => {
    const body = req.body || {};
    const fail = (status, error, description) => {
      response.statusCode = status;
      response.body = { error };
      if (description) response.body.error_description = description;
    };
    const c = clientAuth(req, body);
    if (!safeEqual(c.id, opts.clientId) || !safeEqual(c.secret, opts.clientSecret)) {
      fail(401, 'invalid_client');
      return;
    }
    if (body.grant_type === 'authorization_code') {
      const saved = codes.get(body.code);
      codes.delete(body.code);
      if (!saved) return fail(400, 'invalid_grant', 'unknown or already used code');
      if (saved.redirectUri !== body.redirect_uri) return fail(400, 'invalid_grant', 'redirect_uri mismatch');
      if (saved.challenge && !body.code_verifier) return fail(400, 'invalid_grant', 'code_verifier required');
    } else if (body.grant_type === 'refresh_token') {
      if (!refreshTokens.has(body.refresh_token)) return fail(400, 'invalid_grant', 'unknown refresh token');
    }
    if (response.statusCode === 200 && response.body) {
      response.body.expires_in = opts.tokenTtl;
      if (response.body.refresh_token) refreshTokens.add(response.body.refresh_token);
    }
  });

  const handler = service.requestHandler;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'POST' && url.pathname === '/token') {
      const fault = currentFault();
      if (fault) {
        const chunks = [];
        req.on('data', (d) => chunks.push(d));
        req.on('end', () => {
          const body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
          const status = fault === 'nonjson' ? 200 : 500;
          noteToken(req, body, status, fault);
          if (fault === 'nonjson') {
            res.writeHead(200, { 'Content-Type': 'text/html' });
            res.end('<html><body>Service temporarily unavailable</body></html>\n');
          } else {
            res.writeHead(500, { 'Content-Type': 'text/plain' });
            res.end('Internal Server Error\n');
          }
        });
        return;
      }
      // record before the reply leaves, so a client that got it can read the record
      const end = res.end;
      res.end = function endAndNote(...args) {
        noteToken(req, req.body || {}, res.statusCode, null);
        return end.apply(this, args);
      };
    }
    handler(req, res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.oauthPort, '127.0.0.1', resolve);
  });
  const port = server.address().port;
  issuerUrl = `http://127.0.0.1:${port}`;
  issuer.url = issuerUrl;
  jwks = await fetchJson(`${issuerUrl}/jwks`);
  return { server, port };
}

function noteToken(req, body, status, fault) {
  const c = clientAuth(req, body);
  record('token', {
    grant_type: body.grant_type || null,
    client_auth: c.method,
    client_id: c.id === undefined ? null : c.id,
    scope: body.scope === undefined ? null : body.scope,
    pkce: body.code_verifier !== undefined,
    redirect_uri: body.redirect_uri === undefined ? null : body.redirect_uri,
    status,
    ok: status === 200 && !fault,
    fault,
  });
}

function b64urlJson(s) {
  return JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
}

// Returns null when the token is good, else the reason it is not.
function checkToken(token) {
  const parts = String(token).split('.');
  if (parts.length !== 3) return 'not a JWT';
  let header; let payload;
  try {
    header = b64urlJson(parts[0]);
    payload = b64urlJson(parts[1]);
  } catch (e) {
    return 'malformed JWT';
  }
  if (header.alg !== 'RS256') return `unexpected alg ${header.alg}`;
  const jwk = (jwks.keys || []).find((k) => k.kid === header.kid);
  if (!jwk) return 'unknown key id';
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), key,
    Buffer.from(parts[2], 'base64url'));
  if (!ok) return 'bad signature';
  if (payload.iss !== issuerUrl) return 'wrong issuer';
  const now = Math.floor(Date.now() / 1000);
  if (typeof payload.exp !== 'number' || payload.exp <= now) return 'expired';
  if (typeof payload.nbf === 'number' && payload.nbf > now + 5) return 'not yet valid';
  return null;
}

// ---------------------------------------------------------------- SMTP side
const users = new Map(opts.users.map((u) => {
  const i = u.indexOf(':');
  if (i < 0) usage(`--user wants U:PASS, got ${u}`);
  return [u.slice(0, i), u.slice(i + 1)];
}));

function smtpError(code, message) {
  const e = new Error(message);
  e.responseCode = code;
  return e;
}

async function startSmtp() {
  const tls = Boolean(opts.cert);
  const server = new SMTPServer({
    name: 'oauth-smtp.test',
    banner: 'ESMTP smtp-server (smtp-connector tests)',
    logger: false,
    disableReverseLookup: true,
    authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'],
    authOptional: opts.authOptional,
    allowInsecureAuth: !tls,
    hideSTARTTLS: !tls,
    disabledCommands: tls ? [] : ['STARTTLS'],
    key: tls ? fs.readFileSync(opts.key) : undefined,
    cert: tls ? fs.readFileSync(opts.cert) : undefined,
    onAuth(auth, session, cb) {
      const note = (ok, reason) => record('auth', {
        method: auth.method, user: auth.username === undefined ? null : auth.username,
        ok, reason, tls: Boolean(session.secure),
      });
      if (tls && !session.secure) {
        note(false, 'before STARTTLS');
        return cb(smtpError(538, 'Error: Must issue a STARTTLS command first'));
      }
      if (auth.method === 'XOAUTH2') {
        const reason = checkToken(auth.accessToken);
        if (reason) {
          note(false, reason);
          return cb(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.test/.default' } });
        }
        note(true, null);
        return cb(null, { user: auth.username });
      }
      const want = users.get(auth.username);
      if (want !== undefined && safeEqual(auth.password, want)) {
        note(true, null);
        return cb(null, { user: auth.username });
      }
      note(false, 'bad credentials');
      return cb(smtpError(535, '5.7.8 Authentication credentials invalid'));
    },
    onMailFrom(address, session, cb) {
      if (tls && !session.secure) return cb(smtpError(530, 'Must issue a STARTTLS command first'));
      return cb();
    },
    onData(stream, session, cb) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const id = record('msg', {
          mail_from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          rcpt_tos: session.envelope.rcptTo.map((r) => r.address),
          data_b64: Buffer.concat(chunks).toString('base64'),
          tls: Boolean(session.secure),
          auth_login: session.user || null,
          auth_method: session.user ? (session.transmissionType || null) : null,
        });
        cb(null, `Ok: queued as ${id}`);
      });
    },
  });
  server.on('error', (e) => process.stderr.write(`oauth-peers smtp: ${e.message}\n`));
  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.smtpPort, '127.0.0.1', resolve);
  });
  return { server, port: server.server.address().port };
}

async function main() {
  const oauth = await startOAuth();
  const smtp = await startSmtp();
  const stop = () => {
    smtp.server.close(() => {});
    oauth.server.close(() => {});
    oauth.server.closeAllConnections();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // stop when the test runner that started us is gone
  const parent = process.ppid;
  setInterval(() => { if (process.ppid !== parent) stop(); }, 1000).unref();
  writeAtomic(opts.ready, JSON.stringify({
    oauth_url: issuerUrl,
    token_url: `${issuerUrl}/token`,
    auth_url: `${issuerUrl}/authorize`,
    jwks_url: `${issuerUrl}/jwks`,
    smtp_url: `smtp://127.0.0.1:${smtp.port}`,
    oauth_port: oauth.port,
    smtp_port: smtp.port,
    pid: process.pid,
  }));
}

main().catch((e) => {
  process.stderr.write(`oauth-peers: ${e.stack || e}\n`);
  process.exit(1);
});
