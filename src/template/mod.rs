//! Templating with minijinja. Variables are resolved lazily: a variable whose value is itself a
//! template (`url: "https://{{ host }}/x"`) is rendered when it is read, against the same
//! layered context, so definitions may refer to each other in any order, as in Ansible.
//!
//! A string that is exactly one expression (`"{{ ports }}"`) keeps the expression's native type
//! (a list stays a list), which is what Ansible users expect from `loop: "{{ items }}"`.

pub mod filters;
pub mod names;
pub mod overrides;
pub mod source;

use minijinja::value::{Enumerator, Object, Value};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use overrides::Overrides;
use serde_json::{Map, Value as Json};
use std::fmt;
use std::sync::{Arc, OnceLock};

/// Rendering failed; `undefined` names the variables that were missing, if that was the cause.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub msg: String,
    pub undefined: Vec<String>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.undefined.as_slice() {
            [] => write!(f, "{}", self.msg),
            [one] => write!(f, "undefined variable '{one}'"),
            many => write!(
                f,
                "undefined variables {}",
                many.iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// The most bytes one template may write: a loop repeating a large value stops here
/// instead of exhausting memory.
pub const MAX_OUTPUT: usize = 256 << 20;

/// Collects a template's output up to [`MAX_OUTPUT`] bytes, then refuses more.
#[derive(Default)]
struct CappedOutput {
    buf: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for CappedOutput {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT {
            self.overflowed = true;
            return Err(std::io::Error::other("template output too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` (which compiles or evaluates the template `src`) where its recursion cannot
/// overflow the stack. minijinja compiles a chain of filters (`x | f | f | …`) recursively, a
/// few hundred bytes of stack per filter, so a long chain would overflow an ordinary thread's
/// stack and abort the process. Small templates (nearly all) run right here; a large one runs
/// on a helper thread whose stack grows with the template's length (reserved, not used, until
/// the recursion needs it).
pub fn on_deep_stack<T: Send>(src: &str, f: impl FnOnce() -> T + Send) -> T {
    const SMALL: usize = 16 << 10;
    if src.len() <= SMALL {
        return f();
    }
    let stack = (64usize << 20)
        .saturating_add(src.len().saturating_mul(4096))
        .min(1 << 30);
    // The helper continues this thread's render: same nesting, same variables in progress.
    let depth = DEPTH.with(|d| d.get());
    let resolving = RESOLVING.with(|r| r.borrow().clone());
    let rendering = RENDERING.with(|r| r.borrow().clone());
    // `f` is handed over through a slot so that, should no thread with that stack be had
    // (address space limited), it still runs here.
    let slot = std::sync::Mutex::new(Some(f));
    let ran = std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("template".into())
            .stack_size(stack)
            .spawn_scoped(scope, || {
                DEPTH.with(|d| d.set(depth));
                RESOLVING.with(|r| *r.borrow_mut() = resolving);
                RENDERING.with(|r| *r.borrow_mut() = rendering);
                let f = slot.lock().expect("slot").take().expect("f");
                f()
            });
        spawned
            .ok()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    });
    match ran {
        Some(v) => v,
        None => (slot.into_inner().expect("slot").expect("f not taken"))(),
    }
}

/// Instructions one template evaluation may run.
pub const MAX_FUEL: u64 = 20_000_000;

/// The shared environment: Ansible's filters and tests, semi-strict undefined handling (an
/// undefined value may be tested for truth, but printing or iterating it is an error), and
/// Ansible's template settings (see [`overrides`]).
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let syntax = Overrides::default().syntax().expect("default syntax");
        new_environment(syntax)
    })
}

/// An environment with everything registered and the given syntax.
fn new_environment(syntax: minijinja::syntax::SyntaxConfig) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_syntax(syntax);
    env.set_recursion_limit(200);
    // Bounded cost: a template may run this many instructions (a loop over 10,000 hosts
    // with a dozen lines each needs a few million), so `range(100000)` nested twice fails
    // with a clear error instead of running for hours.
    env.set_fuel(Some(MAX_FUEL));
    filters::register(&mut env);
    env
}

/// A template's source as minijinja compiles it (see [`source`]).
pub fn compilable<'s>(src: &'s str, expression: bool) -> std::borrow::Cow<'s, str> {
    static SYNTAX: OnceLock<minijinja::syntax::SyntaxConfig> = OnceLock::new();
    let syntax = SYNTAX.get_or_init(|| Overrides::default().syntax().expect("default syntax"));
    source::rewrite(src, expression, syntax)
}

/// True when a string contains template syntax and needs rendering.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#") || s.starts_with(overrides::HEADER)
}

/// Layers of variables, lowest precedence first, plus dynamic objects (`hostvars`).
#[derive(Debug, Default, Clone)]
pub struct Vars {
    layers: Vec<Layer>,
    objects: Vec<(String, Value)>,
}

/// One layer of variables. Definitions (inventory, play, role vars) are templates rendered when
/// read; data produced at run time (facts, registered results, set_fact values, which were
/// rendered once already) is taken as it is: a command's output that contains `{{` is text.
#[derive(Debug, Clone)]
struct Layer {
    vars: Arc<Map<String, Json>>,
    data: bool,
}

impl Vars {
    pub fn new() -> Vars {
        Vars::default()
    }

    /// Adds a layer of definitions that overrides every layer added before it.
    pub fn push(mut self, layer: Arc<Map<String, Json>>) -> Vars {
        self.layers.push(Layer {
            vars: layer,
            data: false,
        });
        self
    }

    /// Adds a layer of run-time data (never rendered again) on top.
    pub fn push_data(mut self, layer: Arc<Map<String, Json>>) -> Vars {
        self.layers.push(Layer {
            vars: layer,
            data: true,
        });
        self
    }

    pub fn push_map(self, layer: Map<String, Json>) -> Vars {
        self.push(Arc::new(layer))
    }

    /// Adds a dynamic value (checked before the layers).
    pub fn object(mut self, name: &str, value: Value) -> Vars {
        self.objects.push((name.to_string(), value));
        self
    }

    /// The raw (unrendered) value of a variable.
    pub fn raw(&self, name: &str) -> Option<&Json> {
        self.lookup(name).map(|(v, _)| v)
    }

    /// A variable's value and whether it is data (to be used as it is).
    fn lookup(&self, name: &str) -> Option<(&Json, bool)> {
        self.layers
            .iter()
            .rev()
            .find_map(|l| l.vars.get(name).map(|v| (v, l.data)))
    }

    /// Every variable's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.objects.iter().map(|(n, _)| n.clone()).collect();
        for l in &self.layers {
            names.extend(l.vars.keys().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    pub fn contains(&self, name: &str) -> bool {
        self.objects.iter().any(|(n, _)| n == name) || self.raw(name).is_some()
    }

    pub fn into_templar(self) -> Templar {
        Templar {
            vars: Arc::new(self),
        }
    }
}

impl Object for Vars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if let Some((_, v)) = self.objects.iter().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        let (raw, data) = self.lookup(name)?;
        if data {
            return Some(to_value(raw));
        }
        if let Some(cycle) = resolving_cycle(name) {
            VALUE_ERROR.with(|c| *c.borrow_mut() = Some((name.to_string(), cycle)));
            return None;
        }
        let templar = Templar { vars: self.clone() };
        RESOLVING.with(|r| r.borrow_mut().push(name.to_string()));
        let rendered = templar.render_value(raw);
        RESOLVING.with(|r| r.borrow_mut().pop());
        match rendered {
            Ok(v) => Some(to_value(&v)),
            // minijinja cannot carry an error out of a lookup: the variable reads as undefined
            // at the place of use, and the real cause is kept for the message.
            Err(e) => {
                VALUE_ERROR.with(|c| *c.borrow_mut() = Some((name.to_string(), e)));
                None
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.names().into_iter().map(Value::from).collect())
    }
}

/// Renders templates and evaluates expressions against one set of variables.
#[derive(Clone, Debug)]
pub struct Templar {
    vars: Arc<Vars>,
}

thread_local! {
    /// Why the last variable that failed to render failed (see `Vars::get_value`).
    static VALUE_ERROR: std::cell::RefCell<Option<(String, TemplateError)>> = const { std::cell::RefCell::new(None) };
    /// How deeply renders are nested (1 = the outermost), to start each with no stale cause.
    static DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The variables whose values are being rendered, outermost first: a name already in it
    /// is a loop (`a: "{{ b }}"`, `b: "{{ a }}"`), however long the chain.
    static RESOLVING: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The variables of the renders in progress, innermost last: what a lookup that renders
    /// or lists variables (`template`, `varnames`) sees, as Ansible hands lookups the task's
    /// variables.
    static RENDERING: std::cell::RefCell<Vec<Arc<Vars>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The variables of the innermost render in progress on this thread.
pub fn rendering_vars() -> Option<Arc<Vars>> {
    RENDERING.with(|r| r.borrow().last().cloned())
}

/// Variables may refer to each other this deep (a chain, not a loop); deeper is refused
/// rather than risk the stack.
const MAX_VAR_DEPTH: usize = 1000;

/// The error for resolving `name` now: a loop back to a variable being resolved, or a chain
/// too deep.
fn resolving_cycle(name: &str) -> Option<TemplateError> {
    RESOLVING.with(|r| {
        let r = r.borrow();
        let msg = if let Some(start) = r.iter().position(|n| n == name) {
            let mut chain: Vec<&str> = r[start..].iter().map(String::as_str).collect();
            chain.push(name);
            format!(
                "variables refer to each other in a loop: {}",
                chain.join(" -> ")
            )
        } else if r.len() >= MAX_VAR_DEPTH {
            format!("variables refer to each other more than {MAX_VAR_DEPTH} levels deep")
        } else {
            return None;
        };
        Some(TemplateError {
            msg,
            undefined: vec![],
        })
    })
}

impl Templar {
    pub fn vars(&self) -> &Vars {
        &self.vars
    }

    /// The same variables plus one more on top (`register` name for `changed_when`).
    pub fn vars_with(&self, name: &str, value: Json) -> Templar {
        let mut layer = Map::new();
        layer.insert(name.to_string(), value);
        (*self.vars)
            .clone()
            .push_data(Arc::new(layer))
            .into_templar()
    }

    fn ctx(&self) -> Value {
        Value::from_dyn_object(self.vars.clone())
    }

    /// Renders every string inside a value, recursively; non-template strings pass unchanged.
    pub fn render_value(&self, v: &Json) -> Result<Json, TemplateError> {
        match v {
            Json::String(s) if is_template(s) => self.render_native(s),
            Json::Array(items) => items
                .iter()
                .map(|i| self.render_value(i))
                .collect::<Result<_, _>>()
                .map(Json::Array),
            Json::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(k.clone(), self.render_value(v)?);
                }
                Ok(Json::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// Renders a string; a lone `{{ expr }}` keeps the expression's type.
    ///
    /// As in ansible-core 2.19, a lone expression followed by one newline (Jinja drops a
    /// template's final newline) is a lone expression too: `"{{ n }}\n"` with `n: 42` is the
    /// number 42, while a string result gets its newline back (`"{{ s }}\n"` is `"hello\n"`).
    pub fn render_native(&self, s: &str) -> Result<Json, TemplateError> {
        if let Some(expr) = single_expression(s) {
            return self.eval(expr);
        }
        if let Some(expr) = s.strip_suffix('\n').and_then(single_expression) {
            return match self.eval(expr)? {
                Json::String(text) => Ok(Json::String(overrides::restore_trailing_newlines(
                    s,
                    text,
                    &Overrides::default(),
                ))),
                other => Ok(other),
            };
        }
        self.render_str(s).map(Json::String)
    }

    /// Renders a template to text (messages, names, values).
    pub fn render_str(&self, s: &str) -> Result<String, TemplateError> {
        if !is_template(s) {
            return Ok(s.to_string());
        }
        self.render_with(s, &Overrides::default())
    }

    /// Renders a template with its own settings (the `template` module's arguments); a
    /// `#jinja2:` first line changes them further.
    pub fn render_with(&self, s: &str, settings: &Overrides) -> Result<String, TemplateError> {
        let syntax_error = |msg: String| TemplateError {
            msg: format!("syntax error in template: {msg}"),
            undefined: vec![],
        };
        if !settings.is_template(s) {
            return Ok(s.to_string());
        }
        let (settings, body) = settings.with_header(s).map_err(syntax_error)?;
        let env = overrides::environment_for(&settings).map_err(syntax_error)?;
        let normalized = overrides::normalize_newlines(body, &settings);
        let code = normalized.as_deref().unwrap_or(body);
        let out = self.guarded(|| on_deep_stack(code, || self.render_text(env, code)))?;
        // Ansible counts the trailing newlines of the text as written (`\n` only).
        Ok(overrides::restore_trailing_newlines(body, out, &settings))
    }

    fn render_text(&self, env: &Environment<'static>, s: &str) -> Result<String, TemplateError> {
        {
            let code = source::rewrite(s, false, env.syntax());
            let tmpl = env.template_from_str(&code).map_err(|e| self.error(e, s))?;
            let mut out = CappedOutput::default();
            let rendered = tmpl.render_captured_to(self.ctx(), &mut out);
            if out.overflowed {
                return Err(TemplateError {
                    msg: format!("the template's output is larger than {MAX_OUTPUT} bytes"),
                    undefined: vec![],
                });
            }
            rendered.map_err(|e| self.error_with(e, || tmpl.undeclared_variables(false)))?;
            String::from_utf8(out.buf).map_err(|e| TemplateError {
                msg: e.to_string(),
                undefined: vec![],
            })
        }
    }

    /// Evaluates a bare Jinja expression (`when:`, `that:`, `var:`).
    pub fn eval(&self, expr: &str) -> Result<Json, TemplateError> {
        self.guarded(|| on_deep_stack(expr, || self.eval_expression(expr)))
    }

    fn eval_expression(&self, expr: &str) -> Result<Json, TemplateError> {
        {
            let env = environment();
            let code = compilable(expr, true);
            let compiled = env
                .compile_expression(&code)
                .map_err(|e| self.error(e, expr))?;
            let value = compiled
                .eval(self.ctx())
                .map_err(|e| self.error_with(e, || compiled.undeclared_variables(false)))?;
            if value.is_undefined() {
                let names = self.missing(compiled.undeclared_variables(false));
                if let (true, Some(inner)) = (names.is_empty(), take_value_error()) {
                    return Err(inner);
                }
                return Err(TemplateError {
                    msg: format!("'{expr}' is undefined"),
                    undefined: names,
                });
            }
            from_value(&value).map_err(|msg| TemplateError {
                msg,
                undefined: vec![],
            })
        }
    }

    /// Evaluates a condition as Ansible does: an expression, with `{{ }}` tolerated around it.
    pub fn eval_bool(&self, cond: &str) -> Result<bool, TemplateError> {
        let expr = single_expression(cond.trim()).unwrap_or(cond);
        Ok(truthy(&self.eval(expr)?))
    }

    fn guarded<T>(&self, f: impl FnOnce() -> Result<T, TemplateError>) -> Result<T, TemplateError> {
        let depth = DEPTH.with(|d| {
            d.set(d.get() + 1);
            d.get()
        });
        if depth == 1 {
            // A cause left over from an earlier, successful render must not explain this one.
            VALUE_ERROR.with(|c| c.borrow_mut().take());
        }
        RENDERING.with(|r| r.borrow_mut().push(self.vars.clone()));
        let result = f();
        RENDERING.with(|r| r.borrow_mut().pop());
        DEPTH.with(|d| d.set(d.get() - 1));
        result
    }

    fn error(&self, e: minijinja::Error, src: &str) -> TemplateError {
        TemplateError {
            msg: format!("template error in '{src}': {}", describe(&e)),
            undefined: vec![],
        }
    }

    fn error_with(
        &self,
        e: minijinja::Error,
        names: impl FnOnce() -> std::collections::HashSet<String>,
    ) -> TemplateError {
        let undefined = if e.kind() == ErrorKind::UndefinedError {
            self.missing(names())
        } else {
            vec![]
        };
        match (undefined.is_empty(), take_value_error()) {
            (true, Some(inner)) => inner,
            _ => TemplateError {
                msg: describe(&e),
                undefined,
            },
        }
    }

    /// Of the variables a template uses, those that are not defined.
    /// Functions (`lookup`, `range`) are the environment's globals, never undefined.
    fn missing(&self, names: std::collections::HashSet<String>) -> Vec<String> {
        let env = environment();
        let mut v: Vec<String> = names
            .into_iter()
            .filter(|n| !self.vars.contains(n) && !env.globals().any(|(g, _)| g == n))
            .collect();
        v.sort();
        v
    }
}

/// The error of a variable whose own value failed to render, named after that variable.
fn take_value_error() -> Option<TemplateError> {
    let (name, inner) = VALUE_ERROR.with(|c| c.borrow_mut().take())?;
    Some(TemplateError {
        msg: format!("{inner} (in the value of '{name}')"),
        undefined: vec![],
    })
}

fn describe(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

/// A JSON value as a template value.
pub fn to_value(v: &Json) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// A template value as JSON (undefined becomes null).
pub fn from_value(v: &Value) -> Result<Json, String> {
    serde_json::to_value(v).map_err(|e| e.to_string())
}

/// `"{{ expr }}"` (and nothing else) gives `expr`.
fn single_expression(s: &str) -> Option<&str> {
    // No trimming: `" {{ x }}"` is text with a space, not a lone expression.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then(|| inner.trim())
}

/// Ansible's truthiness for conditions and `bool`-ish values.
pub fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => crate::yaml::parse_bool(s).unwrap_or(!s.is_empty()),
        Json::Array(a) => !a.is_empty(),
        Json::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn templar(v: Json) -> Templar {
        Vars::new()
            .push_map(v.as_object().unwrap().clone())
            .into_templar()
    }

    #[test]
    fn variables_resolve_lazily_and_keep_types() {
        let t = templar(
            json!({"a": "{{ b }}-x", "b": "{{ c }}", "c": 1, "l": [1, 2], "ll": "{{ l }}"}),
        );
        assert_eq!(t.render_str("{{ a }}").unwrap(), "1-x");
        assert_eq!(t.render_native("{{ ll }}").unwrap(), json!([1, 2]));
    }

    #[test]
    fn undefined_variables_are_named() {
        let t = templar(json!({"a": 1}));
        let e = t.render_str("x {{ nope }} {{ a }}").unwrap_err();
        assert_eq!(e.undefined, vec!["nope".to_string()]);
        assert_eq!(t.render_str("{{ nope | default('d') }}").unwrap(), "d");
        assert!(!t.eval_bool("nope is defined").unwrap());
    }

    #[test]
    fn a_variable_whose_value_fails_names_the_real_cause() {
        let t = templar(json!({"a": "{{ b }}x", "c": "{{ a | default('d') }}"}));
        let e = t.render_str("{{ a }}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "undefined variable 'b' (in the value of 'a')"
        );
        assert_eq!(t.render_str("{{ c }}").unwrap(), "d");
        let e = t.render_str("{{ zz }}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "undefined variable 'zz'",
            "no stale cause from `c`"
        );
    }

    #[test]
    fn self_reference_is_an_error_not_a_hang() {
        let t = templar(json!({"a": "{{ b }}", "b": "{{ a }}"}));
        assert!(t.render_str("{{ a }}").is_err());
    }

    #[test]
    fn run_time_data_is_not_rendered_again() {
        let data = json!({"out": {"stdout": "literal {{ x }}"}})
            .as_object()
            .unwrap()
            .clone();
        let t = Vars::new().push_data(Arc::new(data)).into_templar();
        assert_eq!(t.render_str("{{ out.stdout }}").unwrap(), "literal {{ x }}");
    }

    #[test]
    fn layers_override_lower_ones() {
        let t = Vars::new()
            .push_map(json!({"x": 1}).as_object().unwrap().clone())
            .push_map(json!({"x": 2}).as_object().unwrap().clone())
            .into_templar();
        assert_eq!(t.eval("x").unwrap(), json!(2));
    }
}
