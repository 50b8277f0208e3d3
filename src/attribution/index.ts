/**
 * Attribution: exposure → organisation, with the rule, the record that matched, a confidence and every candidate
 * that lost with why. Pure (no I/O): `buildAttributionIndex(snapshot)` once per registry snapshot, then
 * `attribute(index, facts)` per exposure; `src/services/attribute.ts` fills the snapshot from the constituency store.
 *
 * Rules, in order (the first that matches wins; inside a rule the strongest record wins):
 *   1. manual override (an address or range an analyst assigned): the most specific one;
 *   2. network: the most specific network containing the address (a customer's /26 inside its ISP's /24 goes to
 *      the customer); the same range in both layers: the manual entry;
 *   3. ASN: the exposure's own (a feed's) ASN, else the ASN of the longest matching prefix-to-ASN row;
 *   4. domain: a registry domain that is a suffix, on label boundaries, of a hostname of the exposure (Host/SNI of
 *      our scan, feed hostname, certificate SANs and CN (`*.x.example` as under `x.example`), PTR): the strongest
 *      source first, then the longest suffix;
 *   5. none: unattributed (the review queue).
 * Equal records of two organisations are a tie: the lower organisation id wins, `tie` is set and the confidence
 * halved. Confidence scale: `CONFIDENCE` in types.ts. Contacts: the organisation's, else a network's abuse-mailbox.
 *
 * `attributeMany(index, facts[])` answers a batch (the store's bulk refresh: pass `{ candidates: false }` to keep
 * only the decisions: no losing candidate or sentence is built). `attributeReference` is the plain engine `attribute` must equal (score
 * every candidate, sort them all): for tests and the benchmark only.
 */
export { attribute, attributeMany, describeEvidence, type AttributeOptions } from './attribute.js';
export { attributeReference } from './attribute-reference.js';
export { buildAttributionIndex, parseRange, type AttributionIndex, type ParsedRange } from './attribution-index.js';
export { certificateName, normaliseHostname } from './hostnames.js';
export * from './types.js';
