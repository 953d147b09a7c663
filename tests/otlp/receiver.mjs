// The tests' trace receiver (tests/support/otlp_receiver.hpp starts it):
//   node receiver.mjs <port> <out-file> [ok | 503 | slow <ms>]
// ok: @elastic/mockotlpserver's OTLP/HTTP service on 127.0.0.1:<port> (0: a free one); each
// trace export request it accepts becomes one line of <out-file>: the decoded request body.
// 503 and slow: a plain HTTP endpoint that answers every export 503 with Retry-After: 1, or
// accepts it only after <ms> milliseconds — receivers that are down or struggling.
// Prints "listening <port>" once it accepts connections; SIGTERM stops it.
//
// Both OTLP/HTTP encodings are accepted. A protobuf request (decoded by the package's own copy
// of the OTLP .proto files) is recorded in the shape of the JSON encoding — ids as lowercase
// hex, 64-bit numbers as decimal strings, enums as numbers — so the tests read either the same
// way; each recorded request says which it came as: "encoding": "protobuf" or "json".
import {appendFileSync} from 'node:fs';
import http from 'node:http';
import diagnosticsChannel from 'node:diagnostics_channel';
import {createRequire} from 'node:module';
import mock from '@elastic/mockotlpserver';

const require = createRequire(import.meta.url);
const {getProtoRoot} = require('@elastic/mockotlpserver/lib/proto.js');
const requestType = getProtoRoot().lookupType(
    'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');

const [port, outFile, mode = 'ok', delayMs = '0'] = process.argv.slice(2);

const idFields = new Set(['traceId', 'spanId', 'parentSpanId']);

// A decoded protobuf request in the JSON encoding's shape (base64 ids become hex).
function asJsonShape(message) {
  const object = message.constructor.toObject(message, {longs: String, enums: Number, bytes: String});
  return JSON.parse(JSON.stringify(object), (key, value) =>
    idFields.has(key) && typeof value === 'string' ? Buffer.from(value, 'base64').toString('hex') : value);
}

// A line in <out-file>.started as each export request arrives, before its answer: the mock
// records a request only after answering it, so a test that has seen its exporter finish
// waits until every started request is recorded (tests/support/otlp_receiver.cpp).
function started() {
  appendFileSync(outFile + '.started', '.\n');
}

function record(body) {
  const protobuf = typeof body?.constructor?.toObject === 'function';
  const shaped = protobuf ? asJsonShape(body) : body;
  appendFileSync(outFile, JSON.stringify({encoding: protobuf ? 'protobuf' : 'json', ...shaped}) + '\n');
}

async function startMock() {
  diagnosticsChannel.subscribe('otlp.v1.request', (request) => {
    if (request.path === '/v1/traces') started();
  });
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
      started();
      setTimeout(() => {
        const body = Buffer.concat(chunks);
        record(req.headers['content-type'] === 'application/x-protobuf' ? requestType.decode(body)
                                                                         : JSON.parse(body.toString('utf-8')));
        res.writeHead(200, {'Content-Type': req.headers['content-type']});
        res.end(req.headers['content-type'] === 'application/json' ? '{}' : '');
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
