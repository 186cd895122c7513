# prov facts: one POSIX sh script, no python. Prints `key=value` lines; the parser in
# src/facts/mod.rs turns them into Ansible-shaped facts. Every part is guarded: a missing
# tool leaves its facts out and never stops the script.
exec 2>/dev/null
env | sed 's/^/env=/'
LC_ALL=C
export LC_ALL
PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export PATH
has() { command -v "$1" >/dev/null 2>&1; }
p() { printf '%s=%s\n' "$1" "$2"; }
f() { [ -r "$2" ] && sed "s/^/$1=/" "$2"; }
c() { k=$1; shift; "$@" 2>/dev/null | sed "s/^/$k=/"; }
t() { if has timeout; then timeout 3 "$@"; else "$@"; fi; }
p prov_facts 1
p uname_s "$(uname -s)"
p uname_n "$(uname -n)"
p uname_r "$(uname -r)"
p uname_v "$(uname -v)"
p uname_m "$(uname -m)"
has hostname && p fqdn "$(t hostname -f)"
# Python's socket.getfqdn(), which Ansible's fqdn is: the name the node's first address
# resolves back to (the first of its names with a dot, else the first).
if has getent; then
  ip=$(t getent ahosts "$(uname -n)" | awk 'NR == 1 { print $1 }')
  [ -n "$ip" ] && p getfqdn "$(t getent hosts "$ip" | awk 'NR == 1 { for (i = 2; i <= NF; i++) if (index($i, ".")) { print $i; exit } print $2 }')"
fi
has lsb_release && c lsb lsb_release -a
f lsb_file /etc/lsb-release
has getconf && p long_bit "$(getconf LONG_BIT)"
if [ -r /etc/os-release ]; then f os /etc/os-release; else f os /usr/lib/os-release; fi
f debian_version /etc/debian_version
f redhat_release /etc/redhat-release
f alpine_release /etc/alpine-release
f machine_id /etc/machine-id || f machine_id /var/lib/dbus/machine-id
[ -r /proc/meminfo ] && c mem grep -E '^(MemTotal|MemFree|MemAvailable|Buffers|Cached|SwapTotal|SwapFree|SwapCached):' /proc/meminfo
if [ -r /proc/cpuinfo ]; then
  p cpu_processors "$(grep -c '^processor' /proc/cpuinfo)"
  p cpu_sockets "$(grep '^physical id' /proc/cpuinfo | sort -u | wc -l)"
  p cpu_cores "$(grep -m1 '^cpu cores' /proc/cpuinfo | sed 's/.*: *//')"
  p cpu_siblings "$(grep -m1 '^siblings' /proc/cpuinfo | sed 's/.*: *//')"
  p cpu_model "$(grep -m1 -E '^(model name|Processor|cpu model|Hardware)' /proc/cpuinfo | sed 's/.*: *//')"
fi
has nproc && p nproc "$(nproc)"
[ -d /run/systemd/system ] && p systemd 1
[ -r /proc/1/comm ] && p pid1 "$(cat /proc/1/comm)"
{ has openrc || [ -x /sbin/openrc ]; } && p openrc 1
for m in apt-get dnf5 dnf yum apk zypper pacman; do
  if has "$m"; then p pkg "$m"; break; fi
done
p user_id "$(id -un)"
uid=$(id -u)
p user_uid "$uid"
p user_gid "$(id -g)"
if has getent; then c passwd getent passwd "$uid"; else grep "^[^:]*:[^:]*:$uid:" /etc/passwd | sed -n '1s/^/passwd=/p'; fi
p date "$(date '+%s|%Y-%m-%d|%H:%M:%S|%Z|%z|%A|%w|%W')"
[ -r /proc/uptime ] && p uptime "$(cat /proc/uptime)"
f resolv /etc/resolv.conf
if has ip; then
  c ip4 ip -o -f inet addr show
  c ip6 ip -o -f inet6 addr show
  c link ip -o link show
  c route4 ip -4 route get 8.8.8.8
  c route6 ip -6 route get 2404:6800:400a:800::1012
  c default4 ip -4 route show default
else
  f proc_route /proc/net/route
  hi=$(hostname -I)
  if [ -n "$hi" ]; then p hostname_I "$hi"; else f fib_trie /proc/net/fib_trie; fi
  for i in /sys/class/net/*; do
    [ -d "$i" ] && p sysnet "${i##*/} $(cat "$i/address") $(cat "$i/mtu") $(cat "$i/flags") $(cat "$i/type")"
  done
fi
# Virtualization (as Ansible's Linux collector reads it), security modules, mounts.
f cgroup1 /proc/1/cgroup
[ -r /proc/1/environ ] && tr '\0' '\n' < /proc/1/environ | sed -n 's/^\(container=.*\)/environ1=\1/p'
[ -e /proc/vz ] && p proc_vz "$([ -e /proc/lve ] && echo lve)$([ -e /proc/bc ] && echo bc)"
f systemd_container /run/systemd/container
{ [ -e /.dockerenv ] || [ -e /.dockerinit ]; } && p dockerenv 1
[ -e /proc/xen ] && p proc_xen "$(cat /proc/xen/capabilities)"
for d in product_name product_family sys_vendor bios_vendor; do f "dmi_$d" "/sys/devices/virtual/dmi/id/$d"; done
[ -r /proc/cpuinfo ] && c cpuinfo_virt grep -E '^(model name|vendor_id|machine)' /proc/cpuinfo
[ -r /proc/modules ] && c module cut -d' ' -f1 /proc/modules
[ -e /dev/kvm ] && p dev_kvm 1
[ -d /sys/fs/selinux ] && p selinux_fs 1
has getenforce && p getenforce "$(getenforce)"
[ -d /sys/kernel/security/apparmor ] && p apparmor 1
if [ -r /proc/mounts ]; then
  while read -r dev mnt fstype opts dump pass; do
    case "$dev" in /*|\\*|*:/*) ;; *) continue ;; esac
    [ "$fstype" = none ] && continue
    p mount "$dev $mnt $fstype $opts $dump $pass $(stat -f -c '%S %s %b %f %a %c %d' "$(printf '%b' "$mnt")")"
  done < /proc/mounts
fi
exit 0
