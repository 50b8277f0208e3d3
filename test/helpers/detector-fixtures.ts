/**
 * The recorded-response fixture format shared by every detector folder
 * (`src/detectors/<product>/fixtures/*.json`), and its loader. Test support only (it reads files, so it
 * lives outside src/detectors, whose code is pure); one documented definition that the conformance
 * tests and any other test (lab, engine) can use to replay the same recordings.
 *
 * A fixture file:
 * {
 *   "name": "exchange-2016-cu19",              // = file name without .json
 *   "description": "what host this is and why it matters",
 *   "responses": [ {                           // what the engine would hand over, one per answered probe
 *       "probeId": "owa-logon", "url": "https://192.0.2.10/owa/auth/logon.aspx",
 *       "status": 200, "statusLine": "HTTP/1.1 200 OK",
 *       "headers": [["x-owa-version", "15.1.2176.2"], ...],   // names lower-case, repeats allowed
 *       "body": "text" | "bodyFile": "bodies/x.html" | "bodyBase64": "...",
 *       "redirects": ["http://192.0.2.10/owa/auth/logon.aspx"], "truncated": false } ],
 *   "expectPlan": ["owa-logon", "ecp-exporttool"],   // probes the plan sends (unlisted responses = no answer)
 *   "expectFacts": { "<detector-id>": ["signal:owa-page", "build:15.1.2176:cu", "online", "product:iis", "inconsistency"] },
 *   "expectFingerprint": { "product": "ms-exchange", "build": "15.1.2176.2", "precision": "exact",
 *                          "notesInclude": ["substring of some note"] }
 * }
 * A detector listed with [] in expectFacts is a NEGATIVE case for it; with facts, a POSITIVE case.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Fact, ProbeResponse } from '../../src/products/sdk.js';

export interface FixtureExpectation {
  readonly product: string | null;
  readonly build: string | null;
  readonly precision: 'exact' | 'cu' | null;
  readonly notesInclude?: readonly string[];
}

export interface Fixture {
  readonly name: string;
  readonly file: string;
  readonly description: string;
  readonly responses: ReadonlyMap<string, ProbeResponse>;
  readonly expectPlan: readonly string[] | null;
  readonly expectFacts: Readonly<Record<string, readonly string[]>>;
  readonly expectFingerprint: FixtureExpectation | null;
}

interface RawResponse {
  probeId: string;
  url: string;
  status: number;
  statusLine?: string;
  headers?: Array<[string, string]>;
  body?: string;
  bodyFile?: string;
  bodyBase64?: string;
  redirects?: string[];
  truncated?: boolean;
}

function fail(file: string, what: string): never {
  throw new Error(`fixture ${file}: ${what}`);
}

function toResponse(dir: string, file: string, r: RawResponse): ProbeResponse {
  if (typeof r.probeId !== 'string' || typeof r.url !== 'string' || typeof r.status !== 'number') fail(file, 'response needs probeId, url, status');
  let body: Buffer;
  if (r.bodyFile !== undefined) body = readFileSync(join(dir, r.bodyFile));
  else if (r.bodyBase64 !== undefined) body = Buffer.from(r.bodyBase64, 'base64');
  else body = Buffer.from(r.body ?? '', 'utf8');
  const headers: Array<readonly [string, string]> = [];
  for (const h of r.headers ?? []) {
    if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') fail(file, 'headers must be [name, value] pairs');
    if (h[0] !== h[0].toLowerCase()) fail(file, `header name ${h[0]} must be lower-case (as the engine hands them over)`);
    headers.push([h[0], h[1]]);
  }
  return {
    probeId: r.probeId,
    url: r.url,
    status: r.status,
    statusLine: r.statusLine ?? `HTTP/1.1 ${r.status}`,
    headers,
    body,
    truncated: r.truncated ?? false,
    redirects: r.redirects ?? [],
  };
}

/** Loads one fixture file; throws a clear error for a malformed one. */
export function loadFixture(path: string): Fixture {
  const dir = dirname(path);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const name = String(raw['name'] ?? '');
  const responses = new Map<string, ProbeResponse>();
  const list = raw['responses'];
  if (!Array.isArray(list)) fail(path, 'responses must be an array');
  for (const r of list as RawResponse[]) {
    if (responses.has(r.probeId)) fail(path, `two responses for probe ${r.probeId}`);
    responses.set(r.probeId, toResponse(dir, path, r));
  }
  return {
    name,
    file: path,
    description: String(raw['description'] ?? ''),
    responses,
    expectPlan: (raw['expectPlan'] as string[] | undefined) ?? null,
    expectFacts: (raw['expectFacts'] as Record<string, string[]> | undefined) ?? {},
    expectFingerprint: (raw['expectFingerprint'] as FixtureExpectation | undefined) ?? null,
  };
}

/** Every fixture under `<root>/<product>/fixtures/*.json`, sorted by path. */
export function loadAllFixtures(root: string): Fixture[] {
  const out: Fixture[] = [];
  for (const product of readdirSync(root).sort()) {
    const dir = join(root, product, 'fixtures');
    let isDir = false;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) continue;
    for (const f of readdirSync(dir).sort()) if (f.endsWith('.json')) out.push(loadFixture(join(dir, f)));
  }
  return out;
}

/** A fact as a short comparable string: "signal:<kind>", "build:<b>:<precision>", "online", "product:<p>", "inconsistency". */
export function factSummary(f: Fact): string {
  switch (f.kind) {
    case 'exchange-signal':
      return `signal:${f.signal}`;
    case 'build':
      return `build:${f.build}:${f.precision}`;
    case 'exchange-online':
      return 'online';
    case 'product':
      return `product:${f.product}`;
    case 'inconsistency':
      return 'inconsistency';
  }
}
