#!/usr/bin/env bash
# A real MTA for the mail tests: Debian's postfix on 127.0.0.1:2525 that accepts mail for any domain ending in
# `.test` and delivers it to the Maildir /var/mail/tocsin-test/all/ (one copy per recipient), relays nothing elsewhere
# and makes no DNS lookups. Run as root (CI does, through .ci/run); idempotent: run it again any time, it rewrites
# the configuration and reloads (or starts) postfix. Prints the two variables the tests read, as
# `export` lines: `eval "$(sudo scripts/ci-postfix.sh)"`.
#
# It takes over the machine's postfix configuration: use it on CI machines and development containers, not on a
# host whose postfix carries real mail.
set -euo pipefail

PORT="${TOCSIN_TEST_SMTP_PORT:-2525}"
MAILDIR_ROOT="${TOCSIN_TEST_MAILDIR_ROOT:-/var/mail/tocsin-test}"
TLS_DIR=/etc/postfix/tocsin-test
MAIL_USER=tocsin-mail

if [ "$(id -u)" -ne 0 ]; then
  echo "ci-postfix.sh: run as root (it installs and configures postfix)" >&2
  exit 77
fi
export DEBIAN_FRONTEND=noninteractive

if ! command -v postfix >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  # "No configuration": the package must not write its own main.cf or ask questions; we write ours below.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  echo "postfix postfix/mailname string tocsin-test-mta.localdomain" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix openssl >/dev/null
fi

# Virtual delivery refuses uid 0, so the Maildirs belong to a system user of their own.
if ! id "$MAIL_USER" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir "$MAILDIR_ROOT" --shell /usr/sbin/nologin "$MAIL_USER"
fi
MUID=$(id -u "$MAIL_USER")
MGID=$(id -g "$MAIL_USER")
install -d -m 0755 -o "$MUID" -g "$MGID" "$MAILDIR_ROOT"

# A self-signed certificate for 127.0.0.1 so STARTTLS can be tried against a real server (tests pass it as tlsCa).
install -d -m 0755 "$TLS_DIR"
if [ ! -s "$TLS_DIR/cert.pem" ] || [ ! -s "$TLS_DIR/key.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tocsin-test-mta" \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null
  chmod 0600 "$TLS_DIR/key.pem"
  chmod 0644 "$TLS_DIR/cert.pem"
fi

# Which domains are ours and which addresses exist: every address under a `.test` domain whose parts are lowercase
# letters, digits and . _ + - (anything else is refused at RCPT with 550). Postfix forbids $1 substitution in
# virtual_mailbox_maps (a security rule), so all of them share one Maildir, `all/`; each copy carries a
# `Delivered-To: <recipient>` header that tells whose it is (test/helpers/mta.ts reads it).
printf '%s\n' '/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.test$/ OK' > /etc/postfix/tocsin-test-domains
printf '%s\n' '/^[a-z0-9][a-z0-9._+-]*@[a-z0-9]([a-z0-9.-]*[a-z0-9])?\.test$/ all/' > /etc/postfix/tocsin-test-mailboxes
# Mail older than two days is from earlier runs: drop it so the shared Maildir stays small on a developer's machine.
find "$MAILDIR_ROOT" -type f -mtime +2 -delete 2>/dev/null || true
echo "tocsin-test-mta.localdomain" > /etc/mailname

cat > /etc/postfix/main.cf <<EOF
# Written by scripts/ci-postfix.sh (Tocsin's test MTA); rewritten each time it runs.
compatibility_level = 3.6
myhostname = tocsin-test-mta.localdomain
mydomain = localdomain
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mynetworks_style = host

# Nothing is delivered locally and nothing is relayed: only the .test domains below get mail.
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled on the Tocsin test MTA
relay_domains =
relay_transport = error:the Tocsin test MTA relays nothing
default_transport = error:the Tocsin test MTA relays nothing
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
notify_classes =

virtual_mailbox_domains = regexp:/etc/postfix/tocsin-test-domains
virtual_mailbox_maps = regexp:/etc/postfix/tocsin-test-mailboxes
virtual_mailbox_base = $MAILDIR_ROOT
virtual_uid_maps = static:$MUID
virtual_gid_maps = static:$MGID
virtual_minimum_uid = $MUID
message_size_limit = 26214400
virtual_mailbox_limit = 0

# No DNS: the tests run offline and must never reach another host.
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
smtpd_peername_lookup = no

smtpd_tls_cert_file = $TLS_DIR/cert.pem
smtpd_tls_key_file = $TLS_DIR/key.pem
smtpd_tls_security_level = may
smtpd_banner = \$myhostname ESMTP Tocsin test MTA

# Containers often have no syslog: log to a file through postlogd.
maillog_file = /var/log/postfix-tocsin.log
biff = no
append_dot_mydomain = no
readme_directory = no
EOF

# Listen on 127.0.0.1:$PORT only (not port 25); no chroot, so nothing needs copying into the spool.
postconf -MX smtp/inet 2>/dev/null || true
postconf -M "${PORT}/inet=${PORT} inet n - n - - smtpd"
postconf -M "postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd"
postconf -F '*/*/chroot = n'

postfix check
if postfix status >/dev/null 2>&1; then postfix reload >/dev/null 2>&1; else postfix start >/dev/null 2>&1; fi

# Wait until it answers (postfix start returns before smtpd listens on some machines).
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  sleep 0.2
done
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "ci-postfix.sh: postfix does not answer on 127.0.0.1:$PORT; see /var/log/postfix-tocsin.log" >&2
  exit 69
fi

echo "export TOCSIN_TEST_SMTP_URL='smtp://127.0.0.1:$PORT?tlsCa=$TLS_DIR/cert.pem'"
echo "export TOCSIN_TEST_MAILDIR_ROOT=$MAILDIR_ROOT"
