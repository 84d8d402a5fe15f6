#!/bin/bash
# bench/durability.sh: the cost of making small messages durable on this
# machine's disk, without serve (bench/durability.c says what each mode
# does): one file per message flushed a batch at a time (the sinks' group
# commit before the journal), each file fsync()ed, one journal file with
# one fdatasync() per batch (the sinks now), and the files written with no
# flush and made durable at the end (the journal's checkpoint). Batches of
# 5, 20 and 50 stand for that many deliveries sharing a flush.
#
#   bench/durability.sh            N=4000, 2 rounds
#   N=20000 ROUNDS=1 bench/durability.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
N=${N:-4000}
ROUNDS=${ROUNDS:-2}
make_work
cc -O2 -Wall -o "$WORK/durability" "$HERE/durability.c" || die "cannot build bench/durability.c"
# a block group of its own for the runs (see serve_all.sh: ext4's
# recently-deleted inode scan would otherwise time the machine's past)
mkdir -p "$WORK/runs"
chattr +T "$WORK/runs" 2>/dev/null || true
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; $(df -T "$WORK" | awk 'NR==2 {print $2}') on $(df "$WORK" | awk 'NR==2 {print $1}'); N=$N messages of 2,000 bytes"
echo
echo '```'
i=0
for r in $(seq "$ROUNDS"); do
	for mode in files fsync journal; do
		for b in 5 20 50; do
			i=$((i + 1))
			"$WORK/durability" "$mode" "$N" "$b" "$WORK/runs/$i"
		done
	done
	i=$((i + 1))
	sync
	"$WORK/durability" nosync "$N" 1 "$WORK/runs/$i"
done
echo '```'
