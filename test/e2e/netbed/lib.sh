# Shared by the network beds (firewall, proxied, weaknet): sourced, never run.
#
# Namespaces (for a bed's netns.sh), which sets before sourcing:
#   PREFIX  the bed's name prefix: every namespace, veth, bridge and rule it makes carries it
#   NET     the bed's /24 as three octets; NET_VAR names the variable the user sets it with
#   NS      the namespaces, server first; IPS their addresses (same order)
# and gets BR (the bridge), RUNNER ($NET.254, the root namespace on the bridge) and SRV ($NET.1).
#
# Runners (a bed's run.sh), which define skip() and fail() before sourcing: nb_preflight,
# nb_pick_net, nb_lock, nb_run. Nothing here touches anything on the host without the prefix.

# nb_check_net refuses a NET that is not three octets.
nb_check_net() {
  [[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
    { echo "netns.sh: $NET_VAR must be the first three octets of a /24, e.g. 198.51.100" >&2; exit 2; }
  BR=$PREFIX-br
  RUNNER=$NET.254
  SRV=$NET.1
}

nb_have_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

# nb_kill_ns ends every process still running inside one of our namespaces (parley, a proxy,
# chromium): `ip netns pids` names exactly those, so nothing outside the bed is touched.
nb_kill_ns() {
  local ns=$1 pids
  nb_have_ns "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 30); do  # up to 3 s for a clean exit, then SIGKILL
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

# nb_down kills, deletes the namespaces, their veths and the bridge (idempotent).
nb_down() {
  local ns
  for ns in "${NS[@]}"; do
    nb_kill_ns "$ns"
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$ns-h" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  # The forwarding exception nb_up may have added (only when the host filters bridged traffic).
  while iptables -w -D FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX bed" -j ACCEPT 2>/dev/null; do :; done
}

# nb_up builds the bridge and one namespace per NS entry, each with eth0 on the bridge; it tears
# down an earlier copy first and everything it built if a step fails. The caller clears the ERR
# trap (`trap - ERR`) once its own additions are in place.
nb_up() {
  nb_down
  if [ -n "$(ip -o addr show to "$NET.0/24")" ]; then
    echo "netns.sh: $NET.0/24 is already in use on this host; choose another $NET_VAR" >&2
    return 1
  fi
  trap 'echo "netns.sh: setup failed, tearing down" >&2; nb_down' ERR
  ip link add "$BR" type bridge
  ip addr add "$RUNNER/24" dev "$BR"
  ip link set "$BR" up
  local i ns
  for i in "${!NS[@]}"; do
    ns=${NS[$i]}
    ip netns add "$ns"
    ip link add "$ns-h" type veth peer name eth0 netns "$ns"
    ip link set "$ns-h" master "$BR" up
    ip -n "$ns" addr add "${IPS[$i]}/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
  # Where the host passes bridged frames through iptables (br_netfilter), let the bed's own frames by.
  if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ]; then
    iptables -w -I FORWARD -i "$BR" -o "$BR" -m comment --comment "$PREFIX bed" -j ACCEPT
  fi
}

# nb_fw_open flushes a client namespace's firewall and lets everything through.
nb_fw_open() {
  local ipt=(ip netns exec "$1" iptables -w)
  "${ipt[@]}" -P INPUT ACCEPT
  "${ipt[@]}" -P OUTPUT ACCEPT
  "${ipt[@]}" -F
  "${ipt[@]}" -X  # a cell's own chains (firewall c-tls), empty after -F
}

# nb_fw_stateful starts a client firewall as real ones are: replies (conntrack), loopback and the
# runner (page server, proxies) always pass. The caller adds what may leave, then nb_fw_close.
nb_fw_stateful() {
  local ipt=(ip netns exec "$1" iptables -w)
  nb_fw_open "$1"
  "${ipt[@]}" -A OUTPUT -o lo -j ACCEPT
  "${ipt[@]}" -A INPUT -i lo -j ACCEPT
  "${ipt[@]}" -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  "${ipt[@]}" -A OUTPUT -d "$RUNNER" -j ACCEPT
  "${ipt[@]}" -A INPUT -s "$RUNNER" -j ACCEPT
}

# nb_fw_close drops everything nb_fw_stateful and the caller did not allow.
nb_fw_close() {
  local ipt=(ip netns exec "$1" iptables -w)
  "${ipt[@]}" -P OUTPUT DROP
  "${ipt[@]}" -P INPUT DROP
}

# nb_preflight PREFIX: root, iproute2, namespaces and iptables, else skip() (cannot run here) or
# fail() (could, but a tool is missing); then Chromium, Firefox and the npm packages (installed if missing).
nb_preflight() {
  local prefix=$1 e2e
  e2e=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  [ "$(id -u)" = 0 ] || skip "needs root (network namespaces and iptables)"
  command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed, so no network namespaces"
  if ! ip netns add "$prefix-probe" 2>/dev/null; then skip "ip netns is unavailable here (cannot create a namespace)"; fi
  ip netns del "$prefix-probe"
  command -v iptables >/dev/null 2>&1 || fail "iptables is not installed (apt-get install iptables)"
  if [ ! -d "$e2e/node_modules/playwright-core" ] || [ ! -d "$e2e/node_modules/puppeteer-core" ] || [ ! -d "$e2e/node_modules/openvidu-browser" ] ||
    [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/firefox-esr ]; then
    "$e2e/setup.sh" || fail "could not install Chromium and the npm packages (test/e2e/setup.sh)"
  fi
}

# nb_needed_addrs prints the addresses this machine needs: registries, DNS, gateway, its own
# (another bed's bridge among them).
nb_needed_addrs() {
  local h
  for h in proxy.golang.org sum.golang.org registry.npmjs.org deb.debian.org; do
    getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}'
  done
  awk '$1 == "nameserver" {print $2}' /etc/resolv.conf 2>/dev/null
  ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "via") print $(i+1)}'
  ip -4 -o addr show 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}'
}

# nb_pick_net VAR CANDIDATE...: unless VAR is set, sets it to the first candidate /24 that holds no
# address this machine needs, and exports it. The bed's /24 sits on a bridge in the root namespace
# and shadows any real host in it: a sandbox may reach its package registries through TEST-NET
# addresses, and taking that /24 would cut go, npm and apt off while the bed runs.
nb_pick_net() {
  local var=$1 cand taken
  shift
  if [ -z "${!var:-}" ]; then
    taken=$(nb_needed_addrs | awk -F. 'NF == 4 {print $1"."$2"."$3}' | sort -u)
    for cand in "$@"; do
      if ! grep -qx "$cand" <<<"$taken"; then printf -v "$var" '%s' "$cand"; break; fi
    done
    [ -n "${!var:-}" ] || fail "every candidate /24 for the bed holds an address this machine needs; set $var"
  fi
  export "${var?}"
}

# nb_lock FD NAME [WAIT]: one bed of a kind at a time on a machine (its namespaces and addresses are
# fixed): takes /run/lock/NAME.lock on descriptor FD, waiting up to WAIT seconds (default 10).
nb_lock() {
  local fd=$1 name=$2 wait=${3:-10} file=/run/lock/$2.lock
  # The braces keep 2>/dev/null to this line: on exec itself it would silence the script's stderr.
  { eval "exec $fd>$file"; } 2>/dev/null || { file=/tmp/$name.lock; eval "exec $fd>$file"; }
  if ! flock -n "$fd"; then
    echo "$name: another bed holds $file; waiting up to $wait s"
    flock -w "$wait" "$fd" || fail "another bed is running on this machine (lock $file)"
  fi
}

# nb_run LIMIT CMD...: runs the bed's runner in the background (so a signal reaches the cleanup),
# kills it after LIMIT seconds, and returns its status (124 when it overran). NB_RUNNER holds its
# pid while it runs, for nb_stop_runner.
NB_RUNNER=
nb_run() {
  local limit=$1 status=0
  shift
  timeout -k 10 "$limit" "$@" &
  NB_RUNNER=$!
  wait "$NB_RUNNER" || status=$?
  NB_RUNNER=
  return "$status"
}

# nb_stop_runner ends a runner still going (the bed's EXIT trap calls it before tearing down).
nb_stop_runner() {
  if [ -n "$NB_RUNNER" ] && kill -0 "$NB_RUNNER" 2>/dev/null; then
    kill -TERM "$NB_RUNNER" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$NB_RUNNER" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$NB_RUNNER" 2>/dev/null
  fi
}
