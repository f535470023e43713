#!/bin/bash
# side-by-side.sh: issue 11's ingest and fan-out targets, sealmail against the
# Postfix+Dovecot anchor of ../shared/mailbench, in one window of one machine.
#
#   docs/bench/side-by-side.sh SEALMAIL_BINARY [ROUNDS [FANOUT_ROUNDS]]
#
# Both servers start once and keep their data for the whole comparison, as the
# anchor's always did; nothing is removed between rounds. On ext4 without a
# journal, creating an inode skips every inode of its group deleted in the last
# minutes and re-reads the inode table to find out, so removing the previous
# round's data directory right before a round made each of sealmail's content
# files cost several times its CPU (docs/benchmarks.md, session 8). After each
# server's run the script waits until the machine is idle again (the anchor's
# queue delivered to Dovecot, sealmail's index written) before the other's.
#
# Needs: mailbench built from ../shared/mailbench (MAILBENCH, default
# /tmp/qb/mailbench), the anchor installed (postfix-dovecot.sh install), and
# WORK (default /tmp/qb) with tmpl/: a data directory made by
#   sealmail init --data WORK/tmpl --domain example.test --hostname localhost
# with dns = "off", smtp-addr 127.0.0.1:24525, imap-addr 127.0.0.1:24143, the
# other listeners "" (metrics on a free loopback port), and the users
# user0..user1199@example.test with password pw (sealmail user import).
set -euo pipefail
BIN=$(realpath "$1")
ROUNDS=${2:-5}
FANOUT=${3:-3}
WORK=${WORK:-/tmp/qb}
MB=${MAILBENCH:-/tmp/qb/mailbench}
SIZES=${SIZES:-4k,100k}
HERE=$(dirname "$(realpath "$0")")
ANCHOR=${ANCHOR:-$HERE/../../../shared/mailbench/anchors/postfix-dovecot.sh}

# settle waits until both cores are at least 85% idle over 2 s (at most 120 s).
settle() {
	local a b t i k
	for i in $(seq 60); do
		a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
		t=0; for k in 1 2 3 4 5 6 7 8; do t=$((t + b[k] - a[k])); done
		if [ $(( (b[4] - a[4]) * 100 / t )) -ge 85 ]; then return; fi
	done
	echo "  (not idle after 120 s)"
}

cd "$WORK"
DATA=side-by-side-$(date +%s)
cp -a tmpl "$DATA"
bash "$ANCHOR" start >/dev/null 2>&1
"$BIN" serve --data "$DATA" >"$DATA.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; bash "$ANCHOR" stop >/dev/null 2>&1' EXIT
for i in $(seq 100); do (echo >/dev/tcp/127.0.0.1/24525) 2>/dev/null && break; sleep 0.1; done
sleep 60 # past the recently-deleted window of whatever was removed before

PFDC=(-smtp 127.0.0.1:12525 -imap 127.0.0.1:12143 -tls starttls -label pfdc -pid-file /tmp/mailbench-pfdc/pids
	-datadir /tmp/mailbench-pfdc/mail,/tmp/mailbench-pfdc/postfix/spool -runs 1)
SEAL=(-smtp 127.0.0.1:24525 -imap 127.0.0.1:24143 -tls starttls -label sealmail -pid $PID -datadir "$DATA" -runs 1)
for r in $(seq "$ROUNDS"); do
	echo "== ingest round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
	"$MB" "${PFDC[@]}" -ingest-size "$SIZES" -ingest-c 8 smtp-ingest 2>&1 >/dev/null | grep -E "^smtp-|msgs_per_s"
	settle
	"$MB" "${SEAL[@]}" -ingest-size "$SIZES" -ingest-c 8 smtp-ingest 2>&1 >/dev/null | grep -E "^smtp-|msgs_per_s"
	settle
done
for r in $(seq "$FANOUT"); do
	echo "== fan-out round $r $(date -u +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)"
	"$MB" "${PFDC[@]}" smtp-fanout 2>&1 >/dev/null | grep -E "^smtp-|total_to_250_s|data_to_250_s|copies"
	settle
	"$MB" "${SEAL[@]}" smtp-fanout 2>&1 >/dev/null | grep -E "^smtp-|total_to_250_s|data_to_250_s|copies"
	settle
done
