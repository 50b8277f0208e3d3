import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import { TocsinError } from '../core/errors.js';
import type { CliContext } from './context.js';
import { register } from './kb.js';

/** Runs `tocsin kb ...` in-process and returns what it printed on stdout. */
async function run(...args: string[]): Promise<string> {
  let out = '';
  const sink = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  const ctx: CliContext = {
    config: () => {
      throw new Error('kb must not need the configuration');
    },
    stdout: sink,
    stderr: sink,
  };
  const program = new Command('tocsin').exitOverride();
  register(program, ctx);
  await program.parseAsync(['kb', ...args], { from: 'user' });
  return out;
}

test('tocsin kb BUILD prints edition, CU, SU, date and grouped verdicts', async () => {
  const out = await run('15.1.2176.9');
  assert.match(out, /edition\s+Exchange Server 2016/);
  assert.match(out, /CU\s+CU19/);
  assert.match(out, /SU\s+Mar21SU/);
  assert.match(out, /released\s+2021-03-02/);
  const vuln = out.indexOf('VULNERABLE (');
  const ind = out.indexOf('INDETERMINATE (');
  const nv = out.indexOf('NOT-VULNERABLE (');
  assert.ok(vuln >= 0 && ind > vuln && nv > ind, 'groups in order');
  // ProxyLogon fixed, ProxyShell not yet (Apr21SU)
  assert.ok(out.indexOf('CVE-2021-26855') > nv);
  assert.ok(out.indexOf('CVE-2021-34473') > vuln && out.indexOf('CVE-2021-34473') < ind);
  assert.match(out, /CVE-2021-26855 +\[ProxyLogon, Critical\] at or above the fixing build 15\.1\.2176\.9/);
});

test('tocsin kb --json and --precision cu', async () => {
  const a = JSON.parse(await run('15.01.2176.009', '--json')) as { input: string; cu: string; vulnerable: string[] };
  assert.equal(a.input, '15.1.2176.9');
  assert.equal(a.cu, 'CU19');
  assert.ok(a.vulnerable.includes('CVE-2021-34473'));
  const c = JSON.parse(await run('15.1.2176', '--precision', 'cu', '--json')) as { precision: string; indeterminate: string[]; su: null };
  assert.equal(c.precision, 'cu');
  assert.equal(c.su, null);
  assert.ok(c.indeterminate.includes('CVE-2021-26855'));
});

test('tocsin kb --verify prints counts', async () => {
  const out = await run('--verify');
  assert.match(out, /knowledge base OK/);
  assert.match(out, /builds\s+\d{3}/);
  assert.match(out, /CVEs\s+\d{3}/);
  const j = JSON.parse(await run('--verify', '--json')) as { valid: boolean; builds: number; cves: number; configDependent: string[] };
  assert.equal(j.valid, true);
  assert.ok(j.builds >= 392 && j.cves >= 149);
  assert.ok(j.configDependent.includes('CVE-2024-21410'));
});

test('tocsin kb refuses garbage with typed errors', async () => {
  await assert.rejects(run('15.1.x'), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_KB_UNKNOWN_BUILD');
  await assert.rejects(run('15.1.2176.9', '--precision', 'rough'), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID');
  await assert.rejects(run(), (e: unknown) => e instanceof TocsinError && e.code === 'TOCSIN_ARG_INVALID');
});

test('tocsin kb --groups lists the CVE groups from the data, headline first', async () => {
  const out = await run('--groups');
  const lines = out.split('\n').filter((l) => /^\S+\s+(headline)?\s+CVE-/.test(l));
  assert.deepEqual(lines.map((l) => l.split(/\s+/)[0]), ['ProxyLogon', 'ProxyShell', 'ProxyNotShell', 'CVE-2023-21529', 'CVE-2024-21410', 'OWASSRF', 'ProxyToken', 'ProxyOracle']);
  assert.match(out, /^ProxyLogon +headline +CVE-2021-26855 CVE-2021-26857 CVE-2021-26858 CVE-2021-27065$/m);
  assert.match(out, /^ProxyToken +CVE-2021-33766$/m);
  const j = JSON.parse(await run('--groups', '--json')) as Array<{ name: string; headline: boolean; cves: string[]; source: string }>;
  assert.deepEqual(j.filter((g) => g.headline).map((g) => g.name), ['ProxyLogon', 'ProxyShell', 'ProxyNotShell', 'CVE-2023-21529', 'CVE-2024-21410']);
  assert.ok(j.every((g) => g.source !== ''));
  assert.match(await run('--verify'), /groups +8 \(headline: ProxyLogon, ProxyShell, ProxyNotShell, CVE-2023-21529, CVE-2024-21410\)/);
});
