//! `prov vault`: the `ansible-vault` commands, byte-compatible with it (a file encrypted by
//! one is decrypted by the other): `encrypt`, `decrypt`, `view`, `encrypt_string`, `rekey`,
//! `create`, `edit`. Files are replaced atomically (a temporary file beside them, renamed
//! over them, with their mode kept), so an interrupted command leaves the old file whole.

use super::{Secret, VaultArgs, decrypt_with, encrypt, password_from_file};
use crate::search_path::is_vault;
use clap::{Args, Subcommand};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct VaultCmd {
    #[command(subcommand)]
    cmd: Action,
    #[command(flatten)]
    keys: VaultArgs,
    /// With several passwords given: the vault id to encrypt with.
    #[arg(long, global = true)]
    encrypt_vault_id: Option<String>,
}

#[derive(Subcommand)]
enum Action {
    /// Encrypt files in place (or to --output).
    Encrypt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Decrypt files in place (or to --output; `-` for stdout).
    Decrypt {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print decrypted files.
    View {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Encrypt strings for a YAML file (`NAME: !vault |`); from stdin without arguments.
    #[command(name = "encrypt_string", alias = "encrypt-string")]
    EncryptString {
        strings: Vec<String>,
        /// The variable name(s), one per string.
        #[arg(short = 'n', long = "name")]
        names: Vec<String>,
        /// The variable name of the string read from stdin.
        #[arg(long)]
        stdin_name: Option<String>,
    },
    /// Encrypt files again with a new password.
    Rekey {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The new password's file.
        #[arg(long)]
        new_vault_password_file: Option<PathBuf>,
        /// The new password's vault id (`label@FILE`).
        #[arg(long)]
        new_vault_id: Option<String>,
    },
    /// Create an encrypted file with $EDITOR.
    Create { file: PathBuf },
    /// Edit an encrypted file with $EDITOR.
    Edit { file: PathBuf },
}

/// Runs the command; its exit code (0, or 1 with the reason on stderr).
pub fn run(c: VaultCmd) -> i32 {
    match execute(c) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("prov vault: {e}");
            1
        }
    }
}

fn execute(c: VaultCmd) -> Result<(), String> {
    let secrets = c.keys.secrets()?;
    if secrets.is_empty() {
        return Err(
            "no vault password given (--vault-password-file, --ask-vault-pass or --vault-id)"
                .into(),
        );
    }
    let encrypt_with = || choose(&secrets, c.encrypt_vault_id.as_deref());
    if let Action::Encrypt {
        files,
        output: Some(_),
    }
    | Action::Decrypt {
        files,
        output: Some(_),
    } = &c.cmd
        && files.len() > 1
    {
        return Err("--output takes one input file".into());
    }
    match c.cmd {
        Action::Encrypt { files, output } => {
            let s = encrypt_with()?;
            for f in &files {
                let plain = read(f)?;
                if is_vault(&plain) {
                    return Err(format!("{} is already encrypted", f.display()));
                }
                let out = output.as_deref().unwrap_or(f);
                write(out, encrypt(&plain, &s)?.as_bytes())?;
            }
            eprintln!("Encryption successful");
        }
        Action::Decrypt { files, output } => {
            for f in &files {
                let plain = decrypt_file(f, &secrets)?;
                match output.as_deref() {
                    Some(p) if p == Path::new("-") => print(&plain)?,
                    Some(p) => write(p, &plain)?,
                    None => write(f, &plain)?,
                }
            }
            eprintln!("Decryption successful");
        }
        Action::View { files } => {
            for f in &files {
                print(&decrypt_file(f, &secrets)?)?;
            }
        }
        Action::EncryptString {
            strings,
            names,
            stdin_name,
        } => {
            let s = encrypt_with()?;
            let mut items: Vec<(Option<String>, String)> = vec![];
            if strings.is_empty() {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| format!("reading stdin: {e}"))?;
                items.push((stdin_name, text));
            }
            for (i, v) in strings.into_iter().enumerate() {
                items.push((names.get(i).cloned(), v));
            }
            for (name, value) in items {
                println!(
                    "{}",
                    vault_string(name.as_deref(), &encrypt(value.as_bytes(), &s)?)
                );
            }
            eprintln!("Encryption successful");
        }
        Action::Rekey {
            files,
            new_vault_password_file,
            new_vault_id,
        } => {
            let new = new_secret(new_vault_password_file, new_vault_id)?;
            for f in &files {
                let plain = decrypt_file(f, &secrets)?;
                write(f, encrypt(&plain, &new)?.as_bytes())?;
            }
            eprintln!("Rekey successful");
        }
        Action::Create { file } => {
            if file.exists() {
                return Err(format!("{} exists; use `prov vault edit`", file.display()));
            }
            let s = encrypt_with()?;
            let plain = edit_text(&file, b"")?;
            write(&file, encrypt(&plain, &s)?.as_bytes())?;
        }
        Action::Edit { file } => {
            let s = encrypt_with()?;
            let old = decrypt_file(&file, &secrets)?;
            let plain = edit_text(&file, &old)?;
            if plain != old {
                write(&file, encrypt(&plain, &s)?.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// The secret to encrypt with: the one given, or the one of `--encrypt-vault-id`.
fn choose(secrets: &[Secret], id: Option<&str>) -> Result<Secret, String> {
    match id {
        Some(id) => secrets
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| format!("no password was given for the vault id '{id}'")),
        None if secrets.len() == 1 => Ok(secrets[0].clone()),
        None => {
            Err("several vault passwords were given: choose one with --encrypt-vault-id".into())
        }
    }
}

fn new_secret(file: Option<PathBuf>, id: Option<String>) -> Result<Secret, String> {
    match (file, id) {
        (Some(f), None) => Ok(Secret {
            id: "default".into(),
            password: password_from_file(&f)?,
        }),
        (None, Some(id)) => {
            let keys = VaultArgs {
                ids: vec![id],
                ..Default::default()
            };
            keys.secrets()?
                .pop()
                .ok_or_else(|| "no new password".to_string())
        }
        _ => Err("rekey needs one of --new-vault-password-file and --new-vault-id".into()),
    }
}

/// `NAME: !vault |` (or the bare `!vault |` value) with the envelope indented as
/// `ansible-vault encrypt_string` prints it.
fn vault_string(name: Option<&str>, envelope: &str) -> String {
    let body: Vec<String> = envelope.lines().map(|l| format!("          {l}")).collect();
    match name {
        Some(n) => format!("{n}: !vault |\n{}", body.join("\n")),
        None => format!("!vault |\n{}", body.join("\n")),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn decrypt_file(path: &Path, secrets: &[Secret]) -> Result<Vec<u8>, String> {
    let data = read(path)?;
    if !is_vault(&data) {
        return Err(format!(
            "{} is not encrypted with Ansible Vault",
            path.display()
        ));
    }
    decrypt_with(&String::from_utf8_lossy(&data), secrets)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn print(data: &[u8]) -> Result<(), String> {
    std::io::stdout()
        .write_all(data)
        .map_err(|e| format!("writing stdout: {e}"))
}

/// Replaces `path` with `data` atomically, keeping its mode (0600 for a new file).
fn write(path: &Path, data: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mode = std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777);
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    tmp.write_all(data).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode)).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// The text after the user edited it with `$EDITOR` (vi by default), in a private temporary
/// file that is removed afterwards.
fn edit_text(file: &Path, initial: &[u8]) -> Result<Vec<u8>, String> {
    let suffix = file
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .suffix(&suffix)
        .tempfile()
        .map_err(|e| format!("a temporary file: {e}"))?;
    tmp.write_all(initial)
        .and_then(|()| tmp.flush())
        .map_err(|e| format!("a temporary file: {e}"))?;
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(tmp.path())
        .status()
        .map_err(|e| format!("running {editor}: {e}"))?;
    if !status.success() {
        return Err(format!("{editor} exited {}", status.code().unwrap_or(-1)));
    }
    read(tmp.path())
}
