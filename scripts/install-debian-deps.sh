#!/usr/bin/env bash
# Installs the Debian packages the hotline needs, only those missing (idempotent).
# debootstrap builds the Asterisk root; espeak-ng + sox make prompts; sip-tester is sipp.
set -euo pipefail
packages=(debootstrap espeak-ng sox libsox-fmt-all sip-tester)
# The agent desk's browser tests: Debian's Chromium (never a downloaded browser build) and a
# CJK font, without which headless Chromium draws Chinese as empty boxes.
if [ "${HOTLINE_WITH_BROWSER:-0}" = 1 ]; then packages+=(chromium chromium-driver fonts-wqy-microhei); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
