#!/bin/bash
# prov's lab: N Debian 12 hosts on this machine, booted with systemd-nspawn. Each has real
# systemd as PID 1, its own address (10.77.0.11, .12, …) on a private bridge, sshd with its own
# host keys, a root key shared with the control machine, and room for a real dockerd.
#
#   lab.sh up N      build the base image once (~40 s), boot h1..hN (running hosts stay),
#                    record their host keys and write an inventory
#                    With PROV_LAB_PASSWORD_ONLY="K ..." (and PROV_LAB_ROOT_PASSWORD): hK is
#                    (re)created as a freshly installed host that accepts only the root
#                    password: no root key, password logins on, and its host key not recorded.
#                    It stays so (skipped by later `up`s, left out of the inventory and its
#                    known_hosts lines kept as they are) until `down`, or until it is named
#                    again, which re-creates it from scratch. hK may be above N.
#   lab.sh status    what is running
#   lab.sh ssh K [CMD]  ssh into hK as root
#   lab.sh down      power every host off cleanly; remove hosts, bridge, NAT rule, cgroups
#
# `prov lab …` runs this very script (embedded in the binary) with cgroup-rw.service beside it.
#
# Files in $LAB_DIR (default /var/tmp/prov-lab): base/ (debootstrap rootfs, kept across labs),
# id_ed25519 (root key, kept), known_hosts (the hosts' keys), inventory.ini, and per host
# hK/{upper,docker,pid,nspawn.log,password-only}. $PROV_LAB_INVENTORY: where `up` writes the
# inventory.
#
# What this machine needs worked around (verified: Debian 12 VM as root, PID 1 is not systemd,
# cgroup v1 hybrid layout, no IPVS):
#  - no systemd as PID 1: nspawn runs with --register=no --keep-unit, hosts are reached over ssh;
#  - each nspawn in its own cgroup (launch), or one host's shutdown hangs another;
#  - dockerd needs a private network, a bind-mounted /var/lib/docker (overlay2 cannot sit on
#    the overlay root), writable v1 cgroup controllers (cgroup-rw.service) and @keyring;
#  - SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 must not be set (networkd never brings host0 up).
#  - every host boots from one base image, so host keys are generated per host, into its
#    overlay's upper dir, before its first boot.
set -euo pipefail
LAB_DIR=${LAB_DIR:-/var/tmp/prov-lab}
NET=${LAB_NET:-10.77.0}
BR=${LAB_BRIDGE:-br-provlab}
INVENTORY=${PROV_LAB_INVENTORY:-$LAB_DIR/inventory.ini}
here=$(cd "$(dirname "$0")" && pwd)
KEY=$LAB_DIR/id_ed25519
KNOWN=$LAB_DIR/known_hosts

say() { echo "lab: $*" >&2; }
die() { echo "lab: error: $*" >&2; exit 1; }

ip_of() { echo "$NET.$((10 + $1))"; }
# The processes of hK, found through its cgroups: the nspawn process and the machine under it,
# which can outlive a killed nspawn process (so the recorded pid alone would say "stopped").
procs_of() {
  local p
  find /sys/fs/cgroup -mindepth 2 -maxdepth 10 \( -path "*/provlab-h$1/*" -o -path "*/provlab-h$1" \) \
    -name cgroup.procs 2>/dev/null -exec cat {} + 2>/dev/null | sort -un \
    | while read -r p; do if alive "$p"; then echo "$p"; fi; done
}
# A live process: a killed one stays a zombie until its parent (here: whatever adopted it)
# reaps it, and `kill -0` still reaches a zombie.
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
recorded_alive() { local d="$LAB_DIR/h$1"; [ -f "$d/pid" ] && alive "$(cat "$d/pid")"; }
running() { recorded_alive "$1" || [ -n "$(procs_of "$1")" ]; }

# Powers off what is left of hK once its nspawn process is gone: the machine's own init (PID 1
# in its namespace) gets systemd's poweroff signal, then stragglers are killed.
power_off_orphans() {
  local k=$1 p i
  for p in $(procs_of "$k"); do
    if grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "/proc/$p/status" 2>/dev/null; then
      kill -s RTMIN+4 "$p" 2>/dev/null || true
    fi
  done
  for i in $(seq 1 150); do [ -z "$(procs_of "$k")" ] && return 0; sleep 0.2; done
  for p in $(procs_of "$k"); do kill -KILL "$p" 2>/dev/null || true; done
}
# hK was made password-only: the lab key does not open it (any more).
password_only() { [ -f "$LAB_DIR/h$1/password-only" ]; }
# Numbers of the hosts that are running, ascending.
running_hosts() {
  local d k
  for d in "$LAB_DIR"/h*; do
    [ -d "$d" ] || continue
    k=${d##*/h}
    case "$k" in '' | *[!0-9]*) continue ;; esac
    if running "$k"; then echo "$k"; fi
  done | sort -n
}

preflight() {
  [ "$(uname -s)" = Linux ] || die "the lab needs Linux (systemd-nspawn)"
  [ "$(id -u)" -eq 0 ] || die "the lab must run as root (it creates a bridge, NAT rules and containers)"
}

need_pkgs() {
  local missing=() p
  for p in debootstrap systemd-container iptables openssh-client; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

mirror() {
  local m=${LAB_MIRROR:-}
  [ -n "$m" ] || m=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}' || true)
  echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
  mkdir -p "$LAB_DIR"
  [ -f "$KEY" ] || ssh-keygen -t ed25519 -N '' -C prov-lab -f "$KEY" -q
  [ -f "$LAB_DIR/base/.ready" ] && return 0
  say "building the base image (once, ~40 s; log in $LAB_DIR/debootstrap.log)"
  rm -rf "$LAB_DIR/base"
  debootstrap --variant=minbase \
    --include=openssh-server,systemd,systemd-sysv,dbus,sudo,iproute2,ca-certificates,python3-minimal \
    bookworm "$LAB_DIR/base" "$(mirror)" >"$LAB_DIR/debootstrap.log" 2>&1 \
    || die "debootstrap failed, see $LAB_DIR/debootstrap.log"
  install -d -m700 "$LAB_DIR/base/root/.ssh"
  install -m600 "$KEY.pub" "$LAB_DIR/base/root/.ssh/authorized_keys"
  cp /etc/resolv.conf "$LAB_DIR/base/etc/resolv.conf"
  : >"$LAB_DIR/base/etc/machine-id"                    # a fresh machine-id at each boot
  rm -f "$LAB_DIR"/base/etc/ssh/ssh_host_*             # each host gets its own (boot)
  chroot "$LAB_DIR/base" systemctl enable systemd-networkd >/dev/null 2>&1
  # nspawn mounts the v1 cgroup controllers read-only; dockerd/runc need them writable.
  cp "$here/cgroup-rw.service" "$LAB_DIR/base/etc/systemd/system/"
  chroot "$LAB_DIR/base" systemctl enable cgroup-rw.service >/dev/null 2>&1
  touch "$LAB_DIR/base/.ready"
}

net_up() {
  if ! ip link show "$BR" >/dev/null 2>&1; then
    ip link add "$BR" type bridge
    ip addr add "$NET.1/24" dev "$BR"
    ip link set "$BR" up
  fi
  sysctl -qw net.ipv4.ip_forward=1
  # NAT only so the hosts can reach the package mirror; hosts talk to each other on the bridge.
  iptables -t nat -C POSTROUTING -s "$NET.0/24" ! -o "$BR" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$NET.0/24" ! -o "$BR" -j MASQUERADE
  iptables -P FORWARD ACCEPT
}

# Start a command detached, in its own cgroup in every mounted hierarchy: with --keep-unit all
# nspawn containers would otherwise share one cgroup, and one host's shutdown breaks another's.
launch() {
  local name=$1 log=$2 pidf=$3; shift 3
  (
    while IFS=: read -r _ ctrl path; do
      case "$ctrl" in "") dir=unified ;; name=*) dir=${ctrl#name=} ;; *) dir=$ctrl ;; esac
      base=/sys/fs/cgroup/$dir; [ -f "$base/cgroup.procs" ] || continue
      cg=$base${path%/}/provlab-$name; mkdir -p "$cg"
      if [ -f "$cg/cpuset.cpus" ]; then
        cat "${cg%/*}/cpuset.cpus" >"$cg/cpuset.cpus"; cat "${cg%/*}/cpuset.mems" >"$cg/cpuset.mems"
      fi
      echo $BASHPID >"$cg/cgroup.procs"
    done </proc/self/cgroup
    exec setsid "$@" >"$log" 2>&1 </dev/null
  ) &
  echo $! >"$pidf"
}

# Host keys of hK, generated once into its upper dir (they shadow any in the base image).
host_keys() {
  local d="$LAB_DIR/h$1"
  [ -f "$d/upper/etc/ssh/ssh_host_ed25519_key" ] && return 0
  mkdir -p "$d/upper/etc/ssh"
  rm -f "$d"/upper/etc/ssh/ssh_host_*
  ssh-keygen -q -A -f "$d/upper" >/dev/null
}

boot() {
  local k=$1 d="$LAB_DIR/h$1"
  running "$k" && return 0
  mkdir -p "$d/upper" "$d/docker"
  host_keys "$k"
  echo "h$k" >"$d/hostname"
  printf '[Match]\nName=host0\n[Network]\nAddress=%s/24\nGateway=%s.1\n' "$(ip_of "$k")" "$NET" >"$d/host0.network"
  # --register=no --keep-unit: PID 1 of this machine is not systemd, no machined to talk to.
  # @keyring: runc needs keyctl. /var/lib/docker must not sit on the overlay root.
  # A reboot inside the machine ends nspawn with status 133: it is started again, as a real
  # host comes back (the `reboot` module's tests); SIGTERM still powers it off.
  launch "h$k" "$d/nspawn.log" "$d/pid" \
    sh -c 'while :; do "$@" & c=$!; trap "kill -TERM $c 2>/dev/null; wait $c; exit 0" TERM INT
      wait $c; rc=$?; [ $rc -eq 133 ] || exit $rc; done' reboot-loop \
    systemd-nspawn --boot --register=no --keep-unit --machine="h$k" \
    --directory="$LAB_DIR/base" --overlay="$LAB_DIR/base:$d/upper:/" \
    --bind-ro="$d/hostname:/etc/hostname" --bind-ro="$d/host0.network:/etc/systemd/network/10-host0.network" \
    --network-bridge="$BR" --resolv-conf=off --capability=all --system-call-filter='@keyring bpf' \
    --bind="$d/docker:/var/lib/docker" --console=passive
}

lab_ssh_opts=(-i "$KEY" -o BatchMode=yes -o LogLevel=ERROR -o ConnectTimeout=2)
insecure=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)

wait_ssh() {
  local k=$1 i
  for i in $(seq 1 150); do
    ssh "${lab_ssh_opts[@]}" "${insecure[@]}" -o ConnectTimeout=1 "root@$(ip_of "$k")" true 2>/dev/null && return 0
    running "$k" || die "h$k stopped while booting, see $LAB_DIR/h$k/nspawn.log"
    sleep 0.2
  done
  die "h$k ($(ip_of "$k")) did not answer on ssh within 30 s, see $LAB_DIR/h$k/nspawn.log"
}

# A host booted by an older recipe shares the base image's host keys: give it its own.
rekey_if_shared() {
  local k=$1
  [ -f "$LAB_DIR/h$k/upper/etc/ssh/ssh_host_ed25519_key" ] && return 0
  say "h$k: generating its own host keys"
  ssh "${lab_ssh_opts[@]}" "${insecure[@]}" "root@$(ip_of "$k")" \
    'rm -f /etc/ssh/ssh_host_* && ssh-keygen -q -A && systemctl restart ssh' >/dev/null
}

# The keys of hosts "$@", scanned; the lines of password-only hosts are kept as they are (a
# bootstrap records those itself).
write_known_hosts() {
  local hosts=() k
  for k in "$@"; do hosts+=("$(ip_of "$k")"); done
  : >"$KNOWN.tmp"
  if [ ${#hosts[@]} -gt 0 ]; then
    ssh-keyscan -T 5 -t ed25519,ecdsa,rsa "${hosts[@]}" 2>/dev/null | sort >"$KNOWN.tmp" || true
  fi
  for k in "$@"; do
    grep -q "^$(ip_of "$k") ssh-ed25519 " "$KNOWN.tmp" || die "ssh-keyscan got no key from h$k"
  done
  for k in $(running_hosts); do
    if password_only "$k" && [ -f "$KNOWN" ]; then
      grep -E "^(\[)?$(ip_of "$k" | sed 's/\./\\./g')(\]:[0-9]+)? " "$KNOWN" >>"$KNOWN.tmp" || true
    fi
  done
  mv "$KNOWN.tmp" "$KNOWN"
}

write_inventory() {
  local k
  mkdir -p "$(dirname "$INVENTORY")"
  {
    echo "# prov lab: written by \`prov lab up\`; \`prov lab down\` removes the hosts."
    echo "[lab]"
    for k in "$@"; do
      echo "h$k ansible_host=$(ip_of "$k") ansible_user=root ansible_ssh_private_key_file=$KEY ansible_ssh_known_hosts_file=$KNOWN"
    done
    for k in $(running_hosts); do
      if password_only "$k"; then
        echo "# h$k $(ip_of "$k"): password-only (no root key): reach it with \`prov bootstrap h$k -i INVENTORY\`"
      fi
    done
  } >"$INVENTORY.tmp"
  mv "$INVENTORY.tmp" "$INVENTORY"
}

# Powers hK off (cleanly, as `down` does) and removes its cgroups; its files stay.
stop_host() {
  local k=$1 d="$LAB_DIR/h$1" p i cg
  if [ -f "$d/pid" ]; then
    p=$(cat "$d/pid"); kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true; rm -f "$d/pid"
  fi
  power_off_orphans "$k"
  find /sys/fs/cgroup -mindepth 2 -maxdepth 10 -depth -type d \( -name "provlab-h$k" -o -path "*/provlab-h$k/*" \) 2>/dev/null \
    | while read -r cg; do rmdir "$cg" 2>/dev/null || true; done
}

wait_port() {
  local k=$1 i
  for i in $(seq 1 150); do
    timeout 1 bash -c "exec 3<>/dev/tcp/$(ip_of "$k")/22" 2>/dev/null && return 0
    running "$k" || die "h$k stopped while booting, see $LAB_DIR/h$k/nspawn.log"
    sleep 0.2
  done
  die "h$k ($(ip_of "$k")) did not answer on port 22 within 30 s"
}

# hK from scratch (new disk, new host keys), then as a provider hands a new host over: root
# logs in with a password only. The password travels on ssh's stdin, never on a command line.
make_password_only() {
  local k=$1 d="$LAB_DIR/h$1"
  say "h$k: a fresh host that accepts only the root password"
  stop_host "$k"
  rm -rf "$d"
  boot "$k"
  wait_ssh "$k"
  printf 'root:%s\n' "$PROV_LAB_ROOT_PASSWORD" | ssh "${lab_ssh_opts[@]}" "${insecure[@]}" "root@$(ip_of "$k")" '
    set -e
    chpasswd
    # Named like the drop-in cloud-init writes on cloud images.
    printf "%s\n" "# prov lab: a fresh host that accepts the root password" \
      "PermitRootLogin yes" "PasswordAuthentication yes" >/etc/ssh/sshd_config.d/50-cloud-init.conf
    rm -f /root/.ssh/authorized_keys
    sshd -t
    systemctl reload ssh' >/dev/null || die "h$k: could not set it up for password logins"
  touch "$d/password-only"
  if [ -f "$KNOWN" ]; then ssh-keygen -q -R "$(ip_of "$k")" -f "$KNOWN" >/dev/null 2>&1 || true; fi
  rm -f "$KNOWN.old"
}

cmd_up() {
  local n=${1:-3} k pw=() keyed=()
  case "$n" in '' | *[!0-9]*) die "up: N must be a number" ;; esac
  [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "up: N must be between 1 and 200"
  for k in ${PROV_LAB_PASSWORD_ONLY//,/ }; do
    case "$k" in '' | *[!0-9]*) die "password-only: '$k' is not a host number" ;; esac
    [ "$k" -ge 1 ] && [ "$k" -le 200 ] || die "password-only: host numbers are 1 to 200"
    pw+=("$k")
  done
  if [ ${#pw[@]} -gt 0 ] && [ -z "${PROV_LAB_ROOT_PASSWORD:-}" ]; then
    die "a password-only host needs a root password (PROV_LAB_ROOT_PASSWORD)"
  fi
  named() { local x; for x in "${pw[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }
  preflight; need_pkgs; build_base; net_up
  for k in $(seq 1 "$n"); do named "$k" || boot "$k"; done
  for k in $(seq 1 "$n"); do
    named "$k" && continue
    if password_only "$k"; then wait_port "$k"; else wait_ssh "$k"; rekey_if_shared "$k"; fi
  done
  for k in "${pw[@]}"; do make_password_only "$k"; done
  mapfile -t all < <(running_hosts)
  for k in "${all[@]}"; do password_only "$k" || keyed+=("$k"); done
  write_known_hosts "${keyed[@]}"
  write_inventory "${keyed[@]}"
  for k in "${all[@]}"; do
    if password_only "$k"; then echo "h$k $(ip_of "$k") password-only"; else echo "h$k $(ip_of "$k")"; fi
  done
  say "inventory: $INVENTORY"
}

cmd_status() {
  local k state ssh_state hosts
  if ip link show "$BR" >/dev/null 2>&1; then echo "bridge $BR: up ($NET.1/24)"; else echo "bridge $BR: down"; fi
  if [ -f "$LAB_DIR/base/.ready" ]; then echo "base image: $LAB_DIR/base"; else echo "base image: not built"; fi
  hosts=$(for d in "$LAB_DIR"/h*; do [ -d "$d" ] && echo "${d##*/h}"; done | grep -E '^[0-9]+$' | sort -n || true)
  [ -n "$hosts" ] || echo "no hosts"
  for k in $hosts; do
    if running "$k"; then
      if recorded_alive "$k"; then
        state="running (pid $(cat "$LAB_DIR/h$k/pid"))"
      else
        state="running without its nspawn process (\`prov lab down\` powers it off)"
      fi
      if timeout 1 bash -c "exec 3<>/dev/tcp/$(ip_of "$k")/22" 2>/dev/null; then ssh_state="ssh up"; else ssh_state="ssh not answering"; fi
    else
      state="stopped"; ssh_state="-"
    fi
    if password_only "$k"; then state="$state, password-only"; fi
    echo "h$k $(ip_of "$k") $state, $ssh_state"
  done
  if [ -f "$INVENTORY" ]; then echo "inventory: $INVENTORY"; fi
}

cmd_down() {
  local pidf p i d cg k
  preflight
  for pidf in "$LAB_DIR"/h*/pid; do
    [ -f "$pidf" ] || continue
    p=$(cat "$pidf"); kill -TERM "$p" 2>/dev/null || true
  done
  for pidf in "$LAB_DIR"/h*/pid; do
    [ -f "$pidf" ] || continue
    p=$(cat "$pidf")
    for i in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$p" 2>/dev/null || true; rm -f "$pidf"
  done
  for d in "$LAB_DIR"/h*; do
    k=${d##*/h}
    case "$k" in '' | *[!0-9]*) continue ;; esac
    power_off_orphans "$k"
  done
  for d in "$LAB_DIR"/h*; do [ -d "$d" ] && rm -rf "$d"; done
  # Each host's cgroups (and what its systemd left in them), deepest first.
  find /sys/fs/cgroup -mindepth 2 -maxdepth 10 -depth -type d -path '*/provlab-h*' 2>/dev/null \
    | while read -r cg; do rmdir "$cg" 2>/dev/null || true; done
  if ip link show "$BR" >/dev/null 2>&1; then
    iptables -t nat -D POSTROUTING -s "$NET.0/24" ! -o "$BR" -j MASQUERADE 2>/dev/null || true
    ip link del "$BR"
  fi
  rm -f "$KNOWN" "$LAB_DIR/inventory.ini"
  say "down (base image and key kept in $LAB_DIR)"
}

cmd_ssh() {
  local k=${1:-}
  case "$k" in '' | *[!0-9]*) die "ssh: which host? (a number K for hK)" ;; esac
  shift
  running "$k" || die "h$k is not running"
  local check=("${insecure[@]}")
  [ -f "$KNOWN" ] && check=(-o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KNOWN")
  exec ssh -i "$KEY" -o LogLevel=ERROR "${check[@]}" "root@$(ip_of "$k")" "$@"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  status) cmd_status ;;
  down) cmd_down ;;
  ssh) shift; cmd_ssh "$@" ;;
  *) echo "usage: $0 up [N] | status | ssh K [CMD] | down" >&2; exit 2 ;;
esac
