#!/bin/bash
# serve benchmark (issue 9), side by side in one run:
#   smtp-source -s 20 -m $N -l 2000 against
#     1. Postfix smtp-sink (discards everything: the ceiling)
#     2. smtp-connector serve --maildir (fsync of file, dir and index on)
#     3. the same with "fsync": false (what the disk costs)
#   then serve's peak RSS with 100 concurrent sessions, and with one
#   100 MiB message (memory must not grow with message size).
#
#   bench/serve.sh            # N=20000
#   N=2000 bench/serve.sh     # quicker
#
# Uses $SMTP_CONNECTOR (default: build/smtp-connector) with the plugins in
# $SMTP_CONNECTOR_PLUGIN_PATH (default: build/plugins). Prints a Markdown
# table; paste it into bench/results.md. Not a test: no assertion here.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$HERE")
CONNECTOR=${SMTP_CONNECTOR:-$TOP/build/smtp-connector}
export SMTP_CONNECTOR_PLUGIN_PATH=${SMTP_CONNECTOR_PLUGIN_PATH:-$TOP/build/plugins}
N=${N:-20000}
PY=/usr/bin/python3
for t in /usr/sbin/smtp-sink /usr/sbin/smtp-source "$PY" "$CONNECTOR"; do
	[ -x "$t" ] || { echo "bench/serve.sh: missing $t" >&2; exit 1; }
done

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rate() { "$PY" -c "import sys; print('%.0f' % ($N / ($2 - $1)))" "" "$1" "$2"; }
secs() { "$PY" -c "print('%.2f' % ($2 - $1))" "$1" "$2"; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

source_run() { # PORT -> sets T0 T1
	T0=$(now)
	/usr/sbin/smtp-source -s 20 -m "$N" -l 2000 -f bench@example.com -t sink@example.com \
		"127.0.0.1:$1" >/dev/null
	T1=$(now)
}

# 1. smtp-sink
port=$(free_port)
user=(); [ "$(id -u)" -eq 0 ] && user=(-u nobody)
/usr/sbin/smtp-sink "${user[@]}" "127.0.0.1:$port" 1000 &
PIDS+=($!)
sleep 0.3
source_run "$port"
sink_rate=$(rate "$T0" "$T1")
sink_secs=$(secs "$T0" "$T1")

# 2, 3. serve --maildir, with and without fsync
start_serve() { # CONFIG-JSON -> sets SPID SPORT
	local d=$WORK/serve-$RANDOM
	mkdir -p "$d"
	printf '%s\n' "$1" > "$d/serve.json"
	"$CONNECTOR" serve --config "$d/serve.json" --state-dir "$d/state" 2>"$d/log" &
	SPID=$!
	PIDS+=("$SPID")
	SPORT=""
	for _ in $(seq 100); do
		SPORT=$(sed -n 's/^smtp-connector serve listening at 127.0.0.1:\([0-9]*\).*/\1/p' "$d/log")
		[ -n "$SPORT" ] && break
		sleep 0.05
	done
	[ -n "$SPORT" ] || { cat "$d/log" >&2; exit 1; }
	SDIR=$d
}
stop_serve() { kill -TERM "$SPID"; wait "$SPID" || true; }

declare -A R S H C
for mode in fsync nofsync; do
	fs=true; [ $mode = nofsync ] && fs=false
	start_serve "{\"listen\":[{\"host\":\"127.0.0.1\",\"port\":0}],\"limits\":{\"connections\":500},
	  \"delivery\":{\"plugin\":\"maildir\",\"dir\":\"$WORK/md-$mode\",\"fsync\":$fs}}"
	source_run "$SPORT"
	R[$mode]=$(rate "$T0" "$T1")
	S[$mode]=$(secs "$T0" "$T1")
	H[$mode]=$(hwm "$SPID")
	C[$mode]=$(find "$WORK/md-$mode/new" -type f | wc -l)
	stop_serve
done

# RSS: 100 concurrent sessions held open mid-transaction, then one 100 MiB message
start_serve "{\"listen\":[{\"host\":\"127.0.0.1\",\"port\":0}],\"limits\":{\"connections\":500,\"message_size\":209715200},
  \"delivery\":{\"plugin\":\"maildir\",\"dir\":\"$WORK/md-rss\"}}"
idle=$(rss "$SPID")
"$PY" - "$SPORT" "$SPID" > "$WORK/rss.txt" <<'PY'
import smtplib, sys
port, pid = int(sys.argv[1]), sys.argv[2]
def rss():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
conns = []
for i in range(100):
    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
    s.ehlo("c%d" % i)
    s.mail("m%d@example.com" % i)
    s.rcpt("r@example.com")
    s.putcmd("data")
    s.getreply()
    s.send(b"Subject: held open\r\n\r\n" + b"x" * 100000 + b"\r\n")
    conns.append(s)
r100 = rss()
for s in conns:
    s.send(b".\r\n")
    s.getreply()
    s.quit()
line = b"y" * 998 + b"\r\n"
body = b"Subject: 100 MiB\r\n\r\n" + line * (100 * 1024 * 1024 // len(line))
s = smtplib.SMTP("127.0.0.1", port, timeout=120)
s.sendmail("big@example.com", ["r@example.com"], body)
s.quit()
print("%.1f %.1f" % (r100, rss()))
PY
read -r rss100 rssbig < "$WORK/rss.txt"
peak=$(hwm "$SPID")
stop_serve

pct() { "$PY" -c "print('%.0f %%' % (100.0 * $1 / $2))"; }
cat <<EOF2
serve benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, smtp-source -s 20 -m $N -l 2000 (one message per connection)

| target | msgs/s | time | vs smtp-sink | delivered | peak RSS |
|---|---|---|---|---|---|
| Postfix smtp-sink (discards: the ceiling) | $sink_rate | ${sink_secs} s | 100 % | - | - |
| serve --maildir, fsync on | ${R[fsync]} | ${S[fsync]} s | $(pct "${R[fsync]}" "$sink_rate") | ${C[fsync]} | ${H[fsync]} MiB |
| serve --maildir, fsync off | ${R[nofsync]} | ${S[nofsync]} s | $(pct "${R[nofsync]}" "$sink_rate") | ${C[nofsync]} | ${H[nofsync]} MiB |

serve RSS: idle ${idle} MiB; 100 concurrent sessions each mid-DATA ${rss100} MiB;
after a 100 MiB message ${rssbig} MiB; peak over that run ${peak} MiB.
EOF2
