/**
 * The lab against a raw client (node:tls / node:net, loopback only): each host kind serves what its
 * ground truth says. One lab for the whole file keeps it fast.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import type { LabHost, LabKind } from './estate.js';
import { EXPORTTOOL_FILE } from './exchange-responses.js';
import { startLab, type Lab } from './server.js';

interface RawResponse {
  readonly status: number;
  readonly statusLine: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

let lab: Lab;

before(async () => {
  lab = await startLab({ hosts: 72, seed: 11, base: '127.3.0.0' });
});
after(async () => {
  await lab.close();
});

function hostsOf(kind: LabKind): LabHost[] {
  return lab.hosts.filter((h) => h.kind === kind);
}

function first(kind: LabKind, pred: (h: LabHost) => boolean = () => true): LabHost {
  const h = hostsOf(kind).find(pred);
  assert.ok(h, `no ${kind} host in the test estate`);
  return h;
}

function header(r: RawResponse, name: string): string | undefined {
  return r.headers.find(([k]) => k === name)?.[1];
}

/** Parses responses from a byte stream; returns those complete so far and the bytes consumed. */
function parseResponses(buf: Buffer, headOnly: readonly boolean[]): { responses: RawResponse[]; used: number } {
  const responses: RawResponse[] = [];
  let off = 0;
  while (responses.length < headOnly.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.toString('latin1', off, end);
    const lines = head.split('\r\n');
    const statusLine = lines[0] ?? '';
    const headers = lines.slice(1).map((l) => {
      const c = l.indexOf(':');
      return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()] as const;
    });
    const len = Number(headers.find(([k]) => k === 'content-length')?.[1] ?? '0');
    const bodyLen = headOnly[responses.length] === true ? 0 : len;
    if (buf.length < end + 4 + bodyLen) break;
    responses.push({ status: Number(statusLine.split(' ')[1]), statusLine, headers, body: buf.subarray(end + 4, end + 4 + bodyLen) });
    off = end + 4 + bodyLen;
  }
  return { responses, used: off };
}

/** Sends requests over one connection (keep-alive, as the scanner does) and collects the responses. */
function fetchAll(ip: string, paths: readonly string[], o: { secure?: boolean; method?: string; hostHeader?: string } = {}): Promise<RawResponse[]> {
  const secure = o.secure ?? true;
  const method = o.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const s = secure ? tls.connect({ host: ip, port: lab.httpsPort, rejectUnauthorized: false }) : net.connect({ host: ip, port: lab.httpPort });
    let buf = Buffer.alloc(0);
    let i = 0;
    const send = (): void => {
      // Host carries the port when it is not the default, as RFC 9110 (and the scanner) do.
      s.write(`${method} ${paths[i] ?? '/'} HTTP/1.1\r\nHost: ${o.hostHeader ?? `${ip}:${secure ? lab.httpsPort : lab.httpPort}`}\r\nUser-Agent: tocsin-lab-test\r\nAccept: */*\r\n\r\n`);
    };
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`timeout fetching ${ip} ${paths.join(' ')}`));
    }, 5000);
    s.once(secure ? 'secureConnect' : 'connect', send);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const { responses } = parseResponses(buf, paths.map(() => method === 'HEAD'));
      if (responses.length > i) {
        i = responses.length;
        if (i === paths.length) {
          clearTimeout(timer);
          s.destroy();
          resolve(responses);
        } else send();
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Connects and reports what arrives within `ms`: bytes, whether TLS completed, whether the peer closed. */
function observe(ip: string, o: { secure: boolean; ms: number; request?: string }): Promise<{ bytes: Buffer; secured: boolean; closed: boolean; error: string | null }> {
  return new Promise((resolve) => {
    let bytes = Buffer.alloc(0);
    let secured = false;
    let closed = false;
    let error: string | null = null;
    const s = o.secure ? tls.connect({ host: ip, port: lab.httpsPort, rejectUnauthorized: false }) : net.connect({ host: ip, port: lab.httpPort });
    const onUp = (): void => {
      secured = o.secure;
      if (o.request !== undefined) s.write(o.request);
    };
    s.once(o.secure ? 'secureConnect' : 'connect', onUp);
    s.on('data', (d: Buffer) => {
      bytes = Buffer.concat([bytes, d]);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes, secured, closed, error });
    };
    // Resolves early when the peer closes; otherwise after `ms` (a tarpit is only "nothing yet").
    const timer = setTimeout(done, o.ms);
    s.on('close', () => {
      closed = true;
      done();
    });
  });
}

const GET = (ip: string): string => `GET / HTTP/1.1\r\nHost: ${ip}\r\n\r\n`;

test('exchange hosts: headers, logon page and manifest match the ground truth', async () => {
  const ex = hostsOf('exchange');
  assert.ok(ex.length >= 30);
  await Promise.all(
    ex.map(async (h) => {
      const wire = h.wireBuild ?? '';
      const is2010 = wire.startsWith('14.');
      const [owa, logon, manifest, ews] = await fetchAll(h.ip, [
        '/owa/',
        '/owa/auth/logon.aspx?replaceCurrent=1&url=https%3a%2f%2fx%2fowa%2f',
        '/ecp/Current/exporttool/microsoft.exchange.ediscovery.exporttool.application',
        '/EWS/Exchange.asmx',
      ]);
      assert.ok(owa && logon && manifest && ews);
      assert.equal(owa.status, 302, h.ip);
      assert.match(header(owa, 'location') ?? '', new RegExp(`^https://${h.ip.replace(/\./g, '\\.')}:${lab.httpsPort}/owa/auth/logon\\.aspx\\?url=`));
      for (const r of [owa, logon]) assert.equal(header(r, 'x-owa-version'), h.exposes.xOwaVersion ? wire : undefined, `${h.ip} X-OWA-Version`);
      assert.match(header(logon, 'server') ?? '', /^Microsoft-IIS\/(7\.0|7\.5|8\.0|8\.5|10\.0)$/);
      assert.equal(header(logon, 'x-feserver'), is2010 ? undefined : (h.serverName ?? undefined));
      const page = logon.body.toString('utf8');
      assert.equal(logon.status, 200);
      assert.ok(page.includes('<!-- OwaPage = ASP.auth_logon_aspx -->'));
      const assetPath = is2010 ? `/owa/${wire}/` : `/owa/auth/${wire.split('.').slice(0, 3).join('.')}/themes/resources/`;
      assert.ok(page.includes(assetPath), `${h.ip} logon page lacks ${assetPath}`);
      if (h.exposes.exporttool) {
        assert.equal(manifest.status, 200);
        assert.equal(header(manifest, 'content-type'), 'application/x-ms-application');
        const m = /<assemblyIdentity name="microsoft\.exchange\.ediscovery\.exporttool\.application" version="([\d.]+)"/.exec(manifest.body.toString('utf8'));
        assert.equal(m?.[1], wire);
      } else {
        assert.notEqual(manifest.status, 200, `${h.ip} serves the manifest although exporttool=false`);
      }
      assert.equal(ews.status, 401);
      assert.ok(ews.headers.some(([k, v]) => k === 'www-authenticate' && v === 'NTLM'));
    }),
  );
});

test('the manifest is also served under /ecp/<build>/exporttool/', async () => {
  const h = first('exchange', (x) => x.exposes.exporttool);
  const [r] = await fetchAll(h.ip, [`/ecp/${h.wireBuild ?? ''}/exporttool/${EXPORTTOOL_FILE}`]);
  assert.equal(r?.status, 200);
  assert.ok(r?.body.toString('utf8').includes(`version="${h.wireBuild ?? ''}"`));
});

test('HEAD gets headers only; unknown paths get the IIS 404 page', async () => {
  const h = first('exchange', (x) => x.exposes.xOwaVersion);
  const [head] = await fetchAll(h.ip, ['/owa/auth/logon.aspx'], { method: 'HEAD' });
  assert.equal(head?.status, 200);
  assert.equal(head?.body.length, 0);
  assert.ok(Number(header(head as RawResponse, 'content-length')) > 1000);
  const [nf] = await fetchAll(h.ip, ['/no/such/thing.aspx']);
  assert.equal(nf?.status, 404);
  assert.ok(nf?.body.toString('utf8').includes('404 - File or directory not found.'));
});

test('plain HTTP on an Exchange host redirects to https on the same host name', async () => {
  const h = first('exchange', (x) => x.ports.http);
  const [r] = await fetchAll(h.ip, ['/owa/?a=1'], { secure: false, hostHeader: 'mail.alpha.example' });
  assert.equal(r?.status, 302);
  assert.equal(header(r as RawResponse, 'location'), `https://mail.alpha.example:${lab.httpsPort}/owa/?a=1`);
});

test('decoys carry no Exchange headers and no export tool manifest', async () => {
  const decoys = [...hostsOf('iis'), ...hostsOf('nginx'), ...hostsOf('owa-phish')];
  assert.ok(decoys.length >= 5);
  for (const h of decoys) {
    const rs = await fetchAll(h.ip, ['/', '/owa/', '/owa/auth/logon.aspx', `/ecp/Current/exporttool/${EXPORTTOOL_FILE}`, '/EWS/Exchange.asmx']);
    for (const r of rs) {
      for (const name of ['x-owa-version', 'x-feserver', 'x-beserver', 'x-calculatedbetarget']) assert.equal(header(r, name), undefined, `${h.ip} ${h.kind} sends ${name}`);
      assert.ok(!r.body.toString('latin1').includes('<assemblyIdentity'), `${h.ip} serves a manifest`);
    }
    if (h.kind === 'owa-phish') {
      // The clone copies the page markers and asset paths: one signal, not two.
      const page = rs[2]?.body.toString('utf8') ?? '';
      assert.ok(page.includes('<!-- OwaPage = ASP.auth_logon_aspx -->'));
      assert.match(page, /\/owa\/auth\/15\.\d\.\d+\/themes\/resources\//);
    }
  }
});

test('Exchange Online front ends show 15.20 builds and prod.outlook.com back ends', async () => {
  const h = first('exchange-online');
  const [r] = await fetchAll(h.ip, ['/owa/']);
  assert.match(header(r as RawResponse, 'x-owa-version') ?? '', /^15\.20\.\d+\.\d+$/);
  assert.match(header(r as RawResponse, 'x-calculatedbetarget') ?? '', /\.PROD\.OUTLOOK\.COM$/);
  assert.match(header(r as RawResponse, 'location') ?? '', /^https:\/\/login\.microsoftonline\.com\//);
});

test('hostile header values arrive as sent (script, formulas, long, non-UTF-8, CR tricks)', async () => {
  const hosts = hostsOf('hostile-headers');
  assert.ok(hosts.length >= 1);
  for (const h of hosts) {
    const got = await observe(h.ip, { secure: true, ms: 400, request: GET(h.ip) });
    const text = got.bytes.toString('latin1');
    assert.ok(text.startsWith('HTTP/1.1 200 OK\r\n'), h.variant);
    const marker: Record<string, string> = {
      script: 'Server: <script>alert(1)</script>',
      'csv-formula': "Server: =cmd|' /C calc'!A0",
      'long-value': `Server: IIS${'A'.repeat(1000)}`,
      'non-utf8': 'X-OWA-Version: 15\xb71\xb72176\xb79',
      'crlf-ish': 'X-Bare-CR: one\rInjected-After-CR: two',
    };
    assert.ok(text.includes(marker[h.variant] ?? '\u0000'), `${h.variant}: marker missing`);
  }
});

test('tarpit: the connection opens but no byte (not even TLS) arrives', async () => {
  const h = first('tarpit');
  const got = await observe(h.ip, { secure: true, ms: 400 });
  assert.equal(got.secured, false);
  assert.equal(got.bytes.length, 0);
  assert.equal(got.closed, false);
});

test('slow drip: TLS completes and the response trickles in a byte at a time', async () => {
  const h = first('slow-drip');
  const got = await observe(h.ip, { secure: true, ms: 600, request: GET(h.ip) });
  assert.equal(got.secured, true);
  assert.ok(got.bytes.length >= 1 && got.bytes.length <= 3, `got ${got.bytes.length} bytes`);
  assert.equal(got.bytes.toString('latin1'), 'HTTP/1.1 '.slice(0, got.bytes.length));
  assert.equal(got.closed, false);
});

test('garbage hosts: random bytes or an SSH banner instead of HTTP', async () => {
  for (const h of hostsOf('garbage')) {
    const secure = h.variant === 'tls-then-random';
    const got = await observe(h.ip, { secure, ms: 400, request: GET(h.ip) });
    assert.ok(got.bytes.length > 0, h.variant);
    assert.ok(!got.bytes.toString('latin1').startsWith('HTTP/'), h.variant);
    if (h.variant === 'ssh-banner') assert.ok(got.bytes.toString('latin1').startsWith('SSH-2.0-'));
  }
  // Over TLS, the non-TLS variants fail the handshake.
  const raw = first('garbage', (x) => x.variant === 'random-bytes');
  const got = await observe(raw.ip, { secure: true, ms: 400 });
  assert.equal(got.secured, false);
});

test('oversized hosts: a 50 MB body, a 1 MiB header line, 20,000 headers', async () => {
  for (const h of hostsOf('oversized')) {
    const got = await observe(h.ip, { secure: true, ms: 300, request: GET(h.ip) });
    const text = got.bytes.toString('latin1', 0, Math.min(got.bytes.length, 4096));
    assert.ok(text.startsWith('HTTP/1.1 200 OK'), h.variant);
    if (h.variant === 'body-50mb') assert.ok(text.includes('Content-Length: 52428800'));
    if (h.variant === 'huge-header-line') assert.ok(text.includes('X-Padding: AAAA'));
    if (h.variant === 'many-headers') assert.ok(text.includes('X-Header-0: value-0'));
  }
});

test('closed hosts and addresses outside the estate are reset', async () => {
  const closed = first('closed');
  const outside = '127.3.9.9';
  assert.ok(!lab.hosts.some((h) => h.ip === outside));
  for (const ip of [closed.ip, outside]) {
    for (const secure of [true, false]) {
      const got = await observe(ip, { secure, ms: 300, request: GET(ip) });
      assert.equal(got.bytes.length, 0);
      assert.equal(got.secured, false);
      assert.ok(got.closed, `${ip} secure=${secure} stayed open`);
    }
  }
});

test('the lab reports a distinct certificate per organisation', async () => {
  const names = new Set<string>();
  for (const h of hostsOf('exchange').slice(0, 20)) {
    const cn = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: h.ip, port: lab.httpsPort, rejectUnauthorized: false }, () => {
        const c = s.getPeerCertificate();
        s.destroy();
        resolve(String(c.subject?.CN ?? ''));
      });
      s.on('error', reject);
    });
    assert.equal(cn.toLowerCase(), h.cert === 'mail-delta' ? '*.delta.example' : h.hostname.toLowerCase());
    names.add(cn);
  }
  assert.ok(names.size >= 2);
});

test('a lab with latency still answers (delay is added per connection and per response)', async () => {
  const slow = await startLab({ hosts: 8, seed: 1, base: '127.4.0.0', latencyMs: 30, mix: { exchange: 1 } });
  try {
    const h = slow.hosts[0];
    assert.ok(h);
    const r = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: h.ip, port: slow.httpsPort, rejectUnauthorized: false }, () => s.write(`GET /owa/ HTTP/1.1\r\nHost: ${h.ip}\r\n\r\n`));
      s.on('data', (d: Buffer) => {
        s.destroy();
        resolve(d.toString('latin1'));
      });
      s.on('error', reject);
    });
    assert.ok(r.startsWith('HTTP/1.1 302 Found'));
  } finally {
    await slow.close();
  }
});

test('pipelined requests are answered in order; malformed ones get 400; the lab keeps serving', async () => {
  const h = first('exchange', (x) => x.exposes.xOwaVersion && x.ports.http);
  const auth = `${h.ip}:${lab.httpsPort}`;
  const pipelined = await observe(h.ip, {
    secure: true,
    ms: 500,
    request: ['/owa/', '/nope', '/owa/auth/logon.aspx'].map((p) => `GET ${p} HTTP/1.1\r\nHost: ${auth}\r\n\r\n`).join(''),
  });
  const { responses } = parseResponses(pipelined.bytes, [false, false, false]);
  assert.deepEqual(
    responses.map((r) => r.status),
    [302, 404, 200],
  );
  for (const bad of ['GARBAGE\r\n\r\n', `GET /${'a'.repeat(40_000)}`, '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000']) {
    const got = await observe(h.ip, { secure: false, ms: 500, request: bad });
    const text = got.bytes.toString('latin1');
    assert.ok(text === '' || text.startsWith('HTTP/1.1 400 Bad Request'), JSON.stringify(text.slice(0, 40)));
  }
  // A client speaking TLS garbage, then a normal one.
  await observe(h.ip, { secure: false, ms: 100, request: 'x'.repeat(100) });
  const [ok] = await fetchAll(h.ip, ['/owa/']);
  assert.equal(ok?.status, 302);
});
