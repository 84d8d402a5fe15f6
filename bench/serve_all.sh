#!/bin/bash
# bench/serve_all.sh: issue 9's benchmark in one run (bench/serve_all.py):
# rounds of smtp-sink, serve --maildir and serve --url (spool mode, to
# bench/http_count.c), alternating, then serve's RSS with 100 concurrent
# sessions and one 100 MiB message. Prints a Markdown section for
# bench/results.md and the README. About 1 minute per round at N=20000.
#
#   bench/serve_all.sh                     N=20000 S=20 L=2000 ROUNDS=3
#   N=5000 ROUNDS=1 bench/serve_all.sh     quicker
#   WHAT_IF=1 bench/serve_all.sh           also maildir without fsync, without
#                                          the index, and 4 delivery workers
#   bench/serve_all.sh A=build-old/smtp-connector B=build/smtp-connector
#                                          the same, each serve mode once per build (A/B)
# Default connector: build/smtp-connector (the libtool wrapper execs the
# real binary, so the pid measured is serve's); a build tree's plugins/
# beside the binary are passed as --plugin-dir.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
args=()
[ $# -eq 0 ] && set -- "build=${SMTP_CONNECTOR:-$HERE/../build/smtp-connector}"
for ab in "$@"; do
	label=${ab%%=*} conn=${ab#*=}
	[ -x "$conn" ] || die "no connector at $conn"
	args+=(--label "$label" --connector "$(cd "$(dirname "$conn")" && pwd)/$(basename "$conn")")
done
# each build's own plugins (--plugin-dir), never another's from the environment
unset SMTP_CONNECTOR_PLUGIN_PATH
make_work
cc -O2 -o "$WORK/http_count" "$HERE/http_count.c" $(pkg-config --cflags --libs libevent) ||
	die "cannot build bench/http_count.c (libevent-dev)"
# The runs' directories go under a directory marked "top of hierarchy"
# (chattr +T): ext4's Orlov allocator then puts each new subdirectory in
# a block group of its own instead of /tmp's. On ext4 without a journal
# (this VM) creating a file scans the group's inodes deleted in the last
# minute or more (recently_deleted() in perf): in /tmp's group, after
# other jobs' test directories were removed, a create cost 0.46 ms,
# against 0.02 ms in a group of its own. That is the machine, not serve.
mkdir -p "$WORK/runs"
chattr +T "$WORK/runs" 2>/dev/null || echo "bench: chattr +T failed (not ext4?): no effect" >&2
start_sink
"$PY" "$HERE/serve_all.py" "${args[@]}" --sink-port "$SINK_PORT" --sink-pid "$SINK_PID" \
	--http-count "$WORK/http_count" --work "$WORK/runs" --messages "${N:-20000}" \
	--sessions "${S:-20}" --size "${L:-2000}" --rounds "${ROUNDS:-3}" ${NO_RSS:+--no-rss} ${WHAT_IF:+--what-if}
