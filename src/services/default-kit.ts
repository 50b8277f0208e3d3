/**
 * The real ScanKit: the probe client, the Exchange probe plan, the registered detectors, the Exchange
 * fingerprint and the knowledge base. The only place the engine is wired to those modules.
 */
import { openHostSession } from '../platform/net/http-probe.js';
import { nextProbes } from '../products/exchange/probes.js';
import { runDetectors } from '../products/registry.js';
import { fingerprintExchange } from '../products/exchange/fingerprint.js';
import { loadExchangeKb } from '../products/exchange/kb/index.js';
import type { ScanKit } from '../scan/kit.js';

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
