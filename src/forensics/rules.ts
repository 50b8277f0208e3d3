/**
 * The detection rules, as data (nuclei-style): metadata (id, CVEs, severity, references, remediation)
 * plus a condition tree over named fields, and the prefilter needles that make streaming fast.
 *
 * Contract of a log rule: `when` is evaluated only on lines that contain at least one of `needles`
 * (regular-expression sources, matched case-insensitively on the raw line), so every line that can
 * satisfy `when` MUST contain a needle. The tests check that with each rule's positive fixtures.
 * docs/forensics.md is generated from this table (see rules-doc.ts).
 */
import type { FileKind, Severity } from './types.js';

/**
 * Field names of a request row. Exchange's HttpProxy names are canonical; IIS and CSV exports are
 * mapped onto them (kinds.ts). Pseudo-fields: `$line` the whole raw line, `$url` the percent-decoded
 * UrlStem plus `?` and UrlQuery, `$record` a whole event (event exports), `$path` a file's path with
 * `/` separators, `$content` a file's leading bytes (latin1).
 */
export type FieldName =
  | 'DateTime'
  | 'ClientIpAddress'
  | 'UrlHost'
  | 'UrlStem'
  | 'UrlQuery'
  | 'Method'
  | 'HttpStatus'
  | 'UserAgent'
  | 'AnchorMailbox'
  | 'RoutingHint'
  | 'AuthenticatedUser'
  | 'Protocol'
  | '$line'
  | '$url'
  | '$record'
  | '$path'
  | '$content';

/** A condition tree. Text comparisons are case-insensitive; a missing field fails every test on it. */
export type Condition =
  | { readonly all: readonly Condition[] }
  | { readonly any: readonly Condition[] }
  | { readonly not: Condition }
  /** PowerShell `-like` semantics: `*` any run, `?` one character, whole value. */
  | { readonly field: FieldName; readonly like: string }
  /** JavaScript regular expression source, searched anywhere in the value. */
  | { readonly field: FieldName; readonly matches: string }
  | { readonly field: FieldName; readonly equals: string };

export interface RuleMeta {
  readonly id: string;
  readonly title: string;
  /** Empty when no CVE applies (web shells). */
  readonly cves: readonly string[];
  readonly severity: Severity;
  readonly description: string;
  readonly references: readonly string[];
  readonly remediation: string;
}

/**
 * `request`: evaluated on rows of request logs (HttpProxy, IIS, CSV exports of them, and request-like
 * lines of other text). `line`: on every line of the listed kinds. `event`: on whole event records of
 * Application-log exports (CSV or XML), which may span several lines.
 */
export interface LogRule extends RuleMeta {
  readonly on: 'request' | 'line' | 'event';
  /** Kinds the rule runs on; absent = every kind that yields `on` units. */
  readonly kinds?: readonly FileKind[];
  readonly needles: readonly string[];
  readonly when: Condition;
}

/** Rules on files found in an install tree or archive (not logs). */
export interface FileRule extends RuleMeta {
  /** Only files whose `$path` matches this run the rule (cheap test before reading content). */
  readonly pathMatches: string;
  readonly when: Condition;
  /** True when `when` reads `$content` (the file is then read, up to a cap). */
  readonly needsContent: boolean;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

const OK_2XX: Condition = { field: 'HttpStatus', matches: '^2\\d\\d$' };
const NOT_2XX: Condition = { not: OK_2XX };
const POST: Condition = { field: 'Method', equals: 'POST' };

const REF = {
  msHafnium: 'https://www.microsoft.com/security/blog/2021/03/02/hafnium-targeting-exchange-servers/',
  volexity: 'https://www.volexity.com/blog/2021/03/02/active-exploitation-of-microsoft-exchange-zero-day-vulnerabilities/',
  cisa62a: 'https://www.cisa.gov/news-events/cybersecurity-advisories/aa21-062a',
  testProxyLogon: 'https://github.com/microsoft/CSS-Exchange/tree/main/Security/src',
  proxyShell: 'https://msrc.microsoft.com/update-guide/vulnerability/CVE-2021-34473',
  msProxyNotShell: 'https://msrc.microsoft.com/blog/2022/09/customer-guidance-for-reported-zero-day-vulnerability-in-microsoft-exchange-server/',
  owassrf: 'https://www.crowdstrike.com/blog/owassrf-exploit-analysis-and-recommendations/',
  cve20200688: 'https://msrc.microsoft.com/update-guide/vulnerability/CVE-2020-0688',
  proxyToken: 'https://www.zerodayinitiative.com/blog/2021/8/30/proxytoken-an-authentication-bypass-in-microsoft-exchange-server',
} as const;

const FIX_PROXYLOGON =
  'Install the current Exchange CU and security update; treat the server as compromised: look for web shells ' +
  '(this kit\'s file checks, Microsoft Safety Scanner), reset credentials that were used on it, and hunt for ' +
  'lateral movement from the listed client IPs and times.';
const FIX_PROXYSHELL =
  'Install the current Exchange CU and security update; review mailbox export requests (Get-MailboxExportRequest), ' +
  'role assignments of "Mailbox Import Export", and files written under inetpub and FrontEnd\\HttpProxy.';
const FIX_WEBSHELL =
  'Preserve a copy of the file for analysis, then remove it; the server is compromised: rebuild or clean it, ' +
  'reset credentials and hunt for further persistence from the listed client IPs.';

/** Autodiscover SSRF shapes shared by ProxyShell, ProxyNotShell and their attempt rule. */
const AUTOD_SSRF_EWS_NSPI: Condition = { field: '$url', matches: 'autodiscover\\.json.*?@.*?/(mapi/nspi|ews)(/|\\?|$)' };
/**
 * autodiscover.json reaching PowerShell: "/powershell" in the SSRF path, or the "Email=autodiscover/
 * autodiscover.json" SSRF with "Powershell" anywhere (the public ProxyNotShell checks send
 * "...&Protocol=XYZ&FooProtocol=Powershell"; Microsoft's mitigation blocks autodiscover + powershell in any order).
 */
const AUTOD_SSRF_PS: Condition = {
  field: '$url',
  matches:
    'autodiscover\\.json.*?(?:/powershell|email=autodiscover/autodiscover\\.json.*?powershell|powershell.*?email=autodiscover/autodiscover\\.json)',
};
const RPS_CAT: Condition = { field: '$url', matches: 'x-rps-cat' };
/**
 * The autodiscover SSRF itself, whatever it targets ("autodiscover.json?@x/owa/?&Email=autodiscover/
 * autodiscover.json%3F@x" is what the public ProxyShell checks send): no client sends this parameter.
 */
const AUTOD_SSRF_ANY: Condition = { field: '$url', matches: 'autodiscover\\.json.*?email=autodiscover/autodiscover\\.json' };
const OWASSRF: Condition = { all: [POST, { field: '$url', matches: '^/owa/[^/?]*@[^/?]*/powershell' }] };

/** Script files in the folders attackers drop web shells into, by URL (request logs). */
const SHELL_URL: Condition = {
  all: [
    {
      field: 'UrlStem',
      matches: '^/(?:(?:owa|ecp)/auth|aspnet_client)/(?:[^?]*/)?[^/?]+\\.(?:aspx|ashx|asmx|asp|cshtml|soap|rem)$',
    },
    {
      not: {
        field: 'UrlStem',
        matches:
          '^/(?:owa/auth/(?:errorFE|ExpiredPassword|frowny|logoff|logon|OutlookCN|RedirSuiteServiceProxy|signout)\\.aspx|ecp/auth/TimeoutLogout\\.aspx)$',
      },
    },
  ],
};

/**
 * Needles for SHELL_URL. Microsoft's own pages are left out already here (negative lookahead), so the
 * OWA logon page, requested all day long, does not make every such line a candidate.
 */
const SHELL_URL_NEEDLES: readonly string[] = [
  '/owa/auth/(?!(?:errorFE|ExpiredPassword|frowny|logoff|logon|OutlookCN|RedirSuiteServiceProxy|signout)\\.aspx(?:[\\s,"?]|$))[^\\s,"?]*\\.(?:aspx|ashx|asmx|asp|cshtml|soap|rem)',
  '/ecp/auth/(?!TimeoutLogout\\.aspx(?:[\\s,"?]|$))[^\\s,"?]*\\.(?:aspx|ashx|asmx|asp|cshtml|soap|rem)',
  '/aspnet_client/[^\\s,"?]*\\.(?:aspx|ashx|asmx|asp|cshtml|soap|rem)',
];

// ---------------------------------------------------------------------------------------------
// Log rules

export const LOG_RULES: readonly LogRule[] = [
  {
    id: 'proxylogon-ssrf-anchor',
    title: 'ProxyLogon SSRF: AnchorMailbox routed to a back-end URL',
    cves: ['CVE-2021-26855'],
    severity: 'critical',
    on: 'request',
    needles: ['ServerInfo~'],
    when: {
      all: [
        { field: 'AnchorMailbox', like: 'ServerInfo~*/*' },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~*/autodiscover*' } },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~localhost*/*' } },
      ],
    },
    description:
      'HttpProxy rows whose AnchorMailbox is like ServerInfo~*/*, leaving out autodiscover-only targets and ' +
      'ServerInfo~localhost (a scanner\'s localhost canary is not an attack): the same filter as Microsoft\'s ' +
      'Test-ProxyLogon.ps1. A RoutingHint of X-BEResource-Cookie (the exploit\'s cookie) is quoted in the evidence.',
    references: [REF.msHafnium, REF.testProxyLogon],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-ssrf-autodiscover',
    title: 'ProxyLogon SSRF to autodiscover with the X-BEResource cookie answered 2xx (the SSRF worked)',
    cves: ['CVE-2021-26855'],
    severity: 'high',
    on: 'request',
    needles: ['ServerInfo~'],
    when: {
      all: [
        { field: 'AnchorMailbox', like: 'ServerInfo~*/autodiscover*' },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~localhost*/*' } },
        { field: 'RoutingHint', equals: 'X-BEResource-Cookie' },
        OK_2XX,
      ],
    },
    description:
      'The first step of the public ProxyLogon chain: the X-BEResource cookie (which no client sends) routes the ' +
      'request to the back end\'s autodiscover.xml, and the answer was 2xx, so the front end proxied an ' +
      'attacker-chosen request: CVE-2021-26855 was exploited on an unpatched server (the step reads the ' +
      'back end\'s legacyDN and mailbox details). Test-ProxyLogon leaves autodiscover targets out to avoid noise ' +
      '(CSS-Exchange PR #306); this kit counts a 2xx with the exploit cookie as an indicator (the HelseCERT ' +
      'extract of a real compromise starts with exactly this row). Not answered 2xx, it is an attempt ' +
      '(proxylogon-ssrf-autodiscover-attempt).',
    references: [REF.volexity, REF.testProxyLogon],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-ssrf-autodiscover-attempt',
    title: 'ProxyLogon SSRF to autodiscover with the X-BEResource cookie, not answered 2xx (attempt)',
    cves: ['CVE-2021-26855'],
    severity: 'info',
    on: 'request',
    needles: ['ServerInfo~'],
    when: {
      all: [
        { field: 'AnchorMailbox', like: 'ServerInfo~*/autodiscover*' },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~localhost*/*' } },
        { field: 'RoutingHint', equals: 'X-BEResource-Cookie' },
        NOT_2XX,
      ],
    },
    description:
      'The same first step answered with another status (blocked, failed, patched server): someone tried. ' +
      'Listed in the timeline; not counted as an indicator of compromise.',
    references: [REF.volexity, REF.testProxyLogon],
    remediation: 'None needed if the server is patched; the client IP is hostile.',
  },
  {
    id: 'proxylogon-static-post',
    title: 'POST to a static ECP/OWA resource (ProxyLogon exploitation pattern)',
    cves: ['CVE-2021-26855'],
    severity: 'high',
    on: 'request',
    needles: ['/owa/auth/Current/', '/ecp/default\\.flt', '/ecp/main\\.css', '/ecp/\\w\\.js'],
    when: {
      all: [
        POST,
        { field: 'UrlStem', matches: '^/(?:owa/auth/Current/|ecp/default\\.flt$|ecp/main\\.css$|ecp/\\w\\.js$)' },
        // A ServerInfo SSRF row that only reached autodiscover or localhost is a failed attempt or a
        // scanner's canary (see the two SSRF rules): the POST it rode on is no more than that.
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~*/autodiscover*' } },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~localhost*/*' } },
      ],
    },
    description:
      'POST requests to static resources that need no authentication (/owa/auth/Current/..., /ecp/default.flt, ' +
      '/ecp/main.css, /ecp/<one character>.js), as observed by Volexity and listed by CISA AA21-062A. Rows whose ' +
      'AnchorMailbox shows an autodiscover-only or localhost SSRF are attempts and left to the SSRF rules.',
    references: [REF.volexity, REF.cisa62a],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-oab-reset',
    title: 'ProxyLogon: ResetOABVirtualDirectory through the SSRF answered 200',
    cves: ['CVE-2021-27065', 'CVE-2021-26855'],
    severity: 'critical',
    on: 'request',
    needles: ['ServerInfo~'],
    when: { all: [{ field: 'AnchorMailbox', like: 'ServerInfo~*/*Reset*VirtualDirectory*' }, { field: 'HttpStatus', equals: '200' }] },
    description:
      'HttpProxy ECP rows whose AnchorMailbox carries a Reset*VirtualDirectory DDI call and that were answered 200: ' +
      'the step that writes the OAB virtual directory (with the attacker\'s script in ExternalUrl) to a file ' +
      '(CVE-2021-27065, reached through the CVE-2021-26855 SSRF).',
    references: [REF.msHafnium, REF.testProxyLogon],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-oab-setobject',
    title: 'ProxyLogon: SetObject on a virtual directory (OABVirtualDirectory) through the SSRF answered 200',
    cves: ['CVE-2021-27065', 'CVE-2021-26855'],
    severity: 'critical',
    on: 'request',
    needles: ['ServerInfo~'],
    when: {
      all: [
        { field: 'AnchorMailbox', like: 'ServerInfo~*/*DDIService.svc/SetObject*schema=*VirtualDirectory*' },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~*/*schema=Reset*VirtualDirectory*' } },
        { not: { field: 'AnchorMailbox', like: 'ServerInfo~localhost*/*' } },
        { field: 'HttpStatus', equals: '200' },
      ],
    },
    description:
      'HttpProxy ECP rows whose AnchorMailbox carries a DDIService SetObject call on a virtual-directory schema ' +
      '(OABVirtualDirectory) answered 200: the step that puts the attacker\'s script into ExternalUrl before the ' +
      'reset writes it to disk (CVE-2021-27065, reached through the CVE-2021-26855 SSRF). The matching ECP ' +
      'server log line is proxylogon-vdir-script.',
    references: [REF.msHafnium, REF.testProxyLogon],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-vdir-script',
    title: 'Set-*VirtualDirectory with a script tag in a URL parameter (ECP server log)',
    cves: ['CVE-2021-27065'],
    severity: 'critical',
    on: 'line',
    kinds: ['exchange-ecp-server', 'exchange-log', 'text', 'event-export'],
    needles: ['VirtualDirectory'],
    when: { field: '$line', matches: 'Set-\\w*VirtualDirectory\\b.*?Url\\s*=.*?(?:<\\s*script\\b|<%)' },
    description:
      'ECP server log lines where a Set-*VirtualDirectory cmdlet set a *Url parameter containing a <script> tag ' +
      'or <% code block: the arbitrary-file-write step of the ProxyLogon chain. Ordinary URL changes stay silent.',
    references: [REF.msHafnium, REF.cisa62a],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-oab-download-outside',
    title: 'OAB generator downloaded a file outside the OAB folder',
    cves: ['CVE-2021-26858'],
    severity: 'critical',
    on: 'line',
    kinds: ['exchange-oab-generator', 'exchange-log', 'text'],
    needles: ['Download failed and temporary file'],
    when: {
      all: [
        { field: '$line', matches: 'Download failed and temporary file' },
        {
          any: [
            { not: { field: '$line', matches: "Download failed and temporary file\\s+'?[a-z]:\\\\[^'\\r\\n]*?\\\\ClientAccess\\\\OAB\\\\" } },
            { field: '$line', matches: "Download failed and temporary file[^\\r\\n]*?\\.\\.[\\\\/]" },
          ],
        },
      ],
    },
    description:
      'OABGeneratorLog lines "Download failed and temporary file ... needs to be removed" for a path that is not ' +
      'under <install>\\ClientAccess\\OAB\\ (a UNC path, another folder, or one climbing out with ..).',
    references: [REF.msHafnium, REF.testProxyLogon],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxylogon-um-invalidcast',
    title: 'Unified Messaging deserialisation error (System.InvalidCastException)',
    cves: ['CVE-2021-26857'],
    severity: 'high',
    on: 'event',
    needles: ['InvalidCastException'],
    when: {
      all: [
        { field: '$record', matches: 'MSExchange Unified Messaging' },
        { field: '$record', matches: 'System\\.InvalidCastException' },
      ],
    },
    description:
      'Application event-log records from the source MSExchange Unified Messaging that mention ' +
      'System.InvalidCastException, in CSV or XML exports (EVTX files are not parsed: export them, see below).',
    references: [REF.msHafnium, REF.testProxyLogon],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxyshell-ssrf',
    title: 'ProxyShell: autodiscover.json SSRF to /mapi/nspi or /EWS answered 2xx',
    cves: ['CVE-2021-34473'],
    severity: 'high',
    on: 'request',
    needles: ['autodiscover\\.json'],
    when: { all: [AUTOD_SSRF_EWS_NSPI, OK_2XX] },
    description:
      'Requests for autodiscover.json carrying "@" and a back-end path (/mapi/nspi, /EWS) that were answered 2xx: ' +
      'the pre-authentication SSRF of ProxyShell. A client\'s "autodiscover.json/v1.0/user@domain?Protocol=EWS" ' +
      'is normal and stays silent.',
    references: [REF.proxyShell],
    remediation: FIX_PROXYSHELL,
  },
  {
    id: 'proxyshell-powershell',
    title: 'ProxyShell: autodiscover.json SSRF to /powershell with X-Rps-CAT answered 2xx',
    cves: ['CVE-2021-34473', 'CVE-2021-34523'],
    severity: 'critical',
    on: 'request',
    needles: ['autodiscover\\.json'],
    when: { all: [AUTOD_SSRF_PS, RPS_CAT, OK_2XX] },
    description:
      'Remote PowerShell reached through the autodiscover SSRF with a forged X-Rps-CAT token: ProxyShell\'s ' +
      'elevation step, after which the attacker runs Exchange cmdlets as an administrator.',
    references: [REF.proxyShell],
    remediation: FIX_PROXYSHELL,
  },
  {
    id: 'proxynotshell-powershell',
    title: 'ProxyNotShell: autodiscover.json SSRF to /powershell answered 2xx',
    cves: ['CVE-2022-41040', 'CVE-2022-41082'],
    severity: 'critical',
    on: 'request',
    needles: ['autodiscover\\.json'],
    when: { all: [AUTOD_SSRF_PS, { not: RPS_CAT }, OK_2XX] },
    description:
      'Remote PowerShell reached through the autodiscover SSRF without an X-Rps-CAT token (an authenticated ' +
      'attacker, CVE-2022-41040) and answered 2xx: the path to CVE-2022-41082 code execution.',
    references: [REF.msProxyNotShell],
    remediation: FIX_PROXYSHELL,
  },
  {
    id: 'owassrf-powershell',
    title: 'OWASSRF: POST to /owa/<mailbox>@<domain>/powershell answered 2xx',
    cves: ['CVE-2022-41080', 'CVE-2022-41082'],
    severity: 'critical',
    on: 'request',
    needles: ['/owa/[^\\s,"]*(?:@|%40)[^\\s,"]*/powershell'],
    when: { all: [OWASSRF, OK_2XX] },
    description:
      'The OWA variant of ProxyNotShell (OWASSRF), which bypassed the URL-rewrite mitigation for autodiscover.',
    references: [REF.owassrf],
    remediation: FIX_PROXYSHELL,
  },
  {
    id: 'exchange-ssrf-attempt',
    title: 'ProxyShell / ProxyNotShell / OWASSRF request not answered 2xx, or an SSRF probe (attempt)',
    cves: ['CVE-2021-34473', 'CVE-2022-41040', 'CVE-2022-41080'],
    severity: 'info',
    on: 'request',
    needles: ['autodiscover\\.json', '/owa/[^\\s,"]*(?:@|%40)[^\\s,"]*/powershell'],
    when: {
      any: [
        { all: [{ any: [AUTOD_SSRF_EWS_NSPI, AUTOD_SSRF_PS, OWASSRF] }, NOT_2XX] },
        { all: [AUTOD_SSRF_ANY, { not: AUTOD_SSRF_EWS_NSPI }, { not: AUTOD_SSRF_PS }] },
      ],
    },
    description:
      'The same request shapes answered with another status (blocked, redirected, failed), and the autodiscover ' +
      'SSRF aimed elsewhere (e.g. /owa/, what vulnerability scanners send), whatever the answer: someone tried. ' +
      'Listed in the timeline; not counted as an indicator of compromise.',
    references: [REF.proxyShell, REF.msProxyNotShell],
    remediation: 'None needed if the server is patched; the client IP may be worth blocking.',
  },
  {
    id: 'proxyshell-mailbox-export',
    title: 'New-MailboxExportRequest writing to a script file or a local admin share',
    cves: ['CVE-2021-34473', 'CVE-2021-34523', 'CVE-2021-31207'],
    severity: 'critical',
    on: 'line',
    needles: ['MailboxExportRequest'],
    when: {
      all: [
        { field: '$line', matches: 'New-MailboxExportRequest' },
        {
          any: [
            { field: '$line', matches: 'FilePath[^\\r\\n]*?\\.(?:aspx|ashx|asmx|asp|cshtml)\\b' },
            { field: '$line', matches: 'FilePath[^\\r\\n]*?\\\\\\\\(?:localhost|127\\.\\d+\\.\\d+\\.\\d+|\\[?::1\\]?)\\\\' },
            { field: '$line', matches: 'FilePath[^\\r\\n]*?\\\\\\\\[^\\\\\\s]+\\\\[a-z]\\$\\\\' },
          ],
        },
      ],
    },
    description:
      'ProxyShell\'s web-shell drop: a mailbox exported (PST with an encoded payload) to an .aspx path, to ' +
      '\\\\localhost or 127.x, or to an administrative share (C$). Exports of .pst files to a file server stay silent.',
    references: [REF.proxyShell],
    remediation: FIX_PROXYSHELL,
  },
  {
    id: 'proxyshell-role-assignment',
    title: 'New-ManagementRoleAssignment of the "Mailbox Import Export" role',
    cves: ['CVE-2021-31207'],
    severity: 'medium',
    on: 'line',
    needles: ['ManagementRoleAssignment'],
    when: {
      all: [
        { field: '$line', matches: 'New-ManagementRoleAssignment' },
        { field: '$line', matches: 'Mailbox Import Export' },
      ],
    },
    description:
      'ProxyShell grants itself this role before exporting a mailbox to a web shell. Administrators do it too: ' +
      'confirm who ran it and when.',
    references: [REF.proxyShell],
    remediation: 'Confirm the assignment was intended; remove it (Remove-ManagementRoleAssignment) if not.',
  },
  {
    id: 'cve-2020-0688-viewstate',
    title: 'CVE-2020-0688: __VIEWSTATE payload sent to /ecp/default.aspx',
    cves: ['CVE-2020-0688'],
    severity: 'high',
    on: 'request',
    needles: ['__VIEWSTATE'],
    when: {
      all: [
        { field: 'UrlStem', matches: '^/ecp/default\\.aspx$' },
        { field: '$url', matches: '__VIEWSTATEGENERATOR=' },
        { field: '$url', matches: '__VIEWSTATE=' },
      ],
    },
    description:
      'The public exploit of the static ECP validation key sends a serialized object in __VIEWSTATE (with ' +
      '__VIEWSTATEGENERATOR) in the query string of /ecp/default.aspx.',
    references: [REF.cve20200688],
    remediation: FIX_PROXYLOGON,
  },
  {
    id: 'proxytoken-inbox-rule',
    title: 'ProxyToken: inbox rule created through /ecp/<mailbox>@<domain>/RulesEditor',
    cves: ['CVE-2021-33766'],
    severity: 'high',
    on: 'request',
    needles: ['InboxRules\\.svc'],
    when: { all: [{ field: '$url', matches: '^/ecp/[^/?]*@[^/?]*/RulesEditor/InboxRules\\.svc/NewObject' }, OK_2XX] },
    description:
      'ProxyToken lets an unauthenticated attacker create forwarding rules in any mailbox; the ECP URL carries the ' +
      'victim\'s address in the path.',
    references: [REF.proxyToken],
    remediation: 'Patch; review inbox rules (Get-InboxRule) of the mailboxes named in the evidence for forwarding.',
  },
  {
    id: 'webshell-request',
    title: 'Successful request to a script in a web-shell folder',
    cves: [],
    severity: 'high',
    on: 'request',
    needles: SHELL_URL_NEEDLES,
    when: { all: [SHELL_URL, OK_2XX] },
    description:
      'A 2xx answer for an .aspx/.ashx/... under /owa/auth/, /ecp/auth/ or /aspnet_client/ that Exchange does not ' +
      'ship (Microsoft\'s own logon.aspx, RedirSuiteServiceProxy.aspx, ... are left out).',
    references: [REF.msHafnium, REF.cisa62a],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-probe',
    title: 'Request for a script in a web-shell folder, not answered 2xx (probe)',
    cves: [],
    severity: 'info',
    on: 'request',
    needles: SHELL_URL_NEEDLES,
    when: { all: [SHELL_URL, NOT_2XX] },
    description:
      'Someone looked for a web shell (often one planted by another actor) and did not get it. Not an indicator ' +
      'by itself; listed in the timeline of that client IP.',
    references: [REF.msHafnium],
    remediation: 'None for the server; the client IP is hostile.',
  },
];

// ---------------------------------------------------------------------------------------------
// File rules (install trees, copies of folders, archive members)

/** Files Exchange ships directly in FrontEnd\HttpProxy\owa\auth and ecp\auth (see docs/forensics.md). */
export const SHIPPED_AUTH_FILES: Readonly<Record<'owa' | 'ecp', readonly string[]>> = {
  owa: [
    'errorFE.aspx',
    'ExpiredPassword.aspx',
    'frowny.aspx',
    'getidtoken.htm',
    'logoff.aspx',
    'logon.aspx',
    'OutlookCN.aspx',
    'RedirSuiteServiceProxy.aspx',
    'signout.aspx',
  ],
  ecp: ['TimeoutLogout.aspx'],
};

const SCRIPT_EXT = '\\.(?:aspx|ashx|asmx|asp|cshtml|soap|rem|php|jsp)$';

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export const FILE_RULES: readonly FileRule[] = [
  {
    id: 'webshell-file-aspnet-client',
    title: 'Script file under inetpub\\wwwroot\\aspnet_client',
    cves: [],
    severity: 'high',
    pathMatches: '(?:^|/)aspnet_client/',
    needsContent: false,
    when: { field: '$path', matches: `(?:^|/)aspnet_client/(?:.*/)?[^/]+${SCRIPT_EXT}` },
    description: 'aspnet_client holds only client-side script folders; any server-side script there is a planted file.',
    references: [REF.msHafnium, REF.cisa62a],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-file-auth-folder',
    title: 'File in owa\\auth or ecp\\auth that Exchange does not ship',
    cves: [],
    severity: 'high',
    pathMatches: '(?:^|/)(?:owa|ecp)/auth/[^/]+$',
    needsContent: false,
    when: {
      all: [
        { field: '$path', matches: `(?:^|/)(?:owa|ecp)/auth/[^/]+${SCRIPT_EXT}` },
        { not: { field: '$path', matches: `(?:^|/)owa/auth/(?:${SHIPPED_AUTH_FILES.owa.map(escapeRe).join('|')})$` } },
        { not: { field: '$path', matches: `(?:^|/)ecp/auth/(?:${SHIPPED_AUTH_FILES.ecp.map(escapeRe).join('|')})$` } },
      ],
    },
    description:
      'A script directly in FrontEnd\\HttpProxy\\owa\\auth or ecp\\auth whose name is not one Exchange ships. ' +
      'Mind look-alikes: RedirSuiteServiceProxy.aspx is Microsoft\'s, RedirSuiteServerProxy.aspx is a known shell.',
    references: [REF.msHafnium, REF.volexity],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-file-auth-subfolder',
    title: 'Script file under owa\\auth\\Current or owa\\auth\\<version>',
    cves: [],
    severity: 'high',
    pathMatches: '(?:^|/)owa/auth/[^/]+/',
    needsContent: false,
    when: { field: '$path', matches: `(?:^|/)owa/auth/(?:current|\\d+\\.\\d+\\.\\d+(?:\\.\\d+)?)/(?:.*/)?[^/]+${SCRIPT_EXT}` },
    description: 'These folders hold only static resources (images, style sheets, fonts); a server-side script there is planted.',
    references: [REF.volexity],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-content-chopper',
    title: 'China Chopper style one-liner: eval of request input',
    cves: [],
    severity: 'critical',
    pathMatches: SCRIPT_EXT + '|\\.(?:config|htm|html)$',
    needsContent: true,
    when: { field: '$content', matches: 'eval\\s*\\(\\s*Request(?:\\.Item)?\\s*[\\[(]' },
    description:
      'eval(Request[...]) / eval(Request.Item[...]): the China Chopper family, also what the ProxyLogon chain ' +
      'wrote into OAB virtual-directory files.',
    references: [REF.msHafnium],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-content-process',
    title: 'Script starts a process from request input',
    cves: [],
    severity: 'critical',
    pathMatches: SCRIPT_EXT,
    needsContent: true,
    when: {
      all: [
        { field: '$content', matches: 'Process\\s*\\.\\s*Start\\s*\\(|ProcessStartInfo|cmd\\.exe|powershell\\.exe' },
        { field: '$content', matches: 'Request\\s*(?:\\.\\s*(?:Form|QueryString|Item|Params|Headers|Cookies)|\\[)' },
      ],
    },
    description: 'A server-side script that starts a process (Process.Start, ProcessStartInfo, cmd.exe) with request input in reach.',
    references: [REF.volexity],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-content-loader',
    title: 'Script loads an assembly or file from request input (Godzilla, Behinder, upload shells)',
    cves: [],
    severity: 'critical',
    pathMatches: SCRIPT_EXT,
    needsContent: true,
    when: {
      any: [
        { all: [{ field: '$content', matches: 'Assembly\\s*\\.\\s*Load\\s*\\(' }, { field: '$content', matches: 'Request' }] },
        { all: [{ field: '$content', matches: 'Request\\s*\\.\\s*Files\\s*\\[' }, { field: '$content', matches: '\\.SaveAs\\s*\\(' }] },
      ],
    },
    description: 'Assembly.Load of request data, or Request.Files[...].SaveAs: loaders and file droppers.',
    references: [REF.volexity, REF.cisa62a],
    remediation: FIX_WEBSHELL,
  },
  {
    id: 'webshell-content-tunnel',
    title: 'Tunnelling web shell (reGeorg style socket relay)',
    cves: [],
    severity: 'critical',
    pathMatches: SCRIPT_EXT,
    needsContent: true,
    when: {
      all: [
        { field: '$content', matches: 'new\\s+Socket\\s*\\(|System\\.Net\\.Sockets' },
        { field: '$content', matches: 'Request\\s*\\.\\s*Headers|X-CMD|X-TARGET' },
      ],
    },
    description: 'A script that opens sockets driven by request headers: a relay into the internal network.',
    references: [REF.cisa62a],
    remediation: FIX_WEBSHELL,
  },
];

/**
 * Campaign windows. A campaign is judged `covered` only when the request logs (HttpProxy, IIS, CSV exports
 * of them) have records on every day of its window; see analyze.ts `campaignCoverage`.
 */
export interface Campaign {
  readonly id: string;
  readonly cves: readonly string[];
  readonly exploitedSince: string;
  /** The days (inclusive, YYYY-MM-DD) the logs must cover: the period of mass exploitation. */
  readonly window: { readonly from: string; readonly to: string };
  readonly note: string;
}

export const CAMPAIGNS: readonly Campaign[] = [
  {
    id: 'ProxyLogon',
    cves: ['CVE-2021-26855', 'CVE-2021-26857', 'CVE-2021-26858', 'CVE-2021-27065'],
    exploitedSince: '2021-01-06',
    window: { from: '2021-02-28', to: '2021-03-31' },
    note: 'targeted from 2021-01-06; many groups from 2021-02-28; mass exploitation through March 2021',
  },
  {
    id: 'ProxyShell',
    cves: ['CVE-2021-34473', 'CVE-2021-34523', 'CVE-2021-31207'],
    exploitedSince: '2021-08-06',
    window: { from: '2021-08-06', to: '2021-08-31' },
    note: 'mass scanning and exploitation from 2021-08-06; unpatched servers stay at risk until patched',
  },
  {
    id: 'ProxyNotShell',
    cves: ['CVE-2022-41040', 'CVE-2022-41082', 'CVE-2022-41080'],
    exploitedSince: '2022-08-01',
    window: { from: '2022-09-29', to: '2022-12-31' },
    note: 'exploited from August 2022, disclosed 2022-09-29; OWASSRF (CVE-2022-41080) exploited in November-December 2022',
  },
];
