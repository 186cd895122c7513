#!/bin/bash
# Benchmark: a 30-task idempotent playbook on the lab hosts, no-op runs (everything already
# converged). Prints the median wall time of prov and, for scale, of the floor: one plain
# OpenSSH connection per host, in parallel, running `true`. Needs `prov lab up` first.
#   scripts/bench.sh [RUNS] [INVENTORY]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
inv=${2:-inventory/lab/hosts.ini}
lab=${LAB_DIR:-/var/tmp/prov-lab}
cargo build --release -q
prov=./target/release/prov
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

{
  echo "- name: bench (30 idempotent tasks)"
  echo "  hosts: lab"
  echo "  gather_facts: false"
  echo "  tasks:"
  for i in $(seq 1 10); do
    echo "    - file: {path: /srv/bench/d$i, state: directory}"
    echo "    - copy: {dest: /srv/bench/d$i/f, content: \"file $i\\n\"}"
    echo "    - lineinfile: {path: /srv/bench/d$i/f, line: \"file $i\"}"
  done
} >"$work/bench.yml"

$prov apply "$work/bench.yml" -i "$inv" >/dev/null   # converge once

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

for _ in $(seq 1 "$runs"); do
  t=$(date +%s%N)
  $prov apply "$work/bench.yml" -i "$inv" --report "$work/r.json" >/dev/null
  ms "$t"
  grep -q '"changed": 0' "$work/r.json" || { echo "not a no-op run" >&2; exit 1; }
done | median >"$work/prov"

hosts=$(awk '/ansible_host=/{for(i=1;i<=NF;i++) if ($i ~ /^ansible_host=/) {sub("ansible_host=","",$i); print $i}}' "$inv")
for _ in $(seq 1 "$runs"); do
  t=$(date +%s%N)
  for h in $hosts; do
    ssh -i "$lab/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
      -o LogLevel=ERROR "root@$h" true &
  done
  wait
  ms "$t"
done | median >"$work/floor"

n=$(echo "$hosts" | wc -w)
echo "no-op run, 30 tasks x $n hosts: prov $(cat "$work/prov") ms (median of $runs); floor (one ssh per host, in parallel) $(cat "$work/floor") ms"
