#!/usr/bin/env bash
# Partitions (issue #22): the fault suite of tests/partitions/ run R times (default 3), its
# checker's table per run, then per nemesis the largest staleness and the totals over the runs.
#
#   bench/partitions.sh [--runs R]
#
# Each run: a 3-member etcd in network namespaces of its own, three etcd-dns replicas
# (--max-stale 5s), a `register --ttl 3`, a writer changing 4 names every 40 ms, a recorder
# asking every replica about every name every 10 ms, nine nemeses of 8 s each; then 20 cuts of
# register's member. Needs root (namespaces, iptables inside them). Prints markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: bench/partitions.sh [--runs R]" >&2; exit 2 ;;
  esac
done
source scripts/deps.sh
out=$(mktemp /tmp/etcd-dns-partitions.XXXXXX)
trap 'rm -f "$out" "$out.tables"' EXIT
echo "## Partitions ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD)): bench/partitions.sh, $runs runs"
for run in $(seq 1 "$runs"); do
  cargo test --release --locked --test partitions -- --nocapture --test-threads 1 >"$out" 2>&1 \
    || { cat "$out" >&2; echo "run $run failed" >&2; exit 1; }
  echo
  echo "run $run:"
  echo
  # The test's name and its first line of output share a line: cut at the table.
  sed -n 's/^.*\(| nemesis |\)/\1/p' "$out"
  grep -E '^\|' "$out" | tee -a "$out.tables"
  echo
  grep -oE '20 partitions.*' "$out" || true
done
echo
echo "over $runs runs: largest staleness (ms), wrong answers, SERVFAIL, lease losses per nemesis"
echo
awk -F'|' '/^\| [a-z]/ && $2 !~ /nemesis/ {
    n = $2; sub(/ \(member [0-9][^)]*\)/, "", n); gsub(/^ +| +$/, "", n)
    if (!(n in order)) { order[n] = ++count; names[count] = n }
    if ($4 + 0 > stale[n]) stale[n] = $4 + 0
    wrong[n] += $5; servfail[n] += $7; losses[n] += $9
  }
  END {
    print "| nemesis | max staleness ms | wrong | SERVFAIL | lease losses |"
    print "|---|--:|--:|--:|--:|"
    for (i = 1; i <= count; i++) { n = names[i]; printf "| %s | %d | %d | %d | %d |\n", n, stale[n], wrong[n], servfail[n], losses[n] }
  }' "$out.tables"
rm -f "$out.tables"
