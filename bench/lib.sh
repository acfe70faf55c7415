# Helpers the bench scripts share; sourced after they define `die`, `say` and `work` (a temp dir).
# Everything a helper starts is appended to `pids`; `cleanup` (trap it on EXIT) stops them all and
# removes `work`. dnsperf_run also reads `client_cpu`, `secs`, `log` (and `fixed_qps` for latency).
# shellcheck shell=bash disable=SC2154,SC2034 # globals shared with the sourcing script

pids=()
clk_tck=$(getconf CLK_TCK)
# The server under test gets core 1, dnsperf (and every helper process) core 0.
if [ "$(nproc)" -ge 2 ]; then client_cpu=0; server_cpu=1; else
  client_cpu=0; server_cpu=0; echo "warning: 1 CPU: client and server share it" >&2
fi

# install_missing COMMAND:PACKAGE...: installs (apt-get) the packages whose COMMAND is not on the
# PATH (a COMMAND starting with / is a file that must exist). System services the packages start
# (on port 53 or 2379) are stopped again: the scripts run their own, on free ports.
install_missing() {
  local need=() pair have sudo="" service
  for pair in "$@"; do
    have=${pair%%:*}
    case "$have" in
      /*) [ -e "$have" ] || need+=("${pair#*:}") ;;
      *) command -v "$have" >/dev/null 2>&1 || need+=("${pair#*:}") ;;
    esac
  done
  [ ${#need[@]} -gt 0 ] || return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${need[*]}"
    sudo="sudo"
  fi
  say "installing ${need[*]}"
  # Another install may hold the dpkg lock: wait for it rather than fail.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${need[@]}" >/dev/null || die "cannot install ${need[*]}"
  for service in nsd knot unbound etcd; do
    case " ${need[*]} " in
      *" $service "* | *" $service-server "*)
        if command -v systemctl >/dev/null 2>&1; then
          $sudo systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi ;;
    esac
  done
}

# ---------------------------------------------------------------- processes

# A port free for both TCP and UDP on 127.0.0.1.
free_port() {
  perl -MIO::Socket::INET -e '
    for (1 .. 50) {
      my $t = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1", LocalPort => 0, Proto => "tcp") or next;
      my $u = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $t->sockport, Proto => "udp") or next;
      print $t->sockport; exit 0;
    }
    exit 1;'
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 50 ms until it succeeds.
wait_for() {
  local limit=$1 what=$2
  local deadline=$((SECONDS + limit))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after $limit s waiting for $what (logs in $work)"
    sleep 0.05
  done
}

descendants() { # PID → PID and all its descendants
  local pid=$1 child
  echo "$pid"
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do descendants "$child"; done
}
# stop PID: SIGTERM to it and its descendants, wait up to 5 s, then SIGKILL what is left.
stop() {
  local pid=$1 all p deadline
  all=$(descendants "$pid")
  # shellcheck disable=SC2086 # one PID per word
  kill -TERM $all 2>/dev/null || true
  deadline=$((SECONDS + 5))
  for p in $all; do
    while kill -0 "$p" 2>/dev/null && [ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" != Z ]; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$p" 2>/dev/null || true; break; fi
      sleep 0.05
    done
  done
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  pids=("${kept[@]}")
}
# Stops every process started, newest first.
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do stop "${pids[$i]}"; done
}
# Stops every process started and removes the work directory.
cleanup() {
  stop_all
  rm -rf "$work"
}

# CPU ticks (utime + stime, all threads) of the given PIDs and their descendants.
cpu_ticks() {
  local total=0 p t
  for p in $(for q in "$@"; do descendants "$q"; done); do
    t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
    total=$((total + ${t:-0}))
  done
  echo "$total"
}
# Resident memory in MB of the given PIDs and their descendants (summed).
rss_mb() {
  local p
  for p in $(for q in "$@"; do descendants "$q"; done); do
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null || true
  done | awk '{ s += $1 } END { printf "%.1f", s / 1024 }'
}

# ---------------------------------------------------------------- numbers

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
  if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a == a + 0) printf "%.2f", a / b; else print "-" }'; }

# dnsperf_run MODE PORT QUERIES OUT PIDS...: one pinned dnsperf run of $secs seconds (MODE throughput,
# or latency at $fixed_qps q/s); the raw output goes to $log, and OUT gets one line
# "completed lost qps avg_ms max_ms noerror_pct nxdomain_pct other_rcodes resp_bytes cpu_us_per_q"
# where the CPU is that of PIDS (and their descendants) during the run.
dnsperf_run() {
  local mode=$1 port=$2 queries=$3 out=$4 extra=() t0 t1
  shift 4
  [ "$mode" = latency ] && extra=(-Q "$fixed_qps")
  t0=$(cpu_ticks "$@")
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$port" -d "$queries" -l "$secs" -c 1 -q 100 \
    "${extra[@]}" >"$out.raw" 2>&1 || { cat "$out.raw" >>"$log"; die "dnsperf failed"; }
  t1=$(cpu_ticks "$@")
  { echo "--- dnsperf $mode port $port"; cat "$out.raw"; } >>"$log"
  awk -v ticks=$((t1 - t0)) -v hz="$clk_tck" '
    /Queries completed:/ { c = $3 }
    /Queries lost:/ { l = $3 }
    /Queries per second:/ { q = $4 }
    /Average Latency/ { a = $4 * 1000; m = $8; sub(/\)/, "", m); m *= 1000 }
    /Average packet size:/ { r = $NF }
    /Response codes:/ {
      for (i = 3; i < NF; i++) if ($i ~ /^[A-Z]+$/) { n = $(i + 1); if ($i == "NOERROR") ok = n; else if ($i == "NXDOMAIN") nx = n; else other = other $i "," }
    }
    END {
      if (c == 0) { print "0 0 0 nan nan 0 0 none 0 nan"; exit }
      printf "%d %d %.0f %.3f %.3f %.1f %.1f %s %s %.2f\n", c, l, q, a, m, 100 * ok / c, 100 * nx / c,
        (other == "" ? "none" : other), r, ticks / hz * 1e6 / c
    }' "$out.raw" >"$out"
}
declare -A srv_port srv_pid QPS CPU LOST CODES
# interleave ROUNDS QUERIES TAG LABEL...: ROUNDS rounds in each of which every server LABEL in turn
# (answering on srv_port[LABEL], process srv_pid[LABEL]) gets one throughput run over QUERIES, so
# that the VM's drifting speed hits them alike. Each run's q/s, server CPU µs per query, lost queries and
# response codes (NOERROR%/NXDOMAIN%/others) are appended to QPS, CPU, LOST and CODES[TAG LABEL].
interleave() {
  local rounds=$1 queries=$2 tag=$3 r s f l q o x oth c
  shift 3
  for ((r = 1; r <= rounds; r++)); do
    for s in "$@"; do
      f=$work/run-$tag$s-$r
      dnsperf_run throughput "${srv_port[$s]}" "$queries" "$f" "${srv_pid[$s]}"
      read -r _ l q _ _ o x oth _ c <"$f"
      QPS[$tag$s]+="$q "; CPU[$tag$s]+="$c "; LOST[$tag$s]+="$l "; CODES[$tag$s]+="$o/$x/$oth "
      say "round $r $tag$s: $q q/s, $c µs CPU/query, $l lost, NOERROR/NXDOMAIN % $o/$x"
    done
  done
}
# median_of ARRAY KEY, spread_of ARRAY KEY: over the values interleave appended to ARRAY[KEY].
median_of() { local -n values=$1; local v; read -ra v <<<"${values[$2]}"; median "${v[@]}"; }
spread_of() { local -n values=$1; local v; read -ra v <<<"${values[$2]}"; spread "${v[@]}"; }
# prime PORT FILE: asks each name of FILE once (fills a cache before the warm-up).
prime() {
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$1" -d "$2" -n 1 -c 1 -q 20 >>"$log" 2>&1 || die "dnsperf failed"
}
# warm_up PORT QUERIES SECONDS: unmeasured load, so that caches and branch predictors are warm.
warm_up() {
  taskset -c "$client_cpu" dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$3" -c 1 -q 100 >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- names, zones, queries

# Address of instance i (as bench_registry's instance_addr): 10.0.0.1 + i.
addr_of() {
  local a=$((0x0A000001 + $1))
  echo "$((a >> 24 & 255)).$((a >> 16 & 255)).$((a >> 8 & 255)).$((a & 255))"
}
# write_zone ZONE N TTL NEGATIVE_TTL FILE: the zone file of N names n<i> IN A addr_of(i).
write_zone() {
  awk -v zone="$1" -v n="$2" -v ttl="$3" -v neg="$4" 'BEGIN {
    print "$ORIGIN " zone; print "$TTL " ttl
    print "@ IN SOA ns." zone " hostmaster." zone " 1 60 10 3600 " neg
    print "@ IN NS ns." zone; print "ns IN A 127.0.0.1"
    for (i = 0; i < n; i++) { a = 167772161 + i
      printf "n%d IN A %d.%d.%d.%d\n", i, int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256 }
  }' >"$5"
}
# write_queries ZONE N LINES NX_EVERY SEED FILE: a dnsperf file (type A) of names n<i> drawn at
# random; with NX_EVERY > 0 every NX_EVERYth line is instead a missing name nx<line>.
write_queries() {
  awk -v zone="$1" -v n="$2" -v lines="$3" -v every="$4" -v seed="$5" 'BEGIN { srand(seed)
    for (i = 0; i < lines; i++)
      if (every > 0 && i % every == every - 1) printf "nx%d.%s A\n", i, zone
      else printf "n%d.%s A\n", int(rand() * n), zone
  }' >"$6"
}
# write_every_name ZONE N FILE: each name n<i> once (for filling a cache).
write_every_name() {
  awk -v zone="$1" -v n="$2" 'BEGIN { for (i = 0; i < n; i++) printf "n%d.%s A\n", i, zone }' >"$3"
}

# answer PORT NAME: "RCODE ADDRESS" of NAME A at 127.0.0.1:PORT ("NOERROR 10.0.0.1", "NXDOMAIN -",
# "TIMEOUT -" when nothing comes back).
answer() {
  local out rcode addr
  out=$(dig @127.0.0.1 -p "$1" "$2" A +time=2 +tries=2 +noall +comments +answer 2>/dev/null) || true
  rcode=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out" | head -n1)
  addr=$(awk '$4 == "A" { print $5; exit }' <<<"$out")
  echo "${rcode:-TIMEOUT} ${addr:--}"
}
# answers PORT NAME [ADDRESS]: NAME answers NOERROR with an address (ADDRESS, when given).
answers() {
  local got
  got=$(answer "$1" "$2")
  case "$got" in "NOERROR ${3:-}"*) [ "$got" != "NOERROR -" ] ;; *) return 1 ;; esac
}

# ---------------------------------------------------------------- servers
# Each start_* runs its server in the background, appends it to `pids` and sets `started_pid`;
# none waits for it to answer (callers poll with wait_for, or time the start-up).
started_pid=""

# start_etcd DIR CPU: a one-member etcd in DIR on free ports; sets etcd_url and waits for health.
etcd_url=""
start_etcd() {
  local dir=$1 cpu=$2 client peer
  client=$(free_port); peer=$(free_port)
  etcd_url="http://127.0.0.1:$client"
  taskset -c "$cpu" etcd --name bench --data-dir "$dir" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$dir.log" 2>&1 &
  started_pid=$!; pids+=("$started_pid")
  wait_for 30 "etcd on $etcd_url" env ETCDCTL_API=3 etcdctl --endpoints "$etcd_url" endpoint health
}

# start_etcd_dns BINARY LOG CPU ARGS...: etcd-dns on 127.0.0.1 port 0 (no HTTP) with ARGS; waits
# until it listens and sets started_port.
started_port=""
start_etcd_dns() {
  local exe=$1 logf=$2 cpu=$3
  shift 3
  env -u RUST_LOG taskset -c "$cpu" "$exe" --listen 127.0.0.1:0 --no-http "$@" 2>"$logf" &
  started_pid=$!; pids+=("$started_pid")
  wait_for 30 "etcd-dns to listen ($logf)" grep -q "listening addr=127.0.0.1:" "$logf"
  started_port=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logf" | head -n1)
}

# start_nsd DIR CPU PORT ZONE ZONEFILE: NSD serving ZONEFILE as ZONE: one server process, response
# rate limiting off (Debian's default throttles NXDOMAIN to ~9k/s per source), minimal responses
# (answers the size of etcd-dns's).
start_nsd() {
  local dir=$1 cpu=$2 port=$3 zone=$4 zonefile=$5
  mkdir -p "$dir"
  cat >"$dir/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$port
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$dir"
  database: ""
  zonelistfile: "$dir/zone.list"
  xfrdfile: "$dir/xfrd.state"
  xfrdir: "$dir"
  pidfile: "$dir/nsd.pid"
  logfile: "$dir/nsd.log"
  rrl-ratelimit: 0
  minimal-responses: yes
remote-control:
  control-enable: no
zone:
  name: ${zone%.}
  zonefile: "$zonefile"
EOF
  taskset -c "$cpu" nsd -d -c "$dir/nsd.conf" >"$dir/stdout.log" 2>&1 &
  started_pid=$!; pids+=("$started_pid")
}

# start_unbound DIR CPU PORT ZONE UPSTREAM_PORT: unbound (one thread, its default caches) as a
# caching forwarder of ZONE to 127.0.0.1:UPSTREAM_PORT: `module-config: "iterator"`,
# `do-not-query-localhost: no`, and `local-zone: "test." nodefault` (else it answers .test itself).
start_unbound() {
  local dir=$1 cpu=$2 port=$3 zone=$4 upstream=$5
  mkdir -p "$dir"
  cat >"$dir/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$port
  port: $port
  num-threads: 1
  do-ip6: no
  username: ""
  chroot: ""
  directory: "$dir"
  pidfile: "$dir/unbound.pid"
  use-syslog: no
  logfile: "$dir/unbound.log"
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  local-zone: "test." nodefault
remote-control:
  control-enable: no
forward-zone:
  name: "${zone%.}"
  forward-addr: 127.0.0.1@$upstream
EOF
  taskset -c "$cpu" unbound -d -c "$dir/unbound.conf" >"$dir/stdout.log" 2>&1 &
  started_pid=$!; pids+=("$started_pid")
}
