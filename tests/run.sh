#!/bin/bash
# The test command: run from the repository root (Debian 12):
#
#     tests/run.sh
#
#  0. tests/setup-deps.sh: installs what is missing (apt-get, through sudo
#     when not root; a Node >= 20.19; npm ci in tests/), a quick no-op
#     when everything is present; SETUP_DEPS=0 skips it
#  1. ./autogen.sh
#  2. build/      configure --enable-werror, make, make check, make lint,
#                 make distcheck (its own build from the tarball, with the
#                 unit tests and the layout-dependent integration tests)
#  3. build-san/  configure --enable-sanitizers --enable-werror, make check
#                 (ASan + UBSan, the same unit and integration tests)
#  4. build-fuzz/ every tests/fuzz/fuzz_*.c built with clang
#                 -fsanitize=fuzzer,address,undefined and run FUZZ_SECONDS
#                 (default 20) on its seeds in tests/fuzz/corpus/<name>/;
#                 any crash, leak or sanitizer report fails
#  5. counts every test case (Automake's *.trs :test-result: lines, plus one
#     case per fuzz target and per build step) and prints, as the last line,
#     "N passed, N failed, N skipped"; exits 1 if anything failed.
#
# Each fuzz target names what it links on comment lines at its top:
#     // fuzz-sources: core/address.c core/error.c
#     // fuzz-pkgs: libxml-2.0            (optional; pkg-config modules)
# The directories of those sources, include/ and core/ are on the include
# path; libcjson and libcrypto are always available.
#
# Environment: JOBS (default 2), FUZZ_SECONDS (default 20), SKIP_SAN=1,
# SKIP_DISTCHECK=1, DISTCHECK_TESTS (see distcheck() below),
# SKIP_FUZZ=1 (for a quicker local run; CI runs everything),
# HARNESS_NO_SKIP=1 (set by .ci/run: every skipped case counts as failed).
# Logs of each step are kept in build/run-logs/.
set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
LOGS=$ROOT/build/run-logs
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

# The set-up every other step needs: when it fails nothing can run.
# shellcheck source=tests/setup-deps.sh
. "$ROOT/tests/setup-deps.sh"
if ! setup_deps test; then
	echo "== set-up failed (see above): no test ran"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi

STEP_FAIL=0     # build steps that failed (each counts as one failed case)
STEP_PASS=0
FUZZ_PASS=0
FUZZ_FAIL=0
FAILED_NAMES=()
CHECKED_DIRS=()
T0=$(date +%s)

say() { printf '== %s\n' "$*"; }

# step NAME LOGFILE COMMAND...: run, show the tail on failure, time it.
step() {
	local name=$1 log=$2
	shift 2
	local t=$(date +%s)
	say "$name"
	if "$@" >"$log" 2>&1; then
		say "$name: ok ($(( $(date +%s) - t )) s)"
		STEP_PASS=$((STEP_PASS + 1))
		return 0
	fi
	say "$name: FAILED ($(( $(date +%s) - t )) s); last lines of $log:"
	tail -n 40 "$log" | sed 's/^/   | /'
	STEP_FAIL=$((STEP_FAIL + 1))
	FAILED_NAMES+=("$name")
	return 1
}

# make check's own outcome is counted through the .trs files; a failed
# make check that recorded no failed case counts as a failed step.
check_step() {
	local name=$1 dir=$2
	local t=$(date +%s)
	say "$name"
	find "$dir" -name '*.trs' -delete 2>/dev/null
	if make -C "$dir" -j"$JOBS" check >"$LOGS/$name.log" 2>&1; then
		say "$name: ok ($(( $(date +%s) - t )) s)"
	else
		say "$name: test failures ($(( $(date +%s) - t )) s); failing cases:"
		grep -h -E '^(FAIL|ERROR|XPASS):' "$LOGS/$name.log" | sed 's/^/   | /' | head -n 60
		# make check failed: unless a .trs records a failed case, the
		# failure would not be counted at all (no test ran, or make
		# failed after the tests), so it counts as a failed step
		if ! find "$dir" -name '*.trs' -exec grep -l -E '^:test-result: (FAIL|XPASS|ERROR)' {} + \
			| grep -q .; then
			say "$name: make check failed with no failed test case recorded; last lines of $LOGS/$name.log:"
			tail -n 40 "$LOGS/$name.log" | sed 's/^/   | /'
			STEP_FAIL=$((STEP_FAIL + 1))
			FAILED_NAMES+=("$name")
		fi
	fi
}

build_and_check() {   # DIR LABEL CONFIGURE-ARGS...
	local dir=$1 label=$2
	shift 2
	mkdir -p "$ROOT/$dir"
	# only this run's results count: not those of an earlier run in a
	# tree whose configure or make fails now, nor of a skipped tree
	find "$ROOT/$dir" -name '*.trs' -delete 2>/dev/null
	CHECKED_DIRS+=("$dir")
	step "$label configure" "$LOGS/$label-configure.log" \
		sh -c 'cd "$1" && shift && "$@"' sh "$ROOT/$dir" "$ROOT/configure" "$@" || return
	step "$label make" "$LOGS/$label-make.log" make -C "$ROOT/$dir" -j"$JOBS" || return
	check_step "$label-check" "$ROOT/$dir"
}

# valgrind where it is cheap: the unit-test binaries, and the connector
# itself (through libtool, so valgrind sees the real binary and the
# dlopened plugins) across the send email integration tests.
valgrind_suite() {
	local b=$ROOT/build t
	local vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --suppressions=$ROOT/tests/valgrind.supp"
	for t in "$b"/tests/unit/test_*; do
		case ${t##*/} in *.*) continue ;; esac
		[ -x "$t" ] || continue
		echo "valgrind $t"
		CMOCKA_MESSAGE_OUTPUT=stdout $vg "$t" >/dev/null || { echo "valgrind failed: $t"; return 1; }
	done
	SMTP_CONNECTOR="$b/smtp-connector" SMTP_CONNECTOR_PLUGIN_PATH="$b/plugins" \
	SMTP_CONNECTOR_KEEP_MODULES=1 SMTP_CONNECTOR_WRAPPER="$b/libtool --mode=execute $vg" \
		/usr/bin/python3 "$ROOT/tests/integration/test_send_email.py" >"$LOGS/valgrind-send.log" 2>&1
	tail -n 3 "$LOGS/valgrind-send.log"
	grep -q '^# [0-9]* passed, 0 failed' "$LOGS/valgrind-send.log"
}

# make distcheck: the tarball is complete, builds out of tree from a
# read-only source, and installs and uninstalls cleanly. The suite has
# already run twice (build/, build-san/), so the tarball's build runs the
# unit tests and the integration tests that depend on the tree's layout
# (schemas, plugins found and installed, the example plugin, the OAuth
# peers from a tests/ without node_modules): DISTCHECK_TESTS="..."
# chooses others, DISTCHECK_TESTS=all the whole suite.
distcheck() {
	local t tests=()
	for t in "$ROOT"/build/tests/unit/test_*; do
		case ${t##*/} in *.*) continue ;; esac
		[ -x "$t" ] && tests+=("tests/unit/${t##*/}")
	done
	tests+=(tests/integration/test_foundation.py tests/integration/test_schemas.py
		tests/integration/test_setup.py tests/integration/test_example_plugin.py
		tests/integration/test_oauth.py)
	local want=${DISTCHECK_TESTS:-${tests[*]}}
	local args=()
	[ "$want" = all ] || args=(TESTS="$want")
	SMTP_CONNECTOR_NODE_MODULES=$ROOT/tests/node_modules \
		make -C "$ROOT/build" -j"$JOBS" distcheck "${args[@]}"
}

# ---------------------------------------------------------------- builds
T_BUILD=$(date +%s)
if step autogen "$LOGS/autogen.log" ./autogen.sh; then
	build_and_check build build --enable-werror
	step lint "$LOGS/lint.log" make -C "$ROOT/build" lint
	[ "${SKIP_DISTCHECK:-}" = 1 ] || step distcheck "$LOGS/distcheck.log" distcheck
	[ "${SKIP_VALGRIND:-}" = 1 ] || step valgrind "$LOGS/valgrind.log" valgrind_suite
	T_SAN=$(date +%s)
	if [ "${SKIP_SAN:-}" != 1 ]; then
		build_and_check build-san build-san --enable-sanitizers --enable-werror
	fi
fi
T_FUZZ=$(date +%s)

# ---------------------------------------------------------------- fuzzing
fuzz_one() {   # SOURCE
	local src=$1 name
	name=$(basename "$src" .c)
	local short=${name#fuzz_}
	local out=$ROOT/build-fuzz/$name
	local sources pkgs
	sources=$(sed -n 's|^// *fuzz-sources: *||p' "$src" | head -n 1)
	pkgs=$(sed -n 's|^// *fuzz-pkgs: *||p' "$src" | head -n 1)
	if [ -z "$sources" ]; then
		say "$name: no '// fuzz-sources:' line at the top of $src"
		return 1
	fi
	local incs=(-I"$ROOT/include" -I"$ROOT/core/runtime" -I"$ROOT/core/message" -I"$ROOT/core/smtp" -I"$ROOT/build" -I"$ROOT/build/core") s
	local srcs=()
	for s in $sources; do
		srcs+=("$ROOT/$s")
		incs+=(-I"$ROOT/$(dirname "$s")")
	done
	rm -rf "$out"
	mkdir -p "$out/corpus" "$out/artifacts"
	# shellcheck disable=SC2046,SC2086
	if ! clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		"${incs[@]}" $(pkg-config --cflags libcjson libcrypto $pkgs) \
		"$src" "${srcs[@]}" $(pkg-config --libs libcjson libcrypto $pkgs) \
		-o "$out/$name" >"$LOGS/$name-build.log" 2>&1; then
		say "$name: does not build; last lines of $LOGS/$name-build.log:"
		tail -n 30 "$LOGS/$name-build.log" | sed 's/^/   | /'
		return 1
	fi
	local seeds=()
	[ -d "$ROOT/tests/fuzz/corpus/$short" ] && seeds=("$ROOT/tests/fuzz/corpus/$short")
	# New inputs go to build-fuzz/, never into the seed corpus in the tree.
	if ! (cd "$out" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		./"$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/artifacts/" \
		"$out/corpus" "${seeds[@]}") >"$LOGS/$name-run.log" 2>&1; then
		say "$name: CRASHED; reproducer in $out/artifacts/; see $LOGS/$name-run.log:"
		grep -E -A25 'ERROR: |SUMMARY|==ABORTING|deadly signal|fuzz_' "$LOGS/$name-run.log" \
			| head -n 40 | sed 's/^/   | /'
		return 1
	fi
	say "$name: ok ($(grep -Eo 'Done [0-9]+ runs' "$LOGS/$name-run.log" | tail -n 1 || true))"
}

if [ "${SKIP_FUZZ:-}" != 1 ]; then
	say "fuzz smoke: ${FUZZ_SECONDS} s per target"
	if ! command -v clang >/dev/null; then
		say "clang not found: cannot build the fuzz targets"
		FUZZ_FAIL=$((FUZZ_FAIL + 1))
		FAILED_NAMES+=("fuzz: no clang")
	else
		for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
			[ -e "$f" ] || continue
			if fuzz_one "$f"; then
				FUZZ_PASS=$((FUZZ_PASS + 1))
			else
				FUZZ_FAIL=$((FUZZ_FAIL + 1))
				FAILED_NAMES+=("$(basename "$f" .c)")
			fi
		done
	fi
fi
T_END=$(date +%s)

# ---------------------------------------------------------------- summary
# Per case: PASS and XFAIL pass; FAIL, XPASS and ERROR fail; SKIP skips.
trs_files() {
	local d
	for d in "${CHECKED_DIRS[@]}"; do
		[ -d "$ROOT/$d" ] && find "$ROOT/$d" -name '*.trs'
	done
}
read -r T_PASS T_FAIL T_SKIP < <(trs_files | xargs -r cat | awk '
	/^:test-result:/ {
		r = $2
		if (r == "PASS" || r == "XFAIL") p++
		else if (r == "SKIP") s++
		else f++
	}
	END { printf "%d %d %d\n", p, f, s }')
T_PASS=${T_PASS:-0}; T_FAIL=${T_FAIL:-0}; T_SKIP=${T_SKIP:-0}

say "failed test cases:"
trs_files | while read -r t; do
	if grep -Eq '^:test-result: (FAIL|XPASS|ERROR)' "$t"; then
		log=${t%.trs}.log
		grep -E '^(not ok|ERROR)' "$log" 2>/dev/null | sed "s|^|   ${t#"$ROOT"/}: |"
		grep -Eq '^(not ok|ERROR)' "$log" 2>/dev/null || echo "   ${t#"$ROOT"/}: failed (see ${log#"$ROOT"/})"
	fi
done
for n in "${FAILED_NAMES[@]}"; do
	echo "   step: $n"
done

say "timings: builds+checks $((T_FUZZ - T_BUILD)) s (build/ $(( ${T_SAN:-$T_FUZZ} - T_BUILD )) s, build-san/ $((T_FUZZ - ${T_SAN:-$T_FUZZ})) s), fuzz $((T_END - T_FUZZ)) s, total $((T_END - T0)) s"

PASSED=$((T_PASS + FUZZ_PASS + STEP_PASS))
FAILED=$((T_FAIL + FUZZ_FAIL + STEP_FAIL))
if [ "${HARNESS_NO_SKIP:-}" = 1 ] && [ "$T_SKIP" -gt 0 ]; then
	# CI (.ci/run) installs every peer: a skipped case (a cmocka skip, a
	# TAP plan of 1..0) is one that did not run, not one that passed
	say "HARNESS_NO_SKIP=1: $T_SKIP skipped case(s) count as failed:"
	trs_files | xargs -r grep -l '^:test-result: SKIP' | sed "s|^$ROOT/|   |"
	FAILED=$((FAILED + T_SKIP))
	T_SKIP=0
fi
if [ $((T_PASS + FUZZ_PASS)) -eq 0 ] && [ "$FAILED" -eq 0 ]; then
	FAILED=1   # no test case ran at all (only build steps) is a failure
fi
echo "$PASSED passed, $FAILED failed, $T_SKIP skipped"
[ "$FAILED" -eq 0 ]
