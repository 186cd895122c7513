#!/bin/bash
# The whole test suite: unit tests, local-connection integration tests, and end-to-end tests on
# a lab of real Debian hosts (systemd-nspawn) that this script boots and powers off again.
# Needs root on Debian 12 (the lab uses debootstrap, systemd-nspawn, a bridge and iptables).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# curl: get_url and uri run it on the host (here, the local connection of unit tests); zip
# and unzip: unarchive tests make and unpack zips; git: `prov pull` fetches with it, and the
# pull tests serve their repository with `git daemon`; chromium: the report page tests open
# the pages prov writes in headless Chromium.
for p in debootstrap systemd-container iptables openssh-client curl zip unzip git chromium; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Ansible's cron module needs a crontab command even for cron.d files.
if ! dpkg -s cron >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cron >/dev/null
fi

# The oracle of the differential tests (tests/differential.rs): ansible-core, pinned, in a
# venv of its own.
# passlib is what ansible-core's password_hash filter hashes with.
ANSIBLE_CORE=2.19.14 PASSLIB=1.7.4
venv=${PROV_ANSIBLE_VENV:-/var/tmp/prov-ansible}
have=$("$venv/bin/ansible-playbook" --version 2>/dev/null || true)
have+=$("$venv/bin/pip" show passlib 2>/dev/null | grep '^Version' || true)
if [[ $have != *"core $ANSIBLE_CORE"*"Version: $PASSLIB"* ]]; then
  if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$ANSIBLE_CORE" \
    "passlib==$PASSLIB"
fi
# The collections of the modules prov implements beyond ansible.builtin (ini_file, sysctl...),
# from the `ansible` package's wheel on PyPI (Galaxy is not reachable from CI): only those
# collections are unpacked, where ansible-core finds collections (site-packages).
ANSIBLE_BUNDLE=12.3.0 COLLECTIONS="community/general ansible/posix"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ ! -f "$site/ansible_collections/.prov-$ANSIBLE_BUNDLE" ]; then
  wheels=$(mktemp -d)
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$wheels" \
    "ansible==$ANSIBLE_BUNDLE"
  "$venv/bin/python" - "$wheels"/ansible-*.whl "$site" $COLLECTIONS <<'PY'
import sys, zipfile
wheel, site, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    z.extractall(site, [n for n in z.namelist()
                        if any(n.startswith(f"ansible_collections/{c}/") for c in wanted)])
PY
  rm -rf "$wheels"
  touch "$site/ansible_collections/.prov-$ANSIBLE_BUNDLE"
fi
export PROV_ANSIBLE_VENV=$venv PROV_ANSIBLE_REQUIRED=1 PROV_BROWSER_REQUIRED=1

cargo build --release
./target/release/prov lab up 3
trap './target/release/prov lab down >/dev/null 2>&1 || true' EXIT
# Lab tests fail (instead of skipping) when the lab is required but not reachable.
log=$(mktemp)
set +e
PROV_LAB_REQUIRED=1 cargo test --release -- --test-threads=2 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# How many differential cases (tests/differential.rs) matched ansible-core.
awk '/Running tests\/differential\.rs/ {d = 1; next} /Running / {d = 0}
     d && /^test .* \.\.\. / {n++; if ($NF == "ok") m++}
     END {printf "%d/%d differential cases match ansible-core\n", m, n}' "$log"
rm -f "$log"
[ "$status" -eq 0 ] || exit "$status"
# Coverage-guided fuzzing of the parsers, a bounded time each (fuzz/README.md).
bash scripts/fuzz.sh 30
