//! Docker CE and EE (Mirantis) repositories, for real: a signed apt repository served from h1
//! (`apt-ftparchive` from Debian's apt-utils, a GPG key made here, busybox httpd; Debian 12's
//! reprepro keeps one version of a package per component, and the vendors' repositories hold
//! many, which an upgrade and a downgrade need) holds packages built here under the names
//! and version strings the vendors' repositories use (`docker-ce`, `docker-ce-cli`,
//! `containerd.io` in channel `stable`; `docker-ee`, `docker-ee-cli` in `stable-25.0`). The
//! engine packages are the lab's own `docker.io` repackaged under those names and versions,
//! replacing it as the vendors' packages do, so a real dockerd runs from them (with the DNS
//! drop-in in effect). What is tested is the repository path of roles/docker_engine on h3, end to end
//! as against the vendor: the key downloaded from the repository, the deb822 source with the
//! channel, apt verifying the signature, the version pin, an upgrade and a downgrade, EE's
//! licensed URL never shown; every second run changes nothing.

mod common;
use common::{Run, apply_on_h3, expect, lab_ssh, lab_up};

const REPO: &str = "http://10.77.0.11:8088";
/// The licensed part of the EE URL: a secret that must never be shown.
const SUBSCRIPTION: &str = "sub-0123456789abcdef";
const CE_OLD: &str = "5:27.0.3-1~debian.12~bookworm";
const CE_NEW: &str = "5:27.1.1-1~debian.12~bookworm";
const EE: &str = "5:25.0.5~1-0~debian-bookworm";

fn sh(k: usize, cmd: &str) -> String {
    let (rc, out) = lab_ssh(k, cmd);
    assert_eq!(rc, 0, "h{k}: `{cmd}` failed: {out}");
    out
}

/// The repository on h1: a new signing key, the packages, served on port 8088; the EE URL is
/// the same tree under the subscription's path, as a licensed URL is.
fn serve_repository() {
    let script = format!(
        r#"set -e
export DEBIAN_FRONTEND=noninteractive
command -v apt-ftparchive >/dev/null && command -v gpg >/dev/null && test -x /bin/busybox ||
  apt-get install -y -q apt-utils gnupg busybox-static >/dev/null
R=/srv/prov-test-repo
D="$R/debian/dists/bookworm"
pkill -f '^busybox httpd -p 8088' || true
rm -rf "$R" /root/.prov-test-gnupg
mkdir -p "$R/build" "$R/{SUBSCRIPTION}"
ln -s ../debian "$R/{SUBSCRIPTION}/debian"
export GNUPGHOME=/root/.prov-test-gnupg
mkdir -m 0700 "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'prov test repository <repo@lab>' rsa2048 sign never
# The engine of the stand-ins is the lab's own: docker.io's files and maintainer scripts,
# repackaged under the vendor's name and version, conflicting with and replacing docker.io as
# the vendor's packages do. The CLI and containerd packages are empty.
cp /var/cache/apt/archives/docker.io_*.deb "$R/build/docker.io.deb" 2>/dev/null ||
  (cd "$R/build" && apt-get download -q docker.io >/dev/null && mv docker.io_*.deb docker.io.deb)
dpkg-deb -R "$R/build/docker.io.deb" "$R/build/engine"
mk() {{
  d="$R/build/$1-$2"
  mkdir -p "$R/debian/pool/$4"
  if [ "$3" = engine ]; then
    cp -a "$R/build/engine" "$d"
    depends=$(sed -n 's/^Depends: //p' "$d/DEBIAN/control")
    sed -i -e '/^\(Package\|Version\|Depends\|Conflicts\|Replaces\|Breaks\|Provides\):/d' "$d/DEBIAN/control"
    others=$(printf '%s\n' docker.io docker-ce docker-ee | grep -vx "$1" | paste -sd, | sed 's/,/, /g')
    printf 'Package: %s\nVersion: %s\nDepends: %s, containerd.io\nConflicts: %s\nReplaces: %s\n' \
      "$1" "$2" "$depends" "$others" "$others" | cat - "$d/DEBIAN/control" > "$d/control.new"
    mv "$d/control.new" "$d/DEBIAN/control"
  else
    mkdir -p "$d/DEBIAN" "$d/usr/share/prov-test"
    printf 'Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: prov tests <tests@lab>\nDescription: stand-in for %s\n' \
      "$1" "$2" "$1" > "$d/DEBIAN/control"
    echo "$1 $2" > "$d/usr/share/prov-test/$1"
  fi
  dpkg-deb -Znone -b "$d" "$R/debian/pool/$4/$1_$(echo "$2" | tr : %).deb" >/dev/null
  rm -rf "$d"
}}
for v in '{CE_OLD}' '{CE_NEW}'; do
  mk docker-ce "$v" engine stable
  mk docker-ce-cli "$v" empty stable
done
mk containerd.io 1.7.22-1 empty stable
mk docker-ee '{EE}' engine stable-25.0
mk docker-ee-cli '{EE}' empty stable-25.0
mk containerd.io 1.7.22-1 empty stable-25.0
cd "$R/debian"
for c in stable stable-25.0; do
  mkdir -p "dists/bookworm/$c/binary-amd64"
  apt-ftparchive packages "pool/$c" > "dists/bookworm/$c/binary-amd64/Packages"
  gzip -kf "dists/bookworm/$c/binary-amd64/Packages"
done
apt-ftparchive -o APT::FTPArchive::Release::Origin=prov-tests \
  -o APT::FTPArchive::Release::Suite=bookworm -o APT::FTPArchive::Release::Codename=bookworm \
  -o 'APT::FTPArchive::Release::Components=stable stable-25.0' \
  -o APT::FTPArchive::Release::Architectures=amd64 release "$D" > "$R/Release"
mv "$R/Release" "$D/Release"
gpg --batch --yes --clearsign -o "$D/InRelease" "$D/Release"
gpg --batch --yes --armor --export > "$R/debian/gpg"
busybox httpd -p 8088 -h "$R"
"#
    );
    sh(1, &script);
}

/// Takes h3 back to the lab's own engine: the stand-ins, sources, keys and pin removed.
fn clean_h3() {
    lab_ssh(
        3,
        "export DEBIAN_FRONTEND=noninteractive; \
         if dpkg-query -W -f '${Status}' docker-ce docker-ee 2>/dev/null | grep -q 'install ok installed'; then \
           rm -f /etc/apt/preferences.d/docker; apt-get install -y -q docker.io >/dev/null 2>&1; fi; \
         apt-get purge -y -q docker-ce-cli docker-ee-cli containerd.io >/dev/null 2>&1; \
         rm -f /etc/apt/sources.list.d/docker-c[e].sources /etc/apt/sources.list.d/docker-e[e].sources \
         /etc/apt/keyrings/docker-c[e].asc /etc/apt/keyrings/docker-e[e].asc /etc/apt/preferences.d/docker; \
         apt-get update -q >/dev/null 2>&1; systemctl start docker; true",
    );
}

/// roles/docker_engine alone on h3, with these variables.
fn engine(vars: &[(&str, &str)], extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("engine.yml");
    std::fs::write(&pb, "- hosts: h3\n  roles: [docker_engine]\n").unwrap();
    let roles = std::env::current_dir().unwrap().join("roles");
    std::os::unix::fs::symlink(roles, dir.path().join("roles")).unwrap();
    let mut args: Vec<String> = vars
        .iter()
        .flat_map(|(k, v)| ["-e".to_string(), format!("{k}={v}")])
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    apply_on_h3(&pb, &args)
}

fn version(pkg: &str) -> String {
    sh(3, &format!("dpkg-query -W -f '${{Version}}' {pkg}"))
        .trim()
        .to_string()
}

#[test]
fn ce_and_ee_install_from_a_signed_repository_pinned_upgraded_and_downgraded() {
    if !lab_up("ce_and_ee_install_from_a_signed_repository") {
        return;
    }
    clean_h3();
    serve_repository();
    let ce_with = |v: &str, extra: &[&str]| {
        engine(
            &[
                ("docker_edition", "ce"),
                ("docker_ce_url", REPO),
                ("docker_version", v),
            ],
            extra,
        )
    };
    let ce = |v: &str| ce_with(v, &[]);

    // CE at the older version, pinned: the key fetched from the repository, the deb822
    // source with the channel, apt checking the signature.
    let first = ce(CE_OLD);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(version("docker-ce"), CE_OLD);
    assert_eq!(version("docker-ce-cli"), CE_OLD);
    assert_eq!(version("containerd.io"), "1.7.22-1");
    let source = sh(3, "cat /etc/apt/sources.list.d/docker-ce.sources");
    for line in [
        "URIs: http://10.77.0.11:8088/debian",
        "Suites: bookworm",
        "Components: stable",
        "Signed-By: /etc/apt/keyrings/docker-ce.asc",
    ] {
        assert!(source.lines().any(|l| l == line), "{line}:\n{source}");
    }
    assert_eq!(
        sh(3, "cat /etc/apt/keyrings/docker-ce.asc"),
        sh(1, "cat /srv/prov-test-repo/debian/gpg")
    );
    let policy = sh(3, "apt-cache policy docker-ce");
    assert!(policy.contains(&format!("{CE_NEW} 500")), "{policy}");
    assert!(sh(3, "cat /etc/apt/preferences.d/docker").contains(&format!("Pin: version {CE_OLD}")));
    // `apt upgrade` keeps the pinned version.
    sh(
        3,
        "DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -q >/dev/null",
    );
    assert_eq!(version("docker-ce"), CE_OLD);
    assert_eq!(sh(3, "systemctl is-active docker").trim(), "active");
    engine_runs_from(&["docker-ce"]);
    expect(&ce(CE_OLD), 0, 0, "CE pinned, again");

    // Upgrade, then downgrade, by changing docker_version.
    let up = ce(CE_NEW);
    assert_eq!(up.code, 0, "{}", up.all_output());
    assert_eq!(version("docker-ce"), CE_NEW);
    assert_eq!(version("docker-ce-cli"), CE_NEW);
    expect(&ce(CE_NEW), 0, 0, "CE upgraded, again");
    let down = ce(CE_OLD);
    assert_eq!(down.code, 0, "{}", down.all_output());
    assert_eq!(version("docker-ce"), CE_OLD);
    assert_eq!(version("docker-ce-cli"), CE_OLD);
    expect(&ce(CE_OLD), 0, 0, "CE downgraded, again");
    expect(
        &ce_with(CE_OLD, &["--check"]),
        0,
        0,
        "--check when converged",
    );

    // EE from the licensed URL, channel stable-25.0; the subscription never shown.
    let ee_url = format!("{REPO}/{SUBSCRIPTION}");
    let ee = |extra: &[&str]| {
        engine(
            &[("docker_edition", "ee"), ("docker_ee_url", &ee_url)],
            extra,
        )
    };
    let first = ee(&["--json", "--diff", "-v"]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(version("docker-ee"), EE);
    assert_eq!(version("docker-ee-cli"), EE);
    let source = sh(3, "cat /etc/apt/sources.list.d/docker-ee.sources");
    assert!(source.contains("Components: stable-25.0"), "{source}");
    assert!(source.contains(SUBSCRIPTION), "{source}");
    let report = first
        .report
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_default();
    assert!(
        !first.all_output().contains(SUBSCRIPTION) && !report.contains(SUBSCRIPTION),
        "the licensed URL leaked:\n{}",
        first.all_output()
    );
    assert!(
        sh(
            3,
            "test ! -e /etc/apt/preferences.d/docker && echo unpinned"
        )
        .contains("unpinned")
    );
    engine_runs_from(&["docker-ee"]);
    expect(&ee(&[]), 0, 0, "EE again");
    clean_h3();
    engine_runs_from(&["docker.io"]);
    assert_eq!(
        sh(3, "docker info --format '{{.Swarm.LocalNodeState}}'").trim(),
        "active",
        "h3 is still in the swarm"
    );
}

/// dockerd runs, from one of these packages, with the DNS drop-in of the lab in effect.
fn engine_runs_from(packages: &[&str]) {
    let owner = sh(3, "dpkg-query -S /usr/sbin/dockerd | cut -d: -f1");
    assert!(packages.contains(&owner.trim()), "dockerd is from {owner}");
    assert_eq!(sh(3, "systemctl is-active docker").trim(), "active");
    let cmdline = sh(
        3,
        "tr '\\0' ' ' < /proc/$(systemctl show docker -p MainPID --value)/cmdline",
    );
    assert!(
        cmdline.contains("--dns 192.0.2.1"),
        "dockerd runs as {cmdline}"
    );
}
