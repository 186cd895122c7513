//! User and group names, as shadow-utils accept them, checked before they reach a command.

/// User and group names: what shadow-utils accept, and never an option or a number (which
/// `getent`/`id` would read as an id). The error is the message to show.
pub fn check_name(kind: &str, n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 256
        && !n.starts_with('-')
        && !n.bytes().all(|b| b.is_ascii_digit())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b) || b == b'$' || b >= 0x80);
    if ok {
        Ok(())
    } else {
        Err(format!("invalid {kind} name '{n}'"))
    }
}
