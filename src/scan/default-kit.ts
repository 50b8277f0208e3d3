/**
 * The real ScanKit: the probe client, the Exchange probe plan, the registered detectors, the Exchange
 * fingerprint and the knowledge base. The only place the engine is wired to those modules.
 */
import { openHostSession } from '../platform/net/http-probe.js';
import { nextProbes } from '../detectors/exchange/probes.js';
import { runDetectors } from '../detectors/registry.js';
import { fingerprintExchange } from '../detectors/exchange/fingerprint.js';
import { loadExchangeKb } from '../knowledge/exchange/index.js';
import type { ScanKit } from './kit.js';

let cached: ScanKit | undefined;

/** Loads the knowledge base once per thread (it validates ~1,500 rows). */
export function defaultKit(): ScanKit {
  cached ??= {
    openSession: openHostSession,
    nextProbes,
    runDetectors,
    fingerprint: fingerprintExchange,
    kb: loadExchangeKb(),
  };
  return cached;
}
