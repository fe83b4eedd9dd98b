#!/usr/bin/env node
// A hostile git server for the trust-boundary tests: answers every request with 401 and a
// challenge for both Basic and Bearer (so any helper is tempted to answer), and remembers
// the Authorization header of every request (or "-" when there was none).
//
//   node log-server.js
//
// Listens on 127.0.0.1 only; prints one JSON line {"url":"http://127.0.0.1:PORT","port":PORT}
// on stdout when ready; exits on stdin EOF and on SIGTERM/SIGINT.
// GET /__log (no auth): {"requests":N,"authorization":["-", "Bearer ...", ...]}.

import http from 'node:http';

const seen = [];
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/__log') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ requests: seen.length, authorization: seen }));
    return;
  }
  seen.push(req.headers.authorization ?? '-');
  req.resume();
  res.writeHead(401, {
    'WWW-Authenticate': ['Basic realm="log"', 'Bearer realm="log"'],
    'Content-Type': 'text/plain',
  });
  res.end('authentication required\n');
});

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, port })}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
