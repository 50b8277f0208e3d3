/**
 * An SMTP peer for the campaign outbox tests (smtp-server on 127.0.0.1, ephemeral port), answering per recipient
 * by the address's local part, so one campaign meets every case at once:
 *   nobody@...  550 at RCPT (the chain must move on);
 *   busy@...    450 at RCPT the first `busyTimes` times, then accepted;
 *   stall@...   the data is read to the final dot, then no reply ever (the sender is killed meanwhile);
 *   anything else: 250 after the data.
 * Accepted messages are kept with their envelope recipients.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';

export interface PeerMessage {
  readonly recipients: readonly string[];
  readonly raw: Buffer;
}

export interface CampaignPeer {
  /** smtp://127.0.0.1:PORT?starttls=never */
  readonly url: string;
  readonly accepted: readonly PeerMessage[];
  /** Bodies read to the final dot, answered or not. */
  readonly bodies: number;
  /** Resolves when a stalled body has been read completely. */
  readonly stalled: Promise<void>;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export async function startCampaignPeer(opts: { readonly busyTimes?: number } = {}): Promise<CampaignPeer> {
  const accepted: PeerMessage[] = [];
  let bodies = 0;
  const busySeen = new Map<string, number>();
  let stalledResolve: () => void = () => undefined;
  const stalled = new Promise<void>((r) => { stalledResolve = r; });
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    authOptional: true,
    logger: false,
    hideSTARTTLS: true,
    onRcptTo(address, _session, callback) {
      const local = address.address.split('@')[0]!.toLowerCase();
      if (local === 'nobody') return callback(smtpError(550, `5.1.1 <${address.address}>: no such user`));
      if (local === 'busy') {
        const n = (busySeen.get(address.address) ?? 0) + 1;
        busySeen.set(address.address, n);
        if (n <= (opts.busyTimes ?? 1)) return callback(smtpError(450, `4.2.1 <${address.address}>: mailbox busy, try later`));
      }
      callback();
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        bodies++;
        const recipients = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
        if (recipients.some((r) => r.startsWith('stall@'))) {
          stalledResolve();
          return; // never answer
        }
        accepted.push({ recipients, raw: Buffer.concat(chunks) });
        callback(null, 'queued as TEST');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}?starttls=never`,
    accepted,
    get bodies() { return bodies; },
    stalled,
    close: () => new Promise<void>((resolve) => {
      // Stalled sessions would hold close() forever: smtp-server's close waits for open connections.
      const t = setTimeout(resolve, 2000);
      server.close(() => { clearTimeout(t); resolve(); });
    }),
  };
}
