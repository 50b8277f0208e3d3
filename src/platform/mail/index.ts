/** The mail adapter: SMTP sending with outcomes as values, message building with header checks, the demo's local sink. */
export { createSmtpSender, classifySmtpError } from './smtp-sender.js';
export type { SendOutcome, SendProgress, SmtpSender, SmtpSenderOptions, SmtpStage, RecipientRejection } from './smtp-sender.js';
export { buildMessage, checkMessage, toHeaderText } from './message.js';
export type { OutgoingMessage, MailAddress, MailAttachment, DkimKey, BuiltMessage } from './message.js';
export { startLocalSink } from './local-sink.js';
export type { LocalSink, LocalSinkOptions, SavedMail } from './local-sink.js';
