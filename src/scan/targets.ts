/**
 * Targets: what `tocsin scan TARGET...` accepts and how it becomes the (ip, hostname) pairs the engine scans.
 * This module is the folder's public face; the work is done in four files, one per step:
 *
 *   targets-grammar.ts   one target spec: classify, validate, canonicalise (pure)
 *   targets-read.ts      arguments, `@file` and `-` (stdin), problems named with file:line
 *   targets-resolve.ts   host names → name=ip, via an injectable resolver
 *   targets-expand.ts    TargetSet: dedupe, exact count, lazy deterministic iteration (every worker thread)
 *
 * Pipeline: readTargetSpecs/loadTargets (validate; throws TOCSIN_TARGET_INVALID naming file and line)
 *   → resolveTargets → expandTargets/TargetSet.from.
 */
export { MIN_V6_PREFIX, hostnameProblem, parseTargetSpec, type TargetKind, type TargetSpec } from './targets-grammar.js';
export { loadTargets, readTargetSpecs, type ReadTargetsOptions } from './targets-read.js';
export { MAX_ADDRESSES_PER_NAME, dnsResolver, resolveTargets, type Resolver, type Unresolved } from './targets-resolve.js';
export {
  DEFAULT_MAX_ADDRESSES, TargetSet, countTargets, expandTargets, type ResolvedTarget, type TargetSetOptions,
} from './targets-expand.js';
