#!/usr/bin/env bash
# The docker-compose demo, end to end on a real Docker engine. Builds the images (base images
# that cannot be pulled are stood in by scripts/compose-standins.sh), brings docker-compose.yml
# up under a project name of its own and checks what the README promises:
#   0. the image binds port 53 as its non-root user with nothing but CAP_NET_BIND_SERVICE;
#   1. both etcd-dns replicas answer s-test.services.local with both registered addresses
#      (UDP and TCP), /ready is 200, and the client prints the addresses;
#   2. `stop register-2`: its address is gone from both replicas within the TTL + 2 s;
#   3. `stop etcd-1`: both replicas keep answering register-1's address (its lease never
#      lapses), a register started afterwards is answered by both, and a replica restarted
#      meanwhile (its first etcd endpoint no longer resolves) comes back and answers;
# then takes everything down and checks that no container, network or volume is left.
# Images stay as build cache (a previous build's are removed when a new one replaces them).
# Long steps (the stand-ins, the image build) print a line every PROGRESS_INTERVAL seconds (30)
# with how long they have run, their build step and their last output line; the summary line
# gives the time of each part: stand-ins, image build, test (measured around each whole part).
# Without a Docker engine (or docker compose / docker-compose) it says that it did NOT run and
# exits 0; SKIP_COMPOSE_TEST=1 skips it the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

not_run() {
  echo "==> compose test: NOT RUN: $*"
  echo "    (the docker-compose demo was not tested by this run)"
  exit 0
}
[ "${SKIP_COMPOSE_TEST:-}" = 1 ] && not_run "SKIP_COMPOSE_TEST=1"
command -v docker >/dev/null 2>&1 || not_run "no docker command"
timeout 30 docker info >/dev/null 2>&1 || not_run "no Docker engine answers ('docker info' fails)"
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  not_run "neither 'docker compose' nor 'docker-compose' is installed"
fi
# shellcheck disable=SC1091 # (checked on its own)
source scripts/deps.sh # dig; cargo and rustc for the rust stand-in
command -v curl >/dev/null 2>&1 || { echo "curl not found: apt-get install curl" >&2; exit 1; }

# The lease TTL of the registers in docker-compose.yml (REGISTER_TTL).
ttl=5
name="s-test.services.local"
project="etcd-dns-compose-test-$$"
probe="$project-port53"
export ETCD_DNS_IMAGE=etcd-dns:compose-test CLIENT_IMAGE=etcd-dns-client:compose-test
builder_image=etcd-dns-build:compose-test
# Empty host ports: Docker picks free ones (read back with `docker port`).
export DNS_PORT_1="" DNS_PORT_2="" METRICS_PORT_1="" METRICS_PORT_2=""
compose() { "${compose_cmd[@]}" -p "$project" "$@"; }

# --- helpers ---------------------------------------------------------------------------------
t0=$(date +%s.%N)
elapsed() { awk -v start="$1" -v end="$(date +%s.%N)" 'BEGIN { printf "%.1f", end - start }'; }
step() { printf '==> [%6s s] %s\n' "$(elapsed "$t0")" "$*"; }
fail() {
  printf '==> [%6s s] FAILED: %s\n' "$(elapsed "$t0")" "$*" >&2
  exit 1
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Progress of a long step: every $interval seconds one line, how long the step has run, the
# build step it is in (docker build's "Step N/M :" or BuildKit's "#N [...]") and the last line
# of its log. No more than that (a CI log stays short): the log is shown when the step fails.
# tick_start LOG: starts the lines (in a subshell); tick_stop ends them (teardown too).
interval=${PROGRESS_INTERVAL:-30}
ticker=""
tick_start() {
  local log=$1 started
  started=$(date +%s.%N)
  (
    s=""
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "$interval" &
      s=$!
      wait "$s"
      kill -0 $$ 2>/dev/null || exit 0 # the script is gone
      step "   ... $(elapsed "$started" | cut -d. -f1) s: $(last_of "$log")"
    done
  ) &
  ticker=$!
}
tick_stop() {
  [ -n "$ticker" ] || return 0
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  ticker=""
}
# last_of LOG: "<its last build step> | <its last line>", each cut short.
last_of() {
  local step last
  step=$(grep -aE '^(Step [0-9]+/[0-9]+ : |#[0-9]+ \[)' "$1" 2>/dev/null | tail -1 | cut -c1-60) || true
  last=$(tail -c 4096 "$1" 2>/dev/null | tr '\r' '\n' | plain | grep -av '^[[:space:]]*$' | tail -1 |
    sed 's/^[[:space:]]*//' | cut -c1-80) || true
  if [ -z "$step" ] || [ "$step" = "${last:0:60}" ]; then
    echo "${last:-(no output yet)}"
  else
    echo "$step | ${last:-}"
  fi
}
# plain: its input without terminal escapes (the classic builder wraps a step's stderr in colours).
plain() { sed 's/\x1b\[[0-9;]*[A-Za-z]//g'; }
# quietly LOG COMMAND...: runs COMMAND with its output in LOG, shown (the end) only on failure;
# progress lines while it runs.
quietly() {
  local log=$1 rc=0
  shift
  : >"$log"
  tick_start "$log"
  "$@" >"$log" 2>&1 || rc=$?
  tick_stop
  [ $rc -eq 0 ] || { tail -40 "$log" >&2; fail "$*"; }
}
# The run's parts, each timed around the whole of it for the summary line: part NAME ends the
# part under way, if any, and begins NAME; part "" only ends it.
parts=() part_name="" part_began=""
part() {
  [ -z "$part_name" ] || parts+=("$part_name $(elapsed "$part_began") s")
  part_name=$1 part_began=$(date +%s.%N)
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.1 s until it succeeds; sets $waited.
wait_for() {
  local what=$2 began deadline
  began=$(date +%s.%N)
  deadline=$(awk -v s="$began" -v d="$1" 'BEGIN { printf "%.3f", s + d }')
  shift 2
  until "$@"; do
    if awk -v d="$deadline" -v now="$(date +%s.%N)" 'BEGIN { exit !(now > d) }'; then
      fail "not within $(elapsed "$began") s: $what$(show)"
    fi
    sleep 0.1
  done
  waited=$(elapsed "$began")
}
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }
# (docker itself rather than compose where it can: docker-compose 1.29 takes a second or two
# to start, every time.)
container() { # SERVICE: its container (not one started by `compose run`)
  docker ps -aq --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --filter "label=com.docker.compose.oneoff=False"
}
host_port() { docker port "$1" "$2" | head -1 | awk -F: '{ print $NF }'; } # CONTAINER PORT/PROTO
ports() { # the host ports the replicas are published on
  local c1 c2
  c1=$(container etcd-dns-1) c2=$(container etcd-dns-2)
  dns1=$(host_port "$c1" 53/udp) dns2=$(host_port "$c2" 53/udp)
  tcp1=$(host_port "$c1" 53/tcp) tcp2=$(host_port "$c2" 53/tcp)
  http1=$(host_port "$c1" 9153/tcp) http2=$(host_port "$c2" 9153/tcp)
}
address_of() { # CONTAINER: its address on the project's network
  docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"
}
# answers PORT [+tcp]: the A records of $name from 127.0.0.1:PORT, sorted, space separated.
answers() {
  local out
  out=$(dig @127.0.0.1 -p "$1" "$name" A +short +time=1 +tries=1 ${2:+"$2"}) || { echo "no reply"; return; }
  echo "$out" | sort -V | paste -sd' ' -
}
sorted() { printf '%s\n' "$@" | sort -V | paste -sd' ' -; }
both() { [ "$(answers "$dns1")" = "$1" ] && [ "$(answers "$dns2")" = "$1" ]; } # both answer exactly $1
show() { [ -z "${dns1:-}" ] || echo " (now etcd-dns-1: $(answers "$dns1") | etcd-dns-2: $(answers "$dns2"))"; }
ready() { curl -sf "127.0.0.1:$1/ready" >/dev/null; }

work=$(mktemp -d)
up=false
lock=${TMPDIR:-/tmp}/etcd-dns-compose-test.lock
lock_open=false
teardown() {
  local rc=$? left
  trap - EXIT INT TERM
  tick_stop
  docker rm -f "$probe" >/dev/null 2>&1 || true
  if $up; then
    if [ $rc -ne 0 ]; then
      echo "---- compose logs (last 30 lines per service) ----" >&2
      compose logs --no-color --tail 30 >&2 2>&1 || true
      echo "--------------------------------------------------" >&2
    fi
    step "compose down -v --remove-orphans"
    compose down -v --remove-orphans -t 5 >"$work/down.log" 2>&1 || cat "$work/down.log" >&2
    left=$(
      docker ps -aq --filter "label=com.docker.compose.project=$project"
      docker network ls -q --filter "label=com.docker.compose.project=$project"
      docker volume ls -q --filter "label=com.docker.compose.project=$project"
    )
    if [ -n "$left" ]; then
      echo "left behind by 'down': ${left//$'\n'/ }; removing them" >&2
      docker ps -aq --filter "label=com.docker.compose.project=$project" | xargs -r docker rm -f >/dev/null
      docker network ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker network rm >/dev/null
      docker volume ls -q --filter "label=com.docker.compose.project=$project" | xargs -r docker volume rm >/dev/null
      rc=1
    else
      step "nothing left: no container, network or volume of project $project"
    fi
  fi
  rm -rf "$work"
  # The lock file goes if this run holds the lock on it (see below), then the lock with the exit.
  if $lock_open && flock -n 9 && [ "$lock" -ef "/proc/$$/fd/9" ]; then rm -f "$lock"; fi
  if [ -n "$part_name" ]; then
    [ $rc -eq 0 ] || part_name="$part_name (cut short)"
    part ""
  fi
  if [ $rc -eq 0 ]; then
    step "compose test passed in $(elapsed "$t0") s: $(summary) (load $(load))"
  else
    step "compose test FAILED (exit $rc) after $(elapsed "$t0") s: $(summary)"
  fi
  exit $rc
}
summary() { # the parts' times: "stand-ins 1.2 s, image build 3.4 s, test 5.6 s"
  local p out=""
  for p in "${parts[@]}"; do out+="${out:+, }$p"; done
  echo "${out:-nothing done}"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One compose test at a time on this engine: they share the image tags. The lock is flock(1)
# on fd 9, open on $lock, and the file is removed on exit, so that no run leaves it behind.
# Removing a lock file that others may be waiting on is safe only because (1) the holder alone
# removes it, before it lets go of the lock (teardown), and (2) a run that gets the lock checks
# that the file it holds is still the one at $lock: a run that waited on a file removed
# meanwhile opens $lock anew and waits again, so that two runs never hold the lock at once.
# (A lock in a place that is cleaned up anyway, such as /run/user/UID or the work directory,
# would not do: the one is per user, the other per run, and the image tags are per engine.
# A run killed with SIGKILL leaves the file, empty and unlocked; the next run takes it over.)
# (The wait is in steps of a second: a signal ends it within a second, not once the lock is free.)
while :; do
  exec 9>>"$lock"
  lock_open=true
  if ! flock -n 9; then
    [ "$part_name" = "waiting for another run" ] || {
      step "another compose test is running (it holds $lock); waiting for it"
      part "waiting for another run"
    }
    until flock -w 1 9; do :; done
  fi
  [ "$lock" -ef "/proc/$$/fd/9" ] && break
done
step "compose test: ${compose_cmd[*]} $("${compose_cmd[@]}" version --short 2>/dev/null || echo '?')," \
  "engine $(docker version -f '{{.Server.Version}}'), $(nproc) CPUs, load $(load)"

# --- images ----------------------------------------------------------------------------------
part "stand-ins"
step "base images (stand-ins where they cannot be pulled; the first run builds them: 2-4 min)"
scripts/compose-standins.sh
part "image build"
old_ids=("$(image_id "$ETCD_DNS_IMAGE")" "$(image_id "$builder_image")" "$(image_id "$CLIENT_IMAGE")")
step "compose build: the project's Dockerfile (release build) and the client" \
  "(the first build compiles every dependency: 5-10 min on 2 CPUs)"
start=$(date +%s.%N)
quietly "$work/build.log" compose build etcd-dns-1 client
plain <"$work/build.log" >"$work/build.txt"
# The classic builder leaves the build stage as an untagged image (1.9 GB): tagged, the next run
# can remove it once it is replaced. It is the image of the stage's last step, the " ---> ID"
# before the second FROM of the Dockerfile whose first FROM is "AS builder". (Not a second
# `docker build --target builder`: the sources may have changed since, and its build with them.)
# BuildKit keeps stages in its cache, not as images: nothing to tag.
stage=$(awk '
  /^Step 1\// { froms = 0; builder = 0 }
  /^Step [0-9]+\/[0-9]+ : FROM / {
    if (++froms == 1) builder = (tolower($0) ~ / as builder$/)
    else if (froms == 2 && builder && id != "") { print id; exit }
  }
  /^ ---> [0-9a-f]+$/ { id = $2 }' "$work/build.txt")
[ -z "$stage" ] || docker tag "$stage" "$builder_image"
new_ids=" $(image_id "$ETCD_DNS_IMAGE") $(image_id "$builder_image") $(image_id "$CLIENT_IMAGE") "
for id in "${old_ids[@]}"; do
  if [ -n "$id" ] && [[ $new_ids != *" $id "* ]]; then docker rmi "$id" >/dev/null 2>&1 || true; fi
done
step "images built in $(elapsed "$start") s" \
  "($(grep -cE '^( ---> Using cache|#[0-9]+ CACHED)' "$work/build.txt" || true) steps from cache):" \
  "$ETCD_DNS_IMAGE $(docker image inspect -f '{{.Size}}' "$ETCD_DNS_IMAGE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
# Cargo's own times, within that build: which of the Dockerfile's two cargo builds each is
# (the dependencies' one, with placeholder sources, is not run when its layer is cached).
# shellcheck disable=SC2016 # backquotes: cargo's text
awk '
  /^Step [0-9]+\/[0-9]+ : / { cur = $0 }
  /^#[0-9]+ \[/ { hdr[$1] = $0 }
  /Finished `release`/ {
    s = ($1 ~ /^#[0-9]+$/) ? hdr[$1] : cur
    what = (s ~ /touch src\/lib\.rs/) ? "the dependencies" : "etcd-dns and register"
    sub(/.*Finished /, "")
    print "    (of which cargo, " what ": " $0 ")"
  }' "$work/build.txt"
part "test"

# --- 0: port 53 as non-root ------------------------------------------------------------------
# Docker lets containers bind low ports anyway (net.ipv4.ip_unprivileged_port_start=0): set it
# back to 1024, as other engines leave it, and drop every capability but NET_BIND_SERVICE, so
# that the binary's file capability is what lets the image's user bind port 53.
uid=$(docker run --rm "$ETCD_DNS_IMAGE" id -u)
[ "$uid" != 0 ] || fail "the image runs as root"
quietly "$work/probe.log" docker run -d --name "$probe" --sysctl net.ipv4.ip_unprivileged_port_start=1024 \
  --cap-drop ALL --cap-add NET_BIND_SERVICE "$ETCD_DNS_IMAGE" etcd-dns --etcd http://127.0.0.1:9 --no-http
bound() {
  docker logs "$probe" 2>&1 | grep -q 'answering DNS over TCP addr=0.0.0.0:53' && return 0
  [ "$(docker inspect -f '{{.State.Running}}' "$probe")" = true ] ||
    fail "etcd-dns did not start as uid $uid: $(docker logs "$probe" 2>&1 | tail -3)"
  return 1
}
wait_for 20 "etcd-dns to bind port 53 as uid $uid" bound
docker rm -f "$probe" >/dev/null
step "0. the image binds port 53 as uid $uid with only CAP_NET_BIND_SERVICE (unprivileged ports from 1024)"

# --- up --------------------------------------------------------------------------------------
step "compose up -d (project $project): 3 etcd members, 2 etcd-dns, 2 register, client"
up=true
start=$(date +%s.%N)
quietly "$work/up.log" compose up -d --no-build
step "up in $(elapsed "$start") s (every depends_on condition met)"
ports
client=$(container client) register2=$(container register-2)
ip1=$(address_of "$(container register-1)") ip2=$(address_of "$register2")
step "etcd-dns-1: DNS 127.0.0.1:$dns1 (TCP :$tcp1), HTTP :$http1;" \
  "etcd-dns-2: DNS 127.0.0.1:$dns2 (TCP :$tcp2), HTTP :$http2"
step "register-1 is $ip1, register-2 is $ip2"

# --- 1: both replicas answer both addresses --------------------------------------------------
want=$(sorted "$ip1" "$ip2")
wait_for 20 "both replicas to answer $want" both "$want"
step "1. both replicas answer $name: $want (after $waited s)"
if [ "$(answers "$tcp1" +tcp)" != "$want" ] || [ "$(answers "$tcp2" +tcp)" != "$want" ]; then
  fail "over TCP: etcd-dns-1 $(answers "$tcp1" +tcp), etcd-dns-2 $(answers "$tcp2" +tcp)"
fi
{ ready "$http1" && ready "$http2"; } || fail "/ready is not 200 on both replicas"
step "   the same over TCP; /ready is 200 on both"
# The client's lines: client_mark notes how many there are, client_saw WANT looks for a line
# with WANT from both replicas among those printed since.
client_mark() { mark=$(docker logs "$client" 2>&1 | wc -l); }
client_saw() {
  docker logs "$client" 2>&1 | tail -n "+$((mark + 1))" | grep -q "etcd-dns-1: $1  | etcd-dns-2: $1\$"
}
client_last() { docker logs "$client" 2>&1 | tail -1; }
mark=0
wait_for 10 "the client to print $want from both replicas" client_saw "$want"
step "   client: $(client_last)"

# --- 2: register-2 stopped -------------------------------------------------------------------
step "2. compose stop register-2"
client_mark
start=$(date +%s.%N)
quietly "$work/stop.log" compose stop -t 10 register-2
stopped=$(elapsed "$start")
# Within TTL + 2 s of the stop's start (part of which the stop itself took).
wait_for "$(awk -v t="$ttl" -v s="$stopped" 'BEGIN { print t + 2 - s }')" \
  "register-2's address $ip2 to leave both replicas" both "$ip1"
gone=$(elapsed "$start")
code=$(docker inspect -f '{{.State.ExitCode}}' "$register2")
[ "$code" = 0 ] || fail "register-2 exited with $code on SIGTERM (want 0)"
step "   both replicas answer $ip1 alone, $gone s after the stop began (the stop, register-2" \
  "revoking its lease and exiting 0, took $stopped s of it)"
wait_for 10 "the client to print $ip1 alone" client_saw "$ip1"

# --- 3: etcd-1 stopped -----------------------------------------------------------------------
step "3. compose stop etcd-1"
quietly "$work/stop.log" compose stop -t 10 etcd-1
etcd1_stopped=$(date +%s.%N)
# A register started now, while etcd-1 is down: a new instance with an address of its own.
late=$(compose run -d --no-deps -e REGISTER_INSTANCE=late register-1 2>"$work/run.log" | tail -1) ||
  { cat "$work/run.log" >&2; fail "compose run register-1"; }
ip3=$(address_of "$late")
[ -n "$ip3" ] || fail "no address for the late register ($late)"
want=$(sorted "$ip1" "$ip3")
step "   started a register, instance 'late', at $ip3 (compose run --no-deps register-1)"
# Until the late register is answered, and for at least TTL + 3 s (register-1's lease would
# have expired by then had its keep-alives stopped), every answer must hold $ip1.
late_seen=""
settled() {
  local a1 a2
  a1=$(answers "$dns1") a2=$(answers "$dns2")
  [[ " $a1 " = *" $ip1 "* && " $a2 " = *" $ip1 "* ]] ||
    fail "register-1's address $ip1 left the answers after etcd-1 stopped (etcd-dns-1: $a1 | etcd-dns-2: $a2)"
  if [ -z "$late_seen" ] && [ "$a1" = "$want" ] && [ "$a2" = "$want" ]; then
    late_seen=$(elapsed "$etcd1_stopped")
  fi
  [ -n "$late_seen" ] &&
    awk -v s="$etcd1_stopped" -v t="$ttl" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - s >= t + 3) }'
}
wait_for 30 "both replicas to answer the late register at $ip3" settled
step "   both replicas answer $want: the late register $late_seen s after etcd-1 stopped," \
  "and $ip1 in every answer for $(elapsed "$etcd1_stopped") s"
{ ready "$http1" && ready "$http2"; } || fail "/ready is not 200 on both replicas with etcd-1 stopped"
step "   /ready is 200 on both replicas"
step "   compose restart etcd-dns-2 (its first endpoint, etcd-1, does not even resolve now)"
start=$(date +%s.%N)
quietly "$work/restart.log" compose restart -t 10 etcd-dns-2
client_mark
ports # published anew
wait_for 20 "the restarted etcd-dns-2 to answer $want" both "$want"
ready "$http2" || fail "/ready is not 200 on the restarted etcd-dns-2"
step "   etcd-dns-2 answers $want again and is ready, $(elapsed "$start") s after the restart began"
wait_for 10 "the client to print $want from both replicas" client_saw "$want"
step "   client: $(client_last)"
