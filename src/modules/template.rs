//! `template`: renders a Jinja template from `templates/` on the control machine with the
//! task's variables, then puts the result on the host exactly as `copy` does (same code, same
//! single probe on the no-change path).

use super::{Caps, ModError, ModResult, Module, ModuleCtx, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::fs::basename;
use crate::host::fs::{Deliver, deliver};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    dest: Option<String>,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    force: Option<bool>,
    #[serde(default)]
    validate: Option<String>,
}

/// The `template` module.
pub struct TemplateModule;

impl Module for TemplateModule {
    type Args = Args;
    const NAME: &'static str = "template";
    const REQUIRED: &'static [&'static str] = &["src", "dest"];
    const CAPS: Caps = Caps {
        reads_local: Some("templates"),
        ..Caps::NONE
    };

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let (Some(src), Some(dest)) = (
        a.src.as_deref(),
        a.dest.as_deref().filter(|d| !d.is_empty()),
    ) else {
        return fail("src and dest are required");
    };
    let Some(local) = ctx.find_local("templates", src) else {
        return fail(format!(
            "could not find template '{src}' in templates/ of {}",
            crate::search_path::describe(&ctx.search_dirs)
        ));
    };
    let text = std::fs::read_to_string(&local)
        .map_err(|e| ModError::Failed(format!("cannot read template {}: {e}", local.display())))?;
    let rendered = ctx
        .templar
        .render_str(&text)
        .map_err(|e| ModError::Failed(format!("{}: {e}", local.display())))?;
    let mut o = deliver(
        ctx,
        &Deliver {
            dest,
            content: rendered.as_bytes(),
            basename: Some(basename(src)),
            attrs: attrs_from(&a.mode, &a.owner, &a.group)?,
            backup: a.backup,
            force: a.force.unwrap_or(true),
            validate: a.validate.as_deref(),
        },
    )
    .await?;
    o.data.insert("src".into(), json!(src));
    Ok(o)
}

#[cfg(test)]
mod tests {
    const TEMPLATE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<TemplateModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};

    fn harness(vars: Json, templates: &[(&str, &str)]) -> Harness {
        let h = Harness::with_vars(vars);
        std::fs::create_dir_all(h.path("templates")).unwrap();
        for (name, text) in templates {
            std::fs::write(h.path("templates").join(name), text).unwrap();
        }
        h
    }

    #[tokio::test]
    async fn renders_converges_and_checks() {
        let h = harness(
            json!({"port": 8080, "hosts": ["a", "b"]}),
            &[(
                "app.conf.j2",
                "port={{ port }}\n{% for x in hosts %}\nhost={{ x }}\n{% endfor %}\n",
            )],
        );
        let args = json!({"src": "app.conf.j2", "dest": h.p("app.conf"), "mode": "0640"});
        h.converges(&TEMPLATE, args.clone()).await;
        assert_eq!(h.read("app.conf"), "port=8080\nhost=a\nhost=b\n");
        assert_eq!(h.mode("app.conf"), 0o640);
        // Drift: check mode shows it and leaves the file alone.
        h.write("app.conf", "port=1\n");
        let o = h.check(&TEMPLATE, args.clone()).await;
        assert!(o.changed);
        let diff = o.diff.unwrap();
        assert!(
            diff.contains("-port=1") && diff.contains("+port=8080"),
            "{diff}"
        );
        assert_eq!(h.read("app.conf"), "port=1\n");
        h.converges(&TEMPLATE, args).await;
        assert_eq!(h.read("app.conf"), "port=8080\nhost=a\nhost=b\n");
    }

    #[tokio::test]
    async fn undefined_variables_fail_the_task() {
        let h = harness(json!({}), &[("t.j2", "{{ nope }}")]);
        let r = h
            .run_mode(
                &TEMPLATE,
                json!({"src": "t.j2", "dest": h.p("t")}),
                false,
                false,
            )
            .await;
        assert!(matches!(r, Err(ModError::Failed(m)) if m.contains("nope")));
        assert!(!h.path("t").exists());
    }

    #[tokio::test]
    async fn hostile_variables_stay_data() {
        let h0 = Harness::new();
        let evil = hostile(&h0.pwned());
        let h = harness(
            json!({"evil": evil}),
            &[("e.j2", "{% for e in evil %}{{ e }}\n{% endfor %}")],
        );
        let dest = h.path(&format!("x{}", evil[0]));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        h.converges(
            &TEMPLATE,
            json!({"src": "e.j2", "dest": dest.display().to_string()}),
        )
        .await;
        assert!(std::fs::read_to_string(&dest).unwrap().contains(&evil[1]));
        h.assert_not_pwned();
        h0.assert_not_pwned();
    }
}
