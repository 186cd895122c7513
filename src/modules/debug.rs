//! `debug`: prints a message or a variable's value. Never changes anything.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    msg: Option<Json>,
    #[serde(default)]
    var: Option<String>,
    #[serde(default)]
    verbosity: Option<u8>,
}

/// The `debug` module.
pub struct DebugModule;

impl Module for DebugModule {
    type Args = Args;
    const EXAMPLES: &'static str = "\
- name: Show a message
  debug:
    msg: \"{{ inventory_hostname }} runs {{ ansible_facts.distribution }}\"
- name: Show a variable
  debug:
    var: swarm_labels
";
    const NAME: &'static str = "debug";
    const FREE_FORM: Option<&'static str> = Some("msg");
    const RAW: &'static [&'static str] = &["var"];
    const CAPS: Caps = Caps {
        shows_msg: true,
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.msg.is_some() && a.var.is_some() {
            return Err(ArgError::new("parameters are mutually exclusive: msg|var"));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
    let _ = args.verbosity;
    if let Some(var) = &args.var {
        let value = ctx
            .templar
            .eval(var)
            .map_err(|e| super::ModError::Failed(e.to_string()))?;
        let shown = serde_json::to_string(&value).unwrap_or_default();
        return Ok(Outcome::ok(format!("{var}: {shown}")).with(var, value));
    }
    let msg = match args.msg {
        Some(Json::String(s)) => s,
        Some(other) => serde_json::to_string_pretty(&other).unwrap_or_default(),
        None => "Hello world!".to_string(),
    };
    Ok(Outcome::ok(msg.clone()).with("msg", msg))
}

#[cfg(test)]
mod tests {
    const DEBUG: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<DebugModule>();
    use super::*;
    use crate::host::testing::{Harness, Scripted};
    use serde_json::json;

    /// Runs `debug` with these variables on a host that must not be asked anything.
    async fn show(vars: Json, args: Json) -> ModResult {
        let h = Harness::with_vars(vars);
        let conn = Scripted::new();
        let ctx = ModuleCtx {
            conn: &conn,
            ..h.ctx(false, false)
        };
        let r = (DEBUG.run)(&ctx, args).await;
        assert!(conn.commands().is_empty(), "debug ran a command");
        r
    }

    #[tokio::test]
    async fn a_message_is_shown_as_given() {
        let o = show(json!({}), json!({"msg": "hello"})).await.unwrap();
        assert!(!o.changed && !o.failed);
        assert_eq!((o.msg.as_str(), &o.data["msg"]), ("hello", &json!("hello")));
        let o = show(json!({}), json!({"msg": {"a": [1]}})).await.unwrap();
        assert_eq!(o.msg, "{\n  \"a\": [\n    1\n  ]\n}");
        let o = show(json!({}), json!({})).await.unwrap();
        assert_eq!(o.msg, "Hello world!");
        let o = show(json!({}), json!({"msg": "x", "verbosity": 2}))
            .await
            .unwrap();
        assert_eq!(o.msg, "x");
    }

    #[tokio::test]
    async fn a_variable_is_evaluated_and_registered_under_its_name() {
        let vars = json!({"ports": [22, 80], "name": "web"});
        let o = show(vars.clone(), json!({"var": "ports"})).await.unwrap();
        assert_eq!(o.msg, "ports: [22,80]");
        assert_eq!(o.data["ports"], json!([22, 80]));
        let o = show(vars.clone(), json!({"var": "name | upper"}))
            .await
            .unwrap();
        assert_eq!(o.data["name | upper"], json!("WEB"));
        assert!(show(vars, json!({"var": "ports |"})).await.is_err());
    }

    #[test]
    fn arguments_are_checked_when_loaded() {
        let e = (DEBUG.check)(&json!({"message": "x"})).unwrap_err();
        assert!(e.msg.contains("unknown field `message`"), "{}", e.msg);
        let e = (DEBUG.check)(&json!({"msg": "x", "verbosity": "high"})).unwrap_err();
        assert!(e.msg.contains("invalid type"), "{}", e.msg);
        assert_eq!((DEBUG.check)(&json!({"var": "x", "verbosity": 1})), Ok(()));
        // As in Ansible: one or the other.
        let e = (DEBUG.check)(&json!({"var": "x", "msg": "y"})).unwrap_err();
        assert_eq!(e.msg, "parameters are mutually exclusive: msg|var");
    }
}
