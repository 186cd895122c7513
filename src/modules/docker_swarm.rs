//! `docker_swarm`: a node's swarm membership. `present` initialises a swarm (or finds the node
//! already managing one) and returns the join tokens; `join` makes the node join the swarm
//! whose managers are `remote_addrs`; `absent` leaves; `inspect` only reads (the state, and on
//! a manager the join tokens and `manager_addr`, for nodes that join through it).
//! On a manager, `rotate_worker_token`/`rotate_manager_token` replace the join tokens (a
//! change every time, as in Ansible), and `remove` takes a node that is down (`node_id`) out
//! of the swarm's list.
//!
//! Reading is one command: `docker info --format '{{json .Swarm}}'`, plus on a manager (for
//! `present`) both join tokens, plus the addresses of named managers for `join`. A change is
//! one more command, which for `init` also returns the new state and the tokens.
//!
//! Join tokens are secrets: they are returned only in `data` (declared in its `secret_data`), travel
//! to the host on stdin (never inside the command line prov sends), and every message that
//! could echo one is scrubbed.

use super::{ArgError, Caps, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{Role, no_docker, read_docker, require_docker};
use crate::host::text::unified_diff;
use crate::host::text::{kv_text, scrub};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Join,
    Absent,
    /// Read-only: the node's swarm state and, on a manager, the join tokens.
    Inspect,
    /// On a manager: another node (`node_id`, an ID or a hostname), once it is down, taken
    /// out of the swarm's node list.
    Remove,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    state: State,
    #[serde(default)]
    advertise_addr: Option<String>,
    #[serde(default)]
    listen_addr: Option<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    remote_addrs: Vec<String>,
    #[serde(default)]
    join_token: Option<String>,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    cluster_id: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    rotate_worker_token: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    rotate_manager_token: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    node_id: Option<String>,
}

/// The `docker_swarm` module.
pub struct DockerSwarmModule;

impl Module for DockerSwarmModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("force", "false"),
        ("rotate_worker_token", "false"),
        ("rotate_manager_token", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: Create the swarm on the first manager
  docker_swarm:
    state: present
    advertise_addr: 10.0.0.11
- name: Join it as a worker
  docker_swarm:
    state: join
    advertise_addr: 10.0.0.13
    remote_addrs: [\"10.0.0.11:2377\"]
    join_token: \"{{ swarm_info.join_token_worker }}\"
";
    const NAME: &'static str = "docker_swarm";
    const COLLECTION: &'static str = "community.docker";
    const CAPS: Caps = Caps {
        secret_data: &["join_token_worker", "join_token_manager"],
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.state == State::Remove {
            let id = ArgError::require("node_id", a.node_id.as_deref())?;
            check_addr("node_id", "node", id)?;
        }
        for (param, v) in [
            ("advertise_addr", &a.advertise_addr),
            ("listen_addr", &a.listen_addr),
        ] {
            if let Some(v) = v {
                check_addr(param, param, v)?;
            }
        }
        for r in &a.remote_addrs {
            check_addr("remote_addrs", "remote address", r)?;
        }
        if a.state == State::Join {
            if a.remote_addrs.is_empty() {
                return Err(ArgError::new(
                    "state: join needs remote_addrs (the address of a manager)",
                ));
            }
            let token = a.join_token.as_deref().unwrap_or_default();
            if token.trim().is_empty() {
                return Err(ArgError::new("state: join needs join_token"));
            }
            // It travels as one line on stdin (and the message never shows it).
            if token.contains(['\n', '\r']) {
                return Err(ArgError::at("join_token", "join_token must be one line"));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// Reads the node's swarm state (and what the wanted state needs), then acts for that state.
async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let Some(found) = read(ctx, &a).await? else {
        return docker_missing(ctx, a.state);
    };
    match a.state {
        State::Present => present(ctx, &a, found).await,
        State::Join => join(ctx, &a, found).await,
        State::Absent => absent(ctx, &a, found).await,
        State::Inspect => Ok(with_tokens(Outcome::ok(""), &found)),
        State::Remove => remove(ctx, &a, &found).await,
    }
}

// ---------------------------------------------------------------------------------------
// addresses

/// An address argument: data only, never an option.
fn check_addr(param: &'static str, what: &str, a: &str) -> Result<(), ArgError> {
    let ok = !a.is_empty()
        && !a.starts_with('-')
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".:-_[]%".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ArgError::at(param, format!("invalid {what} '{a}'")))
    }
}

/// `host:port`, with the swarm port when none is given.
pub(crate) fn with_port(addr: &str) -> String {
    let a = addr.trim();
    if a.starts_with('[') {
        if a.contains("]:") {
            a.to_string()
        } else {
            format!("{a}:2377")
        }
    } else if a.matches(':').count() > 1 {
        format!("[{a}]:2377")
    } else if a.contains(':') {
        a.to_string()
    } else {
        format!("{a}:2377")
    }
}

fn host_of(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

fn is_ip(h: &str) -> bool {
    h.parse::<std::net::IpAddr>().is_ok()
}

// ---------------------------------------------------------------------------------------
// read

/// `docker info`'s `.Swarm`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default)]
pub(crate) struct SwarmInfo {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "NodeAddr")]
    pub node_addr: String,
    #[serde(rename = "LocalNodeState")]
    pub local_node_state: String,
    #[serde(rename = "ControlAvailable")]
    pub control_available: bool,
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "RemoteManagers")]
    pub remote_managers: Option<Vec<Peer>>,
    #[serde(rename = "Cluster")]
    pub cluster: Option<Cluster>,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default)]
pub(crate) struct Peer {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "Addr")]
    pub addr: String,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default)]
pub(crate) struct Cluster {
    #[serde(rename = "ID")]
    pub id: String,
}

impl SwarmInfo {
    fn cluster_id(&self) -> Option<&str> {
        self.cluster
            .as_ref()
            .map(|c| c.id.as_str())
            .filter(|s| !s.is_empty())
    }
}

/// What the probe found.
#[derive(Debug, Default)]
struct Found {
    info: SwarmInfo,
    worker_token: Option<String>,
    manager_token: Option<String>,
    /// Named hosts of `remote_addrs` and the address each resolves to on the node.
    resolved: Vec<(String, String)>,
}

fn token_script() -> &'static str {
    "case \"$s\" in *'\"ControlAvailable\":true'*) w=$(docker swarm join-token -q worker) && m=$(docker swarm join-token -q manager) && printf 'W %s\\nM %s\\n' \"$w\" \"$m\";; esac\n"
}

fn info_script() -> &'static str {
    "s=$(docker info --format '{{json .Swarm}}') || exit $?\nprintf 'S %s\\n' \"$s\"\n"
}

/// One command: `docker info`, plus on a manager the join tokens (for `present` and
/// `inspect`), plus for `join` what each named manager resolves to on the node. `None` when
/// the docker CLI is missing.
async fn read(ctx: &ModuleCtx<'_>, a: &Args) -> Result<Option<Found>, ModError> {
    let mut s = require_docker();
    s.push_str(info_script());
    match a.state {
        State::Present | State::Inspect => s.push_str(token_script()),
        State::Join => {
            for r in &a.remote_addrs {
                let h = host_of(&with_port(r)).to_string();
                if !is_ip(&h) {
                    s.push_str(&format!(
                        "printf 'R %s %s\\n' {q} \"$(getent ahosts {q} | awk 'NR==1{{print $1}}')\"\n",
                        q = quote(&h)
                    ));
                }
            }
        }
        State::Absent | State::Remove => {}
    }
    let token = a.join_token.as_deref().unwrap_or_default();
    let what = "cannot read the swarm state";
    let Some(stdout) = read_docker(ctx, &s, what, &[token]).await? else {
        return Ok(None);
    };
    parse(&stdout).map(Some)
}

fn parse(out: &str) -> Result<Found, ModError> {
    let mut f = Found::default();
    let mut seen = false;
    for line in out.lines() {
        if let Some(s) = line.strip_prefix("S ") {
            f.info = serde_json::from_str(s).map_err(|e| {
                ModError::Failed(format!("cannot parse `docker info` output: {e}: {s}"))
            })?;
            seen = true;
        } else if let Some(t) = line.strip_prefix("W ") {
            f.worker_token = Some(t.trim().to_string()).filter(|t| !t.is_empty());
        } else if let Some(t) = line.strip_prefix("M ") {
            f.manager_token = Some(t.trim().to_string()).filter(|t| !t.is_empty());
        } else if let Some(r) = line.strip_prefix("R ")
            && let Some((h, ip)) = r.split_once(' ')
        {
            f.resolved.push((h.to_string(), ip.trim().to_string()));
        }
    }
    if !seen {
        return fail(format!(
            "unexpected output from `docker info`: {}",
            scrub(out.trim(), &[])
        ));
    }
    Ok(f)
}

/// Without docker, only check mode goes on (an earlier task may install it); `inspect`
/// cannot report anything.
fn docker_missing(ctx: &ModuleCtx<'_>, state: State) -> ModResult {
    let would = match state {
        State::Present => "initialise a swarm",
        State::Join => "join the swarm",
        State::Absent => "leave the swarm",
        State::Remove => "remove a node",
        State::Inspect => return fail("docker is not installed on the host (no `docker` command)"),
    };
    no_docker(ctx, would)
}

// ---------------------------------------------------------------------------------------
// decide

/// True when the node's swarm is the one whose managers are `remote_addrs` (or whose id is
/// `cluster_id`, when the node can tell: only managers know the cluster id).
fn same_swarm(a: &Args, f: &Found) -> bool {
    if let (Some(want), Some(have)) = (&a.cluster_id, f.info.cluster_id()) {
        return want == have;
    }
    let mut known: Vec<String> = f
        .info
        .remote_managers
        .iter()
        .flatten()
        .map(|p| with_port(&p.addr))
        .collect();
    if f.info.control_available && !f.info.node_addr.is_empty() {
        known.push(with_port(&f.info.node_addr));
    }
    a.remote_addrs.iter().any(|r| {
        let r = with_port(r);
        let port = r.rsplit_once(':').map_or("2377", |(_, p)| p);
        let mut candidates = vec![r.clone()];
        for (h, ip) in &f.resolved {
            if h == host_of(&r) && !ip.is_empty() {
                candidates.push(with_port(&format!(
                    "{}:{port}",
                    if ip.contains(':') {
                        format!("[{ip}]")
                    } else {
                        ip.clone()
                    }
                )));
            }
        }
        candidates.iter().any(|c| known.contains(c))
    })
}

/// Initialises a swarm unless the node manages one; returns the join tokens.
async fn present(ctx: &ModuleCtx<'_>, a: &Args, f: Found) -> ModResult {
    let info = &f.info;
    match info.local_node_state.as_str() {
        "active" if info.control_available => {
            let mut msg = String::new();
            if let Some(want) = &a.cluster_id
                && info.cluster_id() != Some(want.as_str())
            {
                return fail(format!(
                    "this node manages swarm {} but cluster_id {want} was asked for",
                    info.cluster_id().unwrap_or("?")
                ));
            }
            if let Some(adv) = a.advertise_addr.as_deref()
                && !adv.contains(':')
                && !info.node_addr.is_empty()
                && info.node_addr != adv
            {
                msg = format!(
                    "swarm already initialised (advertising {}, not {adv})",
                    info.node_addr
                );
            }
            if a.rotate_worker_token || a.rotate_manager_token {
                return rotate(ctx, a, f).await;
            }
            Ok(with_tokens(Outcome::ok(msg), &f))
        }
        "active" => fail(format!(
            "this node is a worker of a swarm (managers: {}): state: present needs a manager (use state: join on workers)",
            managers(info)
        )),
        "inactive" | "" => {
            let diff = state_diff(
                ctx,
                &[kv("swarm", "inactive")],
                &[kv("swarm", "active (manager, new swarm)")],
            );
            let o = Outcome::changed("swarm initialised").with_diff(diff);
            if ctx.check {
                return Ok(o);
            }
            let nf = init(ctx, a).await?;
            Ok(with_tokens(o, &nf))
        }
        other => fail(format!(
            "the node's swarm state is '{other}'{}: it needs attention by hand",
            if info.error.is_empty() {
                String::new()
            } else {
                format!(" ({})", scrub(&info.error, &[]))
            }
        )),
    }
}

/// New join tokens (a change every time, as in Ansible): nodes that join later need the new
/// ones; the old ones are refused from now on. One command rotates and reads them.
async fn rotate(ctx: &ModuleCtx<'_>, a: &Args, f: Found) -> ModResult {
    let kinds: Vec<&str> = [
        ("worker", a.rotate_worker_token),
        ("manager", a.rotate_manager_token),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| *k)
    .collect();
    let o = Outcome::changed(format!("rotated the {} join token(s)", kinds.join(" and ")));
    if ctx.check {
        return Ok(with_tokens(o, &f));
    }
    let mut cmd = String::from("set -e\n");
    for k in &kinds {
        cmd.push_str(&format!(
            "docker swarm join-token --rotate -q {k} >/dev/null\n"
        ));
    }
    cmd.push_str(info_script());
    cmd.push_str(token_script());
    let out = ctx.exec(&cmd).await?;
    if !out.ok() {
        let known: Vec<&str> = [&f.worker_token, &f.manager_token]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        return fail(format!(
            "Can not update a Swarm Cluster: {}",
            scrub(out.stderr_str().trim(), &known)
        ));
    }
    Ok(with_tokens(o, &parse(&out.stdout_str())?))
}

/// Takes a node that is down out of the swarm's list (run on a manager). A node that is not
/// in the list is no change; one that is still up is refused after a few looks, as Ansible
/// looks (`force` goes to `docker node rm` only, as Ansible passes it).
async fn remove(ctx: &ModuleCtx<'_>, a: &Args, f: &Found) -> ModResult {
    if !f.info.control_available {
        return fail("This node is not a manager.");
    }
    let id = quote(a.node_id.as_deref().unwrap_or_default());
    let look = format!("docker node inspect {id} --format '{{{{.Status.State}}}}'");
    let mut tries = 0;
    loop {
        let out = ctx.exec(&look).await?;
        if !out.ok() {
            let err = out.stderr_str();
            // Only a node that is not there is no change; anything else (no quorum, a name
            // that matches several nodes) is a failure, as in Ansible.
            if err.contains("No such node") || err.contains("not found") {
                return Ok(Outcome::ok("Node is not in the swarm."));
            }
            return fail(format!("Can not remove the node: {}", err.trim()));
        }
        if out.stdout_str().trim() == "down" {
            break;
        }
        tries += 1;
        if tries >= 5 {
            return fail("Can not remove the node. The status node is ready and not down.");
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
    let diff = state_diff(ctx, &[kv("joined", "true")], &[kv("joined", "false")]);
    let o = Outcome::changed("Node is removed from swarm cluster.").with_diff(diff);
    if ctx.check {
        return Ok(o);
    }
    let force = if a.force { " --force" } else { "" };
    let out = ctx
        .exec(&format!("docker node rm{force} {id} >/dev/null"))
        .await?;
    if !out.ok() {
        return fail(format!(
            "Can not remove the node from the Swarm Cluster: {}",
            out.stderr_str().trim()
        ));
    }
    Ok(o)
}

/// Joins the swarm of `remote_addrs` unless the node is in it (leaving another swarm first
/// only with `force`).
async fn join(ctx: &ModuleCtx<'_>, a: &Args, f: Found) -> ModResult {
    let info = &f.info;
    let mut leave_first = false;
    match info.local_node_state.as_str() {
        "active" if same_swarm(a, &f) => {
            let mut o = Outcome::ok("");
            if let Some(role) = a.role {
                let is_manager = info.control_available;
                if (role == Role::Manager) != is_manager {
                    o.msg = format!(
                        "already in the swarm as a {}; change roles with docker_node on a manager",
                        if is_manager { "manager" } else { "worker" }
                    );
                }
            }
            info_data(&mut o, info);
            return Ok(o);
        }
        "active" | "pending" | "error" | "locked" if !a.force => {
            return fail(format!(
                "this node is already in another swarm (state {}, managers: {}); set force: true to leave it and join {}",
                info.local_node_state,
                managers(info),
                a.remote_addrs.join(", ")
            ));
        }
        "inactive" | "" => {}
        _ => leave_first = true,
    }
    let before = if leave_first {
        format!("{} (managers: {})", info.local_node_state, managers(info))
    } else {
        "inactive".into()
    };
    let diff = state_diff(
        ctx,
        &[kv("swarm", &before)],
        &[kv(
            "swarm",
            &format!("active (managers: {})", a.remote_addrs.join(", ")),
        )],
    );
    let mut o = Outcome::changed(if leave_first {
        "left the old swarm and joined"
    } else {
        "joined the swarm"
    })
    .with_diff(diff);
    if ctx.check {
        info_data(&mut o, info);
        return Ok(o);
    }
    let nf = join_swarm(ctx, a, leave_first).await?;
    info_data(&mut o, &nf.info);
    Ok(o)
}

/// Leaves the swarm the node is in.
async fn absent(ctx: &ModuleCtx<'_>, a: &Args, f: Found) -> ModResult {
    let info = &f.info;
    if matches!(info.local_node_state.as_str(), "inactive" | "") {
        let mut o = Outcome::ok("");
        info_data(&mut o, info);
        return Ok(o);
    }
    let diff = state_diff(
        ctx,
        &[kv("swarm", &info.local_node_state)],
        &[kv("swarm", "inactive")],
    );
    let o = Outcome::changed("left the swarm").with_diff(diff);
    if ctx.check {
        return Ok(o);
    }
    let cmd = if a.force {
        "docker swarm leave --force >/dev/null"
    } else {
        "docker swarm leave >/dev/null"
    };
    let out = ctx.exec(cmd).await?;
    if !out.ok() {
        return fail(format!(
            "docker swarm leave failed (rc={}): {}",
            out.rc,
            scrub(out.stderr_str().trim(), &[])
        ));
    }
    Ok(o)
}

fn managers(info: &SwarmInfo) -> String {
    let m: Vec<&str> = info
        .remote_managers
        .iter()
        .flatten()
        .map(|p| p.addr.as_str())
        .collect();
    if m.is_empty() {
        "unknown".into()
    } else {
        m.join(", ")
    }
}

/// Data every outcome carries (never a token).
fn info_data(o: &mut Outcome, info: &SwarmInfo) {
    o.data.insert("node_id".into(), json!(info.node_id));
    o.data.insert("node_addr".into(), json!(info.node_addr));
    o.data
        .insert("local_node_state".into(), json!(info.local_node_state));
    o.data
        .insert("control_available".into(), json!(info.control_available));
    if let Some(id) = info.cluster_id() {
        o.data.insert("cluster_id".into(), json!(id));
    }
    // The address (without port) to join this swarm through: the node itself when it is a
    // manager, else the first manager it knows.
    let manager = if info.control_available && !info.node_addr.is_empty() {
        Some(info.node_addr.clone())
    } else {
        info.remote_managers
            .iter()
            .flatten()
            .next()
            .map(|p| host_of(&p.addr).to_string())
    };
    if let Some(m) = manager.filter(|_| info.local_node_state == "active") {
        o.data.insert("manager_addr".into(), json!(m));
    }
}

fn with_tokens(mut o: Outcome, f: &Found) -> Outcome {
    info_data(&mut o, &f.info);
    for (k, v) in [
        ("join_token_worker", &f.worker_token),
        ("join_token_manager", &f.manager_token),
    ] {
        if let Some(t) = v {
            o.data.insert(k.into(), json!(t));
        }
    }
    o
}

fn state_diff(
    ctx: &ModuleCtx<'_>,
    before: &[(String, String)],
    after: &[(String, String)],
) -> Option<String> {
    if ctx.diff {
        unified_diff(&kv_text(before), &kv_text(after), "swarm")
    } else {
        None
    }
}

fn kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

// ---------------------------------------------------------------------------------------
// change

/// The options of `docker swarm init` and `join` that address the node.
fn addr_opts(a: &Args) -> String {
    let mut opts = String::new();
    if let Some(v) = &a.advertise_addr {
        opts.push_str(&format!(" --advertise-addr {}", quote(v)));
    }
    if let Some(v) = &a.listen_addr {
        opts.push_str(&format!(" --listen-addr {}", quote(v)));
    }
    opts
}

/// `docker swarm init`, then the new state and the tokens: one command.
async fn init(ctx: &ModuleCtx<'_>, a: &Args) -> Result<Found, ModError> {
    let cmd = format!(
        "set -e\ndocker swarm init{} >/dev/null\n{}{}",
        addr_opts(a),
        info_script(),
        token_script()
    );
    let out = ctx.exec(&cmd).await?;
    if !out.ok() {
        return fail(format!(
            "docker swarm init failed (rc={}): {}",
            out.rc,
            scrub(out.stderr_str().trim(), &[])
        ));
    }
    parse(&out.stdout_str())
}

/// Joins through the first of `remote_addrs` that takes the node (after leaving the old
/// swarm), then reads the new state: one command. The token travels on stdin.
async fn join_swarm(ctx: &ModuleCtx<'_>, a: &Args, leave_first: bool) -> Result<Found, ModError> {
    let token = a.join_token.as_deref().unwrap_or_default();
    let mut cmd = String::from("IFS= read -r T\n");
    if leave_first {
        cmd.push_str("docker swarm leave --force >/dev/null || exit $?\n");
    }
    let opts = addr_opts(a);
    let addrs: Vec<String> = a
        .remote_addrs
        .iter()
        .map(|r| quote(&with_port(r)))
        .collect();
    cmd.push_str(&format!(
        "rc=1; for a in {}; do if docker swarm join --token \"$T\"{opts} \"$a\" >/dev/null; then rc=0; break; fi; done\n",
        addrs.join(" ")
    ));
    cmd.push_str("[ $rc = 0 ] || exit $rc\n");
    cmd.push_str(info_script());
    let stdin = format!("{token}\n");
    let out = ctx.exec_stdin(&cmd, Some(stdin.as_bytes())).await?;
    if !out.ok() {
        return fail(format!(
            "docker swarm join failed (rc={}): {}",
            out.rc,
            scrub(out.stderr_str().trim(), &[token])
        ));
    }
    parse(&out.stdout_str())
}

#[cfg(test)]
#[path = "docker_swarm_tests.rs"]
mod tests;
