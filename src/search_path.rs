//! Where a relative file name written in a playbook or role is found on the control machine,
//! as Ansible looks for it: in the kind's own subdirectory (`files/`, `templates/`) and then
//! directly in each search directory (the role's directory first, then the playbook's).
//! The loader checks sources with it before any host is touched, modules read them with it at
//! run time, and the `file` lookup uses it too, so the three can never disagree.

use std::path::{Path, PathBuf};

/// Every place `name` may be, most specific first (just `name` itself when it is absolute).
pub fn candidates(search_dirs: &[PathBuf], subdir: &str, name: &str) -> Vec<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return vec![p.to_path_buf()];
    }
    search_dirs
        .iter()
        .flat_map(|d| [d.join(subdir).join(name), d.join(name)])
        .collect()
}

/// The first of [`candidates`] that exists.
pub fn find(search_dirs: &[PathBuf], subdir: &str, name: &str) -> Option<PathBuf> {
    candidates(search_dirs, subdir, name)
        .into_iter()
        .find(|c| c.exists())
}

/// Every existing path that `name` can resolve to: [`find`] for a plain name; for a name with
/// templated parts (`"{{ ansible_os_family }}.yml"`, known only when the task runs on a host),
/// every file of the [`candidates`] whose name matches with each `{{ … }}` as a wildcard.
pub fn resolutions(search_dirs: &[PathBuf], subdir: &str, name: &str) -> Vec<PathBuf> {
    if !crate::template::is_template(name) {
        return find(search_dirs, subdir, name).into_iter().collect();
    }
    static BLOCK: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\{\{.*?\}\}").expect("valid"));
    let pattern = BLOCK
        .replace_all(&glob::Pattern::escape(name), "*")
        .into_owned();
    let mut out: Vec<PathBuf> = candidates(search_dirs, subdir, &pattern)
        .iter()
        .filter_map(|c| glob::glob(&c.to_string_lossy()).ok())
        .flat_map(|paths| paths.filter_map(Result::ok))
        .collect();
    out.dedup();
    out
}

/// Reads a source file, decrypted when it is encrypted with Ansible Vault (as Ansible's
/// `copy` and `template` do): a ciphertext is never put on a host.
pub fn read(path: &Path) -> Result<Vec<u8>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if is_vault(&data) {
        return crate::vault::decrypt(&String::from_utf8_lossy(&data))
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    Ok(data)
}

/// Whether the file at `path` starts as an Ansible Vault ciphertext (only its head is read).
pub fn file_is_vault(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 15];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| is_vault(&head))
}

/// Whether content is an Ansible Vault ciphertext (a file, or a value in a YAML file): the one
/// test of the vault header, used wherever prov reads what a user wrote.
pub fn is_vault(data: &[u8]) -> bool {
    data.starts_with(b"$ANSIBLE_VAULT;")
}

/// The search directories as one line for an error message.
pub fn describe(search_dirs: &[PathBuf]) -> String {
    search_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_files_come_before_the_playbook_and_the_bare_dir() {
        let dirs = [PathBuf::from("/r"), PathBuf::from("/p")];
        let c = candidates(&dirs, "files", "a.conf");
        let c: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            c,
            [
                "/r/files/a.conf",
                "/r/a.conf",
                "/p/files/a.conf",
                "/p/a.conf"
            ]
        );
        assert_eq!(candidates(&dirs, "files", "/abs").len(), 1);
    }
}
