//! Filters over lists and dictionaries: `combine`, `dict2items`/`items2dict`,
//! `flatten`, the set operations, `zip_longest`, `product`, `dict` and
//! `extract`.
//!
//! They follow Ansible's Python implementations, including the details
//! playbooks depend on: set operations keep first-seen order, `flatten` drops
//! nulls, `combine` merges lists per `list_merge`.

use std::collections::HashSet;

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, State};

use super::{ensure_defined, expect_map, invalid, is_list, items_of, map_pairs};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("flatten", flatten);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("product", product);
    env.add_filter("dict", dict_fn);
    env.add_filter("extract", extract);
    // Replaces minijinja's `dict()`, which rejects a list of pairs and so
    // breaks the common Ansible idiom `dict(keys | zip(values))`.
    env.add_function("dict", dict_fn);
}

/// Drops repeated items while keeping first occurrences in order.
fn dedup(items: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

/// How `combine` merges two lists found under the same key.
#[derive(Clone, Copy)]
enum ListMerge {
    Replace,
    Keep,
    Append,
    Prepend,
    AppendRp,
    PrependRp,
}

impl ListMerge {
    fn parse(name: &str) -> Result<ListMerge, Error> {
        Ok(match name {
            "replace" => ListMerge::Replace,
            "keep" => ListMerge::Keep,
            "append" => ListMerge::Append,
            "prepend" => ListMerge::Prepend,
            "append_rp" => ListMerge::AppendRp,
            "prepend_rp" => ListMerge::PrependRp,
            other => return Err(invalid(format!("combine: unknown list_merge '{other}'"))),
        })
    }

    /// Merges lists as Ansible's `merge_hash` does.
    fn apply(self, old: Vec<Value>, new: Vec<Value>) -> Vec<Value> {
        let without_new = |old: Vec<Value>| -> Vec<Value> {
            old.into_iter().filter(|item| !new.contains(item)).collect()
        };
        match self {
            ListMerge::Replace => new,
            ListMerge::Keep => old,
            ListMerge::Append => old.into_iter().chain(new).collect(),
            ListMerge::Prepend => new.into_iter().chain(old).collect(),
            ListMerge::AppendRp => without_new(old).into_iter().chain(new.clone()).collect(),
            ListMerge::PrependRp => new.clone().into_iter().chain(without_new(old)).collect(),
        }
    }
}

/// Ansible's `combine(*dicts, recursive=False, list_merge='replace')`.
///
/// Lists of dictionaries are accepted in place of dictionaries, as in
/// `[a, b] | combine`.
fn combine(state: &State, value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (terms, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs.get::<Option<String>>("list_merge")?;
    let list_merge = ListMerge::parse(list_merge.as_deref().unwrap_or("replace"))?;
    kwargs.assert_all_used()?;
    let mut result = Vec::new();
    for term in std::iter::once(value).chain(terms) {
        let dicts = if is_list(term) {
            items_of(state, term)?
        } else {
            vec![term.clone()]
        };
        for dict in dicts {
            ensure_defined(state, &dict)?;
            let pairs = expect_map(&dict, "combine")?;
            result = merge_pairs(result, pairs, recursive, list_merge)?;
        }
    }
    Ok(Value::from_pairs(result))
}

/// Merges `new` into `old`, keeping `old`'s key order.
fn merge_pairs(
    mut old: Vec<(Value, Value)>,
    new: Vec<(Value, Value)>,
    recursive: bool,
    list_merge: ListMerge,
) -> Result<Vec<(Value, Value)>, Error> {
    for (key, new_value) in new {
        match old.iter().position(|(k, _)| *k == key) {
            Some(idx) => {
                old[idx].1 = merge_values(&old[idx].1, new_value, recursive, list_merge)?;
            }
            None => old.push((key, new_value)),
        }
    }
    Ok(old)
}

/// Merges two values found under the same key.
fn merge_values(
    old: &Value,
    new: Value,
    recursive: bool,
    list_merge: ListMerge,
) -> Result<Value, Error> {
    if let (Some(old_pairs), Some(new_pairs)) = (map_pairs(old), map_pairs(&new)) {
        if !recursive {
            return Ok(new);
        }
        let merged = merge_pairs(old_pairs, new_pairs, recursive, list_merge)?;
        return Ok(Value::from_pairs(merged));
    }
    if old.kind() == ValueKind::Seq && new.kind() == ValueKind::Seq {
        let merged = list_merge.apply(old.try_iter()?.collect(), new.try_iter()?.collect());
        return Ok(Value::from(merged));
    }
    Ok(new)
}

/// Reads the `key_name`/`value_name` keywords shared by `dict2items` and `items2dict`.
fn item_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    let key_name = kwargs.get::<Option<String>>("key_name")?;
    let value_name = kwargs.get::<Option<String>>("value_name")?;
    kwargs.assert_all_used()?;
    Ok((
        key_name.unwrap_or_else(|| "key".into()),
        value_name.unwrap_or_else(|| "value".into()),
    ))
}

/// Ansible's `dict2items`: a map becomes a list of `{key, value}` maps.
fn dict2items(state: &State, value: &Value, kwargs: Kwargs) -> Result<Vec<Value>, Error> {
    let (key_name, value_name) = item_names(&kwargs)?;
    ensure_defined(state, value)?;
    Ok(expect_map(value, "dict2items")?
        .into_iter()
        .map(|(k, v)| Value::from_pairs([(key_name.as_str(), k), (value_name.as_str(), v)]))
        .collect())
}

/// Ansible's `items2dict`, the inverse of `dict2items`.
fn items2dict(state: &State, value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = item_names(&kwargs)?;
    let mut pairs = Vec::new();
    for item in items_of(state, value)? {
        let key = item.get_item(&Value::from(key_name.as_str()))?;
        let val = item.get_item(&Value::from(value_name.as_str()))?;
        if key.is_undefined() || val.is_undefined() {
            return Err(invalid(format!(
                "items2dict requires each item to have '{key_name}' and '{value_name}'"
            )));
        }
        pairs.push((key, val));
    }
    Ok(Value::from_pairs(pairs))
}

/// Ansible's `flatten(levels=None, skip_nulls=True)`.
fn flatten(
    state: &State,
    value: &Value,
    levels: Option<i64>,
    kwargs: Kwargs,
) -> Result<Vec<Value>, Error> {
    let levels = match levels {
        Some(levels) => Some(levels),
        None => kwargs.get::<Option<i64>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    flatten_into(&items_of(state, value)?, levels, skip_nulls, &mut out)?;
    Ok(out)
}

/// Appends items to `out`, descending into lists while `levels` allows.
fn flatten_into(
    items: &[Value],
    levels: Option<i64>,
    skip_nulls: bool,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for item in items {
        // Ansible also drops the strings "None" and "null" here.
        let null_like =
            item.is_none() || item.is_undefined() || matches!(item.as_str(), Some("None" | "null"));
        if skip_nulls && null_like {
            continue;
        }
        if is_list(item) && levels.is_none_or(|levels| levels >= 1) {
            let children: Vec<Value> = item.try_iter()?.collect();
            flatten_into(&children, levels.map(|l| l - 1), skip_nulls, out)?;
        } else {
            out.push(item.clone());
        }
    }
    Ok(())
}

/// Ansible's `union`: unique items of both lists, in order.
fn union(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    Ok(dedup(
        items_of(state, a)?.into_iter().chain(items_of(state, b)?),
    ))
}

/// Ansible's `intersect`: unique items of `a` that are also in `b`.
fn intersect(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    let b: HashSet<Value> = items_of(state, b)?.into_iter().collect();
    Ok(dedup(
        items_of(state, a)?.into_iter().filter(|x| b.contains(x)),
    ))
}

/// Ansible's `difference`: unique items of `a` that are not in `b`.
fn difference(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    let b: HashSet<Value> = items_of(state, b)?.into_iter().collect();
    Ok(dedup(
        items_of(state, a)?.into_iter().filter(|x| !b.contains(x)),
    ))
}

/// Ansible's `symmetric_difference`: items in exactly one of the lists.
fn symmetric_difference(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    let common: HashSet<Value> = intersect(state, a, b)?.into_iter().collect();
    let all = union(state, a, b)?;
    Ok(all.into_iter().filter(|x| !common.contains(x)).collect())
}

/// Ansible's `zip_longest(*lists, fillvalue=None)`.
fn zip_longest(
    state: &State,
    value: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Vec<Value>, Error> {
    let args = args.into_values();
    let (others, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let fill = if kwargs.has("fillvalue") {
        kwargs.get("fillvalue")?
    } else {
        Value::from(())
    };
    kwargs.assert_all_used()?;
    let lists = std::iter::once(value)
        .chain(others)
        .map(|list| items_of(state, list))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest)
        .map(|idx| {
            lists
                .iter()
                .map(|list| list.get(idx).cloned().unwrap_or_else(|| fill.clone()))
                .collect()
        })
        .collect())
}

/// Ansible's `product`: the cartesian product of the lists (`itertools.product`).
fn product(state: &State, value: &Value, args: Rest<ValueOrKwargs>) -> Result<Vec<Value>, Error> {
    let args = args.into_values();
    let (others, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let repeat = kwargs.get::<Option<usize>>("repeat")?.unwrap_or(1);
    kwargs.assert_all_used()?;
    let lists = std::iter::once(value)
        .chain(others)
        .map(|list| items_of(state, list))
        .collect::<Result<Vec<_>, _>>()?;
    let count = std::iter::repeat_n(&lists, repeat)
        .flatten()
        .try_fold(1usize, |n, l| n.checked_mul(l.len()));
    if count.is_none_or(|n| n > super::MAX_ITEMS) {
        return Err(super::too_large("product".into()));
    }
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    for list in std::iter::repeat_n(&lists, repeat).flatten() {
        combos = combos
            .iter()
            .flat_map(|combo| {
                list.iter().map(move |item| {
                    let mut next = combo.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combos.into_iter().map(Value::from).collect())
}

/// Python's `dict()`: a mapping or a list of key/value pairs, plus keyword
/// entries, so that `dict(keys | zip(values))` works as in Ansible.
fn dict_fn(value: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut pairs = match value {
        Some(value) => pairs_of(&value)?,
        None => Vec::new(),
    };
    let names: Vec<String> = kwargs.args().map(str::to_string).collect();
    for name in names {
        let item = kwargs.get::<Value>(&name)?;
        pairs.push((Value::from(name), item));
    }
    Ok(Value::from_pairs(pairs))
}

/// The entries of a map, or of a list of two-item lists.
fn pairs_of(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if let Some(pairs) = map_pairs(value) {
        return Ok(pairs);
    }
    let mut pairs = Vec::new();
    for item in value.try_iter()? {
        let kv: Vec<Value> = item.try_iter()?.collect();
        let [key, val] = <[Value; 2]>::try_from(kv)
            .map_err(|_| invalid("dict() needs key/value pairs of length 2"))?;
        pairs.push((key, val));
    }
    Ok(pairs)
}

/// Ansible's `extract(container, morekeys=None)`: `container[item]`, then
/// further keys, as used in `map('extract', hostvars, 'ansible_host')`.
fn extract(item: &Value, container: &Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut value = container.get_item(item)?;
    let keys = match morekeys {
        Some(keys) if is_list(&keys) => keys.try_iter()?.collect(),
        Some(key) => vec![key],
        None => Vec::new(),
    };
    for key in keys {
        value = value.get_item(&key)?;
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use crate::template::filters::test_support::{ctx, render, render_ctx, render_err};

    #[test]
    fn combine_merges_dicts() {
        let out = render(
            r#"{{ {"a": 1, "b": {"x": 1}} | combine({"b": {"y": 2}}, {"c": 3}) | to_json }}"#,
        );
        assert_eq!(out, r#"{"a": 1, "b": {"y": 2}, "c": 3}"#);
        let out = render(
            r#"{{ {"a": 1, "b": {"x": 1, "z": {"k": 1}}} | combine({"b": {"y": 2, "z": {"j": 2}}}, recursive=true) | to_json(sort_keys=true) }}"#,
        );
        assert_eq!(
            out,
            r#"{"a": 1, "b": {"x": 1, "y": 2, "z": {"j": 2, "k": 1}}}"#
        );
        let out = render(r#"{{ [{"a": 1}, {"b": 2}] | combine | to_json }}"#);
        assert_eq!(out, r#"{"a": 1, "b": 2}"#);
        let out = render(
            r#"{{ {"l": [1, 2]} | combine({"l": [2, 3]}, list_merge='append_rp') | to_json }}"#,
        );
        assert_eq!(out, r#"{"l": [1, 2, 3]}"#);
        let out =
            render(r#"{{ {"l": [1]} | combine({"l": [2]}, list_merge='prepend') | to_json }}"#);
        assert_eq!(out, r#"{"l": [2, 1]}"#);
        assert!(render_err("{{ {} | combine([1]) }}").contains("combine"));
    }

    #[test]
    fn dict2items_and_items2dict() {
        let out = render(r#"{{ {"a": 1, "b": 2} | dict2items | to_json }}"#);
        assert_eq!(
            out,
            r#"[{"key": "a", "value": 1}, {"key": "b", "value": 2}]"#
        );
        let out = render(r#"{{ {"a": 1} | dict2items(key_name='k', value_name='v') | to_json }}"#);
        assert_eq!(out, r#"[{"k": "a", "v": 1}]"#);
        let out = render(r#"{{ [{"key": "a", "value": 1}] | items2dict | to_json }}"#);
        assert_eq!(out, r#"{"a": 1}"#);
        let out = render(
            r#"{{ [{"n": "a", "v": 1}] | items2dict(key_name='n', value_name='v') | to_json }}"#,
        );
        assert_eq!(out, r#"{"a": 1}"#);
    }

    #[test]
    fn set_operations_preserve_order() {
        assert_eq!(render("{{ [1, 2, 2, 3] | unique | join(',') }}"), "1,2,3");
        assert_eq!(render("{{ [3, 1] | union([1, 2]) | join(',') }}"), "3,1,2");
        assert_eq!(
            render("{{ [3, 1, 2, 1] | intersect([1, 2]) | join(',') }}"),
            "1,2"
        );
        assert_eq!(
            render("{{ [3, 1, 2] | difference([1]) | join(',') }}"),
            "3,2"
        );
        assert_eq!(
            render("{{ [1, 2, 3] | symmetric_difference([3, 4]) | join(',') }}"),
            "1,2,4"
        );
    }

    #[test]
    fn flatten_levels_and_nulls() {
        assert_eq!(
            render("{{ [1, [2, [3, [4]]], none, 'null'] | flatten | join(',') }}"),
            "1,2,3,4"
        );
        assert_eq!(render("{{ [1, [2, [3]]] | flatten(1) | length }}"), "3");
        assert_eq!(
            render("{{ [1, [2, [3]]] | flatten(levels=1) | last | join }}"),
            "3"
        );
        assert_eq!(
            render("{{ [1, none] | flatten(skip_nulls=false) | length }}"),
            "2"
        );
    }

    #[test]
    fn zip_product_and_dict() {
        assert_eq!(
            render("{{ [1, 2] | zip(['a', 'b']) | map('join', '') | join(',') }}"),
            "1a,2b"
        );
        assert_eq!(
            render(
                "{{ [1, 2] | zip_longest(['a'], fillvalue='-') | map('join', '') | join(',') }}"
            ),
            "1a,2-"
        );
        assert_eq!(
            render("{{ [1, 2] | product(['a', 'b']) | map('join', '') | join(',') }}"),
            "1a,1b,2a,2b"
        );
        assert_eq!(
            render("{{ dict(['a', 'b'] | zip([1, 2])) | to_json }}"),
            r#"{"a": 1, "b": 2}"#
        );
        assert_eq!(render("{{ [['a', 1]] | dict | to_json }}"), r#"{"a": 1}"#);
        assert_eq!(render("{{ dict(a=1) | to_json }}"), r#"{"a": 1}"#);
        assert_eq!(
            render(r#"{{ dict({"a": 1}, b=2) | to_json }}"#),
            r#"{"a": 1, "b": 2}"#
        );
    }

    #[test]
    fn extract_looks_up_containers() {
        let context = ctx(r#"{"hosts": {"h1": {"ip": "10.0.0.1"}, "h2": {"ip": "10.0.0.2"}}}"#);
        let out = render_ctx(
            "{{ ['h1', 'h2'] | map('extract', hosts, 'ip') | join(',') }}",
            context.clone(),
        );
        assert_eq!(out, "10.0.0.1,10.0.0.2");
        assert_eq!(
            render_ctx("{{ ('h1' | extract(hosts)).ip }}", context),
            "10.0.0.1"
        );
    }
}
