#!/usr/bin/env bash
# Throughput of the toy env through the plugin boundary (goal: > 100k steps/s).
# Usage: bash benches/gridworld.sh  (after .ci/setup). Last line: "<rate> steps/s".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target/release/metarl env bench gridworld --task gridworld --envs 64 --steps 4000000
