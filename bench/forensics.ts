/**
 * Benchmark: `tocsin forensics` (the self-contained bundle, run with plain node) vs a bare Node read
 * of the same bytes searching the key strings with Buffer.indexOf, vs ripgrep, in the same run.
 * The corpus (>= 200 MB of HttpProxy and IIS logs with a few planted attack lines) is generated under
 * a temporary directory and removed afterwards. Nothing is sent anywhere.
 *
 *   npm run bench:forensics [-- --mb 200 --runs 3 --keep --iocs]
 *
 * --iocs also times a run with a generated indicator list (200 IPs, 20 user agents, 30 file names).
 *
 * Prints the median wall time of each contender and the ratios; target: tocsin <= 2x the bare read.
 * Exits 0 either way (a benchmark, not a test), unless the tool misses a planted line.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? def : Number(args[i + 1]);
};
const targetMb = opt('mb', 200);
const runs = opt('runs', 3);
const keep = args.includes('--keep');
const withIocs = args.includes('--iocs');

/** The key strings the bare reader and ripgrep look for: the literal needles of the rules. */
const NEEDLES = [
  'ServerInfo~',
  'autodiscover.json',
  '/powershell',
  'X-Rps-CAT',
  'VirtualDirectory',
  '/owa/auth/',
  '/aspnet_client/',
  '__VIEWSTATE',
  'InboxRules.svc',
  'Download failed and temporary file',
  'MailboxExportRequest',
  'ManagementRoleAssignment',
  'InvalidCastException',
];

const HP_FIELDS =
  'DateTime,RequestId,MajorVersion,MinorVersion,BuildVersion,RevisionVersion,ClientRequestId,Protocol,UrlHost,UrlStem,ProtocolAction,AuthenticationType,IsAuthenticated,AuthenticatedUser,Organization,AnchorMailbox,UserAgent,ClientIpAddress,ServerHostName,HttpStatus,BackEndStatus,ErrorCode,Method,ProxyAction,TargetServer,TargetServerVersion,RoutingType,RoutingHint,BackEndCookie,ServerLocatorHost,ServerLocatorLatency,RequestBytes,ResponseBytes,TargetOutstandingRequests,AuthModulePerfContext,HttpPipelineLatency,CalculateTargetBackEndLatency,GlsLatencyBreakup,TotalGlsLatency,AccountForestLatencyBreakup,TotalAccountForestLatency,ResourceForestLatencyBreakup,TotalResourceForestLatency,ADLatency,SharedCacheLatencyBreakup,TotalSharedCacheLatency,ActivityContextLifeTime,ModuleToHandlerSwitchingLatency,ClientReqStreamLatency,BackendReqInitLatency,BackendReqStreamLatency,BackendProcessingLatency,BackendRespInitLatency,BackendRespStreamLatency,ClientRespStreamLatency,KerberosAuthHeaderLatency,HandlerCompletionLatency,RequestHandlerLatency,HandlerToModuleSwitchingLatency,ProxyTime,CoreLatency,RoutingLatency,HttpProxyOverhead,TotalRequestTime,RouteRefresherLatency,UrlQuery,BackEndGenericInfo,GenericInfo,GenericErrors,EdgeTraceId,DatabaseGuid,UserADObjectGuid,PartitionEndpointLookupLatency,RoutingStatus';

const PROTOS: readonly [string, string, string, string][] = [
  ['Mapi', '/mapi/emsmdb/', 'POST', 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.5134; Pro)'],
  ['Ews', '/EWS/Exchange.asmx', 'POST', 'ExchangeServicesClient/15.01.2176.002'],
  ['Owa', '/owa/service.svc', 'POST', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0 Safari/537.36'],
  ['Eas', '/Microsoft-Server-ActiveSync/default.eas', 'POST', 'Apple-iPhone13C2/1805.228'],
  ['Autodiscover', '/autodiscover/autodiscover.xml', 'POST', 'Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.5134; Pro)'],
  ['Owa', '/owa/auth/logon.aspx', 'GET', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0 Safari/537.36'],
];

function hpLine(n: number, t: string): string {
  const [proto, stem, method, ua] = PROTOS[n % 23 === 0 ? 5 : n % 5]!;
  const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const q = stem === '/owa/service.svc' ? '?action=GetItem&app=Mail&n=' + (n % 97) : '';
  return (
    `${t},${(n * 2654435761 >>> 0).toString(16)}-41f6-4da6-9dbf-dd8a9151ce59,15,1,2176,2,,${proto},mail.example.org,${stem},,Negotiate,true,CORP\\user${n % 2000},,` +
    `Smtp~user${n % 2000}@example.org,"${ua}",${ip},EXCH01,200,200,,${method},Proxy,exch01.corp.example,15.01.2176.002,IntraForest,DatabaseGuid,` +
    `,,,${n % 9000},${n % 31000},,,0,0,,0,,0,,0,0,,0,12,0,1,0,0,11,0,0,0,0,0,13,0,11,1,1,1,13,,${q},,` +
    `BeginRequest=${t};CorrelationID=<empty>;ProxyState-Run=None;FEAuth=BEVersion-1942063431;EndRequest=${t};,,,,,,CafeV1\r\n`
  );
}

function iisLine(n: number, d: string, tm: string): string {
  const [, stem, method, ua] = PROTOS[n % 23 === 0 ? 5 : n % 5]!;
  return `${d} ${tm} 10.0.0.5 ${method} ${stem} - 443 CORP\\user${n % 2000} 10.${(n >> 8) & 255}.${n & 255}.7 ${ua.replace(/ /g, '+')} - 200 0 0 ${n % 300}\r\n`;
}

const PLANTED_HP = [
  (t: string) => `${t},p1,15,1,2176,2,,Ecp,mail.example.org,/ecp/x.js,,,false,,,ServerInfo~a]@EXCH01.corp.example:444/ecp/proxyLogon.ecp?#,python-requests/2.25.1,203.0.113.50,EXCH01,241,241,,POST,Proxy,exch01,15.01.2176.002,IntraForest,X-BEResource-Cookie,,,,0,0,,,0,0,,0,,0,,0,0,,0,12,0,1,0,0,11,0,0,0,0,0,13,0,11,1,1,1,13,,,,,,,,,,CafeV1\r\n`,
  (t: string) => `${t},p2,15,1,2176,2,,Autodiscover,mail.example.org,/autodiscover/autodiscover.json,,,false,,,,python-requests/2.26.0,198.51.100.66,EXCH01,200,200,,POST,Proxy,exch01,15.01.2176.002,IntraForest,,,,,0,0,,,0,0,,0,,0,,0,0,,0,12,0,1,0,0,11,0,0,0,0,0,13,0,11,1,1,1,13,,?@evil.example/powershell/?X-Rps-CAT=VgEAVAdXaW5k&Email=autodiscover/autodiscover.json%3F@evil.example,,,,,,,,CafeV1\r\n`,
];

async function writeFile(path: string, header: string, bytes: number, line: (n: number) => string, plant: (() => string)[]): Promise<number> {
  mkdirSync(dirname(path), { recursive: true });
  const ws = createWriteStream(path);
  ws.write(header);
  let size = header.length;
  let n = 0;
  const every = Math.floor(bytes / 700 / (plant.length + 1));
  let planted = 0;
  while (size < bytes) {
    const parts: string[] = [];
    for (let i = 0; i < 2000; i++, n++) {
      const l = planted < plant.length && n === every * (planted + 1) ? plant[planted++]!() : line(n);
      parts.push(l);
      size += l.length;
    }
    if (!ws.write(parts.join(''))) await new Promise<void>((r) => ws.once('drain', () => r()));
  }
  await new Promise<void>((r) => ws.end(r));
  return planted;
}

async function generate(dir: string): Promise<number> {
  const total = targetMb * 1e6;
  const files = 20;
  let planted = 0;
  for (let f = 0; f < files; f++) {
    const day = String(1 + (f % 28)).padStart(2, '0');
    const t = `2021-03-${day}T10:11:12.345Z`;
    if (f % 5 === 4) {
      const header = `#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n#Date: 2021-03-${day} 00:00:00\r\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken\r\n`;
      planted += await writeFile(join(dir, 'inetpub', 'logs', 'LogFiles', 'W3SVC1', `u_ex2103${day}.log`), header, total / files, (n) => iisLine(n, `2021-03-${day}`, '10:11:12'), [
        () => `2021-03-${day} 10:11:13 10.0.0.5 GET /owa/auth/RedirSuiteServerProxy.aspx - 443 - 198.51.100.7 Mozilla/5.0 - 200 0 0 31\r\n`,
      ]);
    } else {
      const header = `#Software: Microsoft Exchange Server\r\n#Version: 15.01.2176.002\r\n#Log-type: HttpProxy Logs\r\n#Date: ${t}\r\n#Fields: ${HP_FIELDS}\r\n`;
      planted += await writeFile(join(dir, 'Logging', 'HttpProxy', ['Mapi', 'Ews', 'Owa', 'Ecp'][f % 4]!, `HttpProxy_202103${day}10-${f}.LOG`), header, total / files, (n) => hpLine(n, t), PLANTED_HP.map((p) => () => p(t)));
    }
  }
  return planted;
}

function time(cmd: string, argv: readonly string[]): { ms: number; status: number | null; stdout: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  return { ms, status: r.status, stdout: r.stdout };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const BARE = `
const { readdirSync, statSync, createReadStream } = require('node:fs');
const { join } = require('node:path');
const needles = JSON.parse(process.argv[2]).map((s) => Buffer.from(s));
const files = [];
(function walk(d) { for (const n of readdirSync(d)) { const p = join(d, n); if (statSync(p).isDirectory()) walk(p); else files.push(p); } })(process.argv[1]);
(async () => {
  let hits = 0;
  for (const f of files) {
    for await (const c of createReadStream(f, { highWaterMark: 1 << 20 })) {
      for (const nd of needles) { let i = 0; while ((i = c.indexOf(nd, i)) !== -1) { hits++; i += nd.length; } }
    }
  }
  process.stdout.write(String(hits));
})();
`;

async function main(): Promise<void> {
  const bundle = join(root, 'dist', 'tocsin-forensics.cjs');
  const b = spawnSync(process.execPath, [join(root, 'scripts', 'build-forensics-bundle.mjs'), bundle], { encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`bundle build failed: ${b.stderr}`);
  const dir = mkdtempSync(join(tmpdir(), 'tocsin-bench-forensics-'));
  const barePath = join(dir, '..', `${dir.split(/[\\/]/).pop()}-bare.cjs`);
  writeFileSync(barePath, BARE);
  try {
    process.stdout.write(`generating ${targetMb} MB under ${dir} ...\n`);
    const planted = await generate(dir);
    let bytes = 0;
    (function walk(d: string): void {
      for (const n of readdirSync(d)) {
        const p = join(d, n);
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else bytes += st.size;
      }
    })(dir);
    const hasRg = existsSync('/usr/bin/rg') || spawnSync('rg', ['--version']).status === 0;
    const rgArgs = ['-uuu', '-i', '-c', '-F', ...NEEDLES.flatMap((n) => ['-e', n]), dir];
    // Warm the page cache once for everybody.
    time(process.execPath, ['-e', BARE, dir, JSON.stringify(NEEDLES)]);
    const t: Record<string, number[]> = { tocsin: [], iocs: [], bare: [], read: [], rg: [] };
    const iocFile = join(dir, '..', `${dir.split(/[\\/]/).pop()}-iocs.txt`);
    if (withIocs) {
      const ips = Array.from({ length: 200 }, (_v, i) => `198.18.${i >> 4}.${(i * 7) & 255}`);
      const uas = Array.from({ length: 20 }, (_v, i) => `EvilAgent/${i}.0`);
      const names = Array.from({ length: 30 }, (_v, i) => `shell${i}.aspx`);
      writeFileSync(iocFile, [...ips, ...uas, ...names].join('\n'));
    }
    let found = 0;
    for (let i = 0; i < runs; i++) {
      const r = time(process.execPath, [bundle, dir, '--format', 'jsonl', '--no-progress']);
      if (r.status !== 1) throw new Error(`tocsin exited ${r.status}, expected 1 (indicators found)`);
      found = r.stdout.split('\n').filter((l) => l.includes('"severity"') && !l.includes('"info"')).length;
      t.tocsin!.push(r.ms);
      if (withIocs) t.iocs!.push(time(process.execPath, [bundle, dir, '--format', 'jsonl', '--no-progress', '--iocs', iocFile]).ms);
      t.bare!.push(time(process.execPath, ['-e', BARE, dir, JSON.stringify(NEEDLES)]).ms);
      t.read!.push(time(process.execPath, ['-e', BARE, dir, '[]']).ms);
      if (hasRg) t.rg!.push(time('rg', rgArgs).ms);
    }
    const mt = median(t.tocsin!);
    const mb = median(t.bare!);
    const mr = hasRg ? median(t.rg!) : NaN;
    const mread = median(t.read!);
    const mbps = (ms: number): string => `${((bytes / 1e6) / (ms / 1000)).toFixed(0)} MB/s`;
    process.stdout.write(
      [
        `corpus: ${(bytes / 1e6).toFixed(1)} MB, ${planted} planted attack lines; median of ${runs} runs (wall time incl. process start)`,
        `  tocsin forensics (bundle) ${mt.toFixed(0).padStart(7)} ms  ${mbps(mt)}  (${found} indicator records)`,
 withIocs ? `  tocsin with 250 IoCs      ${median(t.iocs!).toFixed(0).padStart(7)} ms  ${mbps(median(t.iocs!))}` : '',
        `  bare Node read+indexOf    ${mb.toFixed(0).padStart(7)} ms  ${mbps(mb)}  (${NEEDLES.length} needles, case-sensitive)`,
        `  bare Node read only       ${mread.toFixed(0).padStart(7)} ms  ${mbps(mread)}  (no search: the floor)`,
        hasRg ? `  ripgrep -i -F            ${mr.toFixed(0).padStart(7)} ms  ${mbps(mr)}` : '  ripgrep: not installed',
        `ratio tocsin / bare read+indexOf: ${(mt / mb).toFixed(2)}x (target <= 2x: ${mt / mb <= 2 ? 'met' : 'NOT met'})`,
        `ratio tocsin / bare read only:    ${(mt / mread).toFixed(2)}x`,
        hasRg ? `ratio tocsin / ripgrep:           ${(mt / mr).toFixed(2)}x` : '',
        '',
      ].filter((l, i, a) => l !== '' || i === a.length - 1).join('\n'),
    );
    if (found < planted) throw new Error(`tocsin reported ${found} indicator records, ${planted} lines were planted`);
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    rmSync(barePath, { force: true });
    rmSync(join(dir, '..', `${dir.split(/[\\/]/).pop()}-iocs.txt`), { force: true });
  }
}


main().catch((e: unknown) => {
  process.stderr.write(`bench:forensics failed: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
