/**
 * Tenant isolation (issue 10 §7): walk EVERY operation of /api/openapi.json as an organisation user (each of two
 * organisations in turn, by bearer token so a DELETE /api/session cannot end the walk) and assert that no answer
 * contains another organisation's data: its addresses, name, contact e-mails, hostnames, accounts (and, as the
 * estate grows, incident titles), nor an unattributed host's address.
 *
 * The walker is generic, so routes added later are walked without touching this file: path parameters (`:ip`,
 * `:id`, `{orgId}` ...) are filled with values of the OTHER organisations (then the answer must be 403 or 404) and
 * of the caller's own; query parameters keep their defaults, with the required ones filled from the schema; request
 * bodies are generated from the JSON schema, with address and organisation fields pointing at another
 * organisation's objects (then the answer must not be a success). Every route must also be classified below as
 * one an organisation user may call (ORG_VISIBLE) or staff-only (then every answer is 403 or a validation 400, at
 * least one is 403); an unclassified route, or one the walker could not get past validation, fails the test with
 * what to do.
 *
 * HTTP only (no browser); one database on the embedded backend (the isolation is in the services' SQL, the same on
 * both backends, which test/web-api.test.ts already runs on each) to keep CI time down.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Fastify from 'fastify';
import { createToken } from '../src/services/accounts.js';
import type { Database } from '../src/platform/db/connect.js';
import { openDatabase } from '../src/platform/db/connect.js';
import { freshDatabase, SHARED_TEST_HOME, type FreshDatabase } from './helpers/db.js';
import { serve, type Served } from './helpers/browser.js';
import { buildWebEstate, type EstateOrg, type WebEstate } from './helpers/web-estate.js';

/**
 * Routes an organisation user may call (their answers are scoped to its organisation). Anything else in the
 * OpenAPI document is staff-only. A new route must be added here, or be staff-only, or this test says so.
 */
const ORG_VISIBLE: readonly RegExp[] = [
  /^(GET|POST|DELETE) \/api\/session$/,
  /^GET \/api\/me$/,
  /^(GET|POST|DELETE) \/api\/tokens(\/.*)?$/,
  /^GET \/api\/exposures$/,
  /^GET \/api\/(openapi\.json|docs)$/,
  /^(GET|POST|PUT|PATCH|DELETE) \/api\/my(\/.*)?$/,
  // Incident reports: an organisation files stage-0 reports and reads its own (services/incidents.ts scopes them).
  /^(GET|POST|PUT|PATCH) \/api\/incidents(\/.*)?$/,
  // Acknowledgement links from warning e-mails (signed token, no login).
  /^(GET|POST) \/api\/ack(\/.*)?$/,
  // The compromise-assessment kit, for the victims themselves.
  /^GET \/api\/forensics-kit$/,
  // No login: asking for a reset link (the same answer for every address) and using an invitation or reset link.
  /^POST \/api\/password-reset(\/complete)?$/,
];

/** Routes answered the same to anyone (public): no organisation's data may be in them either, but 403 is not expected. */
const STAFF_ONLY_EXCEPT = (key: string): boolean => ORG_VISIBLE.some((r) => r.test(key));

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly parameters?: ReadonlyArray<{ name: string; in: string; required: boolean; schema: Schema }>;
  readonly requestBody?: { content: { 'application/json': { schema: Schema } } };
}

type Schema = Readonly<{
  type?: string | readonly string[]; properties?: Record<string, Schema>; required?: readonly string[]; items?: Schema; enum?: readonly unknown[];
  default?: unknown; minimum?: number; maximum?: number; minLength?: number; maxLength?: number; pattern?: string; format?: string; minItems?: number;
  const?: unknown; anyOf?: readonly Schema[]; oneOf?: readonly Schema[]; minProperties?: number;
}>;

interface Call {
  readonly label: string;
  /** Which request body (calls with the same body and the caller's own path values answer the same way when the body is refused). */
  readonly bodyLabel: string;
  readonly method: string;
  readonly url: string;
  readonly body?: unknown;
  /** The call names another organisation's object (path or body): it must not succeed. */
  readonly foreign: 'path' | 'body' | null;
}

/** What the walker knows about the estate, as seen by `self`. */
interface Values {
  readonly self: EstateOrg;
  readonly others: readonly EstateOrg[];
  readonly foreignIps: readonly string[];
  readonly campaignId: number;
}

const ORDER: Record<string, number> = { GET: 0, POST: 1, PUT: 2, PATCH: 3, DELETE: 4 };

function typeOf(s: Schema): string {
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (typeof t === 'string') return t;
  if (s.properties !== undefined) return 'object';
  if (s.enum !== undefined) return typeof s.enum[0];
  return 'string';
}

type Role = 'ip' | 'org' | 'campaign' | 'incident' | 'id' | 'other';

/** A parameter or field's role in the estate, from its name (and the path segment before a bare `:id`). */
function roleOf(name: string, before: string | null): Role {
  const n = name.toLowerCase();
  if (/(^|_)ip$|^ips?$|addr|^host$/.test(n)) return 'ip';
  if (/^org(anisation|anization)?(id|_id|name)?$/.test(n) || (n === 'id' && /^org/.test(before ?? ''))) return 'org';
  if (/^campaign(id|_id)?$/.test(n) || (n === 'id' && /^campaign/.test(before ?? ''))) return 'campaign';
  if (/^incident(id|_id)?$/.test(n) || (n === 'id' && /^incident/.test(before ?? ''))) return 'incident';
  if (n === 'id' || /id$/.test(n)) return 'id';
  return 'other';
}

/** Text by a field's name, so service-level validation (e-mail, phone, times with a zone) passes too. */
function hintsByName(name: string): string[] {
  const n = name.toLowerCase();
  if (/email|mail$/.test(n)) return ['walker@cert.test'];
  if (/phone/.test(n)) return ['+49 30 1234567'];
  if (/at$|time|date/.test(n)) return ['2026-03-01T10:00:00+01:00'];
  if (/cve/.test(n)) return ['CVE-2021-26855'];
  if (/password/.test(n)) return ['walker password 1234'];
  return [];
}

/** A value satisfying a string schema: the hint first, else something shaped by format/enum/pattern/length. */
function stringFor(s: Schema, name: string, hints: readonly string[]): string {
  if (s.enum !== undefined && typeof s.enum[0] === 'string') return s.enum[0];
  const candidates = [
    ...hints, ...hintsByName(name),
    ...(s.format === 'email' ? ['walker@cert.test'] : []),
    ...(s.format === 'date-time' ? ['2026-03-01T10:00:00Z'] : []),
    ...(s.format === 'date' ? ['2026-03-01'] : []),
    'walker', 'walker@cert.test', '2026-03-01T10:00:00+01:00', '2026-03-01', '198.18.10.5', 'CVE-2021-26855', 'x'.repeat(Math.max(1, s.minLength ?? 1)), '1',
  ];
  const fits = (v: string): boolean => (s.minLength === undefined || v.length >= s.minLength) && (s.maxLength === undefined || v.length <= s.maxLength)
    && (s.pattern === undefined || new RegExp(s.pattern, 'u').test(v));
  return candidates.find(fits) ?? candidates[0] ?? 'x';
}

/** The estate value for a field's role: its text form and its number form (an org by name or by id). */
type Pick = (role: Role) => { text: string | null; num: number | null };

/** A JSON value valid for the schema (required fields only, plus hinted ones), `pick` choosing estate values by field role. */
function valueFor(s: Schema, name: string, pick: Pick): unknown {
  if (s.const !== undefined) return s.const;
  const alt = s.anyOf ?? s.oneOf;
  if (alt !== undefined && alt[0] !== undefined) return valueFor(alt[0], name, pick);
  if (s.default !== undefined) return s.default;
  const hinted = pick(roleOf(name, null));
  switch (typeOf(s)) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        const r = roleOf(k, null);
        if ((s.required ?? []).includes(k) || r === 'ip' || r === 'org' || r === 'incident') out[k] = valueFor(sub, k, pick);
      }
      // minProperties: add optional fields until there are enough.
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        if (Object.keys(out).length >= (s.minProperties ?? 0)) break;
        if (!(k in out)) out[k] = valueFor(sub, k, pick);
      }
      return out;
    }
    case 'array': {
      const item = s.items === undefined ? 'x' : valueFor(s.items, name.replace(/s$/, ''), pick);
      return Array.from({ length: Math.max(1, s.minItems ?? 1) }, () => item);
    }
    case 'integer':
    case 'number':
      return hinted.num ?? s.minimum ?? 1;
    case 'boolean':
      return false;
    default:
      return stringFor(s, name, hinted.text === null ? [] : [hinted.text]);
  }
}

/** Estate values of organisation `o` by role; with `only`, just those roles take `o`'s values and the rest `self`'s. */
function picker(o: EstateOrg, only?: { roles: readonly Role[]; self: EstateOrg }): Pick {
  return (role) => {
    const from = only === undefined || only.roles.includes(role) ? o : only.self;
    if (role === 'ip') return { text: from.hosts[0]?.ip ?? null, num: null };
    if (role === 'org') return { text: from.name, num: from.id };
    if (role === 'incident') return { text: String(from.incidentId), num: from.incidentId };
    return { text: null, num: null };
  };
}

/** Every call the walker makes for one operation. */
function callsFor(op: Operation, v: Values): Call[] {
  const segments = op.path.split('/');
  const params = segments.map((seg, i) => {
    const m = /^:(\w+)$|^\{(\w+)\}$/.exec(seg);
    return m === null ? null : { index: i, name: m[1] ?? m[2] ?? '', before: segments[i - 1] ?? null };
  }).filter((p): p is { index: number; name: string; before: string | null } => p !== null);

  const query = new URLSearchParams();
  for (const p of op.parameters ?? []) {
    if (p.in !== 'query' || !p.required) continue;
    query.set(p.name, String(valueFor(p.schema, p.name, picker(v.self))));
  }
  const qs = query.size === 0 ? '' : `?${query.toString()}`;
  // Optional filters naming an organisation or an address, set to another organisation's: only the leak check applies
  // (refusing, or ignoring the filter and answering with the caller's own data, are both fine).
  const foreignQueries: string[] = [];
  for (const p of op.parameters ?? []) {
    if (p.in !== 'query' || p.required) continue;
    const r = roleOf(p.name, null);
    if (r !== 'org' && r !== 'ip' && r !== 'incident') continue;
    for (const o of v.others) {
      const q2 = new URLSearchParams(query);
      q2.set(p.name, String(valueFor(p.schema, p.name, picker(o))));
      foreignQueries.push(`?${q2.toString()}`);
    }
  }

  // Path variants: own values, then every other organisation's (one parameter at a time), then bare small ids.
  type Fill = { values: Map<string, string>; foreign: boolean; label: string };
  const own = (p: { name: string; before: string | null }): string => {
    const r = roleOf(p.name, p.before);
    if (r === 'ip') return v.self.hosts[0]?.ip ?? '198.18.10.5';
    if (r === 'org') return String(v.self.id);
    if (r === 'campaign') return String(v.campaignId);
    if (r === 'incident') return String(v.self.incidentId);
    if (r === 'id') return '1';
    return 'walker';
  };
  const fills: Fill[] = [];
  if (params.length === 0) fills.push({ values: new Map(), foreign: false, label: 'no params' });
  else {
    fills.push({ values: new Map(params.map((p) => [p.name, own(p)])), foreign: false, label: 'own' });
    for (const p of params) {
      const r = roleOf(p.name, p.before);
      const foreign: string[] = r === 'ip' ? [...v.foreignIps] : r === 'org' ? v.others.map((o) => String(o.id)) : r === 'incident' ? v.others.map((o) => String(o.incidentId)) : [];
      for (const f of foreign) fills.push({ values: new Map(params.map((q) => [q.name, q === p ? f : own(q)])), foreign: true, label: `${p.name}=${f} (another organisation's)` });
      // Ids of unknown kind: every small id, so another organisation's object (ids are small in this estate) is among them.
      if (r === 'id' || r === 'campaign' || r === 'other') {
        for (const f of r === 'other' ? ['1', 'nothing-here'] : ['1', '2', '3', '4', '5', '6', String(v.campaignId)]) {
          fills.push({ values: new Map(params.map((q) => [q.name, q === p ? f : own(q)])), foreign: false, label: `${p.name}=${f}` });
        }
      }
    }
  }
  const urlOf = (f: Fill): string => segments.map((seg, i) => {
    const p = params.find((x) => x.index === i);
    return p === undefined ? seg : encodeURIComponent(f.values.get(p.name) ?? '');
  }).join('/') + qs;

  const schema = op.requestBody?.content['application/json'].schema;
  const bodies: Array<{ body: unknown; foreign: boolean; label: string }> = [];
  if (schema === undefined) bodies.push({ body: undefined, foreign: false, label: '' });
  else {
    const own = valueFor(schema, 'body', picker(v.self));
    bodies.push({ body: own, foreign: false, label: 'own body' });
    for (const o of v.others) {
      // Another organisation's address or report in a change: it must not succeed.
      const objects = valueFor(schema, 'body', picker(o, { roles: ['ip', 'incident'], self: v.self }));
      if (JSON.stringify(objects) !== JSON.stringify(own)) bodies.push({ body: objects, foreign: true, label: `body naming ${o.key}'s objects` });
      // Another organisation's id or name where the service takes the organisation from the login: ignoring it is
      // fine, so only the leak check applies (the answer must not be about the other organisation).
      const named = valueFor(schema, 'body', picker(o, { roles: ['org'], self: v.self }));
      if (JSON.stringify(named) !== JSON.stringify(own)) bodies.push({ body: named, foreign: false, label: `body naming ${o.key}` });
    }
  }
  const out: Call[] = [];
  const ownFill = fills[0];
  if (ownFill !== undefined) {
    for (const fq of foreignQueries) out.push({ label: `query ${fq}`, bodyLabel: bodies[0]?.label ?? '', method: op.method, url: urlOf(ownFill).replace(/\?.*$/, '') + fq, ...(bodies[0]?.body === undefined ? {} : { body: bodies[0].body }), foreign: null });
  }
  for (const f of fills) {
    for (const b of bodies) {
      if (f.foreign && b.foreign) continue;
      out.push({
        label: [f.label, b.label].filter((x) => x !== '').join(', '), bodyLabel: b.label, method: op.method, url: urlOf(f),
        ...(b.body === undefined ? {} : { body: b.body }), foreign: f.foreign ? 'path' : b.foreign ? 'body' : null,
      });
    }
  }
  return out;
}

/** The forms a value takes in an answer: as is, in JSON, in HTML and in a CSV cell. */
function forms(secret: string): string[] {
  const html = secret.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
  return [...new Set([secret, JSON.stringify(secret).slice(1, -1), html, secret.replace(/"/g, '""'), encodeURIComponent(secret)])];
}

function leaks(text: string, secrets: readonly string[]): string[] {
  const lower = text.toLowerCase();
  return secrets.filter((s) => forms(s).some((f) => lower.includes(f.toLowerCase())));
}

function isValidation400(status: number, text: string): boolean {
  if (status !== 400) return false;
  try {
    const m = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? '';
    return /^(body|querystring|params|headers)\b/.test(m);
  } catch {
    return false;
  }
}

/** Walks every operation of the OpenAPI document at `base` as the organisation user holding `token`. */
async function walk(base: string, token: string, values: Values, secrets: readonly string[], say: (m: string) => void): Promise<{ problems: string[]; calls: number; ops: number; ownDataSeen: boolean }> {
  const self = values.self;
  const docRes = await fetch(`${base}/api/openapi.json`);
  assert.equal(docRes.status, 200);
  const doc = (await docRes.json()) as { paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>> };
  const ops: Operation[] = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => ({ ...op, method: m.toUpperCase(), path })));
  ops.sort((a, b) => (ORDER[a.method] ?? 9) - (ORDER[b.method] ?? 9) || a.path.localeCompare(b.path));

  const problems: string[] = [];
  let ownDataSeen = false;
  let calls = 0;
  for (const op of ops) {
    const key = `${op.method} ${op.path}`;
    const visible = STAFF_ONLY_EXCEPT(key);
    const statuses: number[] = [];
    const ownStatus = new Map<string, number>();
    let passedValidation = false;
    for (const c of callsFor(op, values)) {
      calls++;
      const res = await fetch(`${base}${c.url}`, {
        method: c.method,
        headers: { authorization: `Bearer ${token}`, ...(c.body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
      });
      const text = await res.text();
      statuses.push(res.status);
      if (!isValidation400(res.status, text)) passedValidation = true;
      const leaked = leaks(text, secrets);
      if (leaked.length > 0) problems.push(`${key} [${c.label}] -> ${res.status} contains another organisation's ${JSON.stringify(leaked)}`);
      if (c.foreign === null && c.label.startsWith('own')) ownStatus.set(c.bodyLabel, res.status);
      // A 400 for another organisation's object is fine when the same body on the caller's own object got one too:
      // the body was refused before the object was looked at, which tells nothing about it.
      const refusedAnyway = res.status === 400 && ownStatus.get(c.bodyLabel) === 400;
      if (c.foreign === 'path' && res.status !== 403 && res.status !== 404 && !isValidation400(res.status, text) && !refusedAnyway) {
        problems.push(`${key} [${c.label}] -> ${res.status}: another organisation's object must answer 403 or 404`);
      }
      if (c.foreign === 'body' && res.status < 300) problems.push(`${key} [${c.label}] -> ${res.status}: a change naming another organisation's object must not succeed`);
      if (!visible && res.status < 300) problems.push(`${key} [${c.label}] -> ${res.status}: staff-only, must answer 403 to an organisation user`);
      if (res.status < 300 && self.hosts.some((h) => text.includes(h.ip))) ownDataSeen = true;
    }
    say(`${visible ? 'org  ' : 'staff'} ${key}: ${statuses.join(',')}`);
    if (!passedValidation) problems.push(`${key}: every call was refused by schema validation (${statuses.join(',')}), so the route was not covered: teach callsFor() its parameters`);
    if (!visible && passedValidation && !statuses.includes(403)) problems.push(`${key}: staff-only (not in ORG_VISIBLE) but never answered 403 (${statuses.join(',')}); if organisation users may call it, add it to ORG_VISIBLE`);
  }
  return { problems, calls, ops: ops.length, ownDataSeen };
}

describe('web: tenant isolation over every OpenAPI operation', () => {
  let fresh: FreshDatabase;
  let database: Database;
  let estate: WebEstate;
  let served: Served;

  before(async () => {
    fresh = await freshDatabase('embedded');
    database = await openDatabase({ home: SHARED_TEST_HOME, databaseUrl: fresh.url });
    estate = await buildWebEstate(database);
    served = await serve(database);
  });
  after(async () => {
    await served?.close();
    await database?.close();
    await fresh?.drop();
  });

  for (const who of ['alpha', 'beta'] as const) {
    test(`as the organisation user of ${who}: no other organisation's data in any answer; staff-only routes 403; foreign objects 403/404`, async (t) => {
      const account = estate.accounts[who];
      const self = estate.orgs[who];
      const others = Object.values(estate.orgs).filter((o) => o !== self);
      const secrets = [...others.flatMap((o) => estate.secretsOf(o)), estate.unattributed.ip];
      const { token } = await createToken(database.db, account.email, { name: 'tenant walker' });
      const values: Values = { self, others, foreignIps: [...others.flatMap((o) => o.hosts.map((h) => h.ip)), estate.unattributed.ip], campaignId: estate.campaign.id };

      const { problems, calls, ops, ownDataSeen } = await walk(served.base, token, values, secrets, (m) => t.diagnostic(m));
      assert.deepEqual(problems, [], `${problems.length} problem(s) over ${calls} calls`);
      // The control: the walker's token really is the organisation's, and its own data does come back somewhere.
      assert.ok(ownDataSeen, `no answer contained ${who}'s own addresses: the walk proved nothing`);
      assert.ok(ops >= 5 && calls >= ops, `${ops} operations, ${calls} calls`);
    });
  }
  test('control: the walker reports a leak, a staff-only route that answers, and another organisation\'s object that is served', async () => {
    const alpha = estate.orgs.alpha;
    const beta = estate.orgs.beta;
    const doc = { openapi: '3.1.0', paths: {
      '/api/my/leak': { get: { responses: {} } },
      '/api/summary': { get: { responses: {} } },
      '/api/my/things/{ip}': { get: { responses: {} } },
      '/api/my/rescans': { post: { requestBody: { content: { 'application/json': { schema: { type: 'object', required: ['ip'], properties: { ip: { type: 'string' } } } } } }, responses: {} } },
      '/api/exposures': { get: { responses: {} } },
    } };
    // A deliberately broken API: every mistake the walker must catch, once.
    const app = Fastify();
    app.get('/api/openapi.json', async () => doc);
    app.get('/api/my/leak', async () => ({ items: [{ ip: beta.hosts[0]!.ip }] }));
    app.get('/api/summary', async () => ({ hosts: 1 }));
    app.get('/api/my/things/:ip', async () => ({ ok: true }));
    app.post('/api/my/rescans', async () => ({ queued: true }));
    app.get('/api/exposures', async () => ({ items: [{ ip: alpha.hosts[0]!.ip }] }));
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const values: Values = { self: alpha, others: [beta], foreignIps: beta.hosts.map((h) => h.ip), campaignId: estate.campaign.id };
      const r = await walk(base, 'not-checked', values, estate.secretsOf(beta), () => undefined);
      const joined = r.problems.join('\n');
      assert.match(joined, /GET \/api\/my\/leak \[no params\] -> 200 contains another organisation's/);
      assert.match(joined, /GET \/api\/summary \[no params\] -> 200: staff-only/);
      assert.match(joined, /GET \/api\/my\/things\/\{ip\} \[ip=198\.18\.20\.7 \(another organisation's\)\] -> 200: another organisation's object must answer 403 or 404/);
      assert.match(joined, /POST \/api\/my\/rescans \[no params, body naming beta's objects\] -> 200: a change naming another organisation's object must not succeed/);
      assert.ok(r.ownDataSeen);
    } finally {
      await app.close();
    }
  });
});
