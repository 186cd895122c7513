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
exit 0
