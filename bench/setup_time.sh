#!/usr/bin/env bash
# `make up` on a fresh clone: time to "hotline ready" (first and second run), idle memory of
# Asterisk and the service, and how fast Ctrl-C stops both. Uses the default ports (5060, 8088,
# 8080): run it where no other hotline is up.   bash bench/setup_time.sh [CLONE_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
clone=${1:-$(mktemp -d)/hotline}
git clone -q "$repo" "$clone"
cd "$clone"
for run in 1 2; do
  log=$(mktemp)
  start=$(date +%s.%N)
  setsid make up >"$log" 2>&1 &
  pid=$!
  until grep -q "hotline ready" "$log"; do
    sleep 0.5
    kill -0 $pid 2>/dev/null || { echo "run $run: make up exited"; tail -20 "$log"; exit 1; }
  done
  echo "run $run: ready after $(echo "$(date +%s.%N) - $start" | bc) s"
  sleep 20  # idle
  service=$(pgrep -f "bin/hotline up" | head -1)
  asterisk=$(pgrep -P "$service" -f "asterisk -f" | head -1 || true)
  echo "  idle RSS: service $(ps -o rss= -p "$service") kB, asterisk $(ps -o rss= -p "${asterisk:-$service}") kB"
  kill -INT -- -$pid
  t0=$(date +%s.%N)
  wait $pid && code=0 || code=$?
  echo "  Ctrl-C: stopped (exit $code) in $(echo "$(date +%s.%N) - $t0" | bc) s"
done
