/**
 * The HTTP/1 response reader fed directly with chunks (no sockets): framing across chunk boundaries,
 * the byte caps, keep-alive decisions, and hostile bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Http1Response, type ReadResult, type ReaderLimits, ResponseReader } from './http1-reader.js';

const LIMITS: ReaderLimits = { maxHeaderBytes: 4096, maxBodyBytes: 8192 };

interface Feed {
  readonly isHead?: boolean;
  readonly reused?: boolean;
  readonly limits?: ReaderLimits;
  /** After the chunks: the peer closes ('end'), the socket fails ('error'), or nothing happens. */
  readonly then?: 'end' | 'error';
  readonly error?: Error;
}

/** Feeds the chunks; returns every result `done` received (the reader must call it at most once). */
function feedAll(chunks: ReadonlyArray<Buffer | string>, opts: Feed = {}): { results: ReadResult[]; reader: ResponseReader } {
  const results: ReadResult[] = [];
  const reader = new ResponseReader(opts.limits ?? LIMITS, opts.isHead === true, opts.reused === true, (r) => results.push(r));
  for (const c of chunks) reader.onData(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  if (opts.then === 'end') reader.onEnd();
  if (opts.then === 'error') reader.onError(opts.error ?? Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
  assert.ok(results.length <= 1, `done called ${results.length} times`);
  return { results, reader };
}

function read(chunks: ReadonlyArray<Buffer | string>, opts: Feed = {}): ReadResult | null {
  return feedAll(chunks, opts).results[0] ?? null;
}

function response(r: ReadResult | null): Http1Response {
  if (r === null) assert.fail('no result');
  if (r.kind !== 'response') assert.fail(`expected a response, got ${JSON.stringify(r)}`);
  return r;
}

function failure(r: ReadResult | null): { kind: string; detail: string; phase: string; code?: string } {
  if (r === null || r.kind === 'response' || r.kind === 'stale') assert.fail(`expected a failure, got ${JSON.stringify(r)}`);
  return r;
}

test('status line, lower-cased repeated headers, latin1 values, folded lines and junk lines', () => {
  const r = response(read([
    'HTTP/1.1 200 OK\r\nX-OWA-Version: 15.1.2176.9\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Latin: caf\xe9\r\n' +
      'X-Folded: one\r\n\t two\r\nthis is no header\r\n: empty name\r\nBad Name: x\r\nX-Nbsp: \xa0v\xa0\r\nContent-Length: 5\r\n\r\nhello',
  ]));
  assert.equal(r.status, 200);
  assert.equal(r.statusLine, 'HTTP/1.1 200 OK');
  assert.deepEqual(r.headers, [
    ['x-owa-version', '15.1.2176.9'],
    ['set-cookie', 'a=1'],
    ['set-cookie', 'b=2'],
    ['x-latin', 'caf\u00e9'],
    ['x-folded', 'one two'],
    ['x-nbsp', '\u00a0v\u00a0'],
    ['content-length', '5'],
  ]);
  assert.equal(r.body.toString(), 'hello');
  assert.equal(r.truncated, false);
  assert.equal(r.reusable, true);
});

test('the status line is capped at 512 characters; a bad one or a non-HTTP banner is a protocol-error', () => {
  const long = `HTTP/1.1 200 ${'x'.repeat(1000)}`;
  assert.equal(response(read([`${long}\r\nContent-Length: 0\r\n\r\n`])).statusLine, long.slice(0, 512));
  const bad = failure(read(['HTTP/1.1 abc nonsense\r\n\r\n']));
  assert.equal(bad.kind, 'protocol-error');
  assert.equal(bad.phase, 'request');
  assert.match(bad.detail, /bad status line/);
  const ssh = failure(read(['SSH-2.0-OpenSSH_9.0\r\n']));
  assert.equal(ssh.kind, 'protocol-error');
  assert.match(ssh.detail, /not HTTP: "SSH-2.0/);
  // the prefix is checked even when it arrives one byte at a time
  assert.equal(failure(read(['H', 'T', 'X'])).kind, 'protocol-error');
  assert.equal(read(['H', 'T', 'T']), null);
});

test('oversized header section: a protocol-error, in one chunk or dripped, with or without its end', () => {
  const pad = Array.from({ length: 100 }, (_, i) => `X-Pad-${i}: ${'a'.repeat(100)}\r\n`).join('');
  const whole = `HTTP/1.1 200 OK\r\n${pad}\r\nbody`;
  for (const chunks of [[whole], whole.match(/[\s\S]{1,7}/g) ?? [], [`HTTP/1.1 200 OK\r\n${pad}`]]) {
    const f = failure(read(chunks));
    assert.equal(f.kind, 'protocol-error');
    assert.match(f.detail, /header section exceeds 4096 bytes/);
  }
  // just under the cap is fine
  const fits = `HTTP/1.1 200 OK\r\nX-A: ${'b'.repeat(4000)}\r\n`;
  assert.ok(fits.length < 4096);
  assert.equal(response(read([fits, '\r\n'], { then: 'end' })).status, 200);
});

test('Content-Length: exact body, keep-alive; a conflicting or invalid length reads until close', () => {
  const r = response(read(['HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel', 'lo']));
  assert.equal(r.body.toString(), 'hello');
  assert.equal(r.reusable, true);
  // stray bytes after the body: the connection must not carry another request
  assert.equal(response(read(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA'])).reusable, false);
  for (const cl of ['Content-Length: 5, 6', 'Content-Length: -1', 'Content-Length: 99999999999999999999']) {
    const { results, reader } = feedAll([`HTTP/1.1 200 OK\r\n${cl}\r\n\r\nuntil close`]);
    assert.equal(results.length, 0, cl);
    reader.onEnd();
    const u = response(results[0] ?? null);
    assert.equal(u.body.toString(), 'until close', cl);
    assert.equal(u.reusable, false, cl);
  }
  // repeated equal values are one length
  assert.equal(response(read(['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok'])).body.toString(), 'ok');
});

test('Connection: HTTP/1.1 keeps alive unless close; HTTP/1.0 only with keep-alive', () => {
  const cases: Array<[string, boolean]> = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n', true],
    ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
    ['HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n', true],
  ];
  for (const [text, reusable] of cases) assert.equal(response(read([text])).reusable, reusable, text);
});

test('no body for HEAD, 204 and 304 whatever the headers say; 101 ends the connection', () => {
  const head = response(read(['HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n'], { isHead: true }));
  assert.equal(head.body.length, 0);
  assert.equal(head.reusable, true);
  for (const s of ['204 No Content', '304 Not Modified']) {
    const r = response(read([`HTTP/1.1 ${s}\r\nContent-Length: 99\r\n\r\n`]));
    assert.equal(r.body.length, 0, s);
    assert.equal(r.reusable, true, s);
  }
  const up = response(read(['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n']));
  assert.equal(up.status, 101);
  assert.equal(up.reusable, false);
});

test('interim 1xx responses are skipped, in the same chunk or the next', () => {
  const same = response(read(['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi']));
  assert.equal(same.status, 200);
  assert.equal(same.body.toString(), 'hi');
  const hints = response(read(['HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n']));
  assert.equal(hints.status, 404);
  assert.deepEqual(hints.headers, [['content-length', '0']], 'headers of the interim response are dropped');
});

test('chunked: extensions, trailers, bare LF; keep-alive only when nothing follows the last chunk', () => {
  const r = response(read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n', '6\n world\n0\r\nX-Trailer: t\r\n\r\n']));
  assert.equal(r.body.toString(), 'hello world');
  assert.equal(r.truncated, false);
  assert.equal(r.reusable, true);
  assert.equal(response(read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nX'])).reusable, false);
  // a transfer coding other than chunked last: the body runs until close
  const { results, reader } = feedAll(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n1\r\na\r\n0\r\n\r\n']);
  assert.equal(results.length, 0);
  reader.onEnd();
  assert.equal(response(results[0] ?? null).body.toString(), '1\r\na\r\n0\r\n\r\n');
});

test('broken chunking keeps what arrived, marked truncated: bad hex, missing CRLF, long size line, too many chunks, long trailers', () => {
  const h = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const cases: Array<[string, string]> = [
    [`${h}3\r\nabc\r\nzz-not-hex\r\n`, 'abc'],
    [`${h}3\r\nabcX\r\n`, 'abc'],
    [`${h}3\r\nabc\r\n${'0'.repeat(300)}1\r\nx\r\n`, 'abc'],
    [`${h}${'1\r\nx\r\n'.repeat(65_537)}0\r\n\r\n`, 'x'.repeat(65_536)],
    [`${h}1\r\nx\r\n0\r\n${'T: v\r\n'.repeat(1000)}\r\n`, 'x'],
  ];
  for (const [text, body] of cases) {
    const r = response(read([text], { limits: { maxHeaderBytes: 4096, maxBodyBytes: 1 << 20 } }));
    assert.equal(r.body.toString(), body, text.slice(0, 80));
    assert.equal(r.truncated, true);
    assert.equal(r.reusable, false);
  }
});

test('body cap: cut at maxBodyBytes for Content-Length, chunked and close-delimited bodies', () => {
  const big = 'x'.repeat(4000);
  const bodies = [
    `HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n${big}${big}${big}`,
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${`fa0\r\n${big}\r\n`.repeat(5)}`,
    `HTTP/1.0 200 OK\r\n\r\n${big}${big}${big}`,
  ];
  for (const text of bodies) {
    const r = response(read(text.match(/[\s\S]{1,1000}/g) ?? []));
    assert.equal(r.body.length, LIMITS.maxBodyBytes);
    assert.equal(r.truncated, true);
    assert.equal(r.reusable, false);
  }
});

test('slow drip: incomplete bytes never settle by themselves; the deadline settles once', () => {
  const line = 'HTTP/1.1 200 OK\r\nX-Slow: ';
  const { results, reader } = feedAll([...line, ...'a'.repeat(500)]);
  assert.equal(results.length, 0);
  reader.fail('timeout', 'request timeout after 600 ms');
  reader.fail('reset', 'session closed');
  reader.onData(Buffer.from('\r\n\r\n'));
  reader.onEnd();
  assert.deepEqual(results, [{ kind: 'timeout', phase: 'request', detail: 'request timeout after 600 ms' }]);
});

test('closes and resets: before any byte, inside the head, inside the body; stale only on a reused connection', () => {
  const closedEarly = failure(read([], { then: 'end' }));
  assert.equal(closedEarly.kind, 'reset');
  assert.deepEqual(read([], { then: 'end', reused: true }), { kind: 'stale' });
  assert.deepEqual(read([], { then: 'error', reused: true }), { kind: 'stale' });
  const reset = failure(read([], { then: 'error' }));
  assert.equal(reset.kind, 'reset');
  assert.equal(reset.code, 'ECONNRESET');
  assert.equal(reset.phase, 'request');
  const refused = failure(read([], { then: 'error', error: Object.assign(new Error('x'), { code: 'ETIMEDOUT' }) }));
  assert.equal(refused.kind, 'timeout');
  assert.equal(failure(read(['HTTP/1.1 200 OK\r\n'], { then: 'end' })).kind, 'protocol-error');
  assert.equal(failure(read(['HTTP/1.1 200 OK\r\n'], { then: 'error', reused: true })).kind, 'protocol-error');
  const cut = response(read(['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], { then: 'error' }));
  assert.equal(cut.body.toString(), 'abc');
  assert.equal(cut.truncated, true);
  const short = response(read(['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab'], { then: 'end' }));
  assert.equal(short.body.toString(), 'ab');
  assert.equal(short.truncated, true);
  const untilClose = response(read(['HTTP/1.0 200 OK\r\n\r\nall of it'], { then: 'end' }));
  assert.equal(untilClose.truncated, false);
  assert.equal(untilClose.reusable, false);
});

test('the body does not alias the socket buffers it came from', () => {
  const chunk = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello', 'latin1');
  const r = response(read([chunk]));
  chunk.fill(0x7a);
  assert.equal(r.body.toString(), 'hello');
  // the same for a head that spans chunks (it is copied) and a body in several parts
  const parts = [Buffer.from('HTTP/1.1 200 OK\r\nContent-'), Buffer.from('Length: 4\r\n\r\nab'), Buffer.from('cd')];
  const r2 = response(read(parts));
  for (const p of parts) p.fill(0x7a);
  assert.equal(r2.body.toString(), 'abcd');
  assert.deepEqual(r2.headers, [['content-length', '4']]);
});

test('framing is identical however the bytes are cut (every split point, three pieces)', () => {
  const responses = [
    'HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 5\r\n\r\nhello',
    'HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3;x=y\nabc\n2\r\nde\r\n0\r\nT: 1\r\n\r\n',
    'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno',
    'HTTP/1.0 200 OK\r\nServer: x\r\n\r\nuntil close',
  ];
  const expected = ['hello', 'abcde', 'no', 'until close'];
  for (const [k, text] of responses.entries()) {
    const bytes = Buffer.from(text, 'latin1');
    for (let i = 1; i < bytes.length; i++) {
      for (const j of [i + 1, Math.min(bytes.length - 1, i + 7)]) {
        if (j <= i || j >= bytes.length) continue;
        const parts = [bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)];
        const r = read(parts, k === 3 ? { then: 'end' } : {});
        assert.ok(r !== null && r.kind === 'response', `${k} split ${i}/${j}: ${JSON.stringify(r)}`);
        assert.equal(r.body.toString('latin1'), expected[k], `${k} split ${i}/${j}`);
        assert.equal(r.truncated, false);
      }
    }
  }
});

test('hostile bytes never throw: random garbage and random cuts always settle or wait', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = ['HTTP/1.1 ', '200', ' OK', '\r\n', '\n', 'Content-Length: ', '99999999999999999999', 'Transfer-Encoding: chunked',
    'ffffffffffffffff', ':', ' ', '\x00', '\xff', '0\r\n\r\n', 'Location: //x', 'HTTP/1.1 100 C\r\n\r\n'];
  let settled = 0;
  for (let n = 0; n < 2000; n++) {
    const chunks: Buffer[] = [];
    for (let c = 0; c < 1 + rnd(12); c++) {
      let s = 'HTTP/';
      for (let p = 0; p < rnd(10); p++) s += pieces[rnd(pieces.length)] ?? '';
      chunks.push(Buffer.from(c === 0 ? s : s.slice(5), 'latin1'));
    }
    const r = read(chunks, { limits: { maxHeaderBytes: 256, maxBodyBytes: 64 }, ...(rnd(2) === 0 ? { then: 'end' as const } : {}) });
    if (r !== null) settled++;
    if (r !== null && r.kind === 'response') assert.ok(r.body.length <= 64);
  }
  assert.ok(settled > 500, `only ${settled} of 2000 settled: the generator no longer exercises the reader`);
});
