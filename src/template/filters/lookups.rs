//! The `lookup`, `query` and `q` functions and the lookup plugins they
//! dispatch to: `env`, `file`, `vars`, `pipe`, `lines`, `items`/`list` and
//! `first_found` here, the ones that make lists in [`super::list_lookups`].
//!
//! Lookups run on the controller, as in Ansible; relative files are searched
//! under the role's and playbook's directories, as Ansible does.

use std::path::PathBuf;

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, State};

use super::{ensure_defined, invalid, is_list, to_text};
use crate::template::overrides::{Literal, Overrides};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
}

/// Ansible's `lookup(kind, *terms, wantlist=False, ...)`.
///
/// Without `wantlist` the results are joined with commas when they are all
/// strings, as Ansible does, so `lookup('env', 'HOME')` is a plain string.
fn lookup(state: &State, kind: String, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (terms, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let results = run_lookup(state, &kind, terms, &kwargs)?;
    kwargs.assert_all_used()?;
    if wantlist {
        return Ok(Value::from(results));
    }
    if results.iter().all(|r| r.kind() == ValueKind::String) {
        let texts: Vec<String> = results.iter().map(to_text).collect();
        return Ok(Value::from(texts.join(",")));
    }
    Ok(match <[Value; 1]>::try_from(results) {
        Ok([single]) => single,
        Err(results) => Value::from(results),
    })
}

/// Ansible's `query`/`q`: like `lookup` but always a list.
fn query(state: &State, kind: String, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (terms, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    kwargs.get::<Option<bool>>("wantlist")?;
    let results = run_lookup(state, &kind, terms, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
}

/// Dispatches to a lookup plugin by name.
fn run_lookup(
    state: &State,
    kind: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    for term in terms {
        ensure_defined(state, term)?;
    }
    match kind {
        "env" => lookup_env(terms, kwargs),
        "file" => lookup_file(state, terms, kwargs),
        "vars" => lookup_vars(state, terms, kwargs),
        "pipe" => lookup_pipe(state, terms),
        "lines" => lookup_lines(state, terms),
        "items" => Ok(term_values(terms)),
        // Unlike `items`, `list` keeps lists inside the terms as they are.
        "list" => Ok(terms.to_vec()),
        "first_found" => lookup_first_found(state, terms, kwargs),
        "password" => super::passwords::lookup_password(state, &term_strings(terms), kwargs),
        "template" => lookup_template(state, terms, kwargs),
        "varnames" => lookup_varnames(terms),
        other if other.starts_with("ansible.builtin.") && is_lookup_plugin(other) => {
            run_lookup(state, &other["ansible.builtin.".len()..], terms, kwargs)
        }
        other => super::list_lookups::run(state, other, terms, kwargs)
            .unwrap_or_else(|| Err(invalid(format!("lookup plugin '{other}' not found")))),
    }
}

/// Terms with lists flattened one level, as Ansible passes them to plugins.
fn term_values(terms: &[Value]) -> Vec<Value> {
    terms
        .iter()
        .flat_map(|term| match is_list(term) {
            true => term.try_iter().map(Iterator::collect).unwrap_or_default(),
            false => vec![term.clone()],
        })
        .collect()
}

/// The terms as strings.
fn term_strings(terms: &[Value]) -> Vec<String> {
    term_values(terms).iter().map(to_text).collect()
}

/// `lookup('env', NAME, default='')`: unset variables give the default.
fn lookup_env(terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
    Ok(term_strings(terms)
        .iter()
        .map(|name| Value::from(std::env::var(name).unwrap_or_else(|_| default.clone())))
        .collect())
}

/// `lookup('file', PATH, rstrip=True, lstrip=False)`.
fn lookup_file(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
    let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
    let mut results = Vec::new();
    for name in term_strings(terms) {
        let path = find_file(state, &name)
            .ok_or_else(|| invalid(format!("could not locate file in lookup: {name}")))?;
        // A vault-encrypted file is read decrypted, as Ansible's file lookup reads it.
        let contents = crate::search_path::read(&path).map_err(invalid)?;
        let contents = String::from_utf8_lossy(&contents).into_owned();
        let contents = if rstrip {
            contents.trim_end()
        } else {
            &contents
        };
        let contents = if lstrip {
            contents.trim_start()
        } else {
            contents
        };
        results.push(Value::from(contents));
    }
    Ok(results)
}

/// `lookup('first_found', [paths], skip=False)`: the first file that exists.
fn lookup_first_found(
    state: &State,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let (names, skip_in_terms) = first_found_names(terms);
    let skip = kwargs.get::<Option<bool>>("skip")?.unwrap_or(false) || skip_in_terms;
    // A `with_first_found` loop looks where its task's module reads (`vars/` for
    // `include_vars`, `templates/` for `template`), as Ansible's task executor tells it.
    let subdir = state
        .lookup(LOOKUP_SUBDIR)
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "files".into());
    let found = names.iter().find_map(|name| find_in(state, &subdir, name));
    match (found, skip) {
        (Some(path), _) => Ok(vec![Value::from(path.to_string_lossy().into_owned())]),
        (None, true) => Ok(Vec::new()),
        (None, false) => Err(invalid("first_found: no file was found")),
    }
}

/// The candidate names of `first_found`'s terms, and whether a term says `skip`. A term is a
/// name, or a mapping of `files` and `paths` (each a list, or a string split on `,` and `;`,
/// paths on `:` too): every path joined with every file, as Ansible's lookup reads them.
fn first_found_names(terms: &[Value]) -> (Vec<String>, bool) {
    let split = |v: Option<Value>, seps: &[char]| -> Vec<String> {
        match v {
            Some(v) if is_list(&v) => v
                .try_iter()
                .map(|items| items.map(|i| to_text(&i)).collect())
                .unwrap_or_default(),
            Some(v) if !v.is_undefined() && !v.is_none() => to_text(&v)
                .split(seps)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            _ => vec![],
        }
    };
    let (mut names, mut skip) = (vec![], false);
    for term in term_values(terms) {
        if term.kind() != ValueKind::Map {
            names.push(to_text(&term));
            continue;
        }
        let attr = |k: &str| term.get_attr(k).ok();
        // The last mapping's `skip` is the one that counts, as in Ansible.
        skip = attr("skip").is_some_and(|v| v.is_true());
        let files = split(attr("files"), &[',', ';']);
        let paths = split(attr("paths"), &[',', ';', ':']);
        if paths.is_empty() {
            names.extend(files);
            continue;
        }
        for p in &paths {
            // An absolute file stays itself (Python's `os.path.join`).
            names.extend(files.iter().map(|f| match f.starts_with('/') {
                true => f.clone(),
                false => format!("{}/{f}", p.trim_end_matches('/')),
            }));
        }
    }
    (names, skip)
}

/// Directories that relative lookup paths are searched in, from the context.
pub(super) fn search_dirs(state: &State) -> Vec<PathBuf> {
    ["role_path", "playbook_dir"]
        .iter()
        .filter_map(|name| state.lookup(name))
        .filter_map(|dir| dir.as_str().map(PathBuf::from))
        .collect()
}

/// Finds a file the way Ansible does for a role or playbook: under `files/`
/// and then directly in `role_path` and `playbook_dir` when the context
/// defines them, and finally relative to the working directory.
fn find_file(state: &State, name: &str) -> Option<PathBuf> {
    find_in(state, "files", name)
}

/// The variable a `with_<lookup>` loop sets to the subdirectory its task's module reads from.
pub const LOOKUP_SUBDIR: &str = "__prov_lookup_subdir";

/// [`find_file`] in another subdirectory of the search path.
fn find_in(state: &State, subdir: &str, name: &str) -> Option<PathBuf> {
    let mut candidates = crate::search_path::candidates(&search_dirs(state), subdir, name);
    candidates.push(PathBuf::from(name));
    candidates.into_iter().find(|c| c.is_file())
}

/// `lookup('vars', NAME, default=...)`: a variable looked up by computed name.
fn lookup_vars(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = kwargs.get::<Option<Value>>("default")?;
    term_strings(terms)
        .iter()
        .map(|name| {
            state
                .lookup(name)
                .filter(|value| !value.is_undefined())
                .or_else(|| default.clone())
                .ok_or_else(|| invalid(format!("no variable found with this name: {name}")))
        })
        .collect()
}

/// `lookup('template', NAME, template_vars={}, variable_start_string=..., trim_blocks=True)`:
/// a template from `templates/` of the search path rendered with the task's variables (plus
/// `template_vars`); a template that is one expression keeps its type, as in Ansible.
fn lookup_template(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let vars = crate::template::rendering_vars()
        .ok_or_else(|| invalid("the template lookup needs the task's variables"))?;
    let mut settings = Overrides::default();
    for key in [
        "variable_start_string",
        "variable_end_string",
        "comment_start_string",
        "comment_end_string",
    ] {
        if let Some(v) = kwargs.get::<Option<String>>(key)? {
            settings.set(key, &Literal::Text(v)).map_err(invalid)?;
        }
    }
    if let Some(trim) = kwargs.get::<Option<bool>>("trim_blocks")? {
        settings.trim_blocks = trim;
    }
    // Both only matter to Ansible's older non-native templating.
    kwargs.get::<Option<bool>>("convert_data")?;
    kwargs.get::<Option<bool>>("jinja2_native")?;
    let extra = match kwargs.get::<Option<Value>>("template_vars")? {
        Some(v) => crate::template::from_value(&v).map_err(invalid)?,
        None => serde_json::Value::Object(Default::default()),
    };
    let serde_json::Value::Object(extra) = extra else {
        return Err(invalid("template_vars must be a dictionary"));
    };
    let templar = (*vars)
        .clone()
        .push_data(std::sync::Arc::new(extra))
        .into_templar();
    let mut out = vec![];
    for name in term_strings(terms) {
        let path = find_in(state, "templates", &name).ok_or_else(|| {
            invalid(format!(
                "the template file {name} could not be found for the lookup"
            ))
        })?;
        let text = crate::search_path::read(&path).map_err(invalid)?;
        let text = String::from_utf8(text)
            .map_err(|_| invalid(format!("template {} is not UTF-8 text", path.display())))?;
        let rendered = match settings == Overrides::default() {
            true => templar.render_native(&text),
            false => templar
                .render_with(&text, &settings)
                .map(serde_json::Value::String),
        }
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        out.push(crate::template::to_value(&rendered));
    }
    Ok(out)
}

/// `lookup('varnames', REGEX...)`: the names of the variables a Python regex finds (searched,
/// not matched whole), for each term in turn.
fn lookup_varnames(terms: &[Value]) -> Result<Vec<Value>, Error> {
    let vars = crate::template::rendering_vars()
        .ok_or_else(|| invalid("the varnames lookup needs the task's variables"))?;
    let names = vars.names();
    let mut out = vec![];
    for term in terms {
        let Some(pattern) = term.as_str() else {
            return Err(invalid(format!(
                "Invalid setting identifier, \"{term}\" is not a string"
            )));
        };
        let re = super::regex::compile_regex(pattern, false, false)?;
        out.extend(
            names
                .iter()
                .filter(|n| re.is_match(n))
                .map(|n| Value::from(n.as_str())),
        );
    }
    Ok(out)
}

/// The lookup plugins prov has.
const PLUGINS: &[&str] = &[
    "env",
    "file",
    "vars",
    "pipe",
    "lines",
    "items",
    "list",
    "first_found",
    "password",
    "template",
    "varnames",
];

/// Every lookup plugin's short name, for did-you-mean suggestions.
pub fn lookup_plugin_names() -> impl Iterator<Item = &'static str> {
    PLUGINS.iter().chain(super::list_lookups::NAMES).copied()
}

pub fn is_lookup_plugin(name: &str) -> bool {
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    PLUGINS.contains(&short) || super::list_lookups::NAMES.contains(&short)
}

thread_local! {
    /// While set (see [`without_side_effects`]), commands are not run, only described here.
    static NOT_RUN: std::cell::RefCell<Option<Vec<String>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a check of templates before the run) with every lookup that would run a command
/// on this machine (`pipe`, `lines`) described instead of run: they give an empty result.
/// Returns what `f` returned and the descriptions.
pub fn without_side_effects<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let outer = NOT_RUN.with(|n| n.borrow_mut().replace(vec![]));
    let result = f();
    let notes = NOT_RUN.with(|n| std::mem::replace(&mut *n.borrow_mut(), outer));
    (result, notes.unwrap_or_default())
}

/// Under [`without_side_effects`], records `note` and says so: the caller then does nothing.
pub(super) fn described_not_run(note: String) -> bool {
    NOT_RUN.with(|n| match n.borrow_mut().as_mut() {
        Some(notes) => {
            notes.push(note);
            true
        }
        None => false,
    })
}

/// Runs a shell command for the `pipe` and `lines` lookups, in the playbook
/// directory when known, and returns its standard output.
fn run_command(state: &State, command: &str) -> Result<String, Error> {
    if described_not_run(format!(
        "a lookup runs `{command}` on this machine when the task runs"
    )) {
        return Ok(String::new());
    }
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(command);
    if let Some(dir) = search_dirs(state).pop() {
        cmd.current_dir(dir);
    }
    let output = cmd
        .output()
        .map_err(|err| invalid(format!("could not run '{command}': {err}")))?;
    if !output.status.success() {
        return Err(invalid(format!(
            "lookup_plugin.pipe({command}) returned {}",
            output.status.code().unwrap_or(-1)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `lookup('pipe', CMD)`: the command's output, trailing whitespace removed.
fn lookup_pipe(state: &State, terms: &[Value]) -> Result<Vec<Value>, Error> {
    term_strings(terms)
        .iter()
        .map(|command| Ok(Value::from(run_command(state, command)?.trim_end())))
        .collect()
}

/// `lookup('lines', CMD)`: one result per line of the command's output.
fn lookup_lines(state: &State, terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut lines = Vec::new();
    for command in term_strings(terms) {
        lines.extend(run_command(state, &command)?.lines().map(Value::from));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use minijinja::value::Value;

    use crate::template::filters::test_support::{ctx, render, render_ctx, render_err};

    #[test]
    fn lookup_env_and_file() {
        let dir = std::env::temp_dir().join(format!("prov-filters-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("files")).unwrap();
        std::fs::write(dir.join("files/motd"), "hello\n\n").unwrap();
        let path = dir.join("files/motd").display().to_string();

        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(render("{{ lookup('env', 'HOME') }}"), home);
        assert_eq!(render("{{ lookup('env', 'PROV_SURELY_UNSET_VAR') }}"), "");
        assert_eq!(
            render("{{ lookup('env', 'PROV_SURELY_UNSET_VAR', default='d') }}"),
            "d"
        );
        assert_eq!(
            render(&format!("{{{{ lookup('file', '{path}') }}}}")),
            "hello"
        );
        assert_eq!(
            render(&format!("{{{{ lookup('file', '{path}', rstrip=false) }}}}")),
            "hello\n\n"
        );
        let context = Value::from_pairs([("playbook_dir", Value::from(dir.display().to_string()))]);
        assert_eq!(
            render_ctx("{{ lookup('file', 'motd') }}", context.clone()),
            "hello"
        );
        assert_eq!(
            render_ctx("{{ query('file', 'motd') | length }}", context.clone()),
            "1"
        );
        assert_eq!(
            render_ctx(
                "{{ lookup('first_found', ['nope', 'motd']) | basename }}",
                context.clone()
            ),
            "motd"
        );
        // Mapping terms: every path with every file; `skip` in the term gives no item.
        let term = format!(
            "{{'files': 'nope.yml,motd', 'paths': ['/nowhere', '{}/files']}}",
            dir.display()
        );
        assert_eq!(
            render_ctx(
                &format!("{{{{ lookup('first_found', {term}) | basename }}}}"),
                context.clone()
            ),
            "motd"
        );
        assert_eq!(
            render_ctx(
                "{{ query('first_found', {'files': ['nope'], 'skip': true}) | length }}",
                context
            ),
            "0"
        );
        assert!(
            render_err("{{ lookup('file', '/definitely/missing') }}").contains("could not locate")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lookup_other_kinds() {
        assert_eq!(render("{{ lookup('pipe', 'echo hi') }}"), "hi");
        assert_eq!(
            render("{{ query('lines', 'printf \"a\\nb\\n\"') | join(',') }}"),
            "a,b"
        );
        assert_eq!(
            render("{{ lookup('items', ['a', 'b'], wantlist=true) | length }}"),
            "2"
        );
        assert_eq!(render("{{ q('items', ['a', 'b']) | last }}"), "b");
        assert_eq!(
            render_ctx("{{ lookup('vars', 'my' ~ 'var') }}", ctx(r#"{"myvar": 7}"#)),
            "7"
        );
        assert_eq!(render("{{ lookup('vars', 'nope', default='d') }}"), "d");
        let err = render_err("{{ lookup('bogus', 'x') }}");
        assert!(err.contains("bogus"), "{err}");
    }
}
