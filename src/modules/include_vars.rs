//! `include_vars`: variables from YAML or JSON files on the control machine (a file looked up
//! in `vars/` of the role and the playbook, or every file of a directory, in name order)
//! become the host's variables, as `set_fact` makes them (rendered when included). The file name may depend on facts
//! (`"{{ ansible_os_family }}.yml"`): it is rendered when the task runs; before the run, the
//! checks learn the names the task defines from every file the name can resolve to
//! ([`defined_names`]). Never touches the host.

use super::{ArgError, Caps, Defines, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::ModError;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::path::{Path, PathBuf};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "_raw_params", alias = "free_form")]
    file: Option<String>,
    #[serde(default)]
    dir: Option<String>,
    /// Put everything under this one variable instead.
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    depth: Option<String>,
    #[serde(default)]
    files_matching: Option<String>,
    #[serde(default)]
    ignore_files: Vec<String>,
    #[serde(default = "extensions")]
    extensions: Vec<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    ignore_unknown_extensions: bool,
    #[serde(default)]
    hash_behaviour: Option<String>,
}

fn extensions() -> Vec<String> {
    ["yaml", "yml", "json"].map(String::from).to_vec()
}

/// The `include_vars` module.
pub struct IncludeVarsModule;

impl Module for IncludeVarsModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("extensions", "[yaml, yml, json]"),
        ("ignore_unknown_extensions", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The variables of this OS family
  include_vars: \"{{ ansible_facts.os_family }}.yml\"
- name: Every file of a directory, under one name
  include_vars:
    dir: vars/sites
    files_matching: \"\\\\.yml$\"
    name: sites
";
    const NAME: &'static str = "include_vars";
    const FREE_FORM: Option<&'static str> = Some("file");
    const CAPS: Caps = Caps {
        sets_facts: true,
        defines: Defines::With(defined_names),
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        let file = a.file.as_deref().is_some_and(|f| !f.trim().is_empty());
        match (file, &a.dir) {
            (true, Some(_)) => {
                return Err(ArgError::at(
                    "dir",
                    "file and dir are incompatible: give one of them",
                ));
            }
            (false, None) => {
                return Err(ArgError::at(
                    "file",
                    "include_vars needs a file (or a dir) to load",
                ));
            }
            _ => {}
        }
        if let Some(h) = &a.hash_behaviour
            && h != "replace"
        {
            return Err(ArgError::at(
                "hash_behaviour",
                format!("hash_behaviour '{h}' is not supported yet (only replace)"),
            ));
        }
        if let Some(n) = &a.name
            && !super::set_fact::valid_var_name(n)
            && !crate::template::is_template(n)
        {
            return Err(ArgError::at(
                "name",
                format!("the variable name '{n}' is not valid"),
            ));
        }
        depth(a)?;
        if let Some(p) = &a.files_matching {
            regex::Regex::new(p).map_err(|e| {
                ArgError::at("files_matching", format!("invalid regular expression: {e}"))
            })?;
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        let files = match (&a.file, &a.dir) {
            (Some(f), _) => vec![find_file(ctx, f.trim_end_matches('\n'))?],
            (None, Some(d)) => dir_files(ctx, d, &a)?,
            (None, None) => return fail("include_vars needs a file (or a dir) to load"),
        };
        let mut vars = Map::new();
        for f in &files {
            vars.extend(load(f)?);
        }
        let vars = render(ctx, vars)?;
        let facts = match &a.name {
            Some(n) => Map::from_iter([(n.clone(), Json::Object(vars))]),
            None => vars,
        };
        let included: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        Ok(Outcome::ok("")
            .with("ansible_facts", Json::Object(facts))
            .with("ansible_included_var_files", json!(included)))
    }
}

/// The values rendered now, with the loaded variables visible to each other. (Ansible renders
/// them when they are used: the same result unless a variable they name changes later.)
fn render(ctx: &ModuleCtx<'_>, vars: Map<String, Json>) -> Result<Map<String, Json>, ModError> {
    let templar = ctx
        .templar
        .vars()
        .clone()
        .push_map(vars.clone())
        .into_templar();
    match templar.render_value(&Json::Object(vars)) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(_) => fail("the variables did not render to a mapping"),
        Err(e) => fail(e.to_string()),
    }
}

fn depth(a: &Args) -> Result<usize, ArgError> {
    match a.depth.as_deref() {
        None => Ok(0),
        Some(d) => d
            .trim()
            .parse()
            .map_err(|_| ArgError::at("depth", format!("depth must be a number, got '{d}'"))),
    }
}

/// The file, looked up as Ansible's `_find_needle('vars', name)` does.
fn find_file(ctx: &ModuleCtx<'_>, name: &str) -> Result<PathBuf, ModError> {
    ctx.find_local("vars", name)
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            ModError::Failed(format!(
                "Could not find or access '{name}' in vars/ of {}",
                crate::search_path::describe(&ctx.search_dirs)
            ))
        })
}

/// The files of `dir` (in `vars/` of the role or playbook, or as given), down to `depth`
/// levels, in name order, filtered as asked.
fn dir_files(ctx: &ModuleCtx<'_>, dir: &str, a: &Args) -> Result<Vec<PathBuf>, ModError> {
    let Some(root) = ctx.find_local("vars", dir).filter(|p| p.is_dir()) else {
        return fail(format!("{dir} directory does not exist"));
    };
    let depth = depth(a).map_err(|e| ModError::Failed(e.to_string()))?;
    let matching = a
        .files_matching
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| ModError::Failed(format!("invalid regular expression: {e}")))?;
    let ignored: Vec<regex::Regex> = a
        .ignore_files
        .iter()
        .map(|p| regex::Regex::new(&format!("{p}$")))
        .collect::<Result<_, _>>()
        .map_err(|e| ModError::Failed(format!("invalid regular expression: {e}")))?;
    let mut out = vec![];
    for (level, dir, mut names) in walk(&root).map_err(ModError::Failed)? {
        if depth != 0 && level > depth {
            continue;
        }
        names.sort();
        for name in names {
            let known_ext = Path::new(&name)
                .extension()
                .is_some_and(|e| a.extensions.iter().any(|x| *x == e.to_string_lossy()));
            if matching.as_ref().is_some_and(|m| !m.is_match(&name))
                || ignored.iter().any(|r| r.is_match(&name))
                || (a.ignore_unknown_extensions && !known_ext)
            {
                continue;
            }
            if !known_ext {
                return fail(format!(
                    "{} does not have a valid extension: {}",
                    dir.join(&name).display(),
                    a.extensions.join(", ")
                ));
            }
            out.push(dir.join(name));
        }
    }
    Ok(out)
}

/// Every directory below `root` (depth 1 is `root` itself) with its file names, sorted by
/// path as Ansible sorts its walk.
fn walk(root: &Path) -> Result<Vec<(usize, PathBuf, Vec<String>)>, String> {
    let mut out = vec![];
    let mut stack = vec![(1usize, root.to_path_buf())];
    while let Some((level, dir)) = stack.pop() {
        let mut files = vec![];
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            if path.is_dir() {
                stack.push((level + 1, path));
            } else if path.is_file() {
                files.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out.push((level, dir, files));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// A vars file's mapping (an empty file is an empty mapping).
fn load(path: &Path) -> Result<Map<String, Json>, ModError> {
    // The YAML loader decrypts a vault-encrypted file and keeps its values as secrets.
    let text = std::fs::read(path)
        .map_err(|e| ModError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&text);
    let node = crate::yaml::load_str(&text, &path.display().to_string())
        .map_err(|d| ModError::Failed(d.to_string()))?;
    match node.to_json() {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Map::new()),
        _ => fail(format!(
            "{} must be stored as a dictionary/hash",
            path.display()
        )),
    }
}

/// The variables the task can define, for the checks before the run: `name`, or the keys of
/// every file its `file` can resolve to (a templated part matches any text) or of every file
/// of its `dir`.
fn defined_names(args: &Map<String, Json>, search_dirs: &[PathBuf]) -> Vec<String> {
    if let Some(n) = args.get("name").and_then(Json::as_str) {
        return vec![n.to_string()];
    }
    let text = |k: &str| args.get(k).and_then(Json::as_str);
    let files: Vec<PathBuf> = if let Some(f) = text("file").or(text("_raw_params")) {
        crate::search_path::resolutions(search_dirs, "vars", f.trim())
    } else if let Some(d) = text("dir") {
        crate::search_path::resolutions(search_dirs, "vars", d.trim())
            .into_iter()
            .filter_map(|root| walk(&root).ok())
            .flatten()
            .flat_map(|(_, dir, names)| names.into_iter().map(move |n| dir.join(n)))
            .collect()
    } else {
        vec![]
    };
    files
        .iter()
        .filter_map(|f| load(f).ok())
        .flat_map(|m| m.into_iter().map(|(k, _)| k))
        .collect()
}

#[cfg(test)]
mod tests {
    const INCLUDE_VARS: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<IncludeVarsModule>();
    use super::*;
    use crate::host::testing::Harness;

    /// A project in the harness's directory (its search directory).
    fn project(h: &Harness) {
        let vars = h.path("vars");
        std::fs::create_dir_all(vars.join("env/deep")).unwrap();
        std::fs::write(vars.join("Debian.yml"), "pkg: apt\nshared: debian\n").unwrap();
        std::fs::write(vars.join("RedHat.yml"), "pkg: dnf\nrh_only: 1\n").unwrap();
        std::fs::write(vars.join("list.yml"), "- 1\n").unwrap();
        std::fs::write(vars.join("env/a.yml"), "x: a\ny: a\n").unwrap();
        std::fs::write(vars.join("env/b.json"), "{\"y\": \"b\"}").unwrap();
        std::fs::write(vars.join("env/deep/c.yml"), "z: c\n").unwrap();
        std::fs::write(vars.join("env/notes.txt"), "hello").unwrap();
    }

    #[tokio::test]
    async fn a_file_becomes_facts_and_nothing_changes() {
        let h = Harness::new();
        project(&h);
        let o = h.check(&INCLUDE_VARS, json!({"file": "Debian.yml"})).await;
        assert!(!o.changed);
        assert_eq!(
            o.data["ansible_facts"],
            json!({"pkg": "apt", "shared": "debian"})
        );
        let o = h
            .check(&INCLUDE_VARS, json!({"file": "Debian.yml", "name": "os"}))
            .await;
        assert_eq!(
            o.data["ansible_facts"],
            json!({"os": {"pkg": "apt", "shared": "debian"}})
        );
        let e = h.error(&INCLUDE_VARS, json!({"file": "Arch.yml"})).await;
        assert!(e.contains("Could not find or access 'Arch.yml'"), "{e}");
        let e = h.error(&INCLUDE_VARS, json!({"file": "list.yml"})).await;
        assert!(e.contains("must be stored as a dictionary/hash"), "{e}");
    }

    #[tokio::test]
    async fn a_dir_is_read_in_name_order_to_its_depth() {
        let h = Harness::new();
        project(&h);
        let e = h.error(&INCLUDE_VARS, json!({"dir": "env"})).await;
        assert!(e.contains("does not have a valid extension"), "{e}");
        let o = h
            .check(
                &INCLUDE_VARS,
                json!({"dir": "env", "ignore_unknown_extensions": true}),
            )
            .await;
        assert_eq!(
            o.data["ansible_facts"],
            json!({"x": "a", "y": "b", "z": "c"})
        );
        let o = h
            .check(
                &INCLUDE_VARS,
                json!({"dir": "env", "depth": 1, "ignore_files": ["txt"], "files_matching": "^[ab]"}),
            )
            .await;
        assert_eq!(o.data["ansible_facts"], json!({"x": "a", "y": "b"}));
    }

    #[test]
    fn names_come_from_every_file_the_name_can_resolve_to() {
        let h = Harness::new();
        project(&h);
        let dirs = vec![h.path("")];
        let args = |v: Json| v.as_object().unwrap().clone();
        let mut names = defined_names(&args(json!({"file": "{{ ansible_os_family }}.yml"})), &dirs);
        names.sort();
        assert_eq!(names, ["pkg", "pkg", "rh_only", "shared"]);
        assert_eq!(
            defined_names(&args(json!({"file": "x.yml", "name": "os"})), &dirs),
            ["os"]
        );
        let mut names = defined_names(&args(json!({"dir": "env"})), &dirs);
        names.sort();
        assert_eq!(names, ["x", "y", "y", "z"]);
    }

    #[test]
    fn arguments_are_checked_before_the_run() {
        for bad in [
            json!({}),
            json!({"file": "a.yml", "dir": "d"}),
            json!({"file": "a.yml", "hash_behaviour": "merge"}),
            json!({"file": "a.yml", "name": "1x"}),
            json!({"dir": "d", "depth": "deep"}),
            json!({"dir": "d", "files_matching": "("}),
        ] {
            assert!((INCLUDE_VARS.check)(&bad).is_err(), "{bad}");
        }
        assert!((INCLUDE_VARS.check)(&json!({"file": "a.yml"})).is_ok());
    }
}
