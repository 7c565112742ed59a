#!/usr/bin/env bash
# The Debian package's test (issue 16; make test-deb builds the package first): installs it with
# dpkg -i, checks what postinst made (the system user parley, /var/lib/parley, the .env readable by
# that group only), verifies the unit with systemd-analyze, starts parley exactly as the unit says
# (its User, WorkingDirectory, EnvironmentFile, capabilities and no-new-privileges; systemd is not
# PID 1 on the machines this runs on, so setpriv stands in for it) in production mode on TCP 443
# and 80, checks it answers REST as that user, stops it (exit 0 on SIGTERM) and purges the package.
# The same start without the capability must fail to bind 443: the capability is what the unit
# needs. Everything happens in a private mount namespace whose /etc, /usr and /var are overlays on a
# tmpfs, and a private network namespace: nothing of it reaches the host, which needs no cleanup.
# Needs root; without it, or without overlayfs and namespaces, it prints SKIP.
#
# usage: test/e2e/deb/run.sh bin/parley_<version>_<arch>.deb
set -euo pipefail

skip() { echo "SKIP deb test: $*"; exit 0; }
fail() { echo "FAIL deb test: $*" >&2; exit 1; }
passed=0
pass() { echo "ok - $*"; passed=$((passed + 1)); }

deb=${1:-}
[ -f "$deb" ] || { echo "usage: $0 PACKAGE.deb (make test-deb builds it)" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

if [ "${DEB_TEST_INNER:-}" != 1 ]; then
  [ "$(id -u)" = 0 ] || skip "needs root (dpkg -i, mount and network namespaces)"
  for c in dpkg dpkg-deb unshare setpriv curl ip; do
    command -v "$c" >/dev/null 2>&1 || fail "$c is not installed"
  done
  grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || skip "no overlayfs here"
  unshare --mount --net true 2>/dev/null || skip "cannot create mount and network namespaces"
  # Nothing the package does may stay behind: run the rest in namespaces of its own.
  exec unshare --mount --net --propagation private env DEB_TEST_INNER=1 "$0" "$deb"
fi

# --- inside the namespaces ---------------------------------------------------------------------
scratch=$(mktemp -d /tmp/parley-deb.XXXXXX)
mount -t tmpfs -o mode=0700 parley-deb "$scratch"
for d in etc usr var; do
  mkdir "$scratch/$d.up" "$scratch/$d.work"
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$scratch/$d.up,workdir=$scratch/$d.work" "/$d"
done
pid=
finish() {
  local status=$?
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  # The mount namespace and its overlays end with this process; the scratch directory is ours.
  umount -l /etc /usr /var "$scratch" 2>/dev/null || true
  rmdir "$scratch" 2>/dev/null || true
  exit "$status"
}
trap finish EXIT

ip link set lo up
ip link add parley0 type dummy 2>/dev/null || ip link add parley0 type veth peer name parley1
ip addr add 192.0.2.10/24 dev parley0
ip link set parley0 up

dpkg -s parley >/dev/null 2>&1 && fail "a package named parley is already installed on this machine; this test installs a fresh one"
getent passwd parley >/dev/null && fail "a user parley already exists on this machine; this test checks that postinst makes it"

# Install.
out=$(dpkg -i "$deb" 2>&1) || fail "dpkg -i failed: $out"
dpkg-query -W -f '${Status}' parley | grep -qx 'install ok installed' || fail "dpkg does not show parley installed"
grep -q 'systemctl enable --now parley' <<<"$out" || fail "postinst does not tell how to start it: $out"
pass "dpkg -i $(basename "$deb")"

# What postinst made.
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd parley) || fail "postinst made no user parley"
[ "$uid" -lt 1000 ] || fail "parley is not a system user (uid $uid)"
[ "$home" = /var/lib/parley ] || fail "parley's home is $home"
[ "$shell" = /usr/sbin/nologin ] || fail "parley's shell is $shell, not nologin"
[ "$(getent group parley | cut -d: -f3)" = "$gid" ] || fail "parley's group is not parley"
[ "$(stat -c '%U:%G %a' /var/lib/parley)" = "parley:parley 750" ] || fail "/var/lib/parley is $(stat -c '%U:%G %a' /var/lib/parley)"
[ "$(stat -c '%U:%G %a' /etc/parley/.env)" = "root:parley 640" ] || fail "/etc/parley/.env is $(stat -c '%U:%G %a' /etc/parley/.env)"
grep -qx '/etc/parley/.env' < <(dpkg-query -W -f '${Conffiles}\n' parley | awk '{print $1}') || fail "/etc/parley/.env is not a conffile"
pass "postinst: system user parley (uid $uid, nologin), /var/lib/parley 0750, /etc/parley/.env root:parley 0640 (a conffile)"

# The unit as installed.
unit=/usr/lib/systemd/system/parley.service
[ -f "$unit" ] || fail "no unit at $unit"
if command -v systemd-analyze >/dev/null 2>&1; then
  v=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $v"
  [ -z "$v" ] || fail "systemd-analyze verify warns: $v"
  pass "systemd-analyze verify $unit"
fi
key() { awk -F= -v k="$1" '$1 == k { sub(/^[^=]*=/, ""); v = $0 } END { print v }' "$unit"; }
exec_start=$(key ExecStart) user=$(key User) group=$(key Group) workdir=$(key WorkingDirectory)
envfile=$(key EnvironmentFile) ambient=$(key AmbientCapabilities) bounding=$(key CapabilityBoundingSet)
[ "$exec_start" = /usr/bin/parley ] || fail "ExecStart is '$exec_start', not the packaged /usr/bin/parley"
[ "$user:$group" = parley:parley ] || fail "the unit runs as $user:$group"
[ "$ambient" = CAP_NET_BIND_SERVICE ] && [ "$bounding" = CAP_NET_BIND_SERVICE ] || fail "capabilities: ambient '$ambient', bounding '$bounding'"
[ "$(key NoNewPrivileges)" = true ] || fail "NoNewPrivileges is not true"
[ "$(key Restart)" = on-failure ] || fail "Restart is '$(key Restart)', not on-failure"
[ "$envfile" = /etc/parley/.env ] || fail "EnvironmentFile is '$envfile'"

# The operator's configuration, then the service's start as systemd would make it: the variables
# of the EnvironmentFile and nothing else of ours, the user, the directory, only the capability.
secret=deb-test-secret-1234
printf 'DOMAIN_OR_PUBLIC_IP=192.0.2.10\nOPENVIDU_SECRET=%s\n' "$secret" >>"$envfile"
mapfile -t vars < <(grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$envfile")
cap=${ambient#CAP_}
cap=${cap,,}
start() { # start LOG CAPS...: parley as the unit says, in the background; pid in $pid
  local log=$1
  shift
  (cd "$workdir" && exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${vars[@]}" \
    setpriv --reuid="$user" --regid="$group" --init-groups --no-new-privs "$@" -- $exec_start) >"$log" 2>&1 &
  pid=$!
}

# Without the capability the unit grants, 443 cannot be bound: start-up fails at once.
start "$scratch/nocap.log" --inh-caps=-all --ambient-caps=-all --bounding-set=-all
status=0
timeout 30 tail --pid="$pid" -f /dev/null || fail "parley without CAP_NET_BIND_SERVICE neither bound 443 nor exited within 30 s: $(tail -5 "$scratch/nocap.log")"
wait "$pid" || status=$?
pid=
[ "$status" != 0 ] || fail "parley started without CAP_NET_BIND_SERVICE: the test cannot tell that the capability matters"
grep -qi 'permission denied' "$scratch/nocap.log" || fail "parley without the capability failed for another reason: $(tail -5 "$scratch/nocap.log")"
pass "without $ambient parley cannot bind 443 (exit $status)"

start "$scratch/parley.log" --inh-caps=-all,+"$cap" --ambient-caps=-all,+"$cap" --bounding-set=-all,+"$cap"
deadline=$((SECONDS + 30)) code=
until code=$(curl -sk -o /dev/null -w '%{http_code}' -u "OPENVIDUAPP:$secret" https://127.0.0.1/openvidu/api/config) && [ "$code" = 200 ]; do
  kill -0 "$pid" 2>/dev/null || fail "parley exited at start-up: $(tail -20 "$scratch/parley.log")"
  [ "$SECONDS" -lt "$deadline" ] || fail "parley did not answer https://127.0.0.1/openvidu/api/config within 30 s (last status '$code'): $(tail -20 "$scratch/parley.log")"
  sleep 0.2 # poll interval, not synchronisation: the loop ends on the answer or the deadline
done
[ "$(curl -sk -o /dev/null -w '%{http_code}' -u OPENVIDUAPP:wrong-secret-123 https://127.0.0.1/openvidu/api/config)" = 401 ] ||
  fail "a wrong secret was not refused: the .env's OPENVIDU_SECRET is not the one in force"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1/openvidu/api/config)" = 301 ] || fail "port 80 does not redirect"
read -r _ ruid _ < <(grep '^Uid:' "/proc/$pid/status")
[ "$ruid" = "$uid" ] || fail "parley runs as uid $ruid, not parley's $uid"
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[ $((16#$capeff)) = $((1 << 10)) ] || fail "parley's effective capabilities are $capeff, not CAP_NET_BIND_SERVICE alone"
[ "$(stat -c %U /var/lib/parley/selfsigned-cert.pem 2>/dev/null)" = parley ] ||
  fail "parley kept no self-signed certificate in /var/lib/parley: $(ls -lR /var/lib/parley)"
pass "parley as user parley (uid $uid, CapEff $capeff) answers REST on 443 with the .env's secret, redirects on 80, keeps its certificate in /var/lib/parley"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" = 0 ] || fail "parley exited $status on SIGTERM, not 0: $(tail -5 "$scratch/parley.log")"
pass "SIGTERM: exit 0"

out=$(dpkg --purge parley 2>&1) || fail "dpkg --purge failed: $out"
for f in /usr/bin/parley "$unit" /etc/parley; do
  [ ! -e "$f" ] || fail "$f is left after purge"
done
dpkg -s parley >/dev/null 2>&1 && fail "dpkg still lists parley after purge"
pass "dpkg --purge parley removes the binary, the unit and /etc/parley"
echo "deb test: $passed passed, 0 failed"
