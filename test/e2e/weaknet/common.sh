# Sourced by run.sh and bench/weaknet.sh: root and tool checks, the bed's /24, the lock, building the
# namespaces, and tearing everything down on any exit. Sets PWN_HERE and exports PWN_NET.
# The caller defines skip() and fail().
PWN_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, tc and iptables)"
command -v ip >/dev/null 2>&1 || skip "ip (iproute2) is not installed, so no network namespaces"
if ! ip netns add pwn-probe 2>/dev/null; then skip "ip netns is unavailable here (cannot create a namespace)"; fi
ip netns del pwn-probe
command -v iptables >/dev/null 2>&1 || fail "iptables is not installed (apt-get install iptables)"
command -v tc >/dev/null 2>&1 || fail "tc (iproute2) is not installed"
if [ ! -d "$PWN_HERE/../node_modules/playwright-core" ] || [ ! -d "$PWN_HERE/../node_modules/openvidu-browser" ] || [ ! -x /usr/bin/chromium ]; then
  "$PWN_HERE/../setup.sh" || fail "could not install Chromium and the npm packages (test/e2e/setup.sh)"
fi

# One bed at a time on a machine: the namespaces and addresses are fixed.
{ exec 8>/run/lock/pwn-weaknet-bed.lock; } 2>/dev/null || exec 8>/tmp/pwn-weaknet-bed.lock
if ! flock -n 8; then
  echo "weak-network bed: another bed or bench holds the lock; waiting up to ${PWN_LOCK_WAIT:-600} s"
  flock -w "${PWN_LOCK_WAIT:-600}" 8 || fail "another weak-network bed is running on this machine (lock /run/lock/pwn-weaknet-bed.lock)"
fi

# The bed's /24 sits on a bridge in the root namespace and shadows any real host in it, so take one
# no registry, DNS server, gateway or own address of this machine is in (a sandbox may reach its
# registries through TEST-NET addresses) and that no other bed holds. The default candidates are in
# 198.18.0.0/15 (RFC 2544, benchmarking): public to Chromium, and apart from the firewall bed's TEST-NETs.
pwn_needed_addrs() {
  local h
  for h in proxy.golang.org sum.golang.org registry.npmjs.org deb.debian.org; do
    getent ahostsv4 "$h" 2>/dev/null | awk '{print $1}'
  done
  awk '$1 == "nameserver" {print $2}' /etc/resolv.conf 2>/dev/null
  ip -4 route show default 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "via") print $(i+1)}'
  ip -4 -o addr show 2>/dev/null | awk '{sub(/\/.*/, "", $4); print $4}'
}
if [ -z "${PWN_NET:-}" ]; then
  taken=$(pwn_needed_addrs | awk -F. 'NF == 4 {print $1"."$2"."$3}' | sort -u)
  for cand in 198.18.99 198.19.99 198.18.199; do
    if ! grep -qx "$cand" <<<"$taken"; then PWN_NET=$cand; break; fi
  done
  [ -n "${PWN_NET:-}" ] || fail "every candidate /24 for the bed holds an address this machine needs; set PWN_NET"
fi
export PWN_NET

pwn_runner=
pwn_cleanup() {
  trap - EXIT INT TERM
  if [ -n "$pwn_runner" ] && kill -0 "$pwn_runner" 2>/dev/null; then
    kill -TERM "$pwn_runner" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pwn_runner" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pwn_runner" 2>/dev/null
  fi
  "$PWN_HERE/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, chromium)
}
trap pwn_cleanup EXIT
trap 'exit 130' INT TERM
"$PWN_HERE/netns.sh" up || fail "could not build the namespaces"
