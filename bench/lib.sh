# Shared by bench/run.sh and bench/profile.sh (sourced, not run).
# Provides: PY, CONNECTOR, WORK (a temp dir), start_sink (sets SINK_PID and
# SINK_PORT), die; an EXIT trap stops smtp-sink and removes WORK, also on
# failure or Ctrl-C.

PY=/usr/bin/python3
CONNECTOR=${SMTP_CONNECTOR:-/tmp/bench-prefix/bin/smtp-connector}
SINK_PID=
SINK_PORT=
BENCH_PID=
WORK=

die() { echo "bench: $*" >&2; exit 1; }

bench_cleanup() {
	local rc=$?
	if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
		kill "$BENCH_PID" 2>/dev/null || true  # bench.py stops its own peers on SIGTERM
		wait "$BENCH_PID" 2>/dev/null || true
	fi
	if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
		kill "$SINK_PID" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$SINK_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
	fi
	[ -n "$WORK" ] && rm -rf "$WORK"
	exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The in-tree build (build/.libs) when SMTP_CONNECTOR is not set: the
# RSS scripts measure memory, not start-up time, so an uninstalled -O0
# build will do.
use_build_tree_unless_set() {
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	if [ -z "${SMTP_CONNECTOR:-}" ] && [ -x "$root/build/.libs/smtp-connector" ]; then
		CONNECTOR=$root/build/.libs/smtp-connector
		export LD_LIBRARY_PATH=$root/build/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
		export SMTP_CONNECTOR_PLUGIN_PATH=$root/build/plugins
	fi
}

check_connector() {
	[ -x "$CONNECTOR" ] || die "no connector at $CONNECTOR: build and install it out of tree, e.g.
  mkdir -p /tmp/bench-build && cd /tmp/bench-build && $(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/configure CFLAGS='-O2 -g' --prefix=/tmp/bench-prefix && make -j2 && make install
or set SMTP_CONNECTOR to an installed binary"
	if head -c 2 "$CONNECTOR" | grep -q '#!'; then
		die "$CONNECTOR is a script (a libtool wrapper?): use the installed binary"
	fi
}

make_work() {
	WORK=$(mktemp -d /tmp/smtpc-bench.XXXXXX)
	chmod 755 "$WORK"
}

# Postfix smtp-sink on a free 127.0.0.1 port, retried if another process
# takes the port meanwhile. No -d: messages are read and discarded.
start_sink() {
	local port user=()
	[ "$(id -u)" = 0 ] && user=(-u nobody)
	for _ in 1 2 3 4 5; do
		port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		/usr/sbin/smtp-sink "${user[@]}" -h sink.bench "inet:127.0.0.1:$port" 256 \
			>"$WORK/smtp-sink.log" 2>&1 &
		SINK_PID=$!
		for _ in $(seq 50); do
			kill -0 "$SINK_PID" 2>/dev/null || break
			if "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close()' "$port" 2>/dev/null; then
				SINK_PORT=$port
				echo "smtp-sink: pid $SINK_PID on 127.0.0.1:$SINK_PORT" >&2
				return 0
			fi
			sleep 0.1
		done
		kill "$SINK_PID" 2>/dev/null || true
		wait "$SINK_PID" 2>/dev/null || true
		SINK_PID=
	done
	cat "$WORK/smtp-sink.log" >&2
	die "smtp-sink did not start"
}
