/**
 * The patch curve's pure parts (issue 9 §4): daily series from per-day changes, nearest-rank quantiles, Kaplan-Meier
 * survival with censoring, the CSV (formula-safe), and the chart: the SVG parses as XML with hostile labels escaped
 * and no script element, and the PNG starts with the PNG signature.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderSvg, svgToPng } from '../src/platform/charts/index.js';
import { renderStats } from '../src/cli/stats.js';
import { chartOf, type StatsReport } from '../src/services/stats.js';
import {
  dailySeries, parseDay, survivalAt, survivalCurve, survivalMedian, timeToPatch, weightedQuantile, type DurationCount,
} from '../src/stats/index.js';

const D = 1440;

test('stats: daily series are running totals on known days; changes before --from make the first level, after --to are ignored', () => {
  const pts = dailySeries([
    { group: 'all', day: '2026-01-01', series: 'exposed', delta: 3 },
    { group: 'all', day: '2026-01-03', series: 'exposed', delta: 2 },
    { group: 'all', day: '2026-01-04', series: 'exposed', delta: -1 },
    { group: 'all', day: '2026-01-04', series: 'patched', delta: 1 },
    { group: 'all', day: '2026-01-09', series: 'exposed', delta: -4 },
  ], '2026-01-02', '2026-01-05');
  assert.deepEqual(pts.map((p) => [p.day, p.exposed, p.patched]), [
    ['2026-01-02', 3, 0], ['2026-01-03', 5, 0], ['2026-01-04', 4, 1], ['2026-01-05', 4, 1],
  ]);
  assert.equal(pts[0]!.notified, 0);
  // Two groups: each gets every day, in name order.
  const g = dailySeries([{ group: 'b', day: '2026-01-02', series: 'notified', delta: 1 }, { group: 'a', day: '2026-01-01', series: 'compromised', delta: 1 }], '2026-01-01', '2026-01-02');
  assert.deepEqual(g.map((p) => `${p.group} ${p.day} ${p.notified} ${p.compromised}`), ['a 2026-01-01 0 1', 'a 2026-01-02 0 1', 'b 2026-01-01 0 0', 'b 2026-01-02 1 0']);
  assert.equal(parseDay('2026-02-30'), null);
  assert.equal(parseDay('2026-02-28'), '2026-02-28');
});

test('stats: median and p90 by nearest rank on a hand-computed set', () => {
  // 10 patched findings: 1,2,2,3,5,8,8,8,13,21 days. Median: rank ceil(5) = 5th = 5 days; p90: rank 9 = 13 days.
  const days = [1, 2, 2, 3, 5, 8, 8, 8, 13, 21];
  const counts: DurationCount[] = [...new Set(days)].map((d) => ({ group: 'all', minutes: d * D, patched: days.filter((x) => x === d).length, censored: 0 }));
  const [t] = timeToPatch('detection', counts);
  assert.equal(t!.patched, 10);
  assert.equal(t!.medianDays, 5);
  assert.equal(t!.p90Days, 13);
  // Three values: median is the 2nd, p90 the 3rd.
  assert.equal(weightedQuantile([{ value: 10, count: 1 }, { value: 4, count: 1 }, { value: 8, count: 1 }], 0.5), 8);
  assert.equal(weightedQuantile([{ value: 10, count: 1 }, { value: 4, count: 1 }, { value: 8, count: 1 }], 0.9), 10);
  assert.equal(weightedQuantile([], 0.5), null);
});

test('stats: Kaplan-Meier survival with censoring (open findings are not patched, and not dropped)', () => {
  // 5 findings: patched at 4, 8, 10 days; censored at 6 (service gone) and 10.58 (still open).
  const counts: DurationCount[] = [
    { group: 'x', minutes: 4 * D, patched: 1, censored: 0 },
    { group: 'x', minutes: 6 * D, patched: 0, censored: 1 },
    { group: 'x', minutes: 8 * D, patched: 1, censored: 0 },
    { group: 'x', minutes: 10 * D, patched: 1, censored: 0 },
    { group: 'x', minutes: 10 * D + 840, patched: 0, censored: 1 },
  ];
  const c = survivalCurve('x', counts);
  assert.equal(c.findings, 5);
  // S(4) = 4/5; at 6 one leaves uncounted; S(8) = 0.8 * 2/3; S(10) = S(8) * 1/2.
  assert.deepEqual(c.points.map((p) => [p.days, p.survival, p.atRisk]), [[0, 1, 5], [4, 0.8, 5], [6, 0.8, 4], [8, 0.533333, 3], [10, 0.266667, 2], [10.58, 0.266667, 1]]);
  assert.equal(survivalMedian(c), 10);
  assert.equal(survivalAt(c, 7), 0.8);
  assert.equal(survivalAt(c, 3), 1);
  // Ignoring censoring would say 3 of 3 patched by day 10 (median 8); the estimate keeps the open ones in.
  const [t] = timeToPatch('detection', counts);
  assert.equal(t!.medianDays, 8);
  assert.equal(t!.survivalMedianDays, 10);
  assert.equal(t!.censored, 2);
  // Nothing patched: no median at all (not zero).
  assert.equal(survivalMedian(survivalCurve('y', [{ group: 'y', minutes: D, patched: 0, censored: 3 }])), null);
});

const HOSTILE = '=HYPERLINK("http://x") <script>alert(1)</script> & energy\u202e\u0007';

function report(): StatsReport {
  const day = (d: string, exposed: number, group: string) => ({ group, day: d, exposed, notified: 1, acknowledged: 0, patched: 2, compromised: 0 });
  return {
    from: '2026-01-05', to: '2026-01-06', end: '2026-01-07T00:00:00.000Z', by: 'sector',
    series: [day('2026-01-05', 3, HOSTILE), day('2026-01-06', 2, HOSTILE), day('2026-01-05', 1, 'water'), day('2026-01-06', 1, 'water')],
    timeToPatch: [{ group: HOSTILE, basis: 'detection', patched: 2, censored: 1, medianDays: 4, p90Days: 10, survivalMedianDays: 10 }],
    survival: [survivalCurve(HOSTILE, [{ group: HOSTILE, minutes: 4 * D, patched: 1, censored: 0 }, { group: HOSTILE, minutes: 6 * D, patched: 0, censored: 1 }])],
    campaign: {
      id: 7, name: 'ProxyLogon <b>wave</b> & co', state: 'approved', createdAt: '2026-01-05T00:00:00.000Z', findings: 3, messagesSent: 1,
      points: [{ day: '2026-01-05', open: 3, patched: 0, notified: 3, acknowledged: 0 }, { day: '2026-01-06', open: 1, patched: 2, notified: 3, acknowledged: 1 }],
    },
  };
}

test('stats: CSV is the daily series with formula-safe group cells; the table sanitises', () => {
  const csv = renderStats(report(), 'csv');
  const lines = csv.split('\r\n');
  assert.equal(lines[0], 'group,day,exposed,notified,acknowledged,patched,compromised');
  assert.ok(lines[1]!.startsWith('"\'=HYPERLINK('), lines[1]);
  assert.ok(lines.slice(1).every((l) => l === '' || !/^"?[=+\-@]/.test(l)), csv);
  const table = renderStats(report(), 'table');
  assert.ok(!table.includes('\u202e') && !table.includes('\u0007'), 'no bidi override or bell in the table');
  assert.match(table, /Burn-down/);
  const json = JSON.parse(renderStats(report(), 'json')) as StatsReport;
  assert.equal(json.series[0]!.group, HOSTILE, 'JSON keeps the value (escaped by JSON itself)');
});

/**
 * A strict XML well-formedness check (enough for SVG): tags nest and close, attribute values are quoted, text and
 * attributes hold no raw `<` and no `&` that is not an entity, no control characters. Returns the element names
 * and the decoded text.
 */
function parseXml(xml: string): { elements: string[]; text: string } {
  const elements: string[] = [];
  const stack: string[] = [];
  let text = '';
  const entity = /&(?:lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
  const checkChars = (s: string, where: string): void => {
    assert.ok(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s), `control character in ${where}`);
    assert.equal(s.replace(entity, '').includes('&'), false, `bare & in ${where}: ${s.slice(0, 80)}`);
  };
  const decode = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d))).replace(/&amp;/g, '&');
  let i = 0;
  if (xml.startsWith('<?xml')) i = xml.indexOf('?>') + 2;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const chunk = lt === -1 ? xml.slice(i) : xml.slice(i, lt);
    checkChars(chunk, 'text');
    text += decode(chunk);
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) { i = xml.indexOf('-->', lt) + 3; continue; }
    const gt = xml.indexOf('>', lt);
    assert.ok(gt > lt, 'unclosed tag');
    const tag = xml.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      assert.equal(stack.pop(), name, `mismatched </${name}>`);
    } else {
      const self = tag.endsWith('/');
      const body = self ? tag.slice(0, -1) : tag;
      const m = /^([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"<]*")*)\s*$/.exec(body);
      assert.ok(m !== null, `malformed tag <${tag.slice(0, 120)}>`);
      checkChars(m[2]!, 'attribute');
      for (const a of m[2]!.matchAll(/="([^"]*)"/g)) text += ` ${decode(a[1]!)} `;
      elements.push(m[1]!);
      if (!self) stack.push(m[1]!);
    }
    i = gt + 1;
  }
  assert.deepEqual(stack, [], 'every element is closed');
  return { elements, text };
}

test('stats: the SVG chart parses as XML, hostile labels escaped, no script element; the PNG has the PNG signature', async () => {
  const svg = await renderSvg(chartOf(report()));
  const { elements, text } = parseXml(svg);
  assert.equal(elements[0], 'svg');
  assert.ok(!elements.some((e) => e.toLowerCase() === 'script'), 'no script element');
  assert.ok(svg.includes('&lt;script&gt;alert(1)&lt;/script&gt; &amp; energy'), 'the label is there, escaped');
  assert.ok(text.includes('<script>alert(1)</script> & energy'), 'and reads back as written');
  assert.ok(text.includes('ProxyLogon <b>wave</b> & co'), 'the campaign name too');
  assert.ok(!svg.includes('\u202e') && !svg.includes('\u0007'));
  assert.ok(elements.filter((e) => e === 'path').length >= 3, 'lines are drawn');
  const png = svgToPng(svg);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(png.length > 1000);
});
