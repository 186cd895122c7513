//! `slurp`: reads a file on the host and returns its content, base64-encoded, as Ansible's
//! does (`content`, `encoding: base64`, `source`), so that `b64decode` gives it back. It never
//! changes anything and runs the same in check mode.
//!
//! The bytes come back over the connection as they are (no tool on the host encodes them).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::shell::quote;
use base64::Engine;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "path")]
    src: Option<String>,
}

/// The `slurp` module.
pub struct SlurpModule;

impl Module for SlurpModule {
    type Args = Args;
    const NAME: &'static str = "slurp";
    const REQUIRED: &'static [&'static str] = &["src"];
    const EXAMPLES: &'static str = "\
- name: Read the swarm's CA certificate
  slurp:
    src: /var/lib/docker/swarm/certificates/swarm-root-ca.crt
  register: ca
- name: Show it
  debug:
    msg: \"{{ ca.content | b64decode }}\"
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("src", a.src.as_deref()).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let src = a.src.unwrap_or_default();
    let out = ctx.exec(&script(&src)).await?;
    let Some(nl) = out.stdout.iter().position(|&b| b == b'\n') else {
        return fail(format!("could not read {src}: {}", out.stderr_str().trim()));
    };
    let (what, content) = (&out.stdout[..nl], &out.stdout[nl + 1..]);
    match what {
        b"@OK" if out.ok() => {}
        b"@OK" => return fail(format!("could not read {src}: {}", out.stderr_str().trim())),
        b"@MISSING" => return fail(format!("file not found: {src}")),
        b"@DIR" => return fail(format!("source is a directory and must be a file: {src}")),
        _ => return fail(format!("file is not readable: {src}")),
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    Ok(Outcome::ok("")
        .with("content", encoded)
        .with("encoding", "base64")
        .with("source", src))
}

/// Prints what the path is (`@OK`, `@MISSING`, `@DIR`, `@UNREADABLE`) on a line of its own,
/// then, for a readable file, its bytes.
fn script(src: &str) -> String {
    format!(
        "p={}; if [ -d \"$p\" ]; then echo @DIR; elif [ ! -e \"$p\" ]; then echo @MISSING; \
         elif [ ! -r \"$p\" ]; then echo @UNREADABLE; else echo @OK; exec cat -- \"$p\"; fi",
        quote(src)
    )
}

#[cfg(test)]
mod tests {
    const SLURP: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<SlurpModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn returns_the_bytes_base64_and_names_what_is_wrong() {
        let h = Harness::new();
        std::fs::write(h.path("bin"), b"\x00\xff\nline\n").unwrap();
        let o = h.check(&SLURP, json!({"src": h.p("bin")})).await;
        assert!(!o.changed, "{o:?}");
        assert_eq!(o.data["content"], "AP8KbGluZQo=");
        assert_eq!(o.data["encoding"], "base64");
        assert_eq!(o.data["source"], json!(h.p("bin")));
        let e = h.error(&SLURP, json!({"path": h.p("none")})).await;
        assert_eq!(e, format!("file not found: {}", h.p("none")));
        std::fs::create_dir(h.path("d")).unwrap();
        let e = h.error(&SLURP, json!({"src": h.p("d")})).await;
        assert!(
            e.starts_with("source is a directory and must be a file"),
            "{e}"
        );
        std::fs::write(h.path("empty"), b"").unwrap();
        let o = h.apply(&SLURP, json!({"src": h.p("empty")})).await;
        assert_eq!(o.data["content"], "");
    }
}
