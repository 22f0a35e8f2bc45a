// A fault-injecting HTTP proxy for the service's blob storage tests (test_storage_service.sh):
// it stands between cultivate-ml-fcgi and Azurite on 127.0.0.1 and, depending on its mode,
// forwards requests untouched, answers some with 503 ServerBusy + Retry-After or delays them.
//
//   node fault_proxy.mjs UPSTREAM_PORT PORT_FILE [LOG_FILE]
//       listens on a free 127.0.0.1 port and writes it to PORT_FILE once listening;
//       LOG_FILE gets one line per request: "N MODE METHOD PATH -> STATUS"
//
// Control requests (on the same port, never forwarded):
//   GET /__proxy/mode?set=pass        forward everything (the initial mode)
//   GET /__proxy/mode?set=flaky&every=3&delay_ms=300
//       of every `every` requests the first gets 503 (Retry-After: 1), the second is
//       forwarded after delay_ms, the others are forwarded at once
//   GET /__proxy/mode?set=down        every request gets 503 (Retry-After: 1)
//   GET /__proxy/stats                {"mode","requests","injected","delayed","forwarded",
//                                      "upstream_errors"} (counts since start)
// A request's body is read whole before it is answered, so a 503 never cuts an upload short.
// An upstream that cannot be reached resets the client's connection (as a dead store would).
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import process from 'node:process';

const [upstreamPort, portFile, logFile] = process.argv.slice(2);
if (!upstreamPort || !portFile) {
  console.error('usage: fault_proxy.mjs UPSTREAM_PORT PORT_FILE [LOG_FILE]');
  process.exit(2);
}

const stats = { mode: 'pass', requests: 0, injected: 0, delayed: 0, forwarded: 0, upstream_errors: 0 };
let every = 3;
let delayMs = 300;

function log(line) {
  if (logFile) appendFileSync(logFile, `${line}\n`);
}

function control(req, res, url) {
  if (url.pathname === '/__proxy/mode') {
    const set = url.searchParams.get('set');
    if (!['pass', 'flaky', 'down'].includes(set)) {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end('set must be pass, flaky or down\n');
      return;
    }
    stats.mode = set;
    every = Math.max(2, Number(url.searchParams.get('every') || 3));
    delayMs = Math.max(0, Number(url.searchParams.get('delay_ms') || 300));
    log(`-- mode ${set} every=${every} delay_ms=${delayMs}`);
  }
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(`${JSON.stringify(stats)}\n`);
}

function forward(req, res, body, n) {
  const up = request(
    {
      host: '127.0.0.1',
      port: Number(upstreamPort),
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: false,
    },
    (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
      stats.forwarded += 1;
      log(`${n} ${stats.mode} ${req.method} ${req.url} -> ${ur.statusCode}`);
    },
  );
  up.on('error', (e) => {
    stats.upstream_errors += 1;
    log(`${n} ${stats.mode} ${req.method} ${req.url} -> upstream error ${e.code || e.message}`);
    req.socket.destroy();
  });
  up.end(body);
}

const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (url.pathname.startsWith('/__proxy/')) {
      control(req, res, url);
      return;
    }
    stats.requests += 1;
    const n = stats.requests;
    const body = Buffer.concat(chunks);
    const slot = (n - 1) % every;
    if (stats.mode === 'down' || (stats.mode === 'flaky' && slot === 0)) {
      stats.injected += 1;
      log(`${n} ${stats.mode} ${req.method} ${req.url} -> 503 injected`);
      const text =
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>' +
        '<Message>Injected by fault_proxy.</Message></Error>';
      res.writeHead(503, {
        'Retry-After': '1',
        'x-ms-error-code': 'ServerBusy',
        'Content-Type': 'application/xml',
        'Content-Length': req.method === 'HEAD' ? 0 : Buffer.byteLength(text),
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    } else if (stats.mode === 'flaky' && slot === 1) {
      stats.delayed += 1;
      setTimeout(() => forward(req, res, body, n), delayMs);
    } else {
      forward(req, res, body, n);
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  writeFileSync(`${portFile}.tmp`, String(server.address().port));
  renameSync(`${portFile}.tmp`, portFile); // a reader never sees a half-written port
});
process.on('SIGTERM', () => process.exit(0));
