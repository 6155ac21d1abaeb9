#!/usr/bin/env bash
# Debian packages the test tiers need, installed only where missing: Chromium and ChromeDriver
# (browser tier, dash[testing]) and redis-server (team-server tier: Celery jobs, the shared cache;
# the tests start their own server on a free loopback port and stop it).
set -euo pipefail
declare -A want=([chromium]=chromium [chromedriver]=chromium-driver [redis-server]=redis-server)
missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
