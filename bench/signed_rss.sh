#!/bin/bash
# Peak RSS of a signed `send email` with a large vault attachment, and of
# `smtp-connector verify` on a large message (doc/signatures.md: signing
# reads attachments twice, once for bh= and once for the wire; memory
# must stay flat).
#
#   bench/signed_rss.sh [MiB]        (default 100)
#
# Each measured once with /usr/bin/time -v, against a local smtp-sink:
#   unsigned   the attachment, no secret_key
#   signed     the same with secret_key (libcurl serialises the MIME tree
#              twice: to the in-process hash peer, then to the server)
#   verify     `verify` on a message of that size read from a file (the
#              body streamed through the hash; headers at most 1 MiB)
# Prints a table; appends/replaces the "signed RSS" section of
# bench/results.md ($BENCH_RESULTS). The machine may be shared: wall times
# are shown for orientation only.
set -eu
set -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIB=${1:-100}
RESULTS=${BENCH_RESULTS:-$HERE/results.md}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"

use_build_tree_unless_set
check_connector
[ -x /usr/bin/time ] || die "needs /usr/bin/time (GNU time)"
make_work
start_sink
export SMTP_CONNECTOR_STATE_DIR=$WORK/state
KEY=bench-signing-key

"$PY" - "$WORK" "$SINK_PORT" "$MIB" "$KEY" <<'PYEOF'
import json, os, sys
work, port, mib, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
vd = os.path.join(work, "vault")
os.makedirs(vd, exist_ok=True)
with open(os.path.join(vd, "big"), "wb") as f:
    for _ in range(mib):
        f.write(os.urandom(1 << 20))
base = {"server": "127.0.0.1", "port": port, "ssl_config": "None",
        "sender_address": "soar@corp.example"}
for name, extra in (("unsigned", {}), ("signed", {"secret_key": key})):
    req = {"action": "send email", "vault_dir": vd, "asset": dict(base, **extra),
           "parameters": {"to": "a@corp.example", "body": "see attached", "attachments": "big"}}
    with open(os.path.join(work, name + ".json"), "w") as f:
        json.dump(req, f)
        f.write("\n")
# a message of the same size for verify: headers, then base64 lines
with open(os.path.join(work, "verify.json"), "wb") as f:
    f.write(b"From: a@corp.example\r\nSubject: big\r\n"
            b"X-SMTP-Connector-Signature: v=2; a=hmac-sha256; t=1; bh="
            b"frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=; h=from:subject; hh=00000000:00000000;"
            b" b=" + b"0" * 64 + b"\r\n\r\n")
    line = b"A" * 76 + b"\r\n"
    for _ in range(mib * (1 << 20) // 57):
        f.write(line)
PYEOF

peak() { # LABEL REQUEST ARGS... -> "label kib rc seconds"
	local label=$1 req=$2 rc=0
	shift 2
	/usr/bin/time -v "$@" <"$WORK/$req.json" >"$WORK/$label.out" 2>"$WORK/$label.time" || rc=$?
	local kib wall
	kib=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$WORK/$label.time")
	wall=$(sed -n 's/^\s*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/$label.time")
	echo "$label $kib $rc $wall"
}

{
	peak unsigned unsigned "$CONNECTOR"
	peak signed signed "$CONNECTOR"
	SMTP_CONNECTOR_SECRET_KEY=$KEY peak verify verify "$CONNECTOR" verify
} >"$WORK/peaks.txt"

"$PY" - "$WORK" "$MIB" "$RESULTS" "$CONNECTOR" <<'PYEOF'
import datetime, json, os, re, sys
work, mib, results, connector = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
desc = {"unsigned": "send email, %d MiB vault attachment, no secret_key" % mib,
        "signed": "the same with secret_key (two passes over the attachment)",
        "verify": "verify on a %d MiB message (stdin)" % mib}
out = ["<!-- signed_rss -->", "## (f) %d MiB attachment signed: peak RSS (bench/signed_rss.sh)" % mib,
       "", "- Date: %s; connector %s; shared 2-core machine (wall times indicative only)"
       % (datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), connector),
       "- Peak RSS from /usr/bin/time -v, one run each, smtp-sink on loopback.", "",
       "| run | peak RSS MiB | wall | exit | outcome |", "|---|---:|---:|---:|---|"]
for line in open(os.path.join(work, "peaks.txt")):
    label, kib, rc, wall = line.split()
    res = open(os.path.join(work, label + ".out")).read().strip()
    outcome = json.loads(res)["status"] if res.startswith("{") else res[:60]
    out.append("| %s | %.1f | %s | %s | %s |" % (desc[label], int(kib) / 1024, wall, rc, outcome))
out += ["", "verify's message is not validly signed (made up: its hh=, bh= and b= are not",
        "the real ones): the figure is the cost of reading and hashing it all, the same",
        "for a valid one.",
        "<!-- /signed_rss -->"]
section = "\n".join(out) + "\n"
text = open(results).read() if os.path.exists(results) else ""
if "<!-- signed_rss -->" in text:
    text = re.sub(r"<!-- signed_rss -->.*?<!-- /signed_rss -->\n", lambda m: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section
open(results, "w").write(text)
print(section)
PYEOF
