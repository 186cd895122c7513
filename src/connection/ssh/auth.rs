//! User authentication: ssh-agent, then identity files, then password (and keyboard-interactive
//! with the same password). A failure lists every method tried and why it did not work.

use super::Client;
use super::target::SshTarget;
use russh::MethodKind;
use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, load_secret_key};
use std::path::Path;
use std::sync::Arc;

/// Env var holding the passphrase of encrypted identity files.
pub const PASSPHRASE_ENV: &str = "PROV_SSH_PASSPHRASE";

pub(super) async fn authenticate(handle: &mut Handle<Client>, t: &SshTarget) -> Result<(), String> {
    let user = t.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    // What the server said it accepts, once it said it.
    let mut accepts: Option<Vec<MethodKind>> = None;
    let allows = |accepts: &Option<Vec<MethodKind>>, m: MethodKind| {
        accepts.as_ref().is_none_or(|a| a.contains(&m))
    };
    let transport = |e: russh::Error| format!("connection lost during authentication: {e}");

    if let Some(sock) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        match AgentClient::connect_uds(&sock).await {
            Ok(mut agent) => match agent.request_identities().await {
                Ok(ids) => {
                    let mut offered = 0;
                    for id in ids {
                        let AgentIdentity::PublicKey { key, .. } = id else {
                            continue;
                        };
                        if !allows(&accepts, MethodKind::PublicKey) {
                            break;
                        }
                        offered += 1;
                        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
                        match handle
                            .authenticate_publickey_with(user, key, hash, &mut agent)
                            .await
                        {
                            Ok(AuthResult::Success) => return Ok(()),
                            Ok(AuthResult::Failure {
                                remaining_methods, ..
                            }) => accepts = Some(remaining_methods.to_vec()),
                            Err(e) => {
                                if handle.is_closed() {
                                    return Err(format!(
                                        "connection lost during authentication: {e}"
                                    ));
                                }
                                tracing::debug!("ssh-agent could not sign: {e}");
                            }
                        }
                    }
                    tried.push(match offered {
                        0 => "ssh-agent (holds no keys)".to_string(),
                        n => format!("ssh-agent ({n} key(s), rejected)"),
                    });
                }
                Err(e) => tried.push(format!("ssh-agent (cannot list keys: {e})")),
            },
            Err(e) => tried.push(format!("ssh-agent (cannot connect to SSH_AUTH_SOCK: {e})")),
        }
    }

    for path in &t.identity_files {
        let key = match load_key(path) {
            Ok(k) => k,
            Err(why) => {
                tried.push(format!("key {} ({why})", path.display()));
                continue;
            }
        };
        let alg = key.algorithm().to_string();
        if !allows(&accepts, MethodKind::PublicKey) {
            tried.push(format!(
                "key {} (server does not accept public keys)",
                path.display()
            ));
            continue;
        }
        let hash = rsa_hash(handle, key.algorithm().is_rsa()).await;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let result = handle
            .authenticate_publickey(user, key)
            .await
            .map_err(transport)?;
        let what = format!("key {} ({alg}, rejected)", path.display());
        if succeeded(result, what, &mut tried, &mut accepts) {
            return Ok(());
        }
    }
    if t.identity_files.is_empty() {
        tried.push("identity files (none configured)".into());
    }

    match &t.password {
        None => tried.push("password (none given)".into()),
        Some(pw) => {
            let mut done = false;
            if allows(&accepts, MethodKind::Password) {
                done = true;
                let result = handle
                    .authenticate_password(user, pw)
                    .await
                    .map_err(transport)?;
                if succeeded(
                    result,
                    "password (rejected)".into(),
                    &mut tried,
                    &mut accepts,
                ) {
                    return Ok(());
                }
            }
            if allows(&accepts, MethodKind::KeyboardInteractive) {
                done = true;
                if keyboard_interactive(handle, user, pw)
                    .await
                    .map_err(transport)?
                {
                    return Ok(());
                }
                tried.push("keyboard-interactive with the password (rejected)".into());
            }
            if !done {
                tried.push("password (server does not accept passwords)".into());
            }
        }
    }

    let accepted = match &accepts {
        Some(a) if !a.is_empty() => {
            let names: Vec<&str> = a.iter().map(<&str>::from).collect();
            format!("; the server accepts: {}", names.join(", "))
        }
        _ => String::new(),
    };
    Err(format!(
        "authentication failed; tried: {}{accepted}",
        tried.join(", ")
    ))
}

/// True on success; otherwise notes the rejected attempt and what the server still accepts.
fn succeeded(
    result: AuthResult,
    rejected: String,
    tried: &mut Vec<String>,
    accepts: &mut Option<Vec<MethodKind>>,
) -> bool {
    match result {
        AuthResult::Success => true,
        AuthResult::Failure {
            remaining_methods, ..
        } => {
            tried.push(rejected);
            *accepts = Some(remaining_methods.to_vec());
            false
        }
    }
}

/// rsa-sha2-512/256 as the server advertises (never SHA-1 unless that is all it speaks).
async fn rsa_hash(handle: &Handle<Client>, is_rsa: bool) -> Option<HashAlg> {
    if !is_rsa {
        return None;
    }
    match handle.best_supported_rsa_hash().await {
        Ok(Some(alg)) => alg,
        _ => Some(HashAlg::Sha256),
    }
}

fn load_key(path: &Path) -> Result<PrivateKey, String> {
    if !path.exists() {
        return Err("no such file".into());
    }
    match load_secret_key(path, None) {
        Ok(k) => Ok(k),
        Err(russh::keys::Error::KeyIsEncrypted) => match std::env::var(PASSPHRASE_ENV) {
            Ok(pass) => load_secret_key(path, Some(&pass))
                .map_err(|e| format!("encrypted; cannot decrypt it with ${PASSPHRASE_ENV}: {e}")),
            Err(_) => Err(format!(
                "encrypted; set ${PASSPHRASE_ENV} to its passphrase"
            )),
        },
        Err(e) => Err(format!("unreadable: {e}")),
    }
}

/// Answers every hidden prompt with the password. True on success.
async fn keyboard_interactive(
    handle: &mut Handle<Client>,
    user: &str,
    pw: &str,
) -> Result<bool, russh::Error> {
    let mut reply = handle
        .authenticate_keyboard_interactive_start(user, None::<String>)
        .await?;
    for _ in 0..5 {
        match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(true),
            KeyboardInteractiveAuthResponse::Failure { .. } => return Ok(false),
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts
                    .iter()
                    .map(|p| {
                        if p.echo {
                            String::new()
                        } else {
                            pw.to_string()
                        }
                    })
                    .collect();
                reply = handle
                    .authenticate_keyboard_interactive_respond(answers)
                    .await?;
            }
        }
    }
    Ok(false)
}
