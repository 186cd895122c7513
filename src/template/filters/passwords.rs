//! Passwords: the `password_hash` filter and the `password` lookup.
//!
//! Ansible hashes with passlib, whose choices show in the result: SHA-crypt with 656,000
//! rounds for `sha512` (535,000 for `sha256`, and `rounds=` left out of the text only at the
//! implicit 5,000), bcrypt at cost 12 with the `2b` ident, and salts that must be made of
//! `./0-9A-Za-z` and fit the algorithm. A hash made here with the same salt is the same text,
//! so `user: password=...` stays unchanged on a host Ansible set up.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use minijinja::value::{Kwargs, Rest, Value, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, State};

use super::random::Draws;
use super::{ensure_defined, invalid, to_text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("password_hash", password_hash);
}

/// One of the algorithms passlib hashes with for Ansible.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Algorithm {
    Md5,
    Sha256,
    Sha512,
    Bcrypt,
}

impl Algorithm {
    /// By `password_hash`'s names (`sha512`) or passlib's (`sha512_crypt`).
    fn named(name: &str) -> Result<Algorithm, Error> {
        Ok(match name {
            "md5" | "md5_crypt" => Algorithm::Md5,
            "sha256" | "sha256_crypt" => Algorithm::Sha256,
            "sha512" | "sha512_crypt" => Algorithm::Sha512,
            "blowfish" | "bcrypt" => Algorithm::Bcrypt,
            other => {
                return Err(invalid(format!(
                    "{other} is not in the list of supported passlib algorithms: md5, blowfish, sha256, sha512"
                )));
            }
        })
    }

    /// passlib's default salt length, and the longest salt it takes.
    fn salt_sizes(self) -> (usize, usize) {
        match self {
            Algorithm::Md5 => (8, 8),
            Algorithm::Sha256 | Algorithm::Sha512 => (16, 16),
            Algorithm::Bcrypt => (22, 22),
        }
    }

    /// The rounds Ansible asks passlib for when the playbook does not say.
    fn implicit_rounds(self) -> Option<u32> {
        match self {
            Algorithm::Md5 => None,
            Algorithm::Sha256 => Some(535_000),
            Algorithm::Sha512 => Some(656_000),
            Algorithm::Bcrypt => Some(12),
        }
    }
}

/// `password_hash(hashtype='sha512', salt=None, salt_size=None, rounds=None, ident=None)`.
fn password_hash(
    state: &State,
    password: Value,
    args: Rest<ValueOrKwargs>,
) -> Result<String, Error> {
    ensure_defined(state, &password)?;
    let args = args.into_values();
    let (pos, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let arg = |i: usize, name: &str| -> Result<Option<Value>, Error> {
        let named: Option<Value> = kwargs.get(name)?;
        Ok(pos.get(i).cloned().or(named).filter(|v| !v.is_none()))
    };
    let hashtype = arg(0, "hashtype")?.map(|v| to_text(&v));
    let salt = arg(1, "salt")?
        .map(|v| to_text(&v))
        .filter(|s| !s.is_empty());
    let salt_size = arg(2, "salt_size")?.map(usize::try_from).transpose()?;
    let rounds = arg(3, "rounds")?.map(u32::try_from).transpose()?;
    let ident = arg(4, "ident")?.map(|v| to_text(&v));
    kwargs.assert_all_used()?;
    let algorithm = Algorithm::named(hashtype.as_deref().unwrap_or("sha512"))?;
    let salt = match salt {
        Some(s) => s,
        None => random_salt(salt_size.unwrap_or(algorithm.salt_sizes().0)),
    };
    hash(
        &to_text(&password),
        algorithm,
        &salt,
        rounds,
        ident.as_deref(),
    )
}

/// The crypt(3) text of `password` hashed as passlib would. (md5 and sha256 crypt are old
/// algorithms, and the crate says so; playbooks still ask for them by name.)
#[allow(deprecated)]
fn hash(
    password: &str,
    algorithm: Algorithm,
    salt: &str,
    rounds: Option<u32>,
    ident: Option<&str>,
) -> Result<String, Error> {
    check_salt(algorithm, salt)?;
    let rounds = rounds.filter(|r| *r != 0).or(algorithm.implicit_rounds());
    let failed = |e: pwhash::error::Error| invalid(format!("could not hash the secret: {e}"));
    match algorithm {
        Algorithm::Md5 => {
            pwhash::md5_crypt::hash_with(salt_setup(salt, None), password).map_err(failed)
        }
        Algorithm::Sha256 | Algorithm::Sha512 => {
            let rounds = rounds.unwrap_or(5000);
            if !(1000..=999_999_999).contains(&rounds) {
                return Err(invalid(format!(
                    "could not hash the secret: rounds must be between 1000 and 999999999, not {rounds}"
                )));
            }
            // passlib writes `rounds=` only when they are not the implicit 5,000.
            let setup = salt_setup(salt, (rounds != 5000).then_some(rounds));
            match algorithm {
                Algorithm::Sha256 => pwhash::sha256_crypt::hash_with(setup, password),
                _ => pwhash::sha512_crypt::hash_with(setup, password),
            }
            .map_err(failed)
        }
        Algorithm::Bcrypt => bcrypt(password, salt, rounds.unwrap_or(12), ident.unwrap_or("2b")),
    }
}

fn salt_setup(salt: &str, rounds: Option<u32>) -> pwhash::HashSetup<'_> {
    pwhash::HashSetup {
        salt: Some(salt),
        rounds,
    }
}

/// passlib refuses a salt with other characters, or longer than the algorithm takes (bcrypt's
/// must be exactly 22), where crypt(3) would cut it short.
fn check_salt(algorithm: Algorithm, salt: &str) -> Result<(), Error> {
    if let Some(c) = salt
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && *c != '.' && *c != '/')
    {
        return Err(invalid(format!(
            "could not hash the secret: invalid character '{c}' in the salt (./0-9A-Za-z only)"
        )));
    }
    let (_, max) = algorithm.salt_sizes();
    let fits = match algorithm {
        Algorithm::Bcrypt => salt.len() == max,
        _ => salt.len() <= max,
    };
    if !fits {
        return Err(invalid(format!(
            "could not hash the secret: the salt must be {} {max} characters, not {}",
            if algorithm == Algorithm::Bcrypt {
                "exactly"
            } else {
                "at most"
            },
            salt.len()
        )));
    }
    Ok(())
}

/// bcrypt as passlib writes it; a salt whose last character carries bits bcrypt does not use
/// is first repaired (passlib's `bcrypt64.repair_unused`), so the text is the same.
fn bcrypt(password: &str, salt: &str, cost: u32, ident: &str) -> Result<String, Error> {
    const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let variant = match ident {
        "2a" => pwhash::bcrypt::BcryptVariant::V2a,
        "2b" => pwhash::bcrypt::BcryptVariant::V2b,
        "2y" => pwhash::bcrypt::BcryptVariant::V2y,
        other => return Err(invalid(format!("bcrypt ident '{other}' is not supported"))),
    };
    if !(4..=31).contains(&cost) {
        return Err(invalid(format!(
            "could not hash the secret: bcrypt rounds must be between 4 and 31, not {cost}"
        )));
    }
    let mut salt = salt.as_bytes().to_vec();
    if let Some(last) = salt.last_mut() {
        let index = ALPHABET.iter().position(|c| c == last).unwrap_or(0);
        *last = ALPHABET[index & 0x30];
    }
    let salt = String::from_utf8(salt).expect("ASCII salt");
    let setup = pwhash::bcrypt::BcryptSetup {
        salt: Some(&salt),
        cost: Some(cost),
        variant: Some(variant),
    };
    pwhash::bcrypt::hash_with(setup, password)
        .map_err(|e| invalid(format!("could not hash the secret: {e}")))
}

/// Checks a passlib algorithm name (`sha512_crypt`), as `vars_prompt`'s `encrypt` takes it.
pub fn check_hash_algorithm(name: &str) -> Result<(), String> {
    match name {
        "md5_crypt" | "sha256_crypt" | "sha512_crypt" | "bcrypt" => Ok(()),
        other => Err(format!(
            "encrypt '{other}' is not supported by prov (md5_crypt, sha256_crypt, sha512_crypt, bcrypt)"
        )),
    }
}

/// `secret` hashed with a passlib algorithm (`sha512_crypt`) as Ansible's `do_encrypt` does:
/// the given salt, else a random one of `salt_size` (or the algorithm's) characters.
pub fn hash_password(
    secret: &str,
    algorithm: &str,
    salt: Option<&str>,
    salt_size: Option<usize>,
) -> Result<String, String> {
    check_hash_algorithm(algorithm)?;
    let alg = Algorithm::named(algorithm).map_err(|e| e.to_string())?;
    let salt = match salt {
        Some(s) => s.to_string(),
        None => random_salt(salt_size.unwrap_or(alg.salt_sizes().0)),
    };
    hash(secret, alg, &salt, None, None).map_err(|e| e.to_string())
}

/// A salt of `./0-9A-Za-z` from the system's entropy (Ansible's `random_salt`).
fn random_salt(len: usize) -> String {
    const CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789./";
    random_text(len, CHARS, &mut Draws::System)
}

fn random_text(len: usize, chars: &str, draws: &mut Draws) -> String {
    let chars: Vec<char> = chars.chars().collect();
    (0..len)
        .map(|_| chars[draws.below(chars.len() as u64) as usize])
        .collect()
}

/// The `password` lookup's settings for one term (`PATH length=15 chars=digits`).
struct PasswordTerm {
    path: PathBuf,
    length: usize,
    chars: String,
    encrypt: Option<Algorithm>,
    ident: Option<String>,
    seed: Option<String>,
}

/// `lookup('password', 'PATH [length=N] [chars=...] [encrypt=...] [ident=...] [seed=...]')`:
/// the password stored in PATH (relative to the playbook's directory), made at random and
/// stored there (mode 0600, directories 0700) the first time; with `encrypt`, its hash with a
/// salt stored beside it, so the hash is the same on every run.
pub(super) fn lookup_password(
    state: &State,
    terms: &[String],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let mut out = vec![];
    for term in terms {
        let t = parse_term(state, term, kwargs)?;
        if super::lookups::described_not_run(format!(
            "a lookup reads or creates the password file {} when the task runs",
            t.path.display()
        )) {
            out.push(Value::from(""));
            continue;
        }
        out.push(Value::from(stored_password(&t)?));
    }
    Ok(out)
}

fn parse_term(state: &State, term: &str, kwargs: &Kwargs) -> Result<PasswordTerm, Error> {
    let (relpath, params) = term.split_once(' ').unwrap_or((term, ""));
    let parsed = crate::playbook::kv::parse(params, false).map_err(invalid)?;
    if let Some(raw) = parsed.raw {
        return Err(invalid(format!(
            "unrecognized value '{raw}' after the path of the password lookup"
        )));
    }
    // As in Ansible, settings in the term replace the keyword arguments altogether.
    let inline_only = !parsed.options.is_empty();
    let get = |name: &str| -> Result<Option<String>, Error> {
        let inline = parsed
            .options
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let named: Option<Value> = kwargs.get(name)?;
        Ok(match inline_only {
            true => inline,
            false => named.map(|v| to_text(&v)),
        })
    };
    let length = get("length")?
        .map(|l| {
            l.parse::<usize>()
                .map_err(|_| invalid(format!("length '{l}' is not a number")))
        })
        .transpose()?
        .unwrap_or(20);
    // A `chars` keyword may be a list of names (`chars=['ascii_lowercase', 'digits']`).
    let chars_list: Option<Vec<String>> = match (inline_only, kwargs.get::<Option<Value>>("chars")?)
    {
        (false, Some(v)) if super::is_list(&v) => {
            Some(v.try_iter()?.map(|w| to_text(&w)).collect())
        }
        _ => None,
    };
    let chars = match chars_list {
        Some(words) => chars_of(&words),
        None => candidate_chars(get("chars")?.as_deref()),
    };
    if chars.is_empty() {
        return Err(invalid(
            "the password lookup was given no characters to make a password of",
        ));
    }
    let encrypt = get("encrypt")?
        .map(|e| match e.as_str() {
            "md5_crypt" | "sha256_crypt" | "sha512_crypt" | "bcrypt" => Algorithm::named(&e),
            other => Err(invalid(format!(
                "encrypt '{other}' is not supported by prov (md5_crypt, sha256_crypt, sha512_crypt, bcrypt)"
            ))),
        })
        .transpose()?;
    let (ident, seed) = (get("ident")?, get("seed")?);
    if let Some((unknown, _)) = parsed
        .options
        .iter()
        .find(|(k, _)| !["length", "chars", "encrypt", "ident", "seed"].contains(&k.as_str()))
    {
        return Err(invalid(format!(
            "unrecognized parameter given to password lookup: {unknown}"
        )));
    }
    let path = match Path::new(relpath) {
        p if p.is_absolute() => p.to_path_buf(),
        p => super::lookups::search_dirs(state)
            .pop()
            .unwrap_or_default()
            .join(p),
    };
    Ok(PasswordTerm {
        path,
        length,
        chars,
        encrypt,
        ident,
        seed,
    })
}

/// The characters a password is made of: Python `string` constants by name, other words as
/// they are (`,,` is a comma), quotes removed.
fn candidate_chars(spec: Option<&str>) -> String {
    let words: Vec<String> = match spec {
        None => vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()],
        Some(s) => {
            let mut words = vec![];
            if s.contains(",,") {
                words.push(",".to_string());
            }
            words.extend(
                s.replace(",,", ",")
                    .split(',')
                    .filter(|w| !w.is_empty())
                    .map(String::from),
            );
            words
        }
    };
    chars_of(&words)
}

/// The characters of a list of names and literal words (see [`candidate_chars`]).
fn chars_of(words: &[String]) -> String {
    let lower = "abcdefghijklmnopqrstuvwxyz";
    let upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let punctuation = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;
    let chars: String = words
        .iter()
        .map(|w| match w.as_str() {
            "ascii_letters" => format!("{lower}{upper}"),
            "ascii_lowercase" => lower.into(),
            "ascii_uppercase" => upper.into(),
            "digits" => "0123456789".into(),
            "hexdigits" => "0123456789abcdefABCDEF".into(),
            "octdigits" => "01234567".into(),
            "punctuation" => punctuation.into(),
            "whitespace" => " \t\n\r\x0b\x0c".into(),
            "printable" => format!("0123456789{lower}{upper}{punctuation} \t\n\r\x0b\x0c"),
            other => other.into(),
        })
        .collect();
    chars.replace(['"', '\''], "")
}

/// Reads the password file, making (and storing) what is missing, as Ansible does.
fn stored_password(t: &PasswordTerm) -> Result<String, Error> {
    // Hosts render in parallel: one at a time makes a missing file, the others read it.
    static FILES: Mutex<()> = Mutex::new(());
    let _one_at_a_time = FILES.lock().unwrap_or_else(|p| p.into_inner());
    let dev_null = t.path == Path::new("/dev/null");
    let content = match dev_null {
        true => None,
        false => read_password_file(&t.path)?,
    };
    let mut changed = content.is_none();
    let (password, mut salt, mut ident) = match &content {
        Some(c) => parse_content(c),
        None => {
            let mut draws =
                Draws::from_seed(t.seed.as_ref().map(|s| Value::from(s.as_str())).as_ref())?;
            (random_text(t.length, &t.chars, &mut draws), None, None)
        }
    };
    if let (Some(alg), None) = (t.encrypt, &salt) {
        salt = Some(random_salt(alg.salt_sizes().0));
        changed = true;
    }
    match (&ident, &t.ident) {
        (None, _) => ident = t.ident.clone(),
        (Some(stored), Some(asked)) if stored != asked => {
            return Err(invalid(format!(
                "The ident parameter provided ({asked}) does not match the stored one ({stored})."
            )));
        }
        _ => {}
    }
    if t.encrypt == Some(Algorithm::Bcrypt) && ident.is_none() {
        ident = Some("2b".into());
        changed = true;
    }
    if changed && !dev_null {
        write_password_file(
            &t.path,
            &format_content(&password, salt.as_deref(), ident.as_deref()),
        )?;
    }
    match t.encrypt {
        Some(alg) => hash(
            &password,
            alg,
            salt.as_deref().unwrap_or_default(),
            None,
            ident.as_deref(),
        ),
        None => Ok(password),
    }
}

fn read_password_file(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim_end().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(invalid(format!("could not read {}: {e}", path.display()))),
    }
}

/// `PASSWORD[ salt=SALT[ ident=IDENT]]`, split from the right as Ansible does.
fn parse_content(content: &str) -> (String, Option<String>, Option<String>) {
    let Some((password, rest)) = content.rsplit_once(" salt=") else {
        return (content.to_string(), None, None);
    };
    match rest.rsplit_once(" ident=") {
        Some((salt, ident)) => (password.into(), Some(salt.into()), Some(ident.into())),
        None => (
            password.into(),
            Some(rest.into()).filter(|s: &String| !s.is_empty()),
            None,
        ),
    }
}

fn format_content(password: &str, salt: Option<&str>, ident: Option<&str>) -> String {
    match (salt, ident) {
        (None, _) => password.to_string(),
        (Some(s), None) => format!("{password} salt={s}"),
        (Some(s), Some(i)) => format!("{password} salt={s} ident={i}"),
    }
}

/// Writes the file whole or not at all (a temporary file renamed over it), mode 0600, in
/// directories made 0700.
fn write_password_file(path: &Path, content: &str) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let failed = |e: std::io::Error| invalid(format!("could not write {}: {e}", path.display()));
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(failed)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(failed)?;
    tmp.write_all(format!("{content}\n").as_bytes())
        .map_err(failed)?;
    tmp.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{render, render_err};

    // Expected texts printed by passlib 1.7.4 (`ansible-core`'s `password_hash`).
    #[test]
    fn hashes_are_passlibs() {
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt') }}"),
            "$6$rounds=656000$mysalt$cDA0t8lm/qt.LT6DzpoHxJ.NwTpx.WTkOPwhseSva8pRixDSH2./ffedCjAMbTX1Uo1QNT7jJPJ6FIzU2i59K/"
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('sha256', 'mysalt', rounds=5000) }}"),
            "$5$mysalt$I2SNajjJ3Gc5gIR/tkrLOGngF8wqv59buJCqxh.o9s8"
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('md5', salt='abcdefgh') }}"),
            "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1"
        );
        assert_eq!(
            render(
                "{{ 'secret' | password_hash('blowfish', '1234567890123456789012', rounds=4) }}"
            ),
            "$2b$04$123456789012345678901u//h8y7tq3SNKU3W0iQ9NrkyT8n5fXPS"
        );
    }

    #[test]
    fn bad_salts_and_types_are_refused() {
        assert!(
            render_err("{{ 'x' | password_hash('sha512', 'bad salt') }}")
                .contains("invalid character ' '")
        );
        assert!(render_err("{{ 'x' | password_hash('sha512', 'a' * 17) }}").contains("at most 16"));
        assert!(
            render_err("{{ 'x' | password_hash('sha1') }}")
                .contains("supported passlib algorithms")
        );
    }

    #[test]
    fn unsalted_hashes_differ_and_have_the_default_salt_size() {
        let a = render("{{ 'x' | password_hash }}");
        let b = render("{{ 'x' | password_hash }}");
        assert_ne!(a, b);
        assert_eq!(a.split('$').nth(3).map(str::len), Some(16));
    }
}
