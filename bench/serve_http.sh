#!/bin/bash
# bench/serve_http.sh: `smtp-connector serve --url` (http sink, spool mode)
# against Postfix smtp-sink in one run: acceptance rate with fsync on, the
# time until the endpoint has every message, the delay from a 250 to its
# POST, peak RSS. Writes its section of bench/results.md (between the
# serve_http markers; the rest of the file is left alone).
#
#   bench/serve_http.sh                 (N=20000 S=20 L=2000 by default)
#   ENDPOINT=python bench/serve_http.sh (the test endpoint instead of bench/http_count.c)
#   SMTP_CONNECTOR=build/smtp-connector SMTP_CONNECTOR_PLUGIN_PATH=build/plugins bench/serve_http.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/lib.sh"
CONNECTOR=${SMTP_CONNECTOR:-$HERE/../build/smtp-connector}
export SMTP_CONNECTOR_PLUGIN_PATH=${SMTP_CONNECTOR_PLUGIN_PATH:-$(cd "$(dirname "$CONNECTOR")" && pwd)/plugins}
[ -x "$CONNECTOR" ] || die "no connector at $CONNECTOR (set SMTP_CONNECTOR)"
make_work
# the C endpoint unless ENDPOINT=python: the figures should be serve's
endpoint=()
if [ "${ENDPOINT:-c}" != python ]; then
	cc -O2 -o "$WORK/http_count" "$HERE/http_count.c" $(pkg-config --cflags --libs libevent) ||
		die "cannot build bench/http_count.c (libevent-dev)"
	endpoint=(--http-count "$WORK/http_count")
fi
start_sink
"$PY" "$HERE/serve_http.py" --connector "$CONNECTOR" --sink-port "$SINK_PORT" --work "$WORK" "${endpoint[@]}" \
	--messages "${N:-20000}" --sessions "${S:-20}" --size "${L:-2000}" >"$WORK/section.md"
cat "$WORK/section.md"
out=$HERE/results.md
"$PY" - "$out" "$WORK/section.md" <<'PYEOF'
import sys
out, section = sys.argv[1], open(sys.argv[2]).read()
begin, end = "<!-- serve_http.sh: begin -->\n", "<!-- serve_http.sh: end -->\n"
text = open(out).read() if __import__("os").path.exists(out) else ""
block = begin + section + end
if begin in text and end in text:
    text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip("\n") + "\n\n" + block
open(out, "w").write(text)
PYEOF
