#!/bin/bash
# The README's first command: install what the build needs (Debian 12),
# build, start a local capture server (aiosmtpd, on a free loopback port),
# run a real test connectivity and a real send email through it, show what
# the server received, and stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

# Install what is missing (apt-get; quick when all is there).
. tests/setup-deps.sh
setup_deps demo

echo "== building in build/"
[ -x configure ] || ./autogen.sh >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q
make -s -j"$(nproc)"
cd "$top"

work=$(mktemp -d)
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

echo "== starting a capture server (aiosmtpd) on 127.0.0.1"
/usr/bin/python3 tests/servers/smtpd.py --port 0 --spool "$work/spool" --ready "$work/ready" \
	--log "$work/smtp.log" &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
port=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/ready")
echo "   listening on port $port"

export SMTP_CONNECTOR_PLUGIN_PATH="$top/build/plugins"
export SMTP_CONNECTOR_STATE_DIR="$work/state"
asset="{\"server\": \"127.0.0.1\", \"port\": $port, \"ssl_config\": \"None\", \"sender_address\": \"SOC Automation <soar@corp.example>\"}"

echo "== test connectivity"
echo "{\"action\": \"test connectivity\", \"asset\": $asset}" | build/smtp-connector
echo "== send email"
printf 'quarterly,numbers\n1,2\n' > "$work/report.csv"
echo "{\"name\": \"report.csv\", \"content_type\": \"text/csv\"}" > "$work/report.csv.json"
cat <<JSON | build/smtp-connector
{"action": "send email", "vault_dir": "$work", "asset": $asset,
 "parameters": {"to": "\"Doe, Jane\" <jane@corp.example>; oncall@corp.example",
                "subject": "Incident 42: phishing wave – triage needed",
                "body": "<html><body><h1>Incident 42</h1><p>See <a href='https://soar.corp.example/case/42'>the case</a>.</p></body></html>",
                "attachments": "report.csv"}}
JSON

echo "== what the server received"
/usr/bin/python3 - "$work/spool" <<'PY'
import base64, email, email.policy, glob, json, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    rec = json.load(open(f))
    msg = email.message_from_bytes(base64.b64decode(rec["data_b64"]), policy=email.policy.default)
    print(f"-- envelope: MAIL FROM {rec['mail_from']}  RCPT TO {', '.join(rec['rcpt_tos'])}")
    for h in ("From", "To", "Subject", "Date", "Message-ID"):
        print(f"   {h}: {msg[h]}")
    for part in msg.walk():
        print(f"   part {part.get_content_type()}" + (f"  ({part.get_filename()})" if part.get_filename() else ""))
PY
echo "== done: the server is stopped when this script exits"
