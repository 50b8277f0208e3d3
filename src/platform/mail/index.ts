/**
 * The mail adapter: SMTP sending with outcomes as values, message building with header checks, the demo's local sink.
 *
 * For the outbox: store the message (with its Message-ID) and mark it in flight BEFORE `send`; then, by outcome:
 * `accepted` -> sent (and look at `rejected` for recipients refused alongside); `transient` -> retry with backoff
 * (stage `connect`/`auth` means the relay or our settings, not this message); `permanent` -> failed for good (try the
 * next contact); `uncertain` -> mark uncertain and never resend on its own. A message still marked in flight after a
 * crash is uncertain too: whether its dot went out is unknown. `send` throws only TOCSIN_MAIL_MESSAGE_INVALID.
 */
export { createSmtpSender, classifySmtpError } from './smtp-sender.js';
export type { SendOutcome, SendProgress, SmtpSender, SmtpSenderOptions, SmtpStage, RecipientRejection } from './smtp-sender.js';
export { buildMessage, checkMessage, toHeaderText } from './message.js';
export type { OutgoingMessage, MailAddress, MailAttachment, DkimKey, BuiltMessage } from './message.js';
export { startLocalSink } from './local-sink.js';
export type { LocalSink, LocalSinkOptions, SavedMail } from './local-sink.js';
