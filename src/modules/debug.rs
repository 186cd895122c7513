//! `debug`: prints a message or a variable's value. Never changes anything.

use super::{ModResult, ModuleCtx, ModuleDef, Outcome};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    msg: Option<Json>,
    #[serde(default)]
    var: Option<String>,
    #[serde(default)]
    verbosity: Option<u8>,
}

pub const DEBUG: ModuleDef = ModuleDef {
    name: "debug",
    aliases: &[],
    params: crate::params_of!(Args),
    check: crate::check_of!(Args),
    required: &[],
    free_form: Some("msg"),
    raw: &["var"],
    run: |ctx, args| Box::pin(run(ctx, args)),
};

async fn run(ctx: &ModuleCtx<'_>, args: Json) -> ModResult {
    let args: Args = super::parse_args(args)?;
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
