use super::*;
use serde_json::json;

/// Captured on a Debian 12 host booted with systemd (the lab), env trimmed.
const DEBIAN_SYSTEMD: &str = r#"
prov_facts=1
uname_s=Linux
uname_n=h1
env=HOME=/root
env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
env=BASH_FUNC_x%%=() {  echo
env=}
uname_r=6.18.44-fc-v595
uname_v=#1 SMP PREEMPT_DYNAMIC @0
uname_m=x86_64
fqdn=
os=PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
os=NAME="Debian GNU/Linux"
os=VERSION_ID="12"
os=VERSION="12 (bookworm)"
os=VERSION_CODENAME=bookworm
os=ID=debian
os=HOME_URL="https://www.debian.org/"
os=SUPPORT_URL="https://www.debian.org/support"
os=BUG_REPORT_URL="https://bugs.debian.org/"
debian_version=12.15
machine_id=c8ef87c3acc34e809be3638c5ffb6273
mem=MemTotal:       24684096 kB
mem=MemFree:        19273960 kB
mem=MemAvailable:   23522976 kB
mem=Buffers:           10700 kB
mem=Cached:          4357728 kB
mem=SwapCached:            0 kB
mem=SwapTotal:             0 kB
mem=SwapFree:              0 kB
cpu_processors=2
cpu_sockets=1
cpu_cores=2
cpu_siblings=2
cpu_model=AMD EPYC
nproc=2
systemd=1
pid1=systemd
pkg=apt-get
user_id=root
user_uid=0
user_gid=0
passwd=root:x:0:0:root:/root:/bin/bash
date=1795308852|2026-11-22|00:54:12|UTC|+0000|Sunday|0|46
uptime=712.13 1014.56
resolv=nameserver 10.255.255.53
ip4=1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
ip4=2: host0    inet 10.77.0.11/24 brd 10.77.0.255 scope global host0\       valid_lft forever preferred_lft forever
ip6=1: lo    inet6 ::1/128 scope host noprefixroute \       valid_lft forever preferred_lft forever
ip6=2: host0    inet6 fe80::2455:6dff:fe5c:d395/64 scope link \       valid_lft forever preferred_lft forever
link=1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
link=2: host0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\    link/ether 26:55:6d:5c:d3:95 brd ff:ff:ff:ff:ff:ff link-netnsid 0
route4=8.8.8.8 via 10.77.0.1 dev host0 src 10.77.0.11 uid 0 
route4=    cache 
default4=default via 10.77.0.1 dev host0 proto static 
"#;

/// An Alpine-like host without `ip` (busybox), with the fallbacks of the script.
const ALPINE_NO_IP: &str = "prov_facts=1
uname_s=Linux
uname_n=alp1.lab.example
uname_r=6.6.0-0-lts
uname_v=#1-Alpine SMP
uname_m=aarch64
fqdn=alp1.lab.example
os=NAME=\"Alpine Linux\"
os=ID=alpine
os=VERSION_ID=3.19.1
os=PRETTY_NAME=\"Alpine Linux v3.19\"
alpine_release=3.19.1
mem=MemTotal:        2030000 kB
mem=MemFree:         1024000 kB
cpu_processors=4
cpu_sockets=0
cpu_cores=
cpu_siblings=
cpu_model=
pid1=init
openrc=1
pkg=apk
user_id=deploy
user_uid=1000
user_gid=1000
passwd=deploy:x:1000:1000:Deploy User:/home/deploy:/bin/ash
date=86399|1970-01-01|23:59:59|UTC|+0000|Thursday|4|00
proc_route=Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
proc_route=eth0\t00000000\t010011AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
proc_route=eth0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
fib_trie=Main:
fib_trie=  +-- 0.0.0.0/0 3 0 5
fib_trie=           |-- 172.17.0.5
fib_trie=              /32 host LOCAL
fib_trie=           |-- 127.0.0.1
fib_trie=              /32 host LOCAL
fib_trie=Local:
fib_trie=           |-- 172.17.0.5
fib_trie=              /32 host LOCAL
sysnet=eth0 02:42:ac:11:00:05 1500 0x1003 1
sysnet=lo 00:00:00:00:00:00 65536 0x9 772
";

#[test]
fn parses_a_debian_systemd_host() {
    let f = parse(DEBIAN_SYSTEMD);
    assert_eq!(f["hostname"], "h1");
    assert_eq!(f["nodename"], "h1");
    assert_eq!(f["fqdn"], "h1"); // `hostname -f` failed: falls back to the node name
    assert_eq!(f["domain"], "");
    assert_eq!(f["system"], "Linux");
    assert_eq!(f["kernel"], "6.18.44-fc-v595");
    assert_eq!(f["architecture"], "x86_64");
    assert_eq!(f["distribution"], "Debian");
    assert_eq!(f["distribution_version"], "12.15");
    assert_eq!(f["distribution_major_version"], "12");
    assert_eq!(f["distribution_release"], "bookworm");
    assert_eq!(f["os_family"], "Debian");
    assert_eq!(f["machine_id"], "c8ef87c3acc34e809be3638c5ffb6273");
    assert_eq!(f["memtotal_mb"], 24105);
    assert_eq!(f["memfree_mb"], 18822);
    assert_eq!(f["memory_mb"]["swap"]["total"], 0);
    assert_eq!(f["processor_vcpus"], 2);
    assert_eq!(f["processor_count"], 1);
    assert_eq!(f["processor_cores"], 2);
    assert_eq!(f["processor_threads_per_core"], 1);
    assert_eq!(f["service_mgr"], "systemd");
    assert_eq!(f["pkg_mgr"], "apt");
    assert_eq!(f["user_id"], "root");
    assert_eq!(f["user_uid"], 0);
    assert_eq!(f["user_dir"], "/root");
    assert_eq!(f["user_shell"], "/bin/bash");
    assert_eq!(f["env"]["HOME"], "/root");
    assert!(f["env"].get("BASH_FUNC_x%%").is_none());
    assert_eq!(f["date_time"]["epoch"], "1795308852");
    assert_eq!(f["date_time"]["iso8601"], "2026-11-22T00:54:12Z");
    assert_eq!(f["date_time"]["date"], "2026-11-22");
    assert_eq!(f["dns"]["nameservers"], json!(["10.255.255.53"]));
    assert_eq!(
        f["default_ipv4"],
        json!({
            "interface": "host0", "address": "10.77.0.11", "gateway": "10.77.0.1",
            "broadcast": "10.77.0.255", "netmask": "255.255.255.0", "network": "10.77.0.0", "prefix": "24",
            "macaddress": "26:55:6d:5c:d3:95", "mtu": 1500, "type": "ether",
        })
    );
    assert_eq!(f["all_ipv4_addresses"], json!(["10.77.0.11"]));
    assert_eq!(
        f["all_ipv6_addresses"],
        json!(["fe80::2455:6dff:fe5c:d395"])
    );
    assert_eq!(f["interfaces"], json!(["lo", "host0"]));
    assert_eq!(f["host0"]["ipv4"]["address"], "10.77.0.11");
    assert_eq!(f["host0"]["active"], true);
    assert_eq!(f["host0"]["ipv6"][0]["scope"], "link");
    assert_eq!(f["lo"]["type"], "loopback");

    let p = prefixed(&f);
    assert_eq!(p["ansible_hostname"], "h1");
    assert_eq!(p["ansible_default_ipv4"]["address"], "10.77.0.11");
    assert_eq!(p["ansible_host0"]["device"], "host0");
    assert_eq!(p.len(), f.len());
}

#[test]
fn parses_an_alpine_host_without_ip() {
    let f = parse(&ALPINE_NO_IP.replace("\\t", "\t"));
    assert_eq!(f["hostname"], "alp1");
    assert_eq!(f["fqdn"], "alp1.lab.example");
    assert_eq!(f["domain"], "lab.example");
    assert_eq!(f["distribution"], "Alpine");
    assert_eq!(f["os_family"], "Alpine");
    assert_eq!(f["distribution_version"], "3.19.1");
    assert_eq!(f["distribution_major_version"], "3");
    assert_eq!(f["distribution_release"], "NA");
    assert_eq!(f["architecture"], "aarch64");
    assert_eq!(f["service_mgr"], "openrc");
    assert_eq!(f["pkg_mgr"], "apk");
    assert_eq!(f["processor_vcpus"], 4);
    assert_eq!(f["processor_count"], 4);
    assert_eq!(f["memtotal_mb"], 1982);
    assert_eq!(f["user_gecos"], "Deploy User");
    assert_eq!(f["date_time"]["iso8601"], "1970-01-01T23:59:59Z");
    assert_eq!(f["all_ipv4_addresses"], json!(["172.17.0.5"]));
    assert_eq!(f["default_ipv4"]["interface"], "eth0");
    assert_eq!(f["default_ipv4"]["gateway"], "172.17.0.1");
    assert_eq!(f["default_ipv4"]["address"], "172.17.0.5");
    assert_eq!(f["default_ipv4"]["netmask"], "255.255.0.0");
    assert_eq!(f["default_ipv4"]["macaddress"], "02:42:ac:11:00:05");
    assert_eq!(f["eth0"]["ipv4"]["network"], "172.17.0.0");
}

#[test]
fn os_families_from_os_release() {
    let fam = |osr: &str| {
        let out: String = osr.lines().map(|l| format!("os={l}\n")).collect();
        let f = parse(&format!("prov_facts=1\n{out}"));
        (
            f["distribution"].as_str().unwrap().to_string(),
            f["os_family"].as_str().unwrap().to_string(),
            f["distribution_release"].as_str().unwrap().to_string(),
            f["distribution_major_version"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    assert_eq!(
        fam("ID=\"rhel\"\nVERSION_ID=\"9.3\"\nVERSION=\"9.3 (Plow)\"\nID_LIKE=\"fedora\""),
        ("RedHat".into(), "RedHat".into(), "Plow".into(), "9".into())
    );
    assert_eq!(
        fam("ID=ubuntu\nVERSION_ID=\"22.04\"\nVERSION_CODENAME=jammy\nID_LIKE=debian"),
        (
            "Ubuntu".into(),
            "Debian".into(),
            "jammy".into(),
            "22".into()
        )
    );
    assert_eq!(
        fam("ID=\"rocky\"\nVERSION_ID=\"9.4\"\nID_LIKE=\"rhel centos fedora\""),
        ("Rocky".into(), "RedHat".into(), "NA".into(), "9".into())
    );
    assert_eq!(
        fam("ID=\"opensuse-leap\"\nVERSION_ID=\"15.5\"\nID_LIKE=\"suse opensuse\""),
        (
            "openSUSE Leap".into(),
            "Suse".into(),
            "NA".into(),
            "15".into()
        )
    );
    assert_eq!(
        fam("ID=arch\nBUILD_ID=rolling"),
        (
            "Archlinux".into(),
            "Archlinux".into(),
            "NA".into(),
            "".into()
        )
    );
    assert_eq!(
        fam("ID=someos\nID_LIKE=\"ubuntu debian\"\nVERSION_ID=1.0"),
        ("Someos".into(), "Debian".into(), "NA".into(), "1".into())
    );
}

#[test]
fn script_is_posix_sh() {
    // dash is Debian's /bin/sh; `-n` parses without running.
    let out = std::process::Command::new("sh")
        .arg("-n")
        .arg("-c")
        .arg(gather_command())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn gathers_for_real_over_the_local_connection() {
    let conn = crate::connection::local::LocalConnection;
    let f = gather(&conn).await.unwrap();
    assert_eq!(f["system"], "Linux");
    assert_eq!(f["distribution"], "Debian");
    assert_eq!(f["os_family"], "Debian");
    assert_eq!(f["pkg_mgr"], "apt");
    assert!(f["processor_vcpus"].as_u64().unwrap() >= 1);
    assert!(f["memtotal_mb"].as_u64().unwrap() > 0);
    assert!(!f["hostname"].as_str().unwrap().is_empty());
    assert!(!f["kernel"].as_str().unwrap().is_empty());
    assert!(["x86_64", "aarch64"].contains(&f["architecture"].as_str().unwrap()));
    let ips = f["all_ipv4_addresses"].as_array().unwrap();
    assert!(
        !ips.is_empty() || f["default_ipv4"].get("address").is_some(),
        "{f:#?}"
    );
    assert!(
        f["date_time"]["epoch"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 1_600_000_000
    );
    assert!(!f["service_mgr"].as_str().unwrap().is_empty());
    assert!(f["env"].get("PATH").is_some());
}

#[tokio::test]
async fn a_failing_command_is_an_error_with_stderr() {
    struct Broken;
    #[async_trait::async_trait]
    impl Connection for Broken {
        async fn exec(
            &self,
            _: &str,
            _: Option<&[u8]>,
        ) -> Result<crate::connection::ExecResult, ConnError> {
            Ok(crate::connection::ExecResult {
                rc: 127,
                stdout: vec![],
                stderr: b"sh: not found".to_vec(),
            })
        }
    }
    let e = gather(&Broken).await.unwrap_err();
    assert!(
        e.to_string().contains("rc=127") && e.to_string().contains("sh: not found"),
        "{e}"
    );
}
