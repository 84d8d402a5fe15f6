#!/bin/bash
# smtp-connector benchmark (issue 3): see bench/README.md.
#
#   bench/run.sh [--quick] [bench.py options, e.g. --only a,tls --runs 100]
#
# Uses the INSTALLED connector ($SMTP_CONNECTOR, default
# /tmp/bench-prefix/bin/smtp-connector with its installed plugin dir; a
# build-tree binary is a libtool wrapper script whose start-up is not
# representative). Starts Postfix smtp-sink on a free 127.0.0.1 port, runs
# bench/bench.py against it, and stops the sink at the end, also on failure
# or Ctrl-C. Prints the tables and writes bench/results.md ($BENCH_RESULTS).
# Exit status: 0 all targets met, 3 a target missed, 1 the run failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
RESULTS=${BENCH_RESULTS:-$HERE/results.md}
export PYTHONDONTWRITEBYTECODE=1  # importing tests/integration/harness.py must not write there

args=()
for a in "$@"; do
	case $a in
	--quick) args+=(--runs 30 --tls-runs 15 --mails 2000 --batch-rounds 1 --attach-mb 20 --attach-rounds 1) ;;
	-h | --help) exec "$PY" "$HERE/bench.py" --help ;;
	*) args+=("$a") ;;
	esac
done

check_connector
for t in /usr/sbin/smtp-sink /usr/sbin/smtp-source /usr/bin/time curl openssl "$PY"; do
	command -v "$t" >/dev/null || die "missing $t (apt-get install -y postfix time curl openssl python3)"
done
"$PY" -c 'import aiosmtpd' 2>/dev/null || die "missing python3-aiosmtpd (apt-get install -y python3-aiosmtpd)"

make_work
start_sink

# In the background with `wait`, so that INT/TERM reach the traps at once
# (bash runs traps only after a foreground command ends).
set +e
"$PY" "$HERE/bench.py" --connector "$CONNECTOR" --port "$SINK_PORT" --workdir "$WORK" \
	--results "$RESULTS" "${args[@]}" &
BENCH_PID=$!
wait "$BENCH_PID"
rc=$?
BENCH_PID=
set -e
kill -0 "$SINK_PID" 2>/dev/null || { echo "bench/run.sh: smtp-sink died during the run" >&2; rc=1; }
exit $rc
