const APT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<AptModule>();
use super::*;
use crate::host::testing::Harness;

#[test]
fn dpkg_query_output_is_parsed() {
    let out = "bash\tbash\tinstall ok installed\t5.2.15-2+b13\n\
               libc6:amd64\tlibc6\tinstall ok installed\t2.36-9+deb12u14\n\
               sl\tsl\tdeinstall ok config-files\t5.02-1+b1\n\
               junk line\n";
    let p = parse_dpkg_query(out);
    assert_eq!(p.len(), 3);
    assert!(p[0].is_installed());
    assert_eq!(p[1].qualified, "libc6:amd64");
    assert_eq!(p[1].name, "libc6");
    assert_eq!(p[2].status, "config-files");
    assert!(!p[2].is_installed() && !p[2].present_at_all());
}

#[test]
fn policy_output_is_parsed() {
    let out = "sl:\n  Installed: (none)\n  Candidate: 5.02-1+b1\n  Version table:\n     5.02-1+b1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n\
               bash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b14\n  Version table:\n";
    let p = parse_policy(out);
    assert_eq!(p["sl"], (None, Some("5.02-1+b1".into())));
    assert_eq!(
        p["bash"],
        (Some("5.2.15-2+b13".into()), Some("5.2.15-2+b14".into()))
    );
}

fn plan(state: State, names: &[&str]) -> Plan {
    Plan {
        state,
        upgrade: Upgrade::No,
        specs: names.iter().map(|n| PkgSpec::new(n)).collect(),
        lock_timeout: 60,
    }
}

#[test]
fn decisions_follow_state_and_pins() {
    let inst = parse_dpkg_query(
        "bash\tbash\tinstall ok installed\t5.2.15-2+b13\n\
         sl\tsl\tdeinstall ok config-files\t5.02-1+b1\n\
         libc6:amd64\tlibc6\tinstall ok installed\t2.36-9\n",
    );
    let pol = parse_policy("bash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b14\n");
    let names = |v: Vec<PkgSpec>| v.into_iter().map(|s| s.arg()).collect::<Vec<_>>();
    let none = HashMap::new();
    assert_eq!(
        names(decide(
            &plan(State::Present, &["bash", "sl", "libc6", "cowsay"]),
            &inst,
            &none,
            false
        )),
        ["sl", "cowsay"]
    );
    assert_eq!(
        names(decide(
            &plan(
                State::Present,
                &["bash=5.2.15-2+b13", "libc6=2.36*", "libc6:amd64"]
            ),
            &inst,
            &none,
            false
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        names(decide(
            &plan(State::Present, &["bash=5.2.15-2+b14", "libc6=2.37*"]),
            &inst,
            &none,
            false
        )),
        ["bash=5.2.15-2+b14", "libc6=2.37*"]
    );
    assert_eq!(
        names(decide(
            &plan(State::Latest, &["bash", "libc6"]),
            &inst,
            &pol,
            false
        )),
        ["bash"]
    );
    assert_eq!(
        names(decide(
            &plan(State::Absent, &["bash", "sl", "cowsay"]),
            &inst,
            &none,
            false
        )),
        ["bash"]
    );
    assert_eq!(
        names(decide(&plan(State::Absent, &["sl"]), &inst, &none, true)),
        ["sl"]
    );
    assert_eq!(
        names(decide(
            &plan(State::Absent, &["bash=1.0"]),
            &inst,
            &none,
            false
        )),
        Vec::<String>::new()
    );
}

#[test]
fn package_names_are_checked() {
    assert!(PkgSpec::new("-o=APT::x").check().is_err());
    assert!(PkgSpec::new("a b").check().is_err());
    assert!(PkgSpec::new("$(reboot)").check().is_err());
    assert!(PkgSpec::new("sl=").check().is_err());
    assert!(PkgSpec::new("docker-ce=5:24.0*").check().is_ok());
    assert_eq!(
        PkgSpec::new("docker-ce=5:24.0*"),
        PkgSpec {
            name: "docker-ce".into(),
            version: Some("5:24.0*".into())
        }
    );
}

#[test]
fn apt_output_is_summarised() {
    let real = "Reading package lists...\n0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.\n\
                Unpacking libgpm2:amd64 (1.20.7-10+b1) ...\nUnpacking sl (5.02-1+b1) ...\n\
                Unpacking bash (5.2.15-2+b14) over (5.2.15-2+b13) ...\n";
    let r = parse_apt_output(real);
    assert_eq!(r.active, Some(true));
    assert_eq!(
        r.lines,
        [
            "+ libgpm2:amd64 1.20.7-10+b1",
            "+ sl 5.02-1+b1",
            "~ bash 5.2.15-2+b13 -> 5.2.15-2+b14"
        ]
    );
    let sim = "0 upgraded, 0 newly installed, 1 downgraded, 1 to remove and 0 not upgraded.\n\
               Inst sl (5.02-1+b1 Debian:12.15/oldstable [amd64])\nRemv cowsay [3.03+dfsg2-8]\nPurg cowsay [3.03+dfsg2-8]\n";
    let r = parse_apt_output(sim);
    assert_eq!(r.active, Some(true));
    assert_eq!(r.lines, ["+ sl 5.02-1+b1", "- cowsay 3.03+dfsg2-8"]);
    let r = parse_apt_output(
        "sl is already the newest version (5.02-1+b1).\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n",
    );
    assert_eq!(r.active, Some(false));
    let r = parse_apt_output(
        "Removing sl (5.02-1+b1) ...\nPurging configuration files for sl (5.02-1+b1) ...\n",
    );
    assert_eq!(r.lines, ["- sl 5.02-1+b1"]);
}

#[test]
fn urls_are_redacted() {
    assert_eq!(
        redact_urls(
            "Err:1 https://user:pw@storebits.docker.com/ee/m/sub-123/ubuntu jammy InRelease"
        ),
        "Err:1 https://storebits.docker.com/<redacted> jammy InRelease"
    );
    assert!(update_failed(
        0,
        "W: Failed to fetch http://x/y  Could not connect\n"
    ));
    assert!(!update_failed(
        0,
        "Hit:1 http://deb.debian.org/debian bookworm InRelease\nReading package lists...\n"
    ));
}

#[test]
fn sections_split() {
    let s = split_sections("junk\n@U\n0\nHit:1 x\n@Q\nbash\tbash\tinstall ok installed\t5\n@P\n");
    assert_eq!(s["U"], "0\nHit:1 x\n");
    assert!(s["Q"].starts_with("bash\t"));
    assert_eq!(s["P"], "");
}

/// Without apt on the machine running the tests, the probe still runs and the module
/// reports a clear failure or a decision: the rest is covered against the lab
/// (tests/modules_system.rs).
#[tokio::test]
async fn the_no_change_path_is_one_command() {
    let h = Harness::new();
    if std::process::Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: dpkg-query is not installed here");
        return;
    }
    // A package every Debian system has, in check mode: one probe, no change.
    let n = h.execs();
    let o = h
        .run_mode(
            &APT,
            json!({"name": ["dpkg"], "state": "present"}),
            true,
            true,
        )
        .await
        .unwrap();
    assert!(!o.changed, "{}", o.msg);
    assert_eq!(h.execs() - n, 1);
    // Hostile names never reach a shell.
    let e = h
        .run_mode(&APT, json!({"name": "$(touch x)"}), true, false)
        .await;
    assert!(e.is_err());
}

#[test]
fn validate_refuses_bad_values() {
    use crate::host::testing::assert_refused;
    use serde_json::Value as Json;
    let refused = |args: Json| (APT.check)(&args).unwrap_err();
    assert_refused(
        &APT,
        json!({"name": ["sl", "-o=APT::Get::x"]}),
        Some("name"),
        "invalid package name '-o'",
    );
    assert_refused(
        &APT,
        json!({"name": "sl,$(reboot)"}),
        Some("name"),
        "invalid package name '$(reboot)'",
    );
    assert_refused(
        &APT,
        json!({"name": "sl=1 2"}),
        Some("name"),
        "invalid version '1 2' for package 'sl'",
    );
    assert_refused(
        &APT,
        json!({"name": "sl=5.02*", "state": "latest"}),
        None,
        "a version pin (name=VERSION) is not allowed with state=latest",
    );
    assert_refused(
        &APT,
        json!({"update_cache": true, "cache_valid_time": "1h"}),
        Some("cache_valid_time"),
        "cache_valid_time must be seconds, got '1h'",
    );
    let e = refused(json!({"name": "sl", "lock_timeout": "-5"}));
    assert_eq!(e.param, Some("lock_timeout"));
    assert_refused(
        &APT,
        json!({"name": "sl", "default_release": "-t"}),
        Some("default_release"),
        "invalid default_release '-t'",
    );
    assert_refused(
        &APT,
        json!({"name": []}),
        None,
        "give name (the packages), update_cache or upgrade",
    );
    // Closed sets are decoded by serde (the load-time check finds the key by decoding it alone).
    let e = refused(json!({"name": "sl", "state": "gone"}));
    assert_eq!(
        e.msg,
        "state must be one of present, absent, latest (got 'gone')"
    );
    let e = refused(json!({"upgrade": "Everything"}));
    assert_eq!(
        e.msg,
        "upgrade must be one of no, yes, safe, full, dist (got 'everything')"
    );
    for ok in [
        json!({"name": "sl", "state": "installed"}),
        json!({"pkg": "sl", "state": "removed"}),
        json!({"upgrade": true}),
        json!({"upgrade": "Dist"}),
        json!({"update_cache": "yes", "cache_valid_time": 3600}),
    ] {
        assert!((APT.check)(&ok).is_ok(), "{ok}");
    }
}

use crate::host::testing::Scripted;

/// `dpkg-query` lines as the probe's format prints them.
const SL_INSTALLED: &str = "sl\tsl\tinstall ok installed\t5.02-1+b1\n";
const COWSAY_GONE: &str = "cowsay\tcowsay\tdeinstall ok config-files\t3.03+dfsg2-8\n";
const FLAGS: &str = "-y -q -o DPkg::Lock::Timeout=60 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

/// What `apt-get -q install cowsay` prints.
const INSTALLED_COWSAY: &str = "Reading package lists...\nBuilding dependency tree...\nReading state information...\n\
The following NEW packages will be installed:\n  cowsay\n\
0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\n\
Need to get 21.4 kB of archives.\nAfter this operation, 95.2 kB of additional disk space will be used.\n\
Get:1 http://deb.debian.org/debian bookworm/main amd64 cowsay all 3.03+dfsg2-8 [21.4 kB]\n\
Fetched 21.4 kB in 0s (473 kB/s)\nSelecting previously unselected package cowsay.\n\
(Reading database ... 32000 files and directories currently installed.)\n\
Preparing to unpack .../cowsay_3.03+dfsg2-8_all.deb ...\nUnpacking cowsay (3.03+dfsg2-8) ...\n\
Setting up cowsay (3.03+dfsg2-8) ...\nProcessing triggers for man-db (2.11.2-2) ...\n";

/// What `apt-get -q --simulate install cowsay` prints.
const SIMULATED_COWSAY: &str = "NOTE: This is only a simulation!\n      apt-get needs root privileges for real execution.\n\
      Keep also in mind that locking is deactivated,\n      so don't depend on the relevance to the real current situation!\n\
Reading package lists...\nBuilding dependency tree...\nReading state information...\n\
The following NEW packages will be installed:\n  cowsay\n\
0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\n\
Inst cowsay (3.03+dfsg2-8 Debian:12.5/stable [all])\nConf cowsay (3.03+dfsg2-8 Debian:12.5/stable [all])\n";

#[tokio::test]
async fn installed_packages_cost_one_command() {
    let conn = Scripted::new().ok(
        "echo @Q; dpkg-query -W -f '${binary:Package}\\t${Package}\\t${Status}\\t${Version}\\n' sl 2>/dev/null",
        &format!("@Q\n{SL_INSTALLED}"),
    );
    let o = conn.apply(&APT, json!({"name": "sl"})).await;
    assert!(
        !o.changed && o.msg == "all packages are in the wanted state",
        "{o:?}"
    );
    assert_eq!(o.data["packages"], json!([]));
    assert_eq!(o.data["cache_updated"], json!(false));
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);
    assert!(!conn.commands()[0].contains("apt-get update"));
}

#[tokio::test]
async fn a_cache_refresh_alone_is_not_a_change() {
    let update = "@U\n0\nHit:1 http://deb.debian.org/debian bookworm InRelease\n\
                  Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]\n\
                  Fetched 55.4 kB in 1s (60.2 kB/s)\nReading package lists...\n";
    let conn = Scripted::new().ok("apt-get update -q -o DPkg::Lock::Timeout=60", update);
    let o = conn
        .apply(
            &APT,
            json!({"update_cache": true, "cache_valid_time": 3600}),
        )
        .await;
    assert!(!o.changed && o.msg == "nothing to upgrade", "{o:?}");
    assert_eq!(o.data["cache_updated"], json!(true));
    let cmd = &conn.commands()[0];
    assert!(cmd.contains("-lt 3600 ] && u=0"), "{cmd}");
    assert!(!cmd.contains("dpkg-query"), "{cmd}");
    conn.assert_done();

    // Check mode never refreshes.
    let conn = Scripted::new().ok("dpkg-query", &format!("@Q\n{SL_INSTALLED}"));
    let o = conn
        .check(&APT, json!({"name": "sl", "update_cache": true}))
        .await;
    assert!(
        !o.changed && o.data["cache_updated"] == json!(false),
        "{o:?}"
    );
    assert!(!conn.commands()[0].contains("apt-get update"));
    conn.assert_done();

    // A source that failed: apt-get exits 0, prov fails, and the URL's credentials stay out.
    let failed = "@U\n0\nHit:1 http://deb.debian.org/debian bookworm InRelease\n\
                  Err:2 http://user:s3cret@10.77.0.1:9/sub-SECRET-123/debian bookworm InRelease\n  \
                  Could not connect to 10.77.0.1:9 (10.77.0.1). - connect (111: Connection refused)\n\
                  Reading package lists...\n\
                  W: Failed to fetch http://user:s3cret@10.77.0.1:9/sub-SECRET-123/debian/dists/bookworm/InRelease  Could not connect\n\
                  W: Some index files failed to download. They have been ignored, or old ones used instead.\n\
                  @Q\nsl\tsl\tinstall ok installed\t5.02-1+b1\n";
    let conn = Scripted::new().ok("apt-get update", failed);
    let e = conn
        .error(&APT, json!({"name": "sl", "update_cache": true}))
        .await
        .to_string();
    assert!(e.starts_with("apt-get update failed: "), "{e}");
    assert!(
        e.contains("Err:2 http://10.77.0.1:9/<redacted> bookworm InRelease"),
        "{e}"
    );
    assert!(!e.contains("s3cret") && !e.contains("SECRET-123"), "{e}");
}

#[tokio::test]
async fn a_missing_package_is_installed_with_one_apt_get() {
    let conn = Scripted::new()
        .ok("dpkg-query", &format!("@Q\n{SL_INSTALLED}{COWSAY_GONE}"))
        .ok(
            &format!("apt-get {FLAGS} --no-install-recommends install cowsay\n"),
            INSTALLED_COWSAY,
        );
    let args = json!({"name": ["sl", "cowsay"], "install_recommends": false});
    let o = conn.apply(&APT, args.clone()).await;
    assert!(o.changed && o.msg == "changed: +cowsay", "{o:?}");
    assert_eq!(o.diff.as_deref(), Some("+ cowsay 3.03+dfsg2-8\n"));
    assert_eq!(o.data["packages"], json!(["cowsay"]));
    assert_eq!(o.data["stdout"], json!(INSTALLED_COWSAY));
    conn.assert_done();
    assert!(conn.commands()[1].starts_with("set -e\nexport DEBIAN_FRONTEND=noninteractive"));

    // Check mode: the same command, simulated.
    let conn = Scripted::new()
        .ok("dpkg-query", &format!("@Q\n{SL_INSTALLED}"))
        .ok(
            &format!("apt-get {FLAGS} --simulate --no-install-recommends install cowsay\n"),
            SIMULATED_COWSAY,
        );
    let o = conn.check(&APT, args.clone()).await;
    assert!(o.changed && o.msg == "would change: +cowsay", "{o:?}");
    assert_eq!(o.diff.as_deref(), Some("+ cowsay 3.03+dfsg2-8\n"));
    conn.assert_done();

    // apt cannot simulate a package its cache does not know yet: the intent is reported.
    let conn = Scripted::new().ok("dpkg-query", "@Q\n").answer(
        "--simulate",
        100,
        "Reading package lists...\nBuilding dependency tree...\nReading state information...\n",
        "E: Unable to locate package cowsay\n",
    );
    let o = conn.check(&APT, json!({"name": "cowsay"})).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(
        o.msg,
        "would install cowsay (apt cannot simulate it yet: E: Unable to locate package cowsay)"
    );
    assert_eq!(o.diff.as_deref(), Some("+ cowsay\n"));
    conn.assert_done();
}

#[tokio::test]
async fn apt_get_failures_carry_apts_message() {
    let conn = Scripted::new()
        .ok("dpkg-query", &format!("@Q\n{SL_INSTALLED}"))
        .answer(
            "install prov-no-such-package",
            100,
            "Reading package lists...\nBuilding dependency tree...\nReading state information...\n",
            "E: Unable to locate package prov-no-such-package\n",
        );
    let e = conn
        .error(&APT, json!({"name": ["sl", "prov-no-such-package"]}))
        .await;
    assert_eq!(
        e,
        "apt-get install prov-no-such-package failed (rc=100): E: Unable to locate package prov-no-such-package"
    );

    // The probe itself fails.
    let conn = Scripted::new().answer("dpkg-query", 1, "", "sudo: a password is required\n");
    let e = conn.error(&APT, json!({"name": "sl"})).await;
    assert_eq!(
        e,
        "cannot read the package state (rc=1): sudo: a password is required"
    );

    // A probe cut short is a failure, not "nothing installed".
    let conn = Scripted::new().ok("dpkg-query", "");
    let e = conn.error(&APT, json!({"name": "sl"})).await;
    assert_eq!(
        e,
        "unexpected output from the package probe (no @Q section): "
    );
    let conn = Scripted::new().ok("apt-cache policy", &format!("@Q\n{SL_INSTALLED}"));
    let e = conn
        .error(&APT, json!({"name": "sl", "state": "latest"}))
        .await;
    assert!(e.contains("(no @P section)"), "{e}");

    // apt-get succeeds but its summary shows nothing done: no change.
    let conn = Scripted::new().ok("dpkg-query", "@Q\n").ok(
        "install sl",
        "Reading package lists...\nsl is already the newest version (5.02-1+b1).\n\
         0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n",
    );
    let o = conn.apply(&APT, json!({"name": "sl"})).await;
    assert!(
        !o.changed && o.msg == "all packages are in the wanted state",
        "{o:?}"
    );
    assert_eq!(o.data["packages"], json!([]));
    conn.assert_done();
}

/// What `apt-get` prints when it upgrades bash from 5.2.15-2+b13 to 5.2.15-2+b14.
const BASH_UPGRADED: &str = "1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n\
     Unpacking bash (5.2.15-2+b14) over (5.2.15-2+b13) ...\n";

#[tokio::test]
async fn latest_absent_and_upgrade_pick_their_apt_get() {
    // latest: apt-cache policy names a newer candidate.
    let conn = Scripted::new()
        .ok(
            "echo @P; apt-cache policy bash 2>/dev/null",
            "@Q\nbash\tbash\tinstall ok installed\t5.2.15-2+b13\n@P\nbash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b14\n  Version table:\n",
        )
        .ok(
            &format!("apt-get {FLAGS} install bash\n"),
            BASH_UPGRADED,
        );
    let o = conn
        .apply(&APT, json!({"name": "bash", "state": "latest"}))
        .await;
    assert!(o.changed && o.msg == "changed: ~bash", "{o:?}");
    assert_eq!(
        o.diff.as_deref(),
        Some("~ bash 5.2.15-2+b13 -> 5.2.15-2+b14\n")
    );
    conn.assert_done();

    // absent with purge: config files count.
    let conn = Scripted::new()
        .ok("dpkg-query", &format!("@Q\n{SL_INSTALLED}{COWSAY_GONE}"))
        .ok(
            &format!("apt-get {FLAGS} --purge remove sl cowsay\n"),
            "The following packages will be REMOVED:\n  cowsay* sl*\n\
             0 upgraded, 0 newly installed, 2 to remove and 0 not upgraded.\n\
             Removing sl (5.02-1+b1) ...\nPurging configuration files for cowsay (3.03+dfsg2-8) ...\n\
             Purging configuration files for sl (5.02-1+b1) ...\n",
        );
    let o = conn
        .apply(
            &APT,
            json!({"name": ["sl", "cowsay"], "state": "absent", "purge": true}),
        )
        .await;
    assert!(o.changed && o.msg == "changed: -sl -cowsay", "{o:?}");
    assert_eq!(o.data["packages"], json!(["sl", "cowsay"]));
    conn.assert_done();

    // upgrade: dist: the simulated upgrade lists what would change.
    let conn = Scripted::new()
        .ok(
            "echo @G; apt-get -q -s dist-upgrade 2>/dev/null | grep '^Inst '",
            "@G\nInst bash [5.2.15-2+b13] (5.2.15-2+b14 Debian:12.15/oldstable [amd64])\n",
        )
        .ok(&format!("apt-get {FLAGS} dist-upgrade\n"), BASH_UPGRADED);
    let o = conn.apply(&APT, json!({"upgrade": "dist"})).await;
    assert!(o.changed && o.msg == "changed: ~bash", "{o:?}");
    assert_eq!(o.data["packages"], json!(["bash"]));
    conn.assert_done();
    // Nothing to upgrade.
    let conn = Scripted::new().ok("upgrade --with-new-pkgs", "@G\n");
    let o = conn.apply(&APT, json!({"upgrade": "yes"})).await;
    assert!(!o.changed && o.msg == "nothing to upgrade", "{o:?}");
    conn.assert_done();
}

#[tokio::test]
async fn hostile_values_are_quoted() {
    let conn = Scripted::new().ok("dpkg-query", "@Q\n").ok("install", "");
    conn.apply(&APT, json!({"name": "sl", "default_release": "x'; reboot; '", "dpkg_options": "force-confnew,$(reboot)"})).await;
    let cmd = &conn.commands()[1];
    assert!(cmd.contains(" -o Dpkg::Options::=--'$(reboot)' "), "{cmd}");
    assert!(
        cmd.contains(&format!(" -t {} install sl\n", quote("x'; reboot; '"))),
        "{cmd}"
    );
    conn.assert_done();
}

#[test]
fn version_globs_match_like_fnmatch() {
    assert!(crate::shell::fnmatch(
        "5:24.0*",
        "5:24.0.7-1~debian.12~bookworm"
    ));
    assert!(!crate::shell::fnmatch("5:24.0*", "5:25.0.1-1"));
    assert!(crate::shell::fnmatch("2.3?-9", "2.36-9"));
    assert!(!crate::shell::fnmatch("2.3?-9", "2.3-9"));
    // The whole version must match, not a part of it.
    assert!(!crate::shell::fnmatch("24.0*", "5:24.0.7"));
    // Regex and glob metacharacters that are common in versions are literal.
    assert!(crate::shell::fnmatch("1.0+dfsg*", "1.0+dfsg-2"));
    assert!(!crate::shell::fnmatch("1.0+dfsg*", "1.00dfsg-2"));
    assert!(crate::shell::fnmatch("1.2**", "1.2.3"));
    assert!(crate::shell::fnmatch("1.[0-2]*", "1.1.9"));
    assert!(!crate::shell::fnmatch("1.[0-2]*", "1.3.0"));
}

/// The change script's semantics, run by a real shell with an `apt-get` that fails its
/// upgrade: the script must fail, not report the install's success.
#[test]
fn a_failed_upgrade_is_not_hidden_by_the_install() {
    let dir = tempfile::tempdir().unwrap();
    crate::host::testing::stub_program(
        dir.path(),
        "apt-get",
        "case \"$*\" in *upgrade*) echo 'E: upgrade broke' >&2; exit 100;; esac\necho \"$*\" >> \"$0.log\"\n",
    );
    let a: Args =
        crate::host::testing::decode(serde_json::json!({"name": "sl", "upgrade": "dist"})).unwrap();
    let mut p = plan(State::Present, &["sl"]);
    p.upgrade = Upgrade::Dist;
    let script = apt_get_script(&a, &p, &p.specs.clone(), &["bash".to_string()], false);
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100), "{script}");
    assert!(
        !dir.path().join("apt-get.log").exists(),
        "the install must not run"
    );
}
