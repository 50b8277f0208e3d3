/**
 * `tocsin whois` over the stored registry on both database backends: a constituency imported from CSV (an ISP
 * /24 with a customer /26 inside, an ASN-only and a domain-only organisation) plus a manual network, read into the
 * engine's snapshot and explained: organisation, rule, matched record, contacts, losing candidates.
 */
import assert from 'node:assert/strict';
import { createConstituencyStore } from '../src/platform/db/constituency-store.js';
import { importConstituency, manualEntry } from '../src/services/constituency.js';
import { snapshotOf, whois } from '../src/services/attribute.js';
import { renderWhois } from '../src/cli/whois.js';
import { testEachBackend } from './helpers/db.js';

const CSV = [
  'organisation,sector,networks,asns,domains,contact',
  'Example ISP,telecom,192.0.2.0/24,,isp.example,',
  'Customer Ltd,health,192.0.2.64/26,,,cert@customer.example',
  'ASN Only AG,energy,,AS64500,,',
  'Domain Only GmbH,retail,,,example.org,',
].join('\n');

testEachBackend('whois: the stored registry explains nested networks, ASN-only, domain-only and manual entries', async ({ database }) => {
  const store = createConstituencyStore(database.db);
  await importConstituency(store, { files: [{ name: 'orgs.csv', bytes: new TextEncoder().encode(`${CSV}\n`) }], format: 'auto', who: 'tester' });
  const snapshot = snapshotOf(await store.exportAll());
  assert.equal(snapshot.organisations.length, 4);
  assert.deepEqual(snapshot.networks.map((n) => n.network).sort(), ['192.0.2.0/24', '192.0.2.64/26']);

  const customer = await whois(store, { ip: '192.0.2.100' });
  assert.deepEqual(customer.problems, []);
  assert.equal(customer.attribution.orgName, 'Customer Ltd');
  assert.equal(customer.attribution.rule, 'network');
  assert.equal(customer.attribution.confidence, 0.9);
  assert.deepEqual(customer.attribution.candidates.map((c) => [c.orgName, c.lost]), [['Example ISP', 'less-specific']]);
  assert.deepEqual(customer.attribution.contacts.map((c) => c.email), ['cert@customer.example']);
  const text = renderWhois(customer);
  assert.match(text, /^organisation Customer Ltd \(id \d+\)$/m);
  assert.match(text, /^rule {9}network, confidence 0\.90$/m);
  assert.match(text, /^matched {6}network 192\.0\.2\.64\/26 \(imported\)/m);
  assert.match(text, /Example ISP by network 192\.0\.2\.0\/24 \(imported\), confidence 0\.95: lost \(less-specific\)/);

  const isp = await whois(store, { ip: '::ffff:192.0.2.1' });
  assert.equal(isp.attribution.ip, '192.0.2.1');
  assert.equal(isp.attribution.orgName, 'Example ISP');

  const asnOnly = await whois(store, { ip: '198.51.100.7', asn: 64500 });
  assert.equal(asnOnly.attribution.orgName, 'ASN Only AG');
  assert.equal(asnOnly.attribution.rule, 'asn');

  const domainOnly = await whois(store, { ip: '2001:db8::25', certificate: { sans: ['*.mail.example.org'] }, ptr: ['x.isp.example'] });
  assert.equal(domainOnly.attribution.orgName, 'Domain Only GmbH');
  assert.equal(domainOnly.attribution.rule, 'domain');
  assert.deepEqual(domainOnly.attribution.candidates.map((c) => [c.orgName, c.lost]), [['Example ISP', 'weaker-source']]);
  assert.match(renderWhois(domainOnly), /matched {6}domain example\.org \(cert-san mail\.example\.org\)/);

  const none = await whois(store, { ip: '203.0.113.9', feedHostname: 'evil-example.org' });
  assert.equal(none.attribution.orgId, null);
  assert.match(renderWhois(none), /organisation none \(unattributed/);

  // A manual network for the ISP at the customer's /26 (same range, manual layer) wins over the imported one.
  await store.addEntry('Example ISP', manualEntry('network', { value: '192.0.2.64/26' }, new Date()), 'alice');
  const manual = await whois(store, { ip: '192.0.2.100' });
  assert.equal(manual.attribution.orgName, 'Example ISP');
  assert.equal(manual.attribution.tie, false);
  assert.deepEqual(manual.attribution.candidates.map((c) => [c.orgName, c.lost]), [
    ['Customer Ltd', 'imported-layer'],
    ['Example ISP', 'same-organisation'],
  ]);
  assert.equal((manual.attribution.evidence as { layer: string }).layer, 'manual');
});
