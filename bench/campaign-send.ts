/**
 * Benchmark: campaign sending through the durable outbox vs a bare nodemailer loop (issue 9 §6: >= 100 messages/s).
 *
 *   npx tsx bench/campaign-send.ts [--messages 2000] [--concurrency 8] [--repeat 1] [--database-url URL] [--smtp-url URL] [--keep-mail]
 *
 * Both rounds send the SAME rendered messages (one per synthetic organisation, each to its own address under a
 * fresh `*.test` domain) to the local postfix of scripts/ci-postfix.sh (TOCSIN_TEST_SMTP_URL, STARTTLS):
 *   (a) bare: nodemailer's pooled transport with `--concurrency` connections and as many sends in flight; no
 *       database, no rendering (the messages were rendered before the clock starts);
 *   (b) outbox: a campaign written straight into the tables (insertCampaign: synthetic organisations and frozen
 *       exposures; the selection of `campaign create` is not what is measured), approved, then `sendCampaign` with
 *       the SMTP adapter: render, batched `sending` claims, SMTP, group-committed outcomes, all under the send lock.
 * Prints msgs/s of both, the ratio, and CPU (user+sys) per message of this process and of the campaign's
 * PostgreSQL backends (/proc of the server's pids: readable when the server runs on this machine). Postfix's own
 * work (queue, delivery into the Maildir) runs on the same 2 cores during both rounds and is not counted; the
 * bench waits for postfix to deliver round (a) before starting (b), then deletes the delivered bench mail
 * (unless --keep-mail) so the shared test Maildir does not grow.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { formatTicket, makeMessageId, type CampaignExposure, type RecipientStep } from '../src/campaigns/index.js';
import { parseSmtpUrl } from '../src/core/smtp-url.js';
import { insertCampaign, setCampaignState } from '../src/platform/db/campaign-store.js';
import { openDatabase, type Database } from '../src/platform/db/connect.js';
import type { Json } from '../src/platform/db/schema.js';
import { createSmtpSender } from '../src/platform/mail/index.js';
import { previewCampaign, sendCampaign, type RenderContext } from '../src/services/campaigns.js';
import { procCpuMs } from './lib/proc.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const MESSAGES = Number(arg('--messages', '2000'));
const CONCURRENCY = Number(arg('--concurrency', '8'));
const ADMIN = arg('--database-url', process.env.TOCSIN_TEST_PG_URL ?? '');
const SMTP_URL = arg('--smtp-url', process.env.TOCSIN_TEST_SMTP_URL ?? 'smtp://127.0.0.1:2525?tlsCa=/etc/postfix/tocsin-test/cert.pem');
const MAILDIR = process.env.TOCSIN_TEST_MAILDIR_ROOT ?? '/var/mail/tocsin-test';
const KEEP_MAIL = process.argv.includes('--keep-mail');
const REPEAT = Number(arg('--repeat', '1'));
const CTX: RenderContext = { fromAddress: 'cert@cert.test', contactUrl: 'https://cert.test/scanning', ackSecret: randomBytes(32), ackUrlBase: 'https://cert.test/ack/' };

/** CPU of the database's backends so far, by pid (backends started later count from zero). */
async function backendsCpu(database: Database, dbName: string): Promise<Map<number, number | null>> {
  const rows = (await sql<{ pid: number }>`SELECT pid FROM pg_stat_activity WHERE datname = ${dbName}`.execute(database.db)).rows;
  return new Map(rows.map((r) => [r.pid, procCpuMs(r.pid)]));
}

function backendsDelta(before: Map<number, number | null>, after: Map<number, number | null>): number | null {
  let sum = 0;
  for (const [pid, ms] of after) {
    if (ms === null) return null;
    sum += ms - (before.get(pid) ?? 0);
  }
  return sum;
}

function exposuresOf(i: number): CampaignExposure[] {
  return Array.from({ length: 1 + (i % 3) }, (_, h) => ({
    ip: `10.${(i >> 8) & 255}.${i & 255}.${10 + h}`, port: 443, hostname: `owa${h}.org${i}.example`, build: '15.1.2176.2', source: 'scan' as const,
    cves: [{ cve: 'CVE-2021-26855', evidence: 'confirmed-by-build' as const, feed: null }, { cve: 'CVE-2021-27065', evidence: 'confirmed-by-build' as const, feed: null }],
    compromised: false, seenAt: '2026-03-02T10:00:00.000Z', banner: null,
  }));
}

async function readHead(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(2048);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead).toString('latin1');
  } finally {
    await fh.close();
  }
}

/** Paths of the Maildir files delivered to addresses of these domains. */
async function delivered(domains: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = join(MAILDIR, 'all', sub);
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      const head = await readHead(path).catch(() => '');
      const to = /^Delivered-To:\s*\S+@(\S+)\s*$/im.exec(head)?.[1]?.toLowerCase();
      if (to !== undefined && domains.includes(to)) out.push(path);
    }
  }
  return out;
}

async function waitDelivered(domains: readonly string[], n: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let got = 0;
  for (;;) {
    got = (await delivered(domains)).length;
    if (got >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Removes the bench's delivered mail from the shared test Maildir (unless --keep-mail). */
async function deleteDelivered(domains: readonly string[]): Promise<void> {
  if (KEEP_MAIL) return;
  const files = await delivered(domains);
  for (const f of files) await unlink(f).catch(() => undefined);
  console.log(`    deleted ${files.length} delivered bench message(s) from ${MAILDIR}`);
}

function report(label: string, n: number, ms: number, cpu: NodeJS.CpuUsage, dbMs: number | null): number {
  const rate = n / (ms / 1000);
  const perMsg = (x: number): string => `${(x / n).toFixed(2)} ms`;
  console.log(`${label}: ${n} messages in ${(ms / 1000).toFixed(2)} s = ${rate.toFixed(1)} msg/s; CPU per message: node ${perMsg((cpu.user + cpu.system) / 1000)}` +
    `${dbMs === null ? '' : `, PostgreSQL backends ${perMsg(dbMs)}`}`);
  return rate;
}

async function main(): Promise<void> {
  if (ADMIN === '') throw new Error('--database-url or TOCSIN_TEST_PG_URL: the bench makes (and drops) a fresh database on that server');
  const dbName = `tocsin_bench_campaign_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const u = new URL(ADMIN);
  u.pathname = `/${dbName}`;
  const database = await openDatabase({ home: '/tmp/tocsin-bench-campaign', databaseUrl: u.toString() }, { maxConnections: 6 });
  const stamp = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const bareDomain = `bare-${stamp}.test`;
  const outboxDomain = `outbox-${stamp}.test`;
  try {
    console.log(`campaign send bench: ${MESSAGES} messages, concurrency ${CONCURRENCY}, relay ${SMTP_URL.replace(/\?.*$/, '')}; ` +
      `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    const ratios: number[] = [];
    for (let round = 1; round <= REPEAT; round++) {
      if (REPEAT > 1) console.log(`round ${round} of ${REPEAT}`);
      // The campaign: one message per synthetic organisation, to r<i>@<outbox domain>.
      const messages = Array.from({ length: MESSAGES }, (_, k) => ({
        orgId: k + 1, orgName: `Bench Org ${k + 1}`, language: 'en', state: 'queued' as const, reason: null,
        exposures: exposuresOf(k + 1) as unknown as Json,
        chain: [{ source: 'security', emails: [`r${k + 1}@${outboxDomain}`] }] satisfies RecipientStep[] as unknown as Json,
      }));
      const selection = { cves: ['CVE-2021-26855', 'CVE-2021-27065'], group: 'ProxyLogon', compromisedOnly: false, source: 'any', sector: null, orgs: [] };
      const id = await insertCampaign(database.db, { name: 'bench', selection: selection as unknown as Json, template: 'warning', languageDefault: 'en', unattributed: 0, createdBy: 'bench' },
        messages, (n, at) => formatTicket(at, n), (ticket) => makeMessageId(ticket, randomBytes(6).toString('hex'), 'cert@cert.test'));
      await setCampaignState(database.db, id, 'approved', 'bench');

      // (a) the same messages, rendered beforehand, through a bare nodemailer pool to r<i>@<bare domain>.
      const rendered = (await previewCampaign(database.db, id, CTX)).map((p) => p.message!);
      const bytes = rendered.reduce((s, m) => s + m.text.length + m.html.length + m.attachments.reduce((a, x) => a + x.content.length, 0), 0);
      console.log(`message size: ~${Math.round(bytes / rendered.length)} characters of text, HTML and CSV before MIME encoding`);
      const { relay } = parseSmtpUrl(SMTP_URL);
      if (relay === null) throw new Error(`bad --smtp-url ${SMTP_URL}`);
      const transport = nodemailer.createTransport({
        pool: true, maxConnections: CONCURRENCY, maxMessages: 100, host: relay.host, port: relay.port, secure: relay.secure,
        tls: { ...(relay.tlsCaFile === null ? {} : { ca: [readFileSync(relay.tlsCaFile)] }), rejectUnauthorized: relay.tlsRejectUnauthorized },
      });
      let next = 0;
      let failed = 0;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < rendered.length; i = next++) {
          const m = rendered[i]!;
          try {
            await transport.sendMail({
              from: 'CERT <cert@cert.test>', to: `r${i + 1}@${bareDomain}`, subject: m.subject, text: m.text, html: m.html, messageId: m.messageId,
              headers: m.headers, attachments: m.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
            });
          } catch {
            failed++;
          }
        }
      }));
      const bareRate = report('(a) bare nodemailer pool', rendered.length - failed, performance.now() - t0, process.cpuUsage(c0), null);
      transport.close();
      if (failed > 0) console.log(`    ${failed} failed`);
      // Postfix delivers after its 250: let round (a)'s deliveries finish so they do not slow round (b).
      console.log(`    postfix delivered ${await waitDelivered([bareDomain], rendered.length - failed, 120_000)} of round (a) before round (b)`);

      // (b) the durable outbox.
      const sender = createSmtpSender({ url: SMTP_URL, from: 'CERT <cert@cert.test>', maxConnections: CONCURRENCY });
      // Warm the pool's connections so their backends exist (and are counted) from the start.
      await Promise.all(Array.from({ length: 6 }, () => sql`SELECT pg_sleep(0.05)`.execute(database.db)));
      const b0 = await backendsCpu(database, dbName);
      const c1 = process.cpuUsage();
      const t1 = performance.now();
      let s;
      try {
        s = await sendCampaign(database.db, id, sender, { ...CTX, concurrency: CONCURRENCY });
      } finally {
        await sender.close();
      }
      const ms = performance.now() - t1;
      const cpu = process.cpuUsage(c1);
      const dbMs = backendsDelta(b0, await backendsCpu(database, dbName));
      const outboxRate = report('(b) campaign outbox', s.sent, ms, cpu, dbMs);
      console.log(`    ${JSON.stringify({ considered: s.considered, sent: s.sent, deferred: s.deferred, bounced: s.bounced, uncertain: s.uncertain })}`);
      console.log(`ratio outbox / bare: ${(outboxRate / bareRate).toFixed(2)}`);
      console.log(`    postfix delivered ${await waitDelivered([outboxDomain], s.sent, 120_000)} of round (b)`);
      ratios.push(outboxRate / bareRate);
      await deleteDelivered([bareDomain, outboxDomain]);
    }
    if (REPEAT > 1) console.log(`ratios: ${ratios.map((r) => r.toFixed(2)).join(', ')}; median ${[...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)]!.toFixed(2)}`);
  } finally {
    await database.close();
    const c = new pg.Client({ connectionString: ADMIN });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await c.end();
    await deleteDelivered([bareDomain, outboxDomain]);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
