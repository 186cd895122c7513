//! Ansible Vault: the `$ANSIBLE_VAULT;1.1;AES256` and `1.2` (with a vault id) envelopes, read
//! and written byte-compatibly with `ansible-vault` (AES-256-CTR, HMAC-SHA256 over the
//! ciphertext, keys from PBKDF2-SHA256 with 10,000 rounds over a random 32-byte salt, PKCS#7
//! padding, the body hex-encoded twice in lines of 80).
//!
//! The secrets (passwords) of a run are set once, from `--vault-password-file`,
//! `--ask-vault-pass`, `--vault-id` or `ANSIBLE_VAULT_PASSWORD_FILE` ([`VaultArgs`]), into a
//! process-wide keyring that the YAML loader, the inventory, `copy`/`template` sources and the
//! `file` lookup read. Every decrypted value is remembered as a secret: the runner and the log
//! scrub it from all output.

pub mod cmd;

use aes::cipher::{KeyIvInit, StreamCipher};
use clap::Args;
use hmac::{KeyInit, Mac};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;
type HmacSha256 = hmac::Hmac<sha2::Sha256>;

const HEADER: &str = "$ANSIBLE_VAULT";
const ROUNDS: u32 = 10_000;
/// Ansible writes the hex body in lines of this many characters.
const LINE: usize = 80;

/// One vault password, with the id (`label@source`) it was given under.
#[derive(Clone)]
pub struct Secret {
    pub id: String,
    pub password: Vec<u8>,
}

/// The options that give vault passwords, shared by every command that reads a playbook.
#[derive(Args, Clone, Default, Debug)]
pub struct VaultArgs {
    /// A file holding the vault password (or an executable that prints it); repeatable.
    #[arg(
        long = "vault-password-file",
        alias = "vault-pass-file",
        env = "ANSIBLE_VAULT_PASSWORD_FILE",
        global = true
    )]
    pub password_files: Vec<PathBuf>,
    /// Ask for the vault password (without echo).
    #[arg(
        short = 'J',
        long = "ask-vault-pass",
        alias = "ask-vault-password",
        global = true
    )]
    pub ask: bool,
    /// A vault id and where its password comes from: `label@FILE`, `label@prompt`, or FILE;
    /// repeatable.
    #[arg(long = "vault-id", global = true)]
    pub ids: Vec<String>,
}

impl VaultArgs {
    /// The secrets these options give, asking for passwords where they say `prompt`.
    pub fn secrets(&self) -> Result<Vec<Secret>, String> {
        let mut out = vec![];
        for id in &self.ids {
            let (label, source) = match id.split_once('@') {
                Some((l, s)) => (l.to_string(), s.to_string()),
                None => ("default".to_string(), id.clone()),
            };
            let password = if source == "prompt" {
                ask(&format!("Vault password ({label})"))?
            } else {
                password_from_file(Path::new(&source))?
            };
            out.push(Secret {
                id: label,
                password,
            });
        }
        for f in &self.password_files {
            out.push(Secret {
                id: "default".into(),
                password: password_from_file(f)?,
            });
        }
        if self.ask {
            out.push(Secret {
                id: "default".into(),
                password: ask("Vault password")?,
            });
        }
        // ansible.cfg's vault_password_file, when no option gives a password.
        if out.is_empty()
            && let Some(f) = crate::config::get().vault_password_file()
        {
            out.push(Secret {
                id: "default".into(),
                password: password_from_file(&f)?,
            });
        }
        Ok(out)
    }

    /// Sets the keyring from these options (a no-op when they give none).
    pub fn install(&self) -> Result<(), String> {
        let secrets = self.secrets()?;
        if !secrets.is_empty() {
            set_keyring(secrets);
        }
        Ok(())
    }
}

fn ask(prompt: &str) -> Result<Vec<u8>, String> {
    crate::prompt::read_secret(prompt)
        .map(String::into_bytes)
        .ok_or_else(|| format!("{prompt}: nothing was read"))
}

/// A password file's content without surrounding whitespace, or, when the file is
/// executable, what it prints (without its trailing newline), as Ansible reads them.
pub fn password_from_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("the vault password file {}: {e}", path.display()))?;
    let data = if meta.permissions().mode() & 0o111 != 0 {
        let out = std::process::Command::new(path)
            .output()
            .map_err(|e| format!("running the vault password script {}: {e}", path.display()))?;
        if !out.status.success() {
            return Err(format!(
                "the vault password script {} exited {}: {}",
                path.display(),
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let mut s = out.stdout;
        while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            s.pop();
        }
        s
    } else {
        let raw = std::fs::read(path)
            .map_err(|e| format!("the vault password file {}: {e}", path.display()))?;
        String::from_utf8_lossy(&raw).trim().as_bytes().to_vec()
    };
    if data.is_empty() {
        return Err(format!(
            "the vault password file {} is empty",
            path.display()
        ));
    }
    Ok(data)
}

static KEYRING: RwLock<Vec<Secret>> = RwLock::new(Vec::new());
static DECRYPTED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The secrets every decryption of this process tries.
pub fn set_keyring(secrets: Vec<Secret>) {
    if let Ok(mut k) = KEYRING.write() {
        *k = secrets;
    }
}

/// Decrypts an envelope with the keyring; the plaintext is remembered as a secret (as a
/// whole and line by line).
pub fn decrypt(envelope: &str) -> Result<Vec<u8>, String> {
    let plain = decrypt_unremembered(envelope)?;
    remember(&String::from_utf8_lossy(&plain));
    Ok(plain)
}

/// [`decrypt`] for a document whose values the caller remembers one by one (a YAML file:
/// its keys are not secrets).
pub fn decrypt_unremembered(envelope: &str) -> Result<Vec<u8>, String> {
    let secrets = KEYRING.read().map(|k| k.clone()).unwrap_or_default();
    if secrets.is_empty() {
        return Err(
            "no vault password was given (--vault-password-file, --ask-vault-pass or --vault-id)"
                .into(),
        );
    }
    decrypt_with(envelope, &secrets)
}

/// Whether this process decrypted any value so far.
pub fn has_decrypted() -> bool {
    DECRYPTED.read().map(|d| !d.is_empty()).unwrap_or(true)
}

/// Values decrypted so far by this process (for the runner to scrub from its events).
pub fn decrypted_values() -> Vec<String> {
    DECRYPTED.read().map(|d| d.clone()).unwrap_or_default()
}

/// `text` with every value decrypted so far replaced by `********` (read in place: this runs
/// for every event).
pub fn scrub(text: String) -> String {
    match DECRYPTED.read() {
        Ok(d) => d
            .iter()
            .fold(text, |t, s| t.replace(s.as_str(), "********")),
        Err(_) => text,
    }
}

/// The string values (not the keys) of a decrypted document: secrets too.
pub fn remember_values(doc: &serde_json::Value) {
    match doc {
        serde_json::Value::String(s) => remember(s),
        serde_json::Value::Array(a) => a.iter().for_each(remember_values),
        serde_json::Value::Object(m) => m.values().for_each(remember_values),
        _ => {}
    }
}

/// A decrypted text is a secret: as a whole, and each of its longer lines (a diff shows
/// lines, not whole files).
fn remember(plain: &str) {
    let mut parts = vec![plain.trim_end().to_string()];
    parts.extend(
        plain
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().count() >= 8)
            .map(str::to_string),
    );
    // As the runner's own secrets: very short values would blank out ordinary words.
    for p in parts.into_iter().filter(|p| p.len() >= 6) {
        crate::output::register_secret(&p);
        if let Ok(mut d) = DECRYPTED.write()
            && !d.contains(&p)
        {
            d.push(p);
        }
    }
}

/// The parts of an envelope: its vault id (1.2), salt, HMAC and ciphertext.
struct Envelope {
    id: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn parse(envelope: &str) -> Result<Envelope, String> {
    let text = envelope.trim();
    let (header, body) = text.split_once('\n').unwrap_or((text, ""));
    let fields: Vec<&str> = header.trim().split(';').collect();
    if fields.first() != Some(&HEADER) || fields.len() < 3 {
        return Err("not an Ansible Vault envelope".into());
    }
    match (fields[1], fields[2]) {
        ("1.1" | "1.2", "AES256") => {}
        (v, c) => return Err(format!("unsupported vault format {v} with cipher {c}")),
    }
    let id = (fields[1] == "1.2").then(|| fields.get(3).unwrap_or(&"").to_string());
    let hex: String = body.split_whitespace().collect();
    let inner = unhex(&hex).ok_or("the vault body is not hexadecimal")?;
    let inner = String::from_utf8(inner).map_err(|_| "the vault body is malformed")?;
    let mut parts = inner.split('\n');
    let mut next = || {
        parts
            .next()
            .and_then(|p| unhex(p.trim()))
            .ok_or("the vault body is malformed")
    };
    Ok(Envelope {
        id,
        salt: next()?,
        hmac: next()?,
        ciphertext: next()?,
    })
}

/// The AES key, HMAC key and counter block derived from a password and salt.
fn keys(password: &[u8], salt: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let mut out = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, ROUNDS, &mut out);
    let mut aes = [0u8; 32];
    let mut mac = [0u8; 32];
    let mut iv = [0u8; 16];
    aes.copy_from_slice(&out[..32]);
    mac.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (aes, mac, iv)
}

/// Decrypts with the first secret whose HMAC matches (those of the envelope's vault id
/// first).
pub fn decrypt_with(envelope: &str, secrets: &[Secret]) -> Result<Vec<u8>, String> {
    let env = parse(envelope)?;
    let mut order: Vec<&Secret> = secrets
        .iter()
        .filter(|s| Some(&s.id) == env.id.as_ref())
        .collect();
    order.extend(secrets.iter().filter(|s| Some(&s.id) != env.id.as_ref()));
    for s in order {
        let (aes_key, mac_key, iv) = keys(&s.password, &env.salt);
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(&mac_key) else {
            continue;
        };
        mac.update(&env.ciphertext);
        if mac.verify_slice(&env.hmac).is_err() {
            continue;
        }
        let mut data = env.ciphertext.clone();
        Aes256Ctr::new(&aes_key.into(), &iv.into()).apply_keystream(&mut data);
        return unpad(data);
    }
    Err("Decryption failed (no vault secrets were found that could decrypt)".into())
}

fn unpad(mut data: Vec<u8>) -> Result<Vec<u8>, String> {
    let n = usize::from(*data.last().ok_or("the vault plaintext is empty")?);
    if n == 0
        || n > 16
        || n > data.len()
        || !data[data.len() - n..].iter().all(|b| usize::from(*b) == n)
    {
        return Err("the vault plaintext has bad padding".into());
    }
    data.truncate(data.len() - n);
    Ok(data)
}

/// Encrypts `plain` with `secret` as `ansible-vault` does: format 1.1, or 1.2 with the
/// secret's id when that is not `default`.
pub fn encrypt(plain: &[u8], secret: &Secret) -> Result<String, String> {
    let mut salt = [0u8; 32];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    Ok(encrypt_salted(plain, secret, &salt))
}

fn encrypt_salted(plain: &[u8], secret: &Secret, salt: &[u8]) -> String {
    let (aes_key, mac_key, iv) = keys(&secret.password, salt);
    let pad = 16 - plain.len() % 16;
    let mut data = plain.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    Aes256Ctr::new(&aes_key.into(), &iv.into()).apply_keystream(&mut data);
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&mac_key).expect("any key length");
    mac.update(&data);
    let tag = mac.finalize().into_bytes();
    let inner = format!("{}\n{}\n{}", hex(salt), hex(&tag), hex(&data));
    let body = hex(inner.as_bytes());
    let header = if secret.id == "default" {
        format!("{HEADER};1.1;AES256")
    } else {
        format!("{HEADER};1.2;AES256;{}", secret.id)
    };
    let mut out = header;
    for chunk in body.as_bytes().chunks(LINE) {
        out.push('\n');
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
    }
    out.push('\n');
    out
}

fn hex(data: &[u8]) -> String {
    hex::encode(data)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, pw: &str) -> Secret {
        Secret {
            id: id.into(),
            password: pw.as_bytes().to_vec(),
        }
    }

    /// Made by `ansible-vault encrypt_string --vault-password-file FILE hello` (ansible-core
    /// 2.19.14), FILE holding `s3cret`.
    const BY_ANSIBLE: &str = "$ANSIBLE_VAULT;1.1;AES256
          62353965386634353439346464616237656534633064616630396463646466643035383334656238
          6437653234633236333065353933366135303139303630360a666437333363363965306134353532
          37316538363931326135343433326635653033623637323665383965656663663334346230373164
          3833393966633263380a336263306234643639386531613134636361653333393965663363653661
          3266";

    #[test]
    fn round_trips_and_refuses_a_wrong_password() {
        for id in ["default", "prod"] {
            let s = secret(id, "pw");
            let env = encrypt(b"the plaintext\n", &s).unwrap();
            assert!(env.starts_with(if id == "default" {
                "$ANSIBLE_VAULT;1.1;AES256\n"
            } else {
                "$ANSIBLE_VAULT;1.2;AES256;prod\n"
            }));
            assert!(env.lines().skip(1).all(|l| l.len() <= LINE));
            assert_eq!(decrypt_with(&env, &[s]).unwrap(), b"the plaintext\n");
            let err = decrypt_with(&env, &[secret(id, "other")]).unwrap_err();
            assert!(err.contains("Decryption failed"), "{err}");
        }
        // Every length around a block boundary pads and unpads.
        for n in [0, 1, 15, 16, 17, 31, 32, 33] {
            let plain = vec![b'x'; n];
            let s = secret("default", "k");
            assert_eq!(
                decrypt_with(&encrypt(&plain, &s).unwrap(), &[s]).unwrap(),
                plain
            );
        }
    }

    #[test]
    fn the_same_salt_gives_the_same_bytes_and_ids_are_tried_first() {
        let s = secret("default", "pw");
        let salt = [7u8; 32];
        assert_eq!(
            encrypt_salted(b"x", &s, &salt),
            encrypt_salted(b"x", &s, &salt)
        );
        let env = encrypt(b"v", &secret("prod", "right")).unwrap();
        let keys = [secret("dev", "wrong"), secret("prod", "right")];
        assert_eq!(decrypt_with(&env, &keys).unwrap(), b"v");
        assert!(parse("$ANSIBLE_VAULT;9.9;AES256\n00").is_err());
        assert!(parse("hello").is_err());
    }

    #[test]
    fn reads_what_ansible_vault_wrote() {
        let keys = [secret("default", "s3cret")];
        assert_eq!(decrypt_with(BY_ANSIBLE, &keys).unwrap(), b"hello");
        let broken = BY_ANSIBLE.replace("3266", "32");
        assert!(decrypt_with(&broken, &keys).is_err());
        let tampered = BY_ANSIBLE.replace("3266", "3366");
        assert!(decrypt_with(&tampered, &keys).is_err());
    }
}
