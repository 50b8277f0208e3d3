/**
 * A local fake of Shadowserver's reports API on 127.0.0.1 (shape in src/platform/feeds/shadowserver-api.ts):
 * POST `<base>/reports/list` and `<base>/reports/download` with a JSON body carrying `apikey`, signed in the
 * `HMAC2` header. The fake checks the signature against its own secret over the raw body bytes, so a test that
 * passes proves the client signs what it sends; a wrong secret or key gets 401 `{"error": ...}`.
 * Per report, a test can script failures: an HTTP status for the first N downloads, a cut body, a hang, an
 * oversized body (with or without Content-Length).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeReport {
  readonly id: string;
  readonly type: string;
  readonly file: string;
  readonly date: string;
  readonly report?: string;
  readonly body: string;
}

/** What the fake does for a download of one id, for the first `times` downloads (default: always). */
export type Misbehaviour =
  | { readonly kind: 'status'; readonly status: number; readonly times?: number }
  | { readonly kind: 'cut'; readonly times?: number }
  | { readonly kind: 'hang'; readonly times?: number }
  | { readonly kind: 'oversize'; readonly bytes: number; readonly declare: boolean; readonly times?: number };

export interface FakeShadowserver {
  /** Base URL, ending with `/api2/`. */
  readonly url: string;
  readonly reports: FakeReport[];
  readonly misbehave: Map<string, Misbehaviour>;
  /** The list answer is this raw text for the next N list calls (bad JSON tests). */
  listOverride: { text: string; times: number } | null;
  /** Downloads answered per id (any outcome), and every request's method path. */
  readonly downloads: Map<string, number>;
  readonly calls: string[];
  /** Requests refused for a bad signature or key. */
  refused: number;
  close(): Promise<void>;
}

export async function startFakeShadowserver(o: { apiKey: string; secret: string; reports: readonly FakeReport[] }): Promise<FakeShadowserver> {
  const sockets = new Set<Socket>();
  const fake: FakeShadowserver = {
    url: '',
    reports: [...o.reports],
    misbehave: new Map(),
    listOverride: null,
    downloads: new Map(),
    calls: [],
    refused: 0,
    close: async () => undefined,
  };

  const json = (res: ServerResponse, status: number, value: unknown): void => {
    const text = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: Buffer): void => {
    const path = (req.url ?? '').replace(/^\/api2\//, '');
    fake.calls.push(path);
    if (req.method !== 'POST') return json(res, 405, { error: 'POST only' });
    const expected = createHmac('sha256', o.secret).update(raw).digest();
    const given = Buffer.from(String(req.headers.hmac2 ?? ''), 'hex');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: 'request is not JSON' });
    }
    if (given.length !== expected.length || !timingSafeEqual(given, expected) || body.apikey !== o.apiKey) {
      fake.refused++;
      return json(res, 401, { error: 'Invalid HMAC or apikey' });
    }
    if (path === 'reports/list') {
      if (fake.listOverride !== null && fake.listOverride.times > 0) {
        fake.listOverride.times--;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(fake.listOverride.text);
        return;
      }
      const [from, to = from] = String(body.date ?? '').split(':');
      const list = fake.reports
        .filter((r) => from !== undefined && r.date >= from && to !== undefined && r.date <= to)
        .map((r) => ({ id: r.id, type: r.type, file: r.file, report: r.report ?? 'example-asn', timestamp: r.date, url: `https://dl.example.invalid/${r.id}` }));
      return json(res, 200, list);
    }
    if (path === 'reports/download') {
      const id = String(body.id ?? '');
      const r = fake.reports.find((x) => x.id === id);
      const n = (fake.downloads.get(id) ?? 0) + 1;
      fake.downloads.set(id, n);
      if (r === undefined) return json(res, 200, { error: `report ${id} not found` });
      const m = fake.misbehave.get(id);
      if (m !== undefined && (m.times === undefined || n <= m.times)) {
        if (m.kind === 'status') return json(res, m.status, { error: 'internal error' });
        if (m.kind === 'hang') return; // never answers; the client's timeout must end it
        if (m.kind === 'cut') {
          res.writeHead(200, { 'content-type': 'text/csv', 'content-length': Buffer.byteLength(r.body) + 1000 });
          res.write(r.body.slice(0, 20));
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        }
        const headers: Record<string, string | number> = { 'content-type': 'text/csv' };
        if (m.declare) headers['content-length'] = m.bytes;
        res.writeHead(200, headers);
        const chunk = Buffer.alloc(64 * 1024, 0x41);
        let left = m.bytes;
        const pump = (): void => {
          while (left > 0) {
            const part = chunk.subarray(0, Math.min(chunk.length, left));
            left -= part.length;
            if (!res.write(part)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        res.on('error', () => undefined);
        pump();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/csv', 'content-length': Buffer.byteLength(r.body) });
      res.end(r.body);
      return;
    }
    json(res, 404, { error: 'unknown method' });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks)));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}/api2/`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
