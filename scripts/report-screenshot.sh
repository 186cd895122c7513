#!/bin/bash
# The README's picture of a run: playbooks/site.yml on a fresh lab, its report page
# (--report-html) rendered by headless Chromium with the first worker's wait for the swarm's
# init highlighted, saved as docs/report.png. Root on Debian 12, with chromium installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
prov=./target/release/prov
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$prov" lab down >/dev/null 2>&1 || true
"$prov" lab up 3 >/dev/null
"$prov" apply playbooks/site.yml -i inventory/lab --report-html "$out/site.html" >/dev/null
# The wait of h2's join (its element's id is in its bar's data-hl, first).
wait=$(grep -o 'data-host="h2" data-task="swarm : join tokens from the first manager"[^>]*data-hl="w[0-9]*' \
  "$out/site.html" | grep -o 'w[0-9]*$')
chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$out/profile" --hide-scrollbars \
  --window-size=1400,900 --screenshot=docs/report.png "file://$out/site.html#hl=$wait" 2>/dev/null
echo docs/report.png
