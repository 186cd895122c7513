//! The lookup plugins that make lists, mostly met as `with_<name>` loops: `dict`, `nested`,
//! `together`, `subelements`, `indexed_items`, `random_choice`, `sequence`, `fileglob`, and
//! community.general's `flattened` and `cartesian`.
//!
//! Each takes the terms as Ansible passes them (`query('nested', a, b)` and `with_nested:
//! [a, b]` both give the terms `[a, b]`) and works on JSON values: several reshape nested
//! data, which is plainer there than on template values. Results, error messages and quirks
//! follow ansible-core 2.19's plugins (`subelements` drops the subkey from the item it
//! returns, `together` pads with null, `sequence` refuses hexadecimal numbers).

use super::{MAX_ITEMS, invalid, too_large};
use crate::template::{from_value, to_value};
use minijinja::value::{Kwargs, Value};
use minijinja::{Error, State};
use serde_json::{Map, Value as Json, json};

/// The plugins of this file, by the names `lookup`/`query`/`with_` use.
pub const NAMES: &[&str] = &[
    "dict",
    "nested",
    "together",
    "subelements",
    "indexed_items",
    "random_choice",
    "sequence",
    "fileglob",
    "community.general.flattened",
    "community.general.cartesian",
];

/// Runs the plugin `name` of this file, if it is one.
pub fn run(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Option<Result<Vec<Value>, Error>> {
    if !NAMES.contains(&name) {
        return None;
    }
    let terms: Result<Vec<Json>, Error> = terms
        .iter()
        .map(|t| from_value(t).map_err(invalid))
        .collect();
    let result = terms.and_then(|terms| match name {
        "dict" => dict(&terms),
        "nested" => nested(&terms),
        "together" => together(&terms),
        "subelements" => subelements(&terms),
        "indexed_items" => Ok(indexed_items(&terms)),
        "random_choice" => Ok(random_choice(terms)),
        "sequence" => sequence(&terms, kwargs),
        "fileglob" => Ok(fileglob(state, &terms)),
        "community.general.flattened" => Ok(flattened(&terms)),
        "community.general.cartesian" => cartesian(&terms),
        _ => unreachable!("a name of NAMES"),
    });
    Some(result.map(|items| items.iter().map(to_value).collect()))
}

/// Lists spliced in one level, other values kept (Ansible's `LookupBase._flatten`).
fn flatten_once(terms: &[Json]) -> Vec<Json> {
    terms
        .iter()
        .flat_map(|t| match t {
            Json::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
        .collect()
}

/// `{key, value}` for each entry of each mapping.
fn dict(terms: &[Json]) -> Result<Vec<Json>, Error> {
    let mut out = vec![];
    for term in terms {
        let Json::Object(m) = term else {
            return Err(invalid(format!(
                "the 'dict' lookup plugin expects a dictionary, got '{term}'"
            )));
        };
        out.extend(m.iter().map(|(k, v)| json!({"key": k, "value": v})));
    }
    Ok(out)
}

/// A list of the term (a list as is, anything else as its one element).
fn as_list(term: &Json) -> Vec<Json> {
    match term {
        Json::Array(a) => a.clone(),
        other => vec![other.clone()],
    }
}

/// Every combination of one element from each list, in order, each flattened one level (and,
/// as Ansible's plugin flattens once more at the end, twice).
fn nested(terms: &[Json]) -> Result<Vec<Json>, Error> {
    if terms.is_empty() {
        return Err(invalid(
            "with_nested requires at least one element in the nested list",
        ));
    }
    Ok(product(terms, "nested")?
        .into_iter()
        .map(|row| Json::Array(flatten_once(&flatten_once(&row))))
        .collect())
}

/// The rows of the cartesian product of the terms (each a list, or one element).
fn product(terms: &[Json], what: &str) -> Result<Vec<Vec<Json>>, Error> {
    let mut acc: Vec<Vec<Json>> = vec![vec![]];
    for term in terms {
        let next = as_list(term);
        if acc.len().saturating_mul(next.len()) > MAX_ITEMS {
            return Err(too_large(what.into()));
        }
        acc = acc
            .iter()
            .flat_map(|row| {
                next.iter().map(move |y| {
                    let mut r = row.clone();
                    r.push(y.clone());
                    r
                })
            })
            .collect();
    }
    Ok(acc)
}

/// The lists side by side: the n-th elements of each, null where a list is shorter.
fn together(terms: &[Json]) -> Result<Vec<Json>, Error> {
    if terms.is_empty() {
        return Err(invalid(
            "with_together requires at least one element in each list",
        ));
    }
    let lists: Vec<Vec<Json>> = terms.iter().map(as_list).collect();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest)
        .map(|i| {
            let row: Vec<Json> = lists
                .iter()
                .map(|l| l.get(i).cloned().unwrap_or(Json::Null))
                .collect();
            Json::Array(flatten_once(&row))
        })
        .collect())
}

/// `[index, item]` for each item of the terms flattened one level.
fn indexed_items(terms: &[Json]) -> Vec<Json> {
    flatten_once(terms)
        .into_iter()
        .enumerate()
        .map(|(i, item)| json!([i, item]))
        .collect()
}

/// One of the terms, chosen at random (none when there are none).
fn random_choice(terms: Vec<Json>) -> Vec<Json> {
    use std::hash::{BuildHasher, Hasher};
    if terms.is_empty() {
        return terms;
    }
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    vec![terms[(random % terms.len() as u64) as usize].clone()]
}

/// Every pair (item, subitem) of a list of mappings and a list inside each (`key` or
/// `a.b.key`); flags `{skip_missing: true}` skip items without it.
fn subelements(terms: &[Json]) -> Result<Vec<Json>, Error> {
    let bad = |msg: &str| {
        invalid(format!(
            "subelements lookup expects a list of two or three items, {msg}"
        ))
    };
    if !(2..=3).contains(&terms.len()) {
        return Err(bad(""));
    }
    let (Some(path), true) = (
        terms[1].as_str(),
        matches!(terms[0], Json::Array(_) | Json::Object(_)),
    ) else {
        return Err(bad(
            "first a dict or a list, second a string pointing to the subkey",
        ));
    };
    let items: Vec<Json> = match &terms[0] {
        Json::Object(m) if m.get("skipped").is_some_and(|s| s != &json!(false)) => {
            return Ok(vec![]);
        }
        Json::Object(m) => m.values().cloned().collect(),
        other => as_list(other),
    };
    let skip_missing = match terms.get(2) {
        None => false,
        Some(Json::Object(f)) if f.keys().all(|k| k == "skip_missing") => {
            f.get("skip_missing").is_some_and(crate::template::truthy)
        }
        Some(_) => {
            return Err(bad(
                "the optional third item must be a dict with flags ('skip_missing',)",
            ));
        }
    };
    let keys: Vec<&str> = path.split('.').collect();
    let mut out = vec![];
    for item in items {
        let Json::Object(mut top) = item else {
            return Err(invalid(format!(
                "subelements lookup expects a dictionary, got '{item}'"
            )));
        };
        if top.get("skipped").is_some_and(|s| s != &json!(false)) {
            continue;
        }
        let Some(sub) = take_sublist(&mut top, &keys, skip_missing)? else {
            continue;
        };
        let item = Json::Object(top);
        out.extend(sub.into_iter().map(|s| json!([item.clone(), s])));
    }
    Ok(out)
}

/// The list at `keys` inside `m`, taken out of it (as Ansible's plugin pops it); `None` when
/// it is missing and `skip_missing`.
fn take_sublist(
    m: &mut Map<String, Json>,
    keys: &[&str],
    skip_missing: bool,
) -> Result<Option<Vec<Json>>, Error> {
    let Some((key, rest)) = keys.split_first() else {
        return Ok(None);
    };
    let Some(value) = m.get_mut(*key) else {
        if skip_missing {
            return Ok(None);
        }
        return Err(invalid(format!(
            "could not find '{key}' key in iterated item '{}'",
            Json::Object(m.clone())
        )));
    };
    if rest.is_empty() {
        if !value.is_array() {
            return Err(invalid(format!(
                "the key {key} should point to a list, got '{value}'"
            )));
        }
        return Ok(m.remove(*key).map(|v| as_list(&v)));
    }
    match value {
        Json::Object(inner) => take_sublist(inner, rest, skip_missing),
        _ if skip_missing => Ok(None),
        other => Err(invalid(format!(
            "the key {key} should point to a dictionary, got '{other}'"
        ))),
    }
}

/// Lists flattened all the way down.
fn flattened(terms: &[Json]) -> Vec<Json> {
    let mut out = vec![];
    for t in terms {
        match t {
            Json::Array(a) => out.extend(flattened(a)),
            other => out.push(other.clone()),
        }
    }
    out
}

/// The cartesian product of the lists, as lists.
fn cartesian(terms: &[Json]) -> Result<Vec<Json>, Error> {
    Ok(product(terms, "cartesian")?
        .into_iter()
        .map(Json::Array)
        .collect())
}

/// The options of one `sequence` term.
#[derive(Debug, PartialEq)]
struct Sequence {
    start: i64,
    end: Option<i64>,
    count: Option<i64>,
    stride: i64,
    format: String,
}

/// `[start-]end[/stride][:format]` or `start=… end=… count=… stride=… format=…` (decimal
/// numbers: ansible-core 2.19 refuses hexadecimal and octal ones, whatever its docs say).
fn sequence(terms: &[Json], kwargs: &Kwargs) -> Result<Vec<Json>, Error> {
    let defaults = |k: &str| -> Result<Option<String>, Error> {
        Ok(kwargs.get::<Option<Value>>(k)?.map(|v| super::to_text(&v)))
    };
    let mut base = Map::new();
    for k in ["start", "end", "count", "stride", "format"] {
        if let Some(v) = defaults(k)? {
            base.insert(k.to_string(), Json::String(v));
        }
    }
    let terms: Vec<Json> = if terms.is_empty() && !base.is_empty() {
        vec![json!("")]
    } else {
        terms.to_vec()
    };
    let mut out = vec![];
    for term in &terms {
        let text = match term {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        let seq = parse_sequence(&text, &base)?;
        out.extend(seq.items()?.into_iter().map(Json::String));
    }
    Ok(out)
}

fn parse_sequence(text: &str, base: &Map<String, Json>) -> Result<Sequence, Error> {
    let mut opts = base.clone();
    if let Some(short) = shortcut(text) {
        opts.extend(short);
    } else {
        let kv = crate::playbook::kv::parse(text, false).map_err(|e| {
            invalid(format!(
                "unknown error parsing with_sequence arguments: {e}"
            ))
        })?;
        if let Some(raw) = kv.raw {
            return Err(invalid(format!(
                "unrecognized arguments to with_sequence: ['_raw_params'] ({raw})"
            )));
        }
        let mut unknown = vec![];
        for (k, v) in kv.options {
            if ["start", "end", "count", "stride", "format"].contains(&k.as_str()) {
                opts.insert(k, Json::String(v));
            } else {
                unknown.push(format!("'{k}'"));
            }
        }
        if !unknown.is_empty() {
            return Err(invalid(format!(
                "unrecognized arguments to with_sequence: [{}]",
                unknown.join(", ")
            )));
        }
    }
    let int = |k: &str| -> Result<Option<i64>, Error> {
        match opts.get(k).and_then(Json::as_str) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                invalid(format!(
                    "Config '{k}' for 'sequence' lookup plugin has an invalid value: Invalid value provided for 'integer': '{v}'"
                ))
            }),
        }
    };
    Ok(Sequence {
        start: int("start")?.unwrap_or(1),
        end: int("end")?,
        count: int("count")?,
        stride: int("stride")?.unwrap_or(1),
        format: opts
            .get("format")
            .and_then(Json::as_str)
            .unwrap_or("%d")
            .to_string(),
    })
}

/// The shortcut form's parts, when `text` is one.
fn shortcut(text: &str) -> Option<Map<String, Json>> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)^((0?x?[0-9a-f]+)-)?(0?x?[0-9a-f]+)(/(0?x?[0-9a-f]+))?(:(.+))?$")
            .expect("valid")
    });
    let c = RE.captures(text)?;
    let mut m = Map::new();
    for (k, i) in [("start", 2), ("end", 3), ("stride", 5), ("format", 7)] {
        if let Some(v) = c.get(i) {
            m.insert(k.to_string(), Json::String(v.as_str().to_string()));
        }
    }
    Some(m)
}

impl Sequence {
    fn items(&self) -> Result<Vec<String>, Error> {
        let end = match (self.end, self.count) {
            (None, None) => return Err(invalid("must specify count or end in with_sequence")),
            (Some(_), Some(_)) => {
                return Err(invalid("can't specify both count and end in with_sequence"));
            }
            (_, Some(0)) => return Ok(vec![]),
            (_, Some(n)) => n
                .checked_mul(self.stride)
                .and_then(|x| x.checked_add(self.start))
                .map(|x| x - 1)
                .ok_or_else(|| too_large("sequence".into()))?,
            (Some(e), None) => e,
        };
        if self.stride > 0 && end < self.start {
            return Err(invalid("to count backwards make stride negative"));
        }
        if self.stride < 0 && end > self.start {
            return Err(invalid("to count forward don't make stride negative"));
        }
        if self.stride == 0 {
            return Ok(vec![]);
        }
        if self.format.matches('%').count() != 1 {
            return Err(invalid(format!("bad formatting string: {}", self.format)));
        }
        let len = end
            .checked_sub(self.start)
            .and_then(|d| d.checked_div(self.stride))
            .and_then(|q| q.checked_add(1))
            .filter(|l| *l <= MAX_ITEMS as i64)
            .ok_or_else(|| too_large("sequence".into()))?;
        (0..len)
            .map(|i| {
                let n = self.start + i * self.stride;
                percent_int(&self.format, n).ok_or_else(|| {
                    invalid(format!("problem formatting {n} with '{}'", self.format))
                })
            })
            .collect()
    }
}

/// Python's `fmt % n` for a format with one conversion of an integer (`%d`, `%05d`, `%x`,
/// `%-4o`, `%s`, ...); `None` for a conversion an integer cannot take.
fn percent_int(fmt: &str, n: i64) -> Option<String> {
    let at = fmt.find('%')?;
    let spec = &fmt[at + 1..];
    let flags_len = spec
        .find(|c: char| !"-+ 0#".contains(c))
        .unwrap_or(spec.len());
    let flags = &spec[..flags_len];
    let rest = &spec[flags_len..];
    let width_len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let width: usize = rest[..width_len].parse().unwrap_or(0);
    let rest = &rest[width_len..];
    let (precision, rest) = match rest.strip_prefix('.') {
        Some(p) => {
            let l = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
            (Some(p[..l].parse::<usize>().unwrap_or(0)), &p[l..])
        }
        None => (None, rest),
    };
    let conv = rest.chars().next()?;
    let tail = &rest[conv.len_utf8()..];
    let alt = flags.contains('#');
    let abs = n.unsigned_abs();
    let (mut digits, prefix) = match conv {
        'd' | 'i' | 'u' => (abs.to_string(), ""),
        'o' => (format!("{abs:o}"), if alt { "0o" } else { "" }),
        'x' => (format!("{abs:x}"), if alt { "0x" } else { "" }),
        'X' => (format!("{abs:X}"), if alt { "0X" } else { "" }),
        's' | 'r' => (abs.to_string(), ""),
        _ => return None,
    };
    if let Some(p) = precision.filter(|_| !matches!(conv, 's' | 'r')) {
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let sign = if n < 0 {
        "-"
    } else if flags.contains('+') && !matches!(conv, 's' | 'r') {
        "+"
    } else if flags.contains(' ') && !matches!(conv, 's' | 'r') {
        " "
    } else {
        ""
    };
    let body_len = sign.len() + prefix.len() + digits.len();
    let pad = width.saturating_sub(body_len);
    let body = if flags.contains('-') {
        format!("{sign}{prefix}{digits}{}", " ".repeat(pad))
    } else if flags.contains('0') && !matches!(conv, 's' | 'r') {
        format!("{sign}{prefix}{}{digits}", "0".repeat(pad))
    } else {
        format!("{}{sign}{prefix}{digits}", " ".repeat(pad))
    };
    Some(format!("{}{body}{tail}", &fmt[..at]))
}

/// Files matching a glob, looked for as Ansible's `fileglob` does: a pattern with a directory
/// in `files/` of the search path (or that directory itself); a bare one in each search
/// directory's `files/`, then the directory itself; the first place with matches wins.
fn fileglob(state: &State, terms: &[Json]) -> Vec<Json> {
    let dirs = super::lookups::search_dirs(state);
    let mut out = vec![];
    for term in terms {
        let Some(pattern) = term.as_str() else {
            continue;
        };
        let path = std::path::Path::new(pattern);
        let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
        let places: Vec<std::path::PathBuf> =
            match path.parent().filter(|p| !p.as_os_str().is_empty()) {
                Some(dir) => crate::search_path::candidates(&dirs, "files", &dir.to_string_lossy())
                    .into_iter()
                    .filter(|d| d.is_dir())
                    .take(1)
                    .collect(),
                None => dirs
                    .iter()
                    .flat_map(|d| [d.join("files"), d.clone()])
                    .collect(),
            };
        for place in places {
            let Some(file) = &file else { break };
            let full = place.join(file);
            let Ok(paths) = glob::glob(&full.to_string_lossy()) else {
                continue;
            };
            let found: Vec<Json> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .map(|p| Json::String(p.to_string_lossy().into_owned()))
                .collect();
            if !found.is_empty() {
                out.extend(found);
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_ansible() {
        assert_eq!(
            nested(&[json!([1, 2]), json!(["a", "b"]), json!(["x"])]).unwrap(),
            vec![
                json!([1, "a", "x"]),
                json!([1, "b", "x"]),
                json!([2, "a", "x"]),
                json!([2, "b", "x"])
            ]
        );
        assert_eq!(
            together(&[json!([1, 2, 3]), json!([4]), json!([[5], [6]])]).unwrap(),
            vec![
                json!([1, 4, 5]),
                json!([2, null, 6]),
                json!([3, null, null])
            ]
        );
        assert_eq!(
            indexed_items(&[json!(["a", "b"]), json!("c")]),
            vec![json!([0, "a"]), json!([1, "b"]), json!([2, "c"])]
        );
        assert_eq!(
            dict(&[json!({"b": 1, "a": 2})]).unwrap(),
            vec![
                json!({"key": "b", "value": 1}),
                json!({"key": "a", "value": 2})
            ]
        );
        assert!(dict(&[json!([1])]).is_err());
        assert_eq!(
            subelements(&[
                json!([{"n": 1, "k": [1, 2]}, {"n": 2, "k": []}]),
                json!("k")
            ])
            .unwrap(),
            vec![json!([{"n": 1}, 1]), json!([{"n": 1}, 2])]
        );
        assert!(subelements(&[json!([{"n": 1}]), json!("k")]).is_err());
        assert_eq!(
            subelements(&[json!([{"n": 1}]), json!("k"), json!({"skip_missing": true})]).unwrap(),
            Vec::<Json>::new()
        );
        assert_eq!(
            flattened(&[json!([1, [2, [3]]]), json!(4)]),
            vec![json!(1), json!(2), json!(3), json!(4)]
        );
        assert_eq!(
            cartesian(&[json!([1, 2]), json!(["a"])]).unwrap(),
            vec![json!([1, "a"]), json!([2, "a"])]
        );
    }

    fn seq(text: &str) -> Result<Vec<String>, String> {
        parse_sequence(text, &Map::new())
            .and_then(|s| s.items())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sequences() {
        assert_eq!(seq("5-8").unwrap(), ["5", "6", "7", "8"]);
        assert_eq!(
            seq("4:host%02d").unwrap(),
            ["host01", "host02", "host03", "host04"]
        );
        assert_eq!(
            seq("start=10 end=0 stride=-3").unwrap(),
            ["10", "7", "4", "1"]
        );
        assert_eq!(seq("count=0").unwrap(), Vec::<String>::new());
        assert_eq!(
            seq("start=2 end=8 stride=3 format=n%x").unwrap(),
            ["n2", "n5", "n8"]
        );
        assert_eq!(seq("start=0 count=3 stride=2").unwrap(), ["0", "2", "4"]);
        assert_eq!(seq("0600").unwrap().len(), 600);
        assert!(
            seq("start=0x0f00 count=4")
                .unwrap_err()
                .contains("'0x0f00'")
        );
        assert!(
            seq("start=5 end=1")
                .unwrap_err()
                .contains("make stride negative")
        );
        assert!(seq("start=1").unwrap_err().contains("count or end"));
        assert!(
            seq("end=3 format=%d%%")
                .unwrap_err()
                .contains("bad formatting")
        );
        assert!(seq("end=3 colour=red").unwrap_err().contains("'colour'"));
        // Extreme numbers are refused, never an arithmetic panic.
        assert!(seq("start=0 end=-9223372036854775808 stride=-1").is_err());
        assert!(seq("start=9223372036854775807 count=2").is_err());
    }

    #[test]
    fn percent_formats_an_integer_as_python() {
        for (fmt, n, want) in [
            ("%d", 7, "7"),
            ("%05d", -42, "-0042"),
            ("%-4d|", 3, "3   |"),
            ("%+d", 3, "+3"),
            ("%x", 255, "ff"),
            ("%#x", 255, "0xff"),
            ("%04X", 255, "00FF"),
            ("%o", 8, "10"),
            ("%#o", 8, "0o10"),
            ("%.3d", 5, "005"),
            ("%5s", 12, "   12"),
            ("web-%02d.lan", 9, "web-09.lan"),
        ] {
            assert_eq!(percent_int(fmt, n).as_deref(), Some(want), "{fmt}");
        }
        assert_eq!(percent_int("%q", 1), None);
    }
}
