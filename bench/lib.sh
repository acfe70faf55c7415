# Helpers the bench scripts share; sourced after they define `die` and `work`.

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
