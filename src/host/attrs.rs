//! Ownership and permissions: the `mode`/`owner`/`group` arguments, chmod's octal and
//! symbolic modes computed locally (so a no-change run needs no `chmod` to find out), and
//! the attribute changes a path needs.

use super::ModError;
use super::fs::{Kind, PathState};
use crate::shell::quote;
use serde_json::Value as Json;

/// Ownership and permissions requested for a path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileAttrs {
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl FileAttrs {
    /// `owner:group`, `owner` or `:group` for chown.
    pub fn owner_spec(&self) -> Option<String> {
        match (&self.owner, &self.group) {
            (None, None) => None,
            (Some(o), None) => Some(o.clone()),
            (None, Some(g)) => Some(format!(":{g}")),
            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
        }
    }
}

/// Normalises a mode given as YAML int (0644 read as octal), or string ("0644", "644",
/// "u=rw,g=r"), to what chmod accepts; numeric modes become four octal digits.
pub fn normalize_mode(v: &Json) -> Result<Option<String>, String> {
    match v {
        Json::Null => Ok(None),
        Json::Number(n) => {
            let n = n.as_u64().ok_or("mode must be a positive number")?;
            Ok(Some(format!("{n:04o}")))
        }
        Json::String(s) if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() => {
            let n = u32::from_str_radix(s, 8).map_err(|_| format!("invalid octal mode '{s}'"))?;
            Ok(Some(format!("{n:04o}")))
        }
        Json::String(s) => Ok(Some(s.clone())),
        other => Err(format!("invalid mode {other}")),
    }
}

/// `0644` style.
pub fn fmt_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A numeric mode as chmod's argument. The extra leading zero makes GNU chmod clear a
/// directory's setuid/setgid bits too (with four digits it keeps them, and the task would
/// report a change on every run).
pub fn chmod_arg(mode: u32) -> String {
    format!("0{:04o}", mode & 0o7777)
}

/// Decodes the `mode`, `owner` and `group` arguments.
pub fn attrs_from(
    mode: &Option<Json>,
    owner: &Option<String>,
    group: &Option<String>,
) -> Result<FileAttrs, ModError> {
    let mode = match mode {
        None => None,
        Some(m) => normalize_mode(m).map_err(ModError::Failed)?,
    };
    if let Some(m) = &mode {
        // Reject a bad mode before any host is touched.
        apply_mode(m, 0, false).map_err(ModError::Failed)?;
    }
    let clean = |v: &Option<String>| {
        v.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(FileAttrs {
        mode,
        owner: clean(owner),
        group: clean(group),
    })
}

/// The diff line `what: found -> wanted` when the wanted owner (or group) is not the one found
/// (`name`, `id`): owner and group are compared and reported alike.
fn owner_note(what: &str, want: &Option<String>, name: &str, id: u32) -> Option<String> {
    owner_differs(want, name, id)
        .then(|| format!("{what}: {name} -> {}", want.as_deref().unwrap_or_default()))
}

/// One `chmod` clause action: which bits, for whom, and how.
struct ModeAction {
    who: u32,
    op: u8,
    /// `r`, `w`, `x`, `X`, `s`, `t`, or a copy from `u`/`g`/`o`.
    perms: Vec<u8>,
}

fn parse_symbolic(spec: &str) -> Result<Vec<ModeAction>, String> {
    let bad = || format!("invalid mode '{spec}'");
    let mut actions = vec![];
    for clause in spec.split(',') {
        let b = clause.as_bytes();
        let mut i = 0;
        let mut who = 0;
        while i < b.len() && b"ugoa".contains(&b[i]) {
            who |= match b[i] {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        if who == 0 {
            who = 0o7777;
        }
        if i >= b.len() {
            return Err(bad());
        }
        while i < b.len() {
            let op = b[i];
            if !b"+-=".contains(&op) {
                return Err(bad());
            }
            i += 1;
            let start = i;
            while i < b.len() && b"rwxXstugo".contains(&b[i]) {
                i += 1;
            }
            actions.push(ModeAction {
                who,
                op,
                perms: b[start..i].to_vec(),
            });
        }
    }
    Ok(actions)
}

/// Bits of `action` given the current mode; `None` for bits that depend on the file (X on a
/// file, copies) when no current mode is known.
fn action_bits(a: &ModeAction, cur: Option<u32>, is_dir: bool) -> (u32, u32) {
    let (mut bits, mut unknown) = (0u32, 0u32);
    for &p in &a.perms {
        match p {
            b'r' => bits |= 0o444,
            b'w' => bits |= 0o222,
            b'x' => bits |= 0o111,
            b'X' => match cur {
                _ if is_dir => bits |= 0o111,
                Some(c) if c & 0o111 != 0 => bits |= 0o111,
                Some(_) => {}
                None => unknown |= 0o111,
            },
            b's' => bits |= 0o6000,
            b't' => bits |= 0o1000,
            b'u' | b'g' | b'o' => match cur {
                Some(c) => {
                    let shift = match p {
                        b'u' => 6,
                        b'g' => 3,
                        _ => 0,
                    };
                    bits |= ((c >> shift) & 7) * 0o111;
                }
                None => unknown |= 0o777,
            },
            _ => {}
        }
    }
    (bits & a.who, unknown & a.who)
}

/// The mode a path ends up with when `spec` (octal or symbolic, as chmod takes it) is applied
/// to a path whose mode is `cur`.
pub fn apply_mode(spec: &str, cur: u32, is_dir: bool) -> Result<u32, String> {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let m = u32::from_str_radix(spec, 8).map_err(|_| format!("invalid mode '{spec}'"))?;
        return if m > 0o7777 {
            Err(format!("invalid mode '{spec}'"))
        } else {
            Ok(m)
        };
    }
    let mut m = cur & 0o7777;
    for a in parse_symbolic(spec)? {
        let (bits, _) = action_bits(&a, Some(m), is_dir);
        m = match a.op {
            b'+' => m | bits,
            b'-' => m & !bits,
            _ => (m & !a.who) | bits,
        };
    }
    Ok(m)
}

/// For a recursive check: the bits every entry must have set and must have clear after
/// `spec` is applied, whatever its current mode (bits that depend on it are in neither).
pub fn mode_masks(spec: &str, is_dir: bool) -> Result<(u32, u32), String> {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let m = apply_mode(spec, 0, is_dir)?;
        return Ok((m, !m & 0o7777));
    }
    let (mut set, mut clear) = (0u32, 0u32);
    for a in parse_symbolic(spec)? {
        let (bits, unknown) = action_bits(&a, None, is_dir);
        match a.op {
            b'+' => {
                set |= bits;
                clear &= !(bits | unknown);
            }
            b'-' => {
                clear |= bits;
                set &= !(bits | unknown);
            }
            _ => {
                set = (set & !a.who) | bits;
                clear = (clear & !a.who) | (a.who & !bits & !unknown);
            }
        }
    }
    Ok((set, clear))
}

/// A `find` expression matching entries that `chown -R`/`chmod -R` with `attrs` would change.
/// Only POSIX primaries (`-user`, `-group`, `-type`, `-perm -MODE`).
pub fn tree_drift_expr(attrs: &FileAttrs) -> Result<Option<String>, String> {
    let mut alts = vec![];
    if let Some(o) = &attrs.owner {
        alts.push(format!("! -user {}", quote(o)));
    }
    if let Some(g) = &attrs.group {
        alts.push(format!("! -group {}", quote(g)));
    }
    if let Some(spec) = &attrs.mode {
        for (ty, is_dir) in [("d", true), ("f", false)] {
            let (set, clear) = mode_masks(spec, is_dir)?;
            let mut conds = vec![format!("! -perm -{set:o}")];
            conds.extend(
                (0..12)
                    .map(|b| 1u32 << b)
                    .filter(|b| clear & b != 0)
                    .map(|b| format!("-perm -{b:o}")),
            );
            alts.push(format!("-type {ty} \\( {} \\)", conds.join(" -o ")));
        }
    }
    Ok((!alts.is_empty()).then(|| format!("\\( {} \\)", alts.join(" -o "))))
}

/// True when the owner/group named in `attrs` differ from what the probe found.
pub fn owner_differs(want: &Option<String>, name: &str, id: u32) -> bool {
    match want {
        None => false,
        Some(w) => w != name && w.parse::<u32>().ok() != Some(id),
    }
}

/// The attribute changes `attrs` asks for on an existing path, as diff notes
/// (`mode: 0644 -> 0600`) plus the final mode.
pub struct AttrPlan {
    pub mode: u32,
    pub mode_changes: bool,
    pub owner_changes: bool,
    pub group_changes: bool,
    pub notes: Vec<String>,
}

impl AttrPlan {
    /// The plan of a path whose attributes are left as they are, with this `mode`.
    pub fn unchanged(mode: u32) -> AttrPlan {
        AttrPlan {
            mode,
            mode_changes: false,
            owner_changes: false,
            group_changes: false,
            notes: vec![],
        }
    }

    pub fn any(&self) -> bool {
        self.mode_changes || self.owner_changes || self.group_changes
    }

    /// `chown` argument for the owner/group changes (only the parts that change).
    pub fn chown_spec(&self, attrs: &FileAttrs) -> Option<String> {
        FileAttrs {
            mode: None,
            owner: attrs.owner.clone().filter(|_| self.owner_changes),
            group: attrs.group.clone().filter(|_| self.group_changes),
        }
        .owner_spec()
    }
}

/// Compares `attrs` with a probed path. A missing path gets `default_mode` (or `attrs.mode`
/// applied to it) and no notes.
pub fn plan_attrs(
    attrs: &FileAttrs,
    p: &PathState,
    default_mode: u32,
) -> Result<AttrPlan, ModError> {
    let is_dir = p.kind == Kind::Directory;
    let base = if p.exists() { p.mode } else { default_mode };
    let mode = match &attrs.mode {
        Some(spec) => apply_mode(spec, base, is_dir).map_err(ModError::Failed)?,
        None => base,
    };
    let mut plan = AttrPlan::unchanged(mode);
    if !p.exists() {
        return Ok(plan);
    }
    if mode != p.mode {
        plan.mode_changes = true;
        plan.notes
            .push(format!("mode: {} -> {}", fmt_mode(p.mode), fmt_mode(mode)));
    }
    if let Some(note) = owner_note("owner", &attrs.owner, &p.user, p.uid) {
        plan.owner_changes = true;
        plan.notes.push(note);
    }
    if let Some(note) = owner_note("group", &attrs.group, &p.group, p.gid) {
        plan.group_changes = true;
        plan.notes.push(note);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_modes_apply_like_chmod() {
        assert_eq!(apply_mode("0640", 0o777, false), Ok(0o640));
        assert_eq!(apply_mode("u=rw,g=r,o=", 0o777, false), Ok(0o640));
        assert_eq!(apply_mode("u+x", 0o644, false), Ok(0o744));
        assert_eq!(apply_mode("go-w", 0o666, false), Ok(0o644));
        assert_eq!(apply_mode("a+X", 0o644, false), Ok(0o644));
        assert_eq!(apply_mode("a+X", 0o644, true), Ok(0o755));
        assert_eq!(apply_mode("g=u", 0o640, false), Ok(0o660));
        assert_eq!(apply_mode("u+s", 0o755, false), Ok(0o4755));
        assert!(apply_mode("u=rw,bogus", 0o644, false).is_err());
        assert!(apply_mode("u", 0o644, false).is_err());
    }

    #[test]
    fn masks_leave_out_what_depends_on_the_file() {
        assert_eq!(mode_masks("0644", false), Ok((0o644, 0o7133)));
        let (set, clear) = mode_masks("u=rwX,go=rX", false).unwrap();
        assert_eq!(set, 0o644);
        assert_eq!(clear & 0o111, 0);
        assert_eq!(mode_masks("u=rwX,go=rX", true).unwrap().0, 0o755);
    }
}
