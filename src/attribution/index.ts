/**
 * Attribution: exposure → organisation with the rule, the record that matched, a confidence and the candidates
 * that lost. Pure (no I/O): `buildAttributionIndex(snapshot)` once, then `attribute(index, facts)` per exposure.
 */
export { attribute, describeEvidence, type AttributeOptions } from './attribute.js';
export { buildAttributionIndex, parseRange, type AttributionIndex, type ParsedRange } from './attribution-index.js';
export { certificateName, normaliseHostname } from './hostnames.js';
export * from './types.js';
