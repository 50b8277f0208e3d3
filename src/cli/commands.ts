/**
 * Explicit command registry: one file per command under src/cli, listed here.
 * (A test checks that every src/cli/*.ts that exports `register` is listed.)
 */
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import * as check from './check.js';
import * as demo from './demo.js';
import * as kb from './kb.js';
import * as scan from './scan.js';
import * as forensics from './forensics.js';
import * as lab from './lab.js';
import * as report from './report.js';
import * as results from './results.js';
import * as db from './db.js';
import * as reassess from './reassess.js';
import * as constituency from './constituency.js';
import * as org from './org.js';
import * as cancel from './cancel.js';
import * as feeds from './feeds.js';
import * as whois from './whois.js';
import * as attribution from './attribution.js';
import * as exposures from './exposures.js';
import * as exportCommand from './export.js';
import * as findings from './findings.js';
import * as campaign from './campaign.js';
import * as stats from './stats.js';
import * as mail from './mail.js';
import * as ack from './ack.js';
import * as serve from './serve.js';
import * as user from './user.js';
import * as token from './token.js';
import * as incident from './incident.js';
import * as worker from './worker.js';
import * as schedule from './schedule.js';

export type CommandModule = { register(program: Command, ctx: CliContext): void };

export const COMMANDS: readonly CommandModule[] = [demo, scan, cancel, results, reassess, report, constituency, org, feeds, whois, attribution, exposures, findings, incident, campaign, exportCommand, mail, ack, stats, schedule, serve, user, token, worker, kb, lab, forensics, db, check];
