# Sourced by run.sh and bench/weaknet.sh: root and tool checks, the bed's /24, the lock, building the
# namespaces, and tearing everything down on any exit. Sets PWN_HERE and exports PWN_NET.
# The caller defines skip() and fail(), and runs its runner with nb_run.
PWN_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../netbed/lib.sh
source "$PWN_HERE/../netbed/lib.sh"

nb_preflight pwn
command -v tc >/dev/null 2>&1 || fail "tc (iproute2) is not installed"
nb_lock 8 pwn-weaknet-bed "${PWN_LOCK_WAIT:-600}"

# The default candidates are in 198.18.0.0/15 (RFC 2544, benchmarking): public to Chromium, and
# apart from the firewall bed's TEST-NETs.
nb_pick_net PWN_NET 198.18.99 198.19.99 198.18.199

pwn_cleanup() {
  trap - EXIT INT TERM
  nb_stop_runner
  "$PWN_HERE/netns.sh" down  # also ends whatever still runs inside the namespaces (parley, chromium)
}
trap pwn_cleanup EXIT
trap 'exit 130' INT TERM
"$PWN_HERE/netns.sh" up || fail "could not build the namespaces"
