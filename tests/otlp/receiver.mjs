// The tests' trace receiver (tests/support/otlp_receiver.hpp starts it):
//   node receiver.mjs <port> <out-file> [ok | 503 | slow <ms>]
// ok: @elastic/mockotlpserver's OTLP/HTTP service on 127.0.0.1:<port> (0: a free one); each
// trace export request it accepts becomes one line of <out-file>: the decoded request body.
// 503 and slow: a plain HTTP endpoint that answers every export 503 with Retry-After: 1, or
// accepts it only after <ms> milliseconds — receivers that are down or struggling.
// Prints "listening <port>" once it accepts connections; SIGTERM stops it.
import {appendFileSync} from 'node:fs';
import http from 'node:http';
import mock from '@elastic/mockotlpserver';

const [port, outFile, mode = 'ok', delayMs = '0'] = process.argv.slice(2);

function record(body) {
  appendFileSync(outFile, JSON.stringify(body) + '\n');
}

async function startMock() {
  const server = new mock.MockOtlpServer({
    logLevel: 'warn',
    services: ['http'],
    httpHostname: '127.0.0.1',
    httpPort: Number(port),
    onTrace: record,
  });
  await server.start();
  return {port: Number(new URL(server.httpUrl).port), close: () => server.close()};
}

function startStub() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      if (mode === '503') {
        res.writeHead(503, {'Retry-After': '1', 'Content-Type': 'application/json'});
        res.end('{}');
        return;
      }
      setTimeout(() => {
        record(JSON.parse(Buffer.concat(chunks).toString('utf-8')));
        res.writeHead(200, {'Content-Type': 'application/json'});
        res.end('{}');
      }, Number(delayMs));
    });
  });
  return new Promise((resolve) => {
    server.listen(Number(port), '127.0.0.1', () =>
      resolve({port: server.address().port, close: () => server.close()}));
  });
}

const receiver = mode === 'ok' ? await startMock() : await startStub();
process.stdout.write(`listening ${receiver.port}\n`);
process.on('SIGTERM', async () => {
  await receiver.close();
  process.exit(0);
});
