/**
 * One (ip, port) → its ScanRecord (the JSONL contract). Pure: the engine has already sent the probes,
 * the detectors have stated facts and the fingerprint has drawn its conclusion; here the knowledge
 * base turns a build into verdicts. Never guesses: a build the knowledge base does not list, or a
 * build seen only at CU level, gets whatever the knowledge base says it can honestly say
 * (indeterminate), and the record's notes say why.
 */
import { normaliseBuild } from '../core/build-number.js';
import type { ScanRecord } from '../core/contracts/scan-record.js';
import type { Evidence, Fact, ProbeResponse } from '../products/sdk.js';
import type { FingerprintLike, KitProduct } from './kit.js';

/** At most this many evidence items per record: a hostile host must not blow up the output. */
const MAX_EVIDENCE = 16;

export interface AssessTarget {
  readonly ip: string;
  readonly port: number;
  readonly hostname: string | null;
  readonly tls: boolean;
}

/**
 * @param responses answered probes in the order they were sent (Map insertion order); the first is the main probe.
 * @param facts every fact stated about the service (a `product` fact names it when no plugin claims it).
 * @param fingerprint the conclusion of `product`'s fingerprint; verdicts only when it names `product.id`.
 * @param scannedAt ISO time (injected so the function stays pure).
 */
export function assess(
  target: AssessTarget,
  responses: ReadonlyMap<string, ProbeResponse>,
  facts: readonly Fact[],
  fingerprint: FingerprintLike,
  product: Pick<KitProduct, 'id' | 'name' | 'kb'>,
  scannedAt: string,
): ScanRecord {
  const first = responses.values().next();
  const status = first.done === true ? null : first.value.status;
  const otherProduct = facts.find((f): f is Extract<Fact, { kind: 'product' }> => f.kind === 'product');
  const named = fingerprint.product ?? otherProduct?.product ?? null;
  const notes: string[] = [...fingerprint.notes];
  let evidence: Evidence[] = [...fingerprint.evidence];
  if (evidence.length === 0 && otherProduct !== undefined) evidence = [otherProduct.evidence];

  const base = {
    ip: target.ip,
    port: target.port,
    hostname: target.hostname,
    tls: target.tls,
    product: named,
    scannedAt,
    status,
  };
  const empty = { edition: null, build: null, buildPrecision: null, cu: null, su: null, vulnerable: [], indeterminate: [] } as const;

  // Only the product's own id gets verdicts; anything else it names (a cloud front end, "iis") is for
  // the record, and the fingerprint's notes say why.
  if (named !== product.id) return { ...base, ...empty, evidence: evidence.slice(0, MAX_EVIDENCE), notes };

  const build = fingerprint.build === null ? null : normaliseBuild(fingerprint.build);
  const precision = fingerprint.precision;
  if (build === null || precision === null) {
    notes.push(`${product.name} identified but no build number was seen: no verdicts`);
    return { ...base, ...empty, evidence: evidence.slice(0, MAX_EVIDENCE), notes };
  }

  const a = product.kb.assess(build, precision);
  notes.push(...a.notes);
  if (!a.known) notes.push(`build ${build} is not in the knowledge base`);
  // Web components may report a revision a little off the listed build (2019 CU9 sends 15.2.858.2 for
  // 15.2.858.5): the record carries the listed build the verdicts are about, and says what was seen.
  const listed = precision === 'exact' && a.known && typeof a.listedBuild === 'string' ? normaliseBuild(a.listedBuild) : null;
  if (listed !== null && listed !== build && a.notes.length === 0) notes.push(`seen ${build}, listed as ${listed}`);
  return {
    ...base,
    edition: a.edition,
    build: listed ?? build,
    buildPrecision: precision,
    cu: a.cu,
    // With only the CU visible, the security update is unknown whatever the KB might infer.
    su: precision === 'exact' ? a.su : null,
    // The knowledge base's lists as they are (frozen, one per build): no copy per host, and a batch posted
    // from a worker thread carries each distinct list once (structured clone keeps shared references).
    vulnerable: a.vulnerable,
    indeterminate: a.indeterminate,
    evidence: evidence.slice(0, MAX_EVIDENCE),
    notes,
  };
}
