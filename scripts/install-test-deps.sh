#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, only when missing: Chromium and Firefox
# ESR (browser tests), ffmpeg and unzip (recordings), coturn's test clients, redis-server, iproute2/iptables
# (network test beds), HAProxy and nginx with its stream module (the proxied-mode bed), and the npm packages of test/e2e.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v unzip >/dev/null || need+=(unzip)
command -v turnutils_uclient >/dev/null || need+=(coturn)
command -v redis-server >/dev/null || need+=(redis-server)
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -x test/e2e/setup.sh ]; then
  test/e2e/setup.sh
fi
