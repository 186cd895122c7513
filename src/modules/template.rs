//! `template`: renders a Jinja template from `templates/` on the control machine with the
//! task's variables, then puts the result on the host exactly as `copy` does (same code, same
//! single probe on the no-change path).

use super::{ArgError, Caps, ModError, ModResult, Module, ModuleCtx, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::fs::basename;
use crate::host::fs::{Deliver, deliver};
use crate::host::write::check_args;
use crate::template::overrides::{Literal, Overrides};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
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
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    force: Option<bool>,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    trim_blocks: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    lstrip_blocks: Option<bool>,
    #[serde(default)]
    newline_sequence: Option<String>,
    #[serde(default)]
    block_start_string: Option<String>,
    #[serde(default)]
    block_end_string: Option<String>,
    #[serde(default)]
    variable_start_string: Option<String>,
    #[serde(default)]
    variable_end_string: Option<String>,
    #[serde(default)]
    comment_start_string: Option<String>,
    #[serde(default)]
    comment_end_string: Option<String>,
    /// Only UTF-8, Ansible's default, is written.
    #[serde(default)]
    output_encoding: Option<String>,
}

impl Args {
    /// The Jinja settings these arguments ask for, on top of Ansible's defaults.
    fn settings(&self) -> Result<Overrides, ArgError> {
        let mut o = Overrides::default();
        let texts = [
            ("block_start_string", &self.block_start_string),
            ("block_end_string", &self.block_end_string),
            ("variable_start_string", &self.variable_start_string),
            ("variable_end_string", &self.variable_end_string),
            ("comment_start_string", &self.comment_start_string),
            ("comment_end_string", &self.comment_end_string),
            ("newline_sequence", &self.newline_sequence),
        ];
        for (key, value) in texts {
            if let Some(v) = value {
                o.set(key, &Literal::Text(v.clone()))
                    .map_err(|e| ArgError::at(key, e))?;
            }
        }
        o.trim_blocks = self.trim_blocks.unwrap_or(true);
        o.lstrip_blocks = self.lstrip_blocks.unwrap_or(false);
        Ok(o)
    }
}

/// The `template` module.
pub struct TemplateModule;

impl Module for TemplateModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("backup", "false"), ("force", "true")];
    const EXAMPLES: &'static str = "\
- name: The application's configuration
  template:
    src: app.conf.j2
    dest: /etc/app/app.conf
    owner: root
    group: app
    mode: \"0640\"
  notify: restart app
- name: A template kept in Windows line endings
  template:
    src: share.ini.j2
    dest: /srv/share/share.ini
    newline_sequence: \"\\r\\n\"
";
    const NAME: &'static str = "template";
    /// Checked when the playbook is loaded; `validate` refuses an empty (rendered) `dest`.
    const REQUIRED: &'static [&'static str] = &["src", "dest"];
    const CAPS: Caps = Caps {
        reads_local: Some("templates"),
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.src.is_none() {
            return Err(ArgError::at("src", "src and dest are required"));
        }
        if a.dest.as_deref().is_none_or(str::is_empty) {
            return Err(ArgError::at("dest", "src and dest are required"));
        }
        a.settings()?;
        let encoding = a.output_encoding.as_deref().unwrap_or("utf-8");
        if !encoding.eq_ignore_ascii_case("utf-8") && !encoding.eq_ignore_ascii_case("utf8") {
            return Err(ArgError::at(
                "output_encoding",
                format!("output_encoding '{encoding}' is not supported by prov (only utf-8)"),
            ));
        }
        Ok(check_args(
            &a.mode,
            &a.owner,
            &a.group,
            a.validate.as_deref(),
        )?)
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let src = a.src.as_deref().unwrap_or_default();
    let settings = a.settings().map_err(|e| ModError::Failed(e.to_string()))?;
    let rendered = render(ctx, src, &settings)?;
    let mut o = deliver(
        ctx,
        &Deliver {
            dest: a.dest.as_deref().unwrap_or_default(),
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

/// Renders `src`, looked up in `templates/` of the search path, with the task's variables.
fn render(ctx: &ModuleCtx<'_>, src: &str, settings: &Overrides) -> Result<String, ModError> {
    let Some(local) = ctx.find_local("templates", src) else {
        return fail(format!(
            "could not find template '{src}' in templates/ of {}",
            crate::search_path::describe(&ctx.search_dirs)
        ));
    };
    let data = crate::search_path::read(&local).map_err(ModError::Failed)?;
    let text = String::from_utf8(data)
        .map_err(|_| ModError::Failed(format!("template {} is not UTF-8 text", local.display())))?;
    ctx.templar
        .render_with(&text, settings)
        .map_err(|e| ModError::Failed(format!("{}: {e}", local.display())))
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

    // Decisions on a fake host: the template is rendered locally, the host only answers.

    use crate::host::testing::{Probed, Scripted};
    use crate::host::text::sha1_hex;

    const DEST: &str = "/etc/app.conf";

    /// Runs `template` against `conn` with the harness's variables and `templates/`.
    async fn run_on(conn: &Scripted, h: &Harness, args: Json, check: bool) -> ModResult {
        let ctx = ModuleCtx {
            conn,
            ..h.ctx(check, true)
        };
        (TEMPLATE.run)(&ctx, args).await
    }

    fn app() -> Harness {
        harness(
            json!({"port": 8080}),
            &[("app.conf.j2", "port={{ port }}\n")],
        )
    }

    #[tokio::test]
    async fn the_same_rendering_costs_one_probe() {
        let h = app();
        let conn = Scripted::new().ok(
            "sha1sum 2>/dev/null",
            &Probed::holding("port=8080\n").mode("600").line(),
        );
        let args = json!({"src": "app.conf.j2", "dest": DEST, "mode": "0600"});
        let o = run_on(&conn, &h, args, false).await.unwrap();
        assert!(!o.changed, "{o:?}");
        assert_eq!(o.data["src"], json!("app.conf.j2"));
        assert_eq!(o.data["checksum"], json!(sha1_hex(b"port=8080\n")));
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_new_rendering_is_written_and_check_mode_only_reads() {
        let h = app();
        let args = json!({"src": "app.conf.j2", "dest": DEST, "mode": "0600"});
        let conn = Scripted::new()
            .ok(
                "sha1sum 2>/dev/null",
                &Probed::holding("port=1\n").mode("600").line(),
            )
            .ok("cat -- /etc/app.conf", "port=1\n")
            .ok("head -c", "");
        let o = run_on(&conn, &h, args.clone(), false).await.unwrap();
        assert!(o.changed && o.msg == "content changed", "{o:?}");
        assert!(o.diff.unwrap().contains("-port=1\n+port=8080\n"));
        assert_eq!(conn.stdin(2), b"port=8080\n");
        conn.assert_done();

        let conn = Scripted::new()
            .ok(
                "sha1sum 2>/dev/null",
                &Probed::holding("port=1\n").mode("600").line(),
            )
            .ok("cat -- /etc/app.conf", "port=1\n");
        assert!(run_on(&conn, &h, args, true).await.unwrap().changed);
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_directory_dest_gets_the_template_name() {
        let h = app();
        let conn = Scripted::new()
            .ok(
                "then __probe_p0=\"$__probe_p0\"/app.conf.j2; __probe_d=1; fi",
                &Probed::absent().descended().line(),
            )
            .ok("head -c", "");
        let o = run_on(
            &conn,
            &h,
            json!({"src": "app.conf.j2", "dest": "/etc"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(o.data["dest"], json!("/etc/app.conf.j2"));
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_template_that_cannot_render_never_reaches_the_host() {
        let h = harness(json!({}), &[("bad.j2", "{{ missing_var }}")]);
        let conn = Scripted::new();
        let e = run_on(&conn, &h, json!({"src": "bad.j2", "dest": DEST}), false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("missing_var"), "{e}");
        let e = run_on(&conn, &h, json!({"src": "nope.j2", "dest": DEST}), false)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("could not find template 'nope.j2' in templates/"),
            "{e}"
        );
        assert!(conn.commands().is_empty());
    }

    #[tokio::test]
    async fn a_failed_validation_names_its_cause() {
        let h = app();
        let conn = Scripted::new()
            .ok(
                "sha1sum 2>/dev/null",
                &Probed::holding("port=1\n").mode("600").line(),
            )
            .ok("cat -- /etc/app.conf", "port=1\n")
            .answer("head -c", 97, "", "bad port\nvalidation failed\n");
        let args = json!({"src": "app.conf.j2", "dest": DEST, "validate": "check %s"});
        let e = run_on(&conn, &h, args, false).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with("failed to validate /etc/app.conf: bad port"),
            "{e}"
        );
        conn.assert_done();
    }

    #[test]
    fn validate_names_the_refused_parameter() {
        use crate::host::testing::assert_refused;
        let refused = |args: Json| (TEMPLATE.check)(&args).unwrap_err();
        assert_refused(
            &TEMPLATE,
            json!({"dest": DEST}),
            Some("src"),
            "src and dest are required",
        );
        assert_refused(
            &TEMPLATE,
            json!({"src": "a.j2", "dest": ""}),
            Some("dest"),
            "src and dest are required",
        );
        let e = refused(json!({"src": "a.j2", "dest": DEST, "mode": "0o644"}));
        assert_eq!(e.param, Some("mode"));
        assert_refused(
            &TEMPLATE,
            json!({"src": "a.j2", "dest": DEST, "validate": "/usr/sbin/visudo -c"}),
            Some("validate"),
            "validate must contain %s: /usr/sbin/visudo -c",
        );
        assert_eq!(
            (TEMPLATE.check)(&json!({"src": "a.j2", "dest": DEST, "mode": "u=rw,go=r"})),
            Ok(())
        );
    }
}
