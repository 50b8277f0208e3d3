/**
 * The constituency registry on both database backends: import idempotence (the same files twice change nothing
 * and write no audit row), manual beats imported (a manual network survives a re-import, a manual edit of an
 * imported organisation is kept, an organisation with manual entries outlives its source), nested networks,
 * the GiST containment index, and an export that reads back as the same registry.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createConstituencyStore, type ConstituencyStore } from '../src/platform/db/constituency-store.js';
import { addOrg, editOrg, exportJson, importConstituency, manualEntry, type ImportReport } from '../src/services/constituency.js';
import { testEachBackend } from './helpers/db.js';

const DIR = join(import.meta.dirname, 'fixtures', 'constituency');
const file = (name: string, text?: string): { name: string; bytes: Uint8Array } => ({
  name,
  bytes: text === undefined ? readFileSync(join(DIR, name)) : new TextEncoder().encode(text),
});
const RPSL = ['ripe.db.organisation', 'ripe.db.inetnum', 'ripe.db.inet6num', 'ripe.db.aut-num', 'ripe.db.role'];

async function importFiles(store: ConstituencyStore, files: ReturnType<typeof file>[], source?: string): Promise<ImportReport> {
  return importConstituency(store, { files, format: 'auto', who: 'tester', ...(source === undefined ? {} : { source }) });
}

testEachBackend('constituency: importing the same files twice changes nothing and audits nothing', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  const inputs = [file('orgs.csv'), file('orgs.json'), ...RPSL.map((f) => file(f))];
  const first = await importFiles(store, inputs);
  assert.equal(first.files.find((f) => f.file === 'orgs.csv')?.imported, 6);
  const audits = await store.auditCount();
  assert.ok(audits > 30, `audit rows after the first import: ${audits}`);
  const before = exportJson(await store.exportAll());
  const second = await importFiles(store, inputs);
  assert.equal(await store.auditCount(), audits, 'no audit row for an unchanged import');
  assert.equal(exportJson(await store.exportAll()), before);
  for (const f of second.files) assert.equal(f.imported, 0, `${f.file} imported nothing the second time`);
  assert.equal(second.files.find((f) => f.file === 'orgs.csv')?.unchanged, 6);
  for (const s of second.sources) assert.deepEqual(s.applied, { orgsCreated: 0, orgsUpdated: 0, orgsRemoved: 0, orgsKept: [], entriesAdded: 0, entriesChanged: 0, entriesRemoved: 0 });
  assert.equal((await store.listOrgs()).length, 10);
});

testEachBackend('constituency: manual entries and edits survive re-imports; a re-import replaces only its own source', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  const v1 = 'organisation,sector,networks,contact\nAcme,health,192.0.2.0/24 198.51.100.0/24,cert@acme.example\nGone Ltd,retail,203.0.113.0/24,\nKept Ltd,retail,203.0.113.128/25,\n';
  await importFiles(store, [file('a.csv', v1)], 'feed-a');
  await importFiles(store, [file('b.csv', 'organisation,networks\nAcme,10.9.0.0/16\n')], 'feed-b');
  // A manual network on an imported organisation, a manual edit of it, a manual contact on one that will vanish.
  await store.addEntry('acme', manualEntry('network', { value: '192.0.2.128/25' }, new Date()), 'alice');
  await editOrg(store, 'ACME', { sector: 'hospital' }, 'alice');
  await store.addEntry('Kept Ltd', manualEntry('contact', { role: 'security', email: 'it@kept.example' }, new Date()), 'alice');
  // v2: Acme's sector and second network changed, Gone Ltd and Kept Ltd gone.
  const r = await importFiles(store, [file('a.csv', 'organisation,sector,networks,contact\nAcme,energy,192.0.2.0/24,cert@acme.example\n')], 'feed-a');
  const applied = r.sources[0]?.applied;
  assert.equal(applied?.orgsRemoved, 1);
  assert.deepEqual(applied?.orgsKept, ['Kept Ltd']);
  const acme = await store.getOrg('Acme');
  assert.ok(acme);
  assert.equal(acme.sector, 'hospital', 'the manual edit is kept');
  assert.equal(acme.layer, 'manual');
  assert.deepEqual(acme.networks.map((n) => `${n.network} ${n.layer} ${n.source}`), [
    '10.9.0.0/16 imported feed-b',
    '192.0.2.0/24 imported feed-a',
    '192.0.2.128/25 manual manual',
  ]);
  assert.equal(await store.getOrg('Gone Ltd'), null);
  const kept = await store.getOrg('Kept Ltd');
  assert.deepEqual(kept?.networks, [], 'its imported network went with its source');
  assert.deepEqual(kept?.contacts.map((c) => c.email), ['it@kept.example']);
  // Removing feed-a's rows does not touch feed-b's.
  await importFiles(store, [file('a.csv', 'organisation,networks\n')], 'feed-a');
  assert.deepEqual((await store.getOrg('Acme'))?.networks.map((n) => n.network), ['10.9.0.0/16', '192.0.2.128/25']);
  // Every change has its author.
  const who = new Set((await store.audit({ limit: 1000 })).map((a) => a.who));
  assert.deepEqual([...who].sort(), ['alice', 'tester']);
  const edit = (await store.audit({ org: 'Acme' })).find((a) => a.entity === 'organisation' && a.action === 'update');
  assert.deepEqual([(edit?.before as { sector: string }).sector, (edit?.after as { sector: string }).sector], ['health', 'hospital']);
});

testEachBackend('constituency: nested networks of two organisations, most specific first, through the GiST index', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  await importFiles(store, [file('orgs.csv')], 'isp-list');
  await addOrg(store, 'Override AG', {}, 'alice');
  await store.addEntry('Override AG', manualEntry('network', { value: '192.0.2.64/26' }, new Date()), 'alice');
  const hits = await store.networksContaining('192.0.2.70');
  assert.deepEqual(hits.map((h) => `${h.org} ${h.network} ${h.layer}`), [
    'Override AG 192.0.2.64/26 manual',
    'Customer GmbH 192.0.2.64/26 imported',
    'Example ISP 192.0.2.0/24 imported',
  ]);
  assert.deepEqual((await store.networksContaining('192.0.2.10')).map((h) => h.org), ['Example ISP']);
  assert.deepEqual((await store.networksContaining('2001:db8:100::1')).map((h) => h.org), ['Example ISP']);
  assert.deepEqual(await store.networksContaining('203.0.113.1'), []);
  const plan = await database.db.connection().execute(async (c) => {
    await sql`SET enable_seqscan = off`.execute(c);
    const r = await sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT id FROM constituency_networks WHERE network >>= '192.0.2.70'::inet`.execute(c);
    await sql`RESET enable_seqscan`.execute(c);
    return r.rows.map((x) => x['QUERY PLAN']).join('\n');
  });
  assert.match(plan, /constituency_networks_gist/);
});

testEachBackend('constituency: the JSON export reads back as the same registry (names, parents, networks as given, contacts)', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  await importFiles(store, [file('orgs.csv'), file('orgs.json'), ...RPSL.map((f) => file(f))]);
  await store.addEntry('Json Clinic', manualEntry('opt-out', { condition: 'all', expires: '2099-01-01' }, new Date()), 'alice');
  const exported = exportJson(await store.exportAll());
  await database.db.deleteFrom('organisations').execute();
  const r = await importFiles(store, [file('export.json', exported)], 'restored');
  assert.deepEqual(r.files[0]?.problems, []);
  const again = JSON.parse(exportJson(await store.exportAll())) as { organisations: { name: string; networks: string[]; contacts: unknown[]; parent: string | null }[] };
  const orig = JSON.parse(exported) as typeof again;
  const strip = (d: typeof again): unknown => d.organisations.map((o) => ({ name: o.name, networks: o.networks, contacts: o.contacts, parent: o.parent }));
  assert.deepEqual(strip(again), strip(orig));
});

testEachBackend('constituency: a refused file leaves its source unchanged; duplicate and unknown names are coded errors', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  await importFiles(store, [file('a.csv', 'organisation,networks\nAcme,192.0.2.0/24\n')], 'feed');
  const r = await importFiles(store, [file('a.csv', 'organisation,networks\n'), { name: 'b.xlsx', bytes: Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0]) }], 'feed');
  assert.equal(r.sources[0]?.applied, null);
  assert.match(r.files.find((f) => f.file === 'b.xlsx')?.rejected?.error ?? '', /zip/);
  assert.match(r.files.find((f) => f.file === 'a.csv')?.rejected?.error ?? '', /another file of source "feed" was refused/);
  assert.deepEqual((await store.getOrg('acme'))?.networks.map((n) => n.network), ['192.0.2.0/24']);
  await assert.rejects(addOrg(store, 'ACME', {}, 'x'), { code: 'TOCSIN_ORG_EXISTS' });
  await assert.rejects(store.removeEntry('nobody', manualEntry('asn', { value: 'AS1' }, new Date()), 'x'), { code: 'TOCSIN_ORG_NOT_FOUND' });
  await assert.rejects(store.removeEntry('Acme', manualEntry('asn', { value: 'AS1' }, new Date()), 'x'), { code: 'TOCSIN_ORG_ENTRY_NOT_FOUND' });
  await addOrg(store, 'Child', { parent: 'Acme' }, 'x');
  await assert.rejects(editOrg(store, 'Acme', { parent: 'Child' }, 'x'), /loop/);
  assert.equal((await editOrg(store, 'Child', { parent: 'acme' }, 'x')).changed, false, 'a no-op edit changes nothing');
  const n = await store.auditCount();
  assert.equal(await store.addEntry('Acme', manualEntry('domain', { value: 'acme.example' }, new Date()), 'x'), true);
  assert.equal(await store.addEntry('Acme', manualEntry('domain', { value: 'ACME.example.' }, new Date()), 'x'), false);
  assert.equal(await store.auditCount(), n + 1);
});

testEachBackend('constituency: a changed value is one update; a parent loop in a file is not stored; removing an organisation audits each entry', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  const v1 = 'organisation,parent,contact,language\nA,B,cert@a.example,de\nB,A,cert@b.example,\nC,A,,\n';
  const r0 = await importFiles(store, [file('l.csv', v1)], 'loop');
  assert.deepEqual(r0.files[0]?.problems.map((p) => [p.line, p.error]), [[3, 'parent "A" of "B" would make a loop: no parent set']]);
  const parents = new Map((await store.listOrgs()).map((o) => [o.name, o.parent]));
  assert.equal(parents.get('C'), 'A');
  assert.ok(parents.get('A') === null || parents.get('B') === null, `no loop: A -> ${parents.get('A')}, B -> ${parents.get('B')}`);
  const n = await store.auditCount();
  const r = await importFiles(store, [file('l.csv', v1.replace('cert@a.example,de', 'cert@a.example,fr'))], 'loop');
  assert.equal(r.sources[0]?.applied?.entriesChanged, 1);
  assert.equal(r.files[0]?.imported, 1);
  assert.equal(await store.auditCount(), n + 1);
  const change = (await store.audit({ limit: 1 }))[0];
  assert.deepEqual([change?.action, (change?.before as { language: string }).language, (change?.after as { language: string }).language], ['update', 'de', 'fr']);
  const removed = await store.removeOrg('a', 'alice');
  assert.equal(removed.contacts.length, 1);
  const last = await store.audit({ limit: 2 });
  assert.deepEqual(last.map((a) => `${a.action} ${a.entity} ${a.who}`).sort(), ['delete contact alice', 'delete organisation alice']);
  assert.equal((await store.getOrg('C'))?.parent, null, 'the child lost its removed parent');
});
