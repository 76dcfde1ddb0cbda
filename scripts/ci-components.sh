#!/usr/bin/env bash
# Installs and starts the real components the test suite needs (../shared/docs/toolchain.md, "What CI must do"):
# Docker Engine (docker.io) and the private registry (docker-registry), both from Debian.
# Idempotent: apt runs only for what is missing (one `apt-get update` at most), dockerd starts only when no daemon
# answers. Other components (postgresql, chromium) can be added to PACKAGES by the features that need them.
set -euo pipefail

# chromium: the browser end-to-end tests of human login (packages/cluster/test/human-login-browser.test.ts).
# postgresql: the store engine suite and the scale-out replicas (packages/cluster/test/helpers/postgres.ts starts its
# own server from /usr/lib/postgresql/15/bin on a private port; nothing is started here).
PACKAGES=(docker.io docker-registry chromium postgresql)
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/octelium-ci-dockerd.log}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci-components: installing ${missing[*]}"
  # Another apt may be running (parallel installs on a shared machine): wait for its lock instead of failing.
  as_root apt-get -o DPkg::Lock::Timeout=600 update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# No systemd here: start dockerd ourselves when nothing answers on the socket.
if ! docker info >/dev/null 2>&1; then
  echo "ci-components: starting dockerd (log: $DOCKERD_LOG)"
  as_root bash -c "nohup dockerd >'$DOCKERD_LOG' 2>&1 &"
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "ci-components: dockerd did not become ready in 30 s; last log lines:" >&2
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi
echo "ci-components: docker $(docker version --format '{{.Server.Version}}' 2>/dev/null) ready; docker-registry at $(command -v docker-registry || echo /usr/bin/docker-registry)"
