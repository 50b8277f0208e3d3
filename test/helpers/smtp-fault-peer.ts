/**
 * SMTP peers that misbehave on purpose, built on smtp-server, listening on 127.0.0.1 (ephemeral port): each answers
 * one way that a real relay can (a 421 greeting, 450/550 at RCPT, 552 after the data, a dropped connection in the
 * middle of the data or after the final dot, silence). The SMTP adapter's outcome for each is tested in
 * test/mail-faults.test.ts. STARTTLS and AUTH are off unless asked for (test/mail-tls-auth.test.ts).
 */
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export type Fault =
  | 'accept'
  | 'greeting-421'
  | 'greeting-stall'
  | 'rcpt-450'
  | 'rcpt-550'
  | 'rcpt-550-second'
  | 'data-552'
  | 'data-451'
  | 'drop-mid-data'
  | 'drop-after-dot'
  | 'stall-after-dot'
  | 'stall-at-rcpt'
  /** Serves the first message of each connection; hangs up at the next MAIL FROM (a relay closing a kept-alive session). */
  | 'drop-second-mail';

export interface FaultPeer {
  /** smtp://127.0.0.1:PORT?starttls=never (smtp:// with STARTTLS, smtps:// with implicit TLS, when `tls` is given) */
  readonly url: string;
  /** Messages whose data reached the end (whether or not the peer then answered). */
  readonly bodiesReceived: number;
  /** Bytes of message data the peer read, over all sessions. */
  readonly bytesReceived: number;
  /** The raw messages it answered 250 to. */
  readonly accepted: readonly Buffer[];
  /** TCP connections it has seen. */
  readonly connections: number;
  close(): Promise<void>;
}

function smtpError(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export interface FaultPeerOptions {
  /** TLS with this key and certificate (PEM): from the first byte (`implicit`, smtps://) or via STARTTLS. */
  readonly tls?: { readonly key: string; readonly cert: string; readonly implicit: boolean };
  /** Require AUTH (PLAIN/LOGIN, also without TLS) with these credentials. */
  readonly auth?: { readonly user: string; readonly pass: string };
}

export async function startFaultPeer(fault: Fault, options: FaultPeerOptions = {}): Promise<FaultPeer> {
  let bodiesReceived = 0;
  let bytesReceived = 0;
  let connections = 0;
  const accepted: Buffer[] = [];
  const mailsPerSession = new Map<string, number>();
  const sockets = new Map<number, Socket>();
  const socketOf = (session: SMTPServerSession): Socket | undefined => sockets.get(session.remotePort);

  const disabled = [...(options.tls ? [] : ['STARTTLS']), ...(options.auth ? [] : ['AUTH'])];
  const server = new SMTPServer({
    disabledCommands: disabled,
    authOptional: options.auth === undefined,
    allowInsecureAuth: true,
    authMethods: ['PLAIN', 'LOGIN'],
    logger: false,
    ...(options.tls ? { key: options.tls.key, cert: options.tls.cert, secure: options.tls.implicit } : { hideSTARTTLS: true }),
    onAuth(auth, _session, callback) {
      if (options.auth && auth.username === options.auth.user && auth.password === options.auth.pass) return callback(null, { user: auth.username });
      callback(smtpError(535, 'Authentication credentials invalid'));
    },
    onConnect(_session, callback) {
      if (fault === 'greeting-421') return callback(smtpError(421, 'Too busy, try again later'));
      if (fault === 'greeting-stall') return; // never greet
      callback();
    },
    onMailFrom(_address, session, callback) {
      const n = (mailsPerSession.get(session.id) ?? 0) + 1;
      mailsPerSession.set(session.id, n);
      if (fault === 'drop-second-mail' && n >= 2) {
        socketOf(session)?.destroy();
        return;
      }
      callback();
    },
    onRcptTo(address, session, callback) {
      if (fault === 'stall-at-rcpt') return; // never answer RCPT TO
      if (fault === 'rcpt-450') return callback(smtpError(450, `Mailbox ${address.address} busy`));
      if (fault === 'rcpt-550') return callback(smtpError(550, `No such user ${address.address}`));
      if (fault === 'rcpt-550-second' && session.envelope.rcptTo.length >= 1) return callback(smtpError(550, `No such user ${address.address}`));
      callback();
    },
    onData(stream: SMTPServerDataStream, session, callback) {
      if (fault === 'drop-mid-data') {
        stream.once('data', (chunk: Buffer) => {
          bytesReceived += chunk.length;
          socketOf(session)?.destroy();
        });
        stream.on('error', () => undefined);
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => {
        bytesReceived += chunk.length;
        chunks.push(chunk);
      });
      stream.once('end', () => {
        bodiesReceived++;
        if (fault === 'drop-after-dot') {
          socketOf(session)?.destroy();
          return;
        }
        if (fault === 'stall-after-dot') return; // never answer the dot
        if (fault === 'data-552') return callback(smtpError(552, 'Message exceeds fixed maximum message size'));
        if (fault === 'data-451') return callback(smtpError(451, 'Local error in processing'));
        accepted.push(Buffer.concat(chunks));
        callback(null, 'Ok: queued as FAULTPEER');
      });
    },
  });
  server.server.on('connection', (socket: Socket) => {
    const port = socket.remotePort;
    connections++;
    if (port === undefined) return;
    sockets.set(port, socket);
    socket.once('close', () => sockets.delete(port));
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: options.tls?.implicit ? `smtps://127.0.0.1:${port}` : options.tls ? `smtp://127.0.0.1:${port}` : `smtp://127.0.0.1:${port}?starttls=never`,
    get bodiesReceived() { return bodiesReceived; },
    get bytesReceived() { return bytesReceived; },
    get accepted() { return accepted; },
    get connections() { return connections; },
    async close() {
      // Under TLS the raw socket is wrapped; destroying it beneath smtp-server's TLS socket after a failed
      // handshake crashed Node 20.20 (SIGSEGV), so TLS peers leave the sockets to smtp-server's own close.
      if (!options.tls) for (const s of sockets.values()) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
