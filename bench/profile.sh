#!/bin/bash
# bench/profile.sh: the evidence behind the "Findings" in bench/README.md,
# reproducible on any machine (instruction counts do not depend on load).
#
#   bench/profile.sh            (about 2-3 minutes; needs valgrind, strace, gcc)
#
# 1. callgrind: instructions of one process per action (connector vs curl)
#    and where the connector's extra ones go;
# 2. dlopen cost of each plugin and of libxml2 (the send email plugin links it);
# 3. the Message-ID's RAND_bytes: instructions with a getrandom() stand-in
#    preloaded (an experiment only; nothing in the tree changes);
# 4. strace -c of a 20 MiB attachment: connector vs curl -T vs curl -F;
# 5. a 1000-mail JSON Lines batch: instructions and syscalls per message;
# 6. peak RSS against batch size.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
check_connector
for t in valgrind callgrind_annotate strace gcc /usr/sbin/smtp-source /usr/bin/time; do
	command -v "$t" >/dev/null || die "missing $t (apt-get install -y valgrind strace gcc postfix time)"
done
make_work
start_sink
PLUGINS=$(dirname "$CONNECTOR")/../lib/smtp-connector
W=$WORK

"$PY" - "$W" "$SINK_PORT" <<'EOF'
import json, os, sys
w, port = sys.argv[1], int(sys.argv[2])
body = "".join("Line %02d of the benchmark message: the quick brown fox jumps over it.\n" % i
               for i in range(14))
a = {"server": "127.0.0.1", "port": port, "ssl_config": "None", "auth_type": "Passwordless",
     "sender_address": "bench@example.com"}
def req(params, **kw):
    r = {"action": "send email", "asset": a, "parameters": params}
    r.update(kw)
    return json.dumps(r) + "\n"
open(os.path.join(w, "send.json"), "w").write(req({"to": "rcpt@example.com", "subject": "b", "body": body}))
open(os.path.join(w, "tc.json"), "w").write(json.dumps({"action": "test connectivity", "asset": a, "parameters": {}}) + "\n")
with open(os.path.join(w, "batch.jsonl"), "w") as f:
    for i in range(10000):
        f.write(req({"to": "rcpt@example.com", "subject": "b %d" % i, "body": body}))
os.makedirs(os.path.join(w, "vault"))
with open(os.path.join(w, "vault", "att20"), "wb") as f:
    f.write(os.urandom(20 << 20))
open(os.path.join(w, "att.json"), "w").write(req({"to": "rcpt@example.com", "subject": "a", "body": "x",
                                                  "attachments": "att20"}, vault_dir=os.path.join(w, "vault")))
msg = ("From: bench@example.com\r\nTo: rcpt@example.com\r\nSubject: b\r\n\r\n" + body.replace("\n", "\r\n"))
open(os.path.join(w, "msg.eml"), "w", newline="").write(msg)
import base64
enc = base64.encodebytes(open(os.path.join(w, "vault", "att20"), "rb").read()).replace(b"\n", b"\r\n")
open(os.path.join(w, "att.eml"), "wb").write(b"Subject: a\r\n\r\n" + enc)
EOF
CURL_SEND=(curl -sS "smtp://127.0.0.1:$SINK_PORT" --mail-from bench@example.com --mail-rcpt rcpt@example.com)

irefs() { grep -o 'I *refs: *[0-9,]*' "$1" | tr -dc '0-9'; }
cg() { # name stdin argv...
	local name=$1 in=$2
	shift 2
	valgrind --tool=callgrind --callgrind-out-file="$W/cg.$name" "$@" <"$in" >/dev/null 2>"$W/cg.$name.log" || true
	irefs "$W/cg.$name.log"
}
incl() { # callgrind file, function name -> inclusive Ir of its first (largest) entry
	(cd "$W" && callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null) | grep -F "$2" | head -1 | awk '{gsub(",","",$1); print $1}'
}
mi() { awk -v x="${1:-0}" 'BEGIN{printf "%6.2f M", x/1e6}'; }

echo
echo "== 1. Instructions per process (callgrind; deterministic, load-independent)"
v=$(cg version /dev/null "$CONNECTOR" --version)
t=$(cg tc "$W/tc.json" "$CONNECTOR")
s=$(cg send "$W/send.json" "$CONNECTOR")
c=$(cg curl /dev/null "${CURL_SEND[@]}" --upload-file "$W/msg.eml")
printf '  %-46s %s\n' "connector --version" "$(mi "$v")" "connector test connectivity (Passwordless)" "$(mi "$t")" \
	"connector send email (1 KB body)" "$(mi "$s")" "curl CLI send (same size)" "$(mi "$c")"
echo "  connector send email, inclusive, by phase:"
for f in "rtld.c:_dl_start " "core_loader_action " "core_loader_auth_all " "curl_global_init " \
	"RAND_bytes " "send_email_run " "curl_easy_perform " "core_schema_validate "; do
	printf '    %-36s %s\n' "$f" "$(mi "$(incl "$W/cg.send" "$f")")"
done
echo "  curl CLI: _dl_start $(mi "$(incl "$W/cg.curl" "rtld.c:_dl_start ")"), curl_global_init $(mi "$(incl "$W/cg.curl" "curl_global_init ")")"

echo
echo "== 2. dlopen() cost per plugin, in a process that already has libcurl (ms over 21 runs)"
cat >"$W/dlt.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>
#include <curl/curl.h>
int main(int argc, char **argv)
{
	struct timespec a, b;
	curl_global_init(CURL_GLOBAL_ALL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	void *h = dlopen(argv[1], RTLD_LAZY | RTLD_GLOBAL);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	printf("%.3f\n", (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6);
	return 0;
}
EOF
LIBDIR=$(dirname "$CONNECTOR")/../lib
gcc -O2 -o "$W/dlt" "$W/dlt.c" -L"$LIBDIR" -Wl,-rpath,"$LIBDIR" -lsmtp-connector -lcurl -ldl
for so in "$PLUGINS"/*.so /usr/lib/x86_64-linux-gnu/libxml2.so.2; do
	n=$(ldd "$so" | wc -l)
	for _ in $(seq 21); do "$W/dlt" "$so"; done | sort -n |
		awk -v so="$(basename "$so")" -v n="$n" '{a[NR]=$1} END{printf "  %-34s %2d libs  min %6.2f  median %6.2f\n", so, n, a[1], a[int((NR+1)/2)]}'
done

echo
echo "== 3. Message-ID randomness: RAND_bytes (OpenSSL DRBG set-up on first use) vs getrandom()"
cat >"$W/randshim.c" <<'EOF'
#include <sys/random.h>
int RAND_bytes(unsigned char *buf, int num) { return getrandom(buf, num, 0) == num; }
EOF
gcc -O2 -shared -fPIC -o "$W/randshim.so" "$W/randshim.c"
valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$W/cg.shim.%p" \
	env LD_PRELOAD="$W/randshim.so" "$CONNECTOR" <"$W/send.json" >/dev/null 2>"$W/cg.shim.log" || true
r=$(irefs "$W/cg.shim.log")
echo "  send email: $(mi "$s") as built; $(mi "$r") with RAND_bytes -> getrandom() preloaded"

echo
echo "== 4. 20 MiB attachment: syscalls (strace -c -f)"
sc() { # label argv...
	local label=$1
	shift
	strace -c -f -o "$W/st" "$@" >/dev/null 2>&1 || true
	awk -v l="$label" '$NF=="sendto"||$NF=="write"{s+=$4} $NF=="poll"{p=$4} $NF=="read"||$NF=="recvfrom"{r+=$4} END{printf "  %-44s send/write %7d  poll %7d  read/recv %6d\n", l, s, p, r}' "$W/st"
}
sc "connector (curl_mime file part, base64)" sh -c "exec '$CONNECTOR' < '$W/att.json'"
sc "curl -F '=@file;encoder=base64' (curl_mime)" "${CURL_SEND[@]}" -F "=@$W/vault/att20;encoder=base64"
sc "curl --upload-file (pre-encoded, $(($(stat -c %s "$W/att.eml") >> 20)) MiB)" "${CURL_SEND[@]}" --upload-file "$W/att.eml"

echo
echo "== 5. JSON Lines batch, 1000 mails: per message"
head -1000 "$W/batch.jsonl" >"$W/b1000.jsonl"
b=$(cg batch "$W/b1000.jsonl" "$CONNECTOR")
echo "  connector: $(awk -v x="$b" 'BEGIN{printf "%.0f k", x/1000/1000}') instructions per message (whole process / 1000); inclusive per message:"
for f in "send_email_run " "compose_begin " "compose_send " "curl_easy_perform " "core_message_apply " \
	"core_schema_validate " "core_report_print " "core_report_free " "core_requests_read " "core_loader_action " \
	"core_vasprintf " "sc_message_ensure_ids " "RAND_bytes " "sc_text_encode " "sc_body_encoding "; do
	printf '    %-28s %6.1f k\n' "$f" "$(awk -v x="$(incl "$W/cg.batch" "$f")" 'BEGIN{print x/1000/1000}')"
done
gcc -O2 -o "$W/curl_batch" "$HERE/curl_batch.c" -lcurl
fl=$(cg floor /dev/null "$W/curl_batch" 127.0.0.1 "$SINK_PORT" 1000 "$W/msg.eml" debugcb)
so=$(cg source /dev/null /usr/sbin/smtp-source -d -m 1000 -s 1 -l 1000 "127.0.0.1:$SINK_PORT")
echo "  whole process / 1000: libcurl floor (curl_batch.c, reused handle) $(awk -v x="$fl" 'BEGIN{printf "%.0f k", x/1e6}'), smtp-source $(awk -v x="$so" 'BEGIN{printf "%.0f k", x/1e6}')"
sc "connector, 1000 mails (+1 write/msg: result)" sh -c "exec '$CONNECTOR' < '$W/b1000.jsonl'"
sc "libcurl floor (curl_batch.c), 1000 mails" "$W/curl_batch" 127.0.0.1 "$SINK_PORT" 1000 "$W/msg.eml" debugcb
sc "smtp-source -d -m 1000 -s 1 -l 1000" /usr/sbin/smtp-source -d -m 1000 -s 1 -l 1000 "127.0.0.1:$SINK_PORT"

echo
echo "== 6. Peak RSS against JSON Lines batch size"
for n in 1 1000 5000 10000; do
	head -"$n" "$W/batch.jsonl" >"$W/bn.jsonl"
	/usr/bin/time -f "%M %e" -o "$W/tm" "$CONNECTOR" <"$W/bn.jsonl" >/dev/null 2>&1
	read -r kb sec <"$W/tm"
	printf '  %6d requests: peak RSS %6.1f MiB, %5.2f s\n' "$n" "$(awk -v k="$kb" 'BEGIN{print k/1024}')" "$sec"
done
