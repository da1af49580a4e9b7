#!/bin/bash
# Issue 14: a block-compare rewind (--compare=blocks, running source) against pg_basebackup of the
# running source, on the saved scale200-short state of bench/rewind.ts (run that shape first with
# --state-dir=/var/tmp/walrewind-bench). Each round: the block comparison with the differing blocks
# fetched whole (--patch-blocks=auto, which is off over the loopback), then fetched as patches
# (--patch-blocks=on), then pg_basebackup. As root (the servers and tools run as the kit's OS user
# walrewind); needs strace. Usage: [RATE=1gbit] bench/compare-vs-basebackup.sh [STATE_DIR] [WORK_DIR]
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
S=${1:-/var/tmp/walrewind-bench/fork-scale200-seconds5-sourceSeconds0-sourceWalMb0}
W=${2:-/var/tmp/cmpbench}
PGBIN=$ROOT/node_modules/pg15/native/bin
PORT=25432
CONN="host=127.0.0.1 port=$PORT user=rewind_user dbname=postgres"
as() { runuser -u walrewind -- "$@"; }
fresh_target() { rm -rf $W/target; cp -a $S/target $W/target; chown -R walrewind: $W/target; chmod 700 $W/target; sync; }
rm -rf $W; mkdir -p $W; chown walrewind: $W
cp -a $S/source $W/source; chown -R walrewind: $W/source; chmod 700 $W/source
as $PGBIN/pg_ctl -D $W/source -l $W/source.log -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp" -w start >/dev/null
trap 'as $PGBIN/pg_ctl -D $W/source -m fast -w stop >/dev/null' EXIT
# RATE=1gbit: the loopback limited to that rate (tc tbf) while the tools run, as across a link.
if [ -n "${RATE:-}" ]; then
  tc qdisc add dev lo root tbf rate "$RATE" burst 256kb latency 50ms
  trap 'tc qdisc del dev lo root; as $PGBIN/pg_ctl -D $W/source -m fast -w stop >/dev/null' EXIT
  echo "loopback limited to $RATE"
fi
as /usr/lib/postgresql/15/bin/psql -h 127.0.0.1 -p $PORT -U postgres -d postgres -Atc "select pg_size_pretty(sum(pg_database_size(datname))) from pg_database"
wr() { node "$ROOT/bin/walrewind.js" -D $W/target --source-server="$CONN" --compare=blocks -R "$@"; }
export -f wr; export ROOT W CONN
for i in 1 2 3; do
  for patch in auto on; do
    fresh_target
    /usr/bin/time -f "walrewind --compare=blocks --patch-blocks=$patch: %e s, %M kB" runuser -u walrewind -- bash -c 'wr "$@"' wr --patch-blocks=$patch --json > $W/out.json 2> $W/err.txt || { cat $W/err.txt; exit 1; }
    tail -1 $W/err.txt
    node -e 'const o=require(process.argv[1]);console.log(JSON.stringify(o.compare), "fetched", o.fetchedBytes, "patched blocks", o.patchedBlocks ?? 0)' $W/out.json
  done
  rm -rf $W/bb; mkdir -p $W/bb; chown walrewind: $W/bb
  /usr/bin/time -f "pg_basebackup: %e s" runuser -u walrewind -- /usr/lib/postgresql/15/bin/pg_basebackup -h 127.0.0.1 -p $PORT -U postgres -D $W/bb -X stream -c fast 2>&1 | tail -1
done
# Bytes that crossed the connection, counted: what walrewind read from and wrote to its sockets (strace).
for patch in auto on; do
  fresh_target
  runuser -u walrewind -- strace -f -y -e trace=read,recvfrom,recvmsg,write,sendto,sendmsg,writev -o $W/strace.txt bash -c 'wr "$@"' wr --patch-blocks=$patch > /dev/null 2>&1
  awk -v patch=$patch '/TCP|socket/ && /= [0-9]+$/ { if ($0 ~ /(read|recv)/) down += $NF; else up += $NF }
    END { printf "--patch-blocks=%s: walrewind read %.1f MB from its connections and wrote %.1f MB to them\n", patch, down / 1048576, up / 1048576 }' $W/strace.txt
done
rm -rf $W/bb $W/target
