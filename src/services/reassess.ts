/**
 * The re-assessment use case (`tocsin reassess`, later the API and a job after each knowledge-base update):
 * stored observations are judged again with the CURRENT knowledge base, and their detectors and fingerprint
 * replayed over the stored raw responses, without any network traffic.
 *
 * Per observation:
 * - with stored responses (observations stored since migration 0004): the product detectors run again over
 *   the responses rebuilt from `raw_responses`, then each product's fingerprint, then assess() with the
 *   product's knowledge base, exactly as the engine does for a fresh answer;
 * - without (stored before): the stored product, build and precision are judged again (no replay);
 * - a new assessment row is written only when something changed: a CVE verdict, what the service is taken to
 *   be (product, build, precision, edition, CU, SU) or the knowledge-base revision. Re-running with the same
 *   knowledge base and detectors writes nothing, so a re-assessment killed half-way is simply run again.
 * Hosts whose verdicts or build changed are reported one by one (`onChange`), with counts in the summary.
 */
import { statSync } from 'node:fs';
import { TocsinError, errno } from '../core/errors.js';
import type { Kysely } from 'kysely';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import type { Fact, ProbeResponse } from '../products/sdk.js';
import { productRuntimes, type ProductRuntime } from '../products/registry.js';
import { EXCHANGE_ID } from '../products/exchange/index.js';
import { createKb, loadTables } from '../products/exchange/kb/index.js';
import { assess } from '../scan/assess.js';
import type { DbSchema, AssessedFingerprint } from '../platform/db/schema.js';
import { writeAssessments, type AssessmentRow } from '../platform/db/scan-store.js';
import { storedObservations, type StoredObservation } from '../platform/db/observation-store.js';

/** What one host's re-assessment changed. Lists are CVE ids, sorted. */
export interface HostChange {
  readonly observationId: number;
  readonly scanId: number | null;
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  /** True when the detectors were replayed over stored responses; false when the stored build was judged. */
  readonly replayed: boolean;
  readonly before: AssessedFingerprint;
  readonly after: AssessedFingerprint;
  readonly vulnerableAdded: readonly string[];
  readonly vulnerableRemoved: readonly string[];
  readonly indeterminateAdded: readonly string[];
  readonly indeterminateRemoved: readonly string[];
  readonly kbRevision: { readonly from: string | null; readonly to: string | null };
}

export interface ReassessSummary {
  readonly kbRevision: string | null;
  /** Observations read. */
  readonly observations: number;
  /** Of those, replayed over stored responses (the rest judged from their stored build). */
  readonly replayed: number;
  /** Hosts whose verdicts or fingerprint changed (each reported through onChange). */
  readonly changed: number;
  /** New assessment rows written (changed hosts, plus unchanged ones judged by another knowledge-base revision). */
  readonly written: number;
  readonly vulnerableAdded: number;
  readonly vulnerableRemoved: number;
  readonly indeterminateAdded: number;
  readonly indeterminateRemoved: number;
  /** Hosts whose build, precision or product changed. */
  readonly fingerprintChanged: number;
  /** Detector failures during replays (our bugs; the other detectors' facts still count). */
  readonly detectorErrors: number;
}

export interface ReassessOptions {
  readonly db: Kysely<DbSchema>;
  /** One scan's observations; null/undefined = every stored observation. */
  readonly scanId?: number | null;
  /** The products with their LOADED knowledge bases (default: the registry's, see reassessProducts). */
  readonly products?: readonly ProductRuntime[];
  /** Stops between observations; what was written stays written (a new run skips it). */
  readonly signal?: AbortSignal;
  /** Assessment rows per write (default 500). */
  readonly batchSize?: number;
  onChange?(change: HostChange): void | Promise<void>;
}

/**
 * The registered products with their current knowledge bases. `kbDir` replaces the Exchange knowledge base
 * with the tables in that directory (the same CSV files as data/exchange/; a user's directory, so its
 * problems are a user error, TOCSIN_KB_DIR_INVALID, not the internal TOCSIN_KB_DATA_INVALID): for trying a changed
 * knowledge base before it is shipped, and for tests.
 */
export function reassessProducts(options: { readonly kbDir?: string } = {}): readonly ProductRuntime[] {
  const runtimes = productRuntimes();
  const dir = options.kbDir;
  if (dir === undefined) return runtimes;
  let tables: ReturnType<typeof loadTables>;
  try {
    if (!statSync(dir).isDirectory()) throw new TocsinError('TOCSIN_KB_DIR_INVALID', `--kb-dir ${dir} is not a directory`);
    tables = loadTables(dir);
  } catch (e) {
    if (e instanceof TocsinError && e.code === 'TOCSIN_KB_DIR_INVALID') throw e;
    if (e instanceof TocsinError) throw new TocsinError('TOCSIN_KB_DIR_INVALID', e.message, { details: e.details });
    throw new TocsinError('TOCSIN_KB_DIR_INVALID', `--kb-dir ${dir} cannot be read (${errno(e) ?? 'error'})`);
  }
  return runtimes.map((p) => (p.id === EXCHANGE_ID ? { ...p, kb: createKb(tables) } : p));
}

export async function reassess(options: ReassessOptions): Promise<ReassessSummary> {
  const products = options.products ?? reassessProducts();
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 500));
  const s = {
    observations: 0, replayed: 0, changed: 0, written: 0, vulnerableAdded: 0, vulnerableRemoved: 0,
    indeterminateAdded: 0, indeterminateRemoved: 0, fingerprintChanged: 0, detectorErrors: 0,
  };
  let pending: AssessmentRow[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const rows = pending;
    pending = [];
    await writeAssessments(options.db, rows);
    s.written += rows.length;
  };
  let kbRevision: string | null = products[0]?.kb.version ?? null;
  for await (const o of storedObservations(options.db, { scanId: options.scanId ?? null })) {
    if (options.signal?.aborted === true) break;
    s.observations++;
    const judged = judge(o, products);
    if (o.responses !== null) s.replayed++;
    s.detectorErrors += judged.detectorErrors;
    kbRevision = judged.kbRevision ?? kbRevision;
    const r = judged.record;
    const after: AssessedFingerprint = {
      product: r.product, edition: r.edition, build: r.build, buildPrecision: r.buildPrecision, cu: r.cu, su: r.su,
    };
    const before = o.current;
    const latest = o.latest;
    const vulnerableAdded = minus(r.vulnerable, latest?.vulnerable ?? []);
    const vulnerableRemoved = minus(latest?.vulnerable ?? [], r.vulnerable);
    const indeterminateAdded = minus(r.indeterminate, latest?.indeterminate ?? []);
    const indeterminateRemoved = minus(latest?.indeterminate ?? [], r.indeterminate);
    const verdictsChanged = vulnerableAdded.length + vulnerableRemoved.length + indeterminateAdded.length + indeterminateRemoved.length > 0;
    const fingerprintChanged = (Object.keys(after) as Array<keyof AssessedFingerprint>).some((k) => after[k] !== before[k]);
    const kbChanged = latest === null || latest.kbRevision !== judged.kbRevision;
    if (!verdictsChanged && !fingerprintChanged && !kbChanged) continue;
    pending.push({
      observationId: o.id, kbRevision: judged.kbRevision, vulnerable: r.vulnerable, indeterminate: r.indeterminate,
      notes: r.notes, fingerprint: after,
    });
    if (pending.length >= batchSize) await flush();
    if (!verdictsChanged && !fingerprintChanged) continue;
    s.changed++;
    if (fingerprintChanged) s.fingerprintChanged++;
    s.vulnerableAdded += vulnerableAdded.length;
    s.vulnerableRemoved += vulnerableRemoved.length;
    s.indeterminateAdded += indeterminateAdded.length;
    s.indeterminateRemoved += indeterminateRemoved.length;
    await options.onChange?.({
      observationId: o.id, scanId: o.scanId, ip: o.ip, port: o.port, hostname: o.hostname, replayed: o.responses !== null,
      before, after, vulnerableAdded, vulnerableRemoved, indeterminateAdded, indeterminateRemoved,
      kbRevision: { from: latest?.kbRevision ?? null, to: judged.kbRevision },
    });
  }
  await flush();
  return { kbRevision, ...s };
}

interface Judged {
  readonly record: ScanRecord;
  /** Revision of the knowledge base that judged it (the product that names the service, else the first). */
  readonly kbRevision: string | null;
  readonly detectorErrors: number;
}

/** One observation through detectors (if it has responses), fingerprint and knowledge base. Pure. */
export function judge(o: StoredObservation, products: readonly ProductRuntime[]): Judged {
  const target = { ip: o.ip, port: o.port, hostname: o.hostname, tls: o.tls };
  if (o.responses === null) return judgeStoredBuild(o, products);
  const responses = new Map<string, ProbeResponse>();
  for (const r of o.responses) responses.set(r.probeId, r);
  // As the engine: every product's detectors over all responses; the first product whose fingerprint names
  // its own id names the record and judges it with its knowledge base.
  const facts: Fact[] = [];
  let errors = 0;
  const runs = products.map((p) => {
    const d = p.runDetectors(responses);
    facts.push(...d.facts);
    errors += d.errors.length;
    return { p, d };
  });
  const first = runs[0];
  if (first === undefined) return { record: assessNothing(o), kbRevision: null, detectorErrors: errors };
  const claimed = runs.map(({ p, d }) => ({ p, fp: p.fingerprint(d.facts) })).find(({ p, fp }) => fp.product === p.id)
    ?? { p: first.p, fp: first.p.fingerprint(first.d.facts) };
  return { record: assess(target, responses, facts, claimed.fp, claimed.p, o.scannedAt), kbRevision: claimed.p.kb.version, detectorErrors: errors };
}

/** An observation stored without responses: its stored build judged again (nothing to replay). */
function judgeStoredBuild(o: StoredObservation, products: readonly ProductRuntime[]): Judged {
  const target = { ip: o.ip, port: o.port, hostname: o.hostname, tls: o.tls };
  const c = o.current;
  const p = products.find((x) => x.id === c.product) ?? products[0];
  const fp = { product: c.product, build: c.build, precision: c.buildPrecision, evidence: o.evidence, notes: [] };
  if (p === undefined) return { record: assessNothing(o), kbRevision: null, detectorErrors: 0 };
  return { record: assess(target, new Map(), [], fp, p, o.scannedAt), kbRevision: p.kb.version, detectorErrors: 0 };
}

function assessNothing(o: StoredObservation): ScanRecord {
  return {
    ip: o.ip, port: o.port, hostname: o.hostname, tls: o.tls, product: o.current.product, edition: null, build: null, buildPrecision: null,
    cu: null, su: null, vulnerable: [], indeterminate: [], evidence: o.evidence, scannedAt: o.scannedAt, status: o.status, notes: [],
  };
}

/** Members of `a` not in `b`, sorted. */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const bs = new Set(b);
  return [...new Set(a)].filter((x) => !bs.has(x)).sort();
}
