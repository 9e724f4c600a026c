#!/usr/bin/env bash
# Installs what a fresh Debian 12 / Ubuntu machine lacks to run hlip-webgpu: a Vulkan driver that Dawn
# accepts (Mesa lavapipe ≥ 24; on Debian 12 from bookworm-backports), Chromium for the browser tests,
# the sample medical data packages the reading tests use, and the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
. /etc/os-release
if [ "${ID:-}" = "debian" ] && [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q mesa-vulkan-drivers libvulkan1
fi
# Debian names the browser `chromium`; Ubuntu ships it as a snap stub, so CHROMIUM_PATH may point elsewhere.
$SUDO apt-get install -y -q chromium || $SUDO apt-get install -y -q chromium-browser
npm ci --no-audit --no-fund
bash scripts/test-data.sh
