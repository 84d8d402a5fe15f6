#!/bin/sh
# Generate configure and Makefile.in from configure.ac and Makefile.am.
# Nothing generated is committed; run this once after a fresh clone.
set -e
cd "$(dirname "$0")"
autoreconf --install --force --warnings=all
echo "Now run ./configure && make"
