#!/bin/bash
# Benchmark: prov against the floor on N loopback SSH hosts (root, Linux).
#
#   scripts/bench.sh [N ...]        (default: 10 100 1000; RUNS=3 paired runs per size)
#
# Each host is an OpenSSH sshd of its own on a 127.77.x.y address, in its own mount namespace
# with private /srv, /root and /run/lock (tmpfs: every host its own lock, as real machines have), all in one cgroup so that the CPU spent on the targets
# can be read. The workload is 30 tasks per host (directories, copies, templates, lineinfile,
# `creates`-guarded commands). The floor is one plain OpenSSH connection per host, all hosts
# at once, curve25519 key exchange (as prov), running the same 30 checks as one shell script.
#
# The floor's first run writes the same end state with one script per host (mkdir, printf to a
# temp file and mv, chmod, touch): the unavoidable writes.
#
# Reported per size: prov's first run (from empty /srv) and no-op run, the floor beside them,
# prov's controller CPU and peak RSS, and the CPU spent on the targets per host by prov's no-op
# and by the floor. Medians of RUNS paired runs; each prov run is checked for the right change
# counts (first run: every task changed but the lineinfiles; no-op: none).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (it starts sshd per host)" >&2; exit 1; }
command -v /usr/sbin/sshd >/dev/null || { echo "bench.sh: needs openssh-server" >&2; exit 1; }
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000)
runs=${RUNS:-3}
cargo build --release -q
prov=$PWD/target/release/prov
work=$(mktemp -d /var/tmp/prov-bench.XXXXXX)
cg=""

cleanup() {
  stop_hosts
  rm -rf "$work"
}
trap cleanup EXIT

# --- the hosts -----------------------------------------------------------------------------

addr() { echo "127.77.$(( $1 / 200 )).$(( $1 % 200 + 1 ))"; }

# A cgroup holding every sshd (and so every session and command under them).
make_cgroup() {
  if [ -d /sys/fs/cgroup/cpuacct ]; then
    cg=/sys/fs/cgroup/cpuacct/prov-bench-$$
    mkdir "$cg"
  elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    cg=/sys/fs/cgroup/prov-bench-$$
    mkdir "$cg"
  fi
}

# CPU used in the cgroup so far, in microseconds.
target_cpu_us() {
  if [ -f "$cg/cpuacct.usage" ]; then echo $(( $(cat "$cg/cpuacct.usage") / 1000 ))
  elif [ -f "$cg/cpu.stat" ]; then awk '$1 == "usage_usec" {print $2}' "$cg/cpu.stat"
  else echo 0; fi
}

start_hosts() {
  local n=$1
  mkdir -p /run/sshd "$work/keys"
  ssh-keygen -q -t ed25519 -N '' -f "$work/keys/client" <<<y >/dev/null
  ssh-keygen -q -t ed25519 -N '' -f "$work/keys/host" <<<y >/dev/null
  cat >"$work/sshd_config" <<EOF
HostKey $work/keys/host
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
LogLevel ERROR
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
EOF
  make_cgroup
  : >"$work/known_hosts"
  {
    echo "[bench]"
    for i in $(seq 1 "$n"); do
      echo "b$i ansible_host=$(addr "$i")"
    done
    echo "[bench:vars]"
    echo "ansible_user=root"
    echo "ansible_ssh_private_key_file=$work/keys/client"
    echo "ansible_ssh_known_hosts_file=$work/known_hosts"
  } >"$work/hosts.ini"
  local hostkey; hostkey=$(cut -d' ' -f1-2 "$work/keys/host.pub")
  for i in $(seq 1 "$n"); do
    local a; a=$(addr "$i")
    echo "$a $hostkey" >>"$work/known_hosts"
    (
      [ -n "$cg" ] && echo "$BASHPID" >"$cg/cgroup.procs"
      exec unshare --mount --propagation private sh -c '
        mount -t tmpfs -o mode=755 bench-srv /srv
        mount -t tmpfs -o mode=700 bench-root /root
        mount -t tmpfs -o mode=1777 bench-lock /run/lock
        mkdir -m 700 /root/.ssh && cp "$1" /root/.ssh/authorized_keys
        exec /usr/sbin/sshd -D -f "$2" -o ListenAddress="$3"' sh \
        "$work/keys/client.pub" "$work/sshd_config" "$a"
    ) &
    echo $! >>"$work/pids"
  done
  # Every sshd listening before the clock starts.
  for _ in $(seq 1 200); do
    [ "$(ss -Hltn 'sport = :22' | grep -c '127\.77\.')" -ge "$n" ] && return 0
    sleep 0.1
  done
  echo "bench.sh: not every sshd started" >&2
  exit 1
}

stop_hosts() {
  [ -f "$work/pids" ] || return 0
  xargs -r kill <"$work/pids" 2>/dev/null || true
  rm -f "$work/pids"
  sleep 0.5
  [ -n "$cg" ] && [ -d "$cg" ] && { xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null || true; sleep 0.2; rmdir "$cg" 2>/dev/null || true; }
  cg=""
}

# Empties /srv on every host (inside each host's own mount namespace: the pids are the sshds').
reset_hosts() {
  xargs -r -I{} nsenter -t {} -m rm -rf /srv/bench <"$work/pids"
}

# --- the workload ----------------------------------------------------------------------------

write_workload() {
  {
    echo "- name: bench (30 tasks per host)"
    echo "  hosts: bench"
    echo "  gather_facts: false"
    echo "  tasks:"
    for i in 1 2 3 4 5 6; do
      echo "    - file: {path: /srv/bench/d$i, state: directory, mode: '0755'}"
      echo "    - copy: {dest: /srv/bench/d$i/copied, content: \"copied $i\\n\", mode: '0644'}"
      echo "    - template: {src: $work/page.j2, dest: /srv/bench/d$i/page, mode: '0644'}"
      echo "      vars: {item_no: $i}"
      echo "    - lineinfile: {path: /srv/bench/d$i/copied, line: \"copied $i\"}"
      echo "    - command: touch /srv/bench/d$i/stamp"
      echo "      args: {creates: /srv/bench/d$i/stamp}"
    done
  } >"$work/bench.yml"
  printf '%s\n' '{{ inventory_hostname }} item {{ item_no }}' >"$work/page.j2"
  # The floor: the same 30 checks, one script per host.
  {
    echo 'set -e'
    echo 'h=$(cat /etc/hostname 2>/dev/null || true)'
    for i in 1 2 3 4 5 6; do
      echo "[ -d /srv/bench/d$i ] && [ \"\$(stat -c %a /srv/bench/d$i)\" = 755 ]"
      echo "[ \"\$(cat /srv/bench/d$i/copied)\" = 'copied $i' ] && [ \"\$(stat -c %a /srv/bench/d$i/copied)\" = 644 ]"
      echo "[ -f /srv/bench/d$i/page ] && [ \"\$(stat -c %a /srv/bench/d$i/page)\" = 644 ]"
      echo "grep -qxF 'copied $i' /srv/bench/d$i/copied"
      echo "[ -e /srv/bench/d$i/stamp ]"
    done
  } >"$work/floor.sh"
  # The floor's first run: the same end state written by one script per host.
  {
    echo 'set -e'
    for i in 1 2 3 4 5 6; do
      echo "mkdir -p /srv/bench/d$i && chmod 755 /srv/bench/d$i"
      echo "printf 'copied $i\n' >/srv/bench/d$i/copied.tmp && chmod 644 /srv/bench/d$i/copied.tmp && mv /srv/bench/d$i/copied.tmp /srv/bench/d$i/copied"
      echo "printf '%s item $i\n' \"\$1\" >/srv/bench/d$i/page.tmp && chmod 644 /srv/bench/d$i/page.tmp && mv /srv/bench/d$i/page.tmp /srv/bench/d$i/page"
      echo "grep -qxF 'copied $i' /srv/bench/d$i/copied || echo 'copied $i' >>/srv/bench/d$i/copied"
      echo "[ -e /srv/bench/d$i/stamp ] || touch /srv/bench/d$i/stamp"
    done
  } >"$work/floor-write.sh"
}

# One plain ssh per host, all at once, running `script` (floor.sh: the checks; floor-write.sh:
# the writes of a first run).
floor_run() {
  local n=$1 script=${2:-floor.sh} i pids=()
  for i in $(seq 1 "$n"); do
    ssh -T -o BatchMode=yes -o KexAlgorithms=curve25519-sha256 -o StrictHostKeyChecking=yes \
      -o UserKnownHostsFile="$work/known_hosts" -o LogLevel=ERROR -i "$work/keys/client" \
      "root@$(addr "$i")" sh -s "b$i" <"$work/$script" >/dev/null || echo fail >>"$work/floor-failed" &
    pids+=($!)
  done
  wait "${pids[@]}"
  if [ -s "$work/floor-failed" ]; then echo "bench.sh: the floor's checks failed" >&2; exit 1; fi
}

# Runs prov once: "wall user+sys peak_kib" on stdout; checks the change count.
prov_run() {
  local n=$1 want_changed=$2
  /usr/bin/time -o "$work/time" -f "%e %U %S %M" ${PROV_WRAP:-} \
    "$prov" apply "$work/bench.yml" -i "$work/hosts.ini" --forks "${FORKS:-$n}" ${PROV_ARGS:-} \
    --report "$work/r.json" >"$work/out" 2>&1 || { tail -20 "$work/out" >&2; exit 1; }
  local got
  got=$(python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["hosts"].values()
print(sum(x["changed"] for x in h), sum(x["failed"] + int(x["unreachable"]) for x in h))' "$work/r.json")
  [ "$got" = "$want_changed 0" ] || { echo "bench.sh: changed, failed: $got; expected $want_changed 0" >&2; exit 1; }
  awk '{printf "%s %.2f %d\n", $1, $2 + $3, $4}' "$work/time"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# --- one size ----------------------------------------------------------------------------------

bench_size() {
  local n=$1 r
  start_hosts "$n"
  for r in $(seq 1 "$runs"); do
    local c0 t
    reset_hosts
    c0=$(target_cpu_us)
    t=$(now_ms)
    floor_run "$n" floor-write.sh
    echo "scale=3; ($(now_ms) - $t) / 1000" | bc >>"$work/floor-first"
    echo $(( ( $(target_cpu_us) - c0 ) / n )) >>"$work/floor-first-target"
    reset_hosts
    c0=$(target_cpu_us)
    prov_run "$n" $((n * 24)) | awk '{print $1}' >>"$work/first"
    echo $(( ( $(target_cpu_us) - c0 ) / n )) >>"$work/prov-first-target"
    c0=$(target_cpu_us)
    prov_run "$n" 0 >"$work/noop-line"
    echo $(( ( $(target_cpu_us) - c0 ) / n )) >>"$work/prov-target"
    awk '{print $1}' "$work/noop-line" >>"$work/noop"
    awk '{print $2}' "$work/noop-line" >>"$work/cpu"
    awk '{print $3}' "$work/noop-line" >>"$work/rss"
    c0=$(target_cpu_us)
    t=$(now_ms)
    floor_run "$n"
    echo "scale=3; ($(now_ms) - $t) / 1000" | bc >>"$work/floor"
    echo $(( ( $(target_cpu_us) - c0 ) / n )) >>"$work/floor-target"
  done
  local first noop floor cpu rss pt ft ff pft fft
  first=$(median <"$work/first"); noop=$(median <"$work/noop"); floor=$(median <"$work/floor")
  ff=$(median <"$work/floor-first")
  cpu=$(median <"$work/cpu"); rss=$(median <"$work/rss")
  pt=$(median <"$work/prov-target"); ft=$(median <"$work/floor-target")
  pft=$(median <"$work/prov-first-target"); fft=$(median <"$work/floor-first-target")
  printf '| %5d | %5.2f s | %5.2f s (%.2fx) | %5.2f s | %5.2f s (%.2fx) | %5.2f s | %4d MiB | %5.1f ms (%.2fx) | %5.1f ms | %5.1f ms (%.2fx) | %5.1f ms |\n' \
    "$n" "$floor" "$noop" "$(echo "$noop / $floor" | bc -l)" "$ff" "$first" "$(echo "$first / $ff" | bc -l)" \
    "$cpu" $((rss / 1024)) "$(echo "$pt / 1000" | bc -l)" "$(echo "$pt / ($ft + 1)" | bc -l)" \
    "$(echo "$ft / 1000" | bc -l)" "$(echo "$pft / 1000" | bc -l)" "$(echo "$pft / ($fft + 1)" | bc -l)" \
    "$(echo "$fft / 1000" | bc -l)"
  rm -f "$work"/{first,noop,floor,floor-first,cpu,rss,prov-target,floor-target,prov-first-target,floor-first-target}
  stop_hosts
}

write_workload
echo "prov $("$prov" --version | awk '{print $2}'), $runs paired runs per size, medians; $(nproc) cores"
echo
echo "| hosts | floor no-op | prov no-op (x floor) | floor first run | prov first run (x floor) | prov CPU (no-op) | prov peak RSS (no-op) | target CPU/host, prov no-op (x floor) | target CPU/host, floor no-op | target CPU/host, prov first run (x floor) | target CPU/host, floor first run |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  bench_size "$n"
done
