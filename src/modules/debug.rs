//! `debug`: prints a message or a variable's value. Never changes anything.

use super::{Caps, ModResult, Module, ModuleCtx, Outcome};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
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
    const NAME: &'static str = "debug";
    const FREE_FORM: Option<&'static str> = Some("msg");
    const RAW: &'static [&'static str] = &["var"];
    const CAPS: Caps = Caps {
        shows_msg: true,
        ..Caps::NONE
    };

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
