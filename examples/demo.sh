#!/bin/bash
# The README's first command: install what the build needs (Debian 12),
# build, start this project's own capture server (`smtp-connector serve
# --maildir`, on a free loopback port), run a real test connectivity and a
# real send email through it, show what arrived in the Maildir, and stop
# the server.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

deps=(autoconf automake libtool libltdl-dev pkg-config gcc make libcurl4-openssl-dev libssl-dev
      libcjson-dev libxml2-dev libevent-dev ca-certificates)
missing=()
for p in "${deps[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	echo "== installing: ${missing[*]}"
	sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
fi

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

export SMTP_CONNECTOR_PLUGIN_PATH="$top/build/plugins"
echo "== starting the capture server: smtp-connector serve --maildir (port 0: any free one)"
build/smtp-connector serve --maildir "$work/Maildir" --port 0 --state-dir "$work/serve-state" \
	2>"$work/serve.log" &
server_pid=$!
port=""
for _ in $(seq 100); do
	port=$(sed -n 's/^smtp-connector serve listening at 127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.log")
	[ -n "$port" ] && break
	sleep 0.1
done
[ -n "$port" ] || { cat "$work/serve.log"; echo "serve did not start" >&2; exit 1; }
echo "   listening on port $port"

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

echo "== what arrived: $work/Maildir/index.jsonl"
for _ in $(seq 50); do [ -s "$work/Maildir/index.jsonl" ] && break; sleep 0.1; done
cat "$work/Maildir/index.jsonl"
echo "== the same message read back with Python's mailbox module"
/usr/bin/python3 - "$work/Maildir" <<'PY'
import email, email.policy, mailbox, sys
for key, m in mailbox.Maildir(sys.argv[1], factory=None).items():
    msg = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
    print(f"-- {key}")
    print(f"   envelope: {msg['Return-Path']} -> {', '.join(msg.get_all('Delivered-To'))}")
    for h in ("From", "To", "Subject", "Date", "Message-ID"):
        print(f"   {h}: {msg[h]}")
    for part in msg.walk():
        print(f"   part {part.get_content_type()}" + (f"  ({part.get_filename()})" if part.get_filename() else ""))
PY
echo "== stopping the server (SIGTERM)"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
echo "   exit status $status; its log:"
sed 's/^/   | /' "$work/serve.log"
[ "$status" -eq 0 ]
echo "== done"
