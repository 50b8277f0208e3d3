#!/bin/sh
# Generates the lab's certificates once (they are committed; re-run only to change them).
# The lab is loopback-only test infrastructure: these keys protect nothing and must never be reused.
#
# ECDSA P-256 for most hosts (cheap server-side handshakes: the lab's CPU counts against the scanner
# in the benchmark), RSA-2048 where real estates typically have it (an older commercial certificate,
# and Exchange's own self-signed certificate, which setup creates as RSA-2048 with CN = server name).
# Distinct CNs/SANs (mail.<org>.example) give attribution work something to match on.
set -eu
cd "$(dirname "$0")"
DAYS=3650

ca() {
  openssl ecparam -name prime256v1 -genkey -noout -out lab-ca.key.pem
  openssl req -x509 -new -key lab-ca.key.pem -sha256 -days "$DAYS" -out lab-ca.cert.pem \
    -subj "/C=XX/O=Tocsin Lab/CN=Tocsin Lab Issuing CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# leaf NAME KEYTYPE(ec|rsa) SUBJECT SANS
leaf() {
  name=$1; type=$2; subj=$3; sans=$4
  if [ "$type" = ec ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.key.pem"
  else
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name.key.pem" 2>/dev/null
  fi
  openssl req -new -key "$name.key.pem" -subj "$subj" -out "$name.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$sans" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA lab-ca.cert.pem -CAkey lab-ca.key.pem -CAcreateserial \
    -sha256 -days "$DAYS" -extfile "$name.ext" -out "$name.cert.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

# self-signed NAME SUBJECT SANS (RSA-2048, as Exchange setup makes its default certificate)
selfsigned() {
  name=$1; subj=$2; sans=$3
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$name.key.pem" 2>/dev/null
  openssl req -x509 -new -key "$name.key.pem" -sha256 -days "$DAYS" -subj "$subj" \
    -addext "subjectAltName=$sans" -addext "extendedKeyUsage=serverAuth" -out "$name.cert.pem"
}

ca
leaf mail-alpha   ec  "/C=XX/O=Alpha Example/CN=mail.alpha.example"     "DNS:mail.alpha.example,DNS:autodiscover.alpha.example,DNS:owa.alpha.example"
leaf mail-bravo   ec  "/C=XX/O=Bravo Example/CN=mail.bravo.example"     "DNS:mail.bravo.example,DNS:autodiscover.bravo.example"
leaf mail-charlie ec  "/C=XX/O=Charlie Example/CN=mail.charlie.example" "DNS:mail.charlie.example,DNS:autodiscover.charlie.example,DNS:webmail.charlie.example"
leaf mail-delta   ec  "/C=XX/O=Delta Example/CN=*.delta.example"        "DNS:*.delta.example,DNS:delta.example"
leaf mail-echo    rsa "/C=XX/O=Echo Example/CN=mail.echo.example"       "DNS:mail.echo.example,DNS:autodiscover.echo.example,DNS:legacy.echo.example"
selfsigned exch-selfsigned "/CN=EXCH01" "DNS:EXCH01,DNS:EXCH01.corp.foxtrot.local"
leaf outlook      ec  "/C=XX/O=Tocsin Lab (Exchange Online stand-in)/CN=outlook.com" "DNS:outlook.com,DNS:*.outlook.com,DNS:outlook.office365.com,DNS:*.office365.com,DNS:outlook.office.com,DNS:*.outlook.office.com"
leaf phish        ec  "/CN=owa-login.secure-mailbox.example"           "DNS:owa-login.secure-mailbox.example"
leaf web          ec  "/C=XX/O=Golf Example/CN=www.golf.example"        "DNS:www.golf.example,DNS:golf.example"
leaf localhost    ec  "/CN=localhost"                                  "DNS:localhost,IP:127.0.0.1"
rm -f lab-ca.srl lab-ca.cert.srl
echo "certificates written to $(pwd)"
