/**
 * CI-only: the in-repo knowledge base (data/exchange/) still agrees with the shared source tables beside
 * the repository (../shared/data/exchange/). Outside CI a missing directory skips; with CI=true it fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { normaliseBuild } from '../src/core/build-number.js';
import { packageRoot } from '../src/platform/paths.js';
import { parseCsvRecords } from '../src/knowledge/exchange/csv.js';
import { loadExchangeKb } from '../src/knowledge/exchange/index.js';

const SHARED = join(packageRoot(), '..', 'shared', 'data', 'exchange');
const present = existsSync(join(SHARED, 'exchange-builds.csv')) && existsSync(join(SHARED, 'exchange-cve-fixes.csv'));
const inCi = process.env.CI === 'true';
const skip = !present && !inCi ? 'no ../shared/data/exchange here (only required in CI)' : false;

function read(file: string): Record<string, string>[] {
  return parseCsvRecords(readFileSync(join(SHARED, file), 'utf8'), []).records;
}

test('every shared build is in the in-repo table with the same edition, name and date', { skip }, () => {
  assert.ok(present, `missing ${SHARED} (CI=true)`);
  const kb = loadExchangeKb();
  const mine = new Map(kb.builds.map((b) => [b.build, b]));
  const shared = read('exchange-builds.csv');
  assert.ok(shared.length >= 392);
  for (const s of shared) {
    const build = normaliseBuild(s.build_short ?? '');
    assert.ok(build !== null, `shared build ${s.build_short}`);
    const m = mine.get(build);
    assert.ok(m !== undefined, `${build} (${s.name}) missing from data/exchange/builds.csv`);
    assert.equal(m.edition, s.product, build);
    assert.equal(m.name, s.name, build);
    assert.ok((s.release_date ?? '').startsWith(m.releaseDate), `${build}: ${s.release_date} vs ${m.releaseDate}`);
    assert.equal(m.uncertain, /UNCERTAIN/.test(s.source_path ?? ''), `${build} uncertain flag`);
  }
});

test('every shared fix row is in the in-repo table with the same build', { skip }, () => {
  assert.ok(present, `missing ${SHARED} (CI=true)`);
  const kb = loadExchangeKb();
  const mine = new Set(kb.fixes.map((f) => `${f.cve}|${f.edition}|${f.fixedBuild ?? ''}`));
  const shared = read('exchange-cve-fixes.csv');
  assert.ok(shared.length >= 900);
  for (const s of shared) {
    const build = s.first_fixed_build === '' ? '' : normaliseBuild(s.first_fixed_build ?? '');
    assert.ok(mine.has(`${s.cve}|${s.product}|${build ?? '?'}`), `${s.cve} ${s.product} ${s.cu} ${s.first_fixed_build} missing from data/exchange/cve-fixes.csv`);
  }
  const ids = new Set(shared.map((s) => s.cve));
  for (const id of ids) assert.ok(kb.cves.some((c) => c.id === id), `${id} missing from cves.csv`);
});
