//! Just enough OpenPGP (RFC 4880, RFC 9580) to know which keys a key file holds: the packet
//! framing, ASCII armor, and the fingerprint of each primary key and subkey (versions 4, 5
//! and 6). `apt_key` needs the key ids and hosts have no `gpg` (it is not in a minimal
//! Debian), so the key material is read here, on the control machine.

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use sha2::Sha256;

/// One key found in a key file.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Upper-case hex.
    pub fingerprint: String,
    /// The 16-hex-digit key id apt-key lists.
    pub long_id: String,
    /// A primary key (else a subkey of the primary before it).
    pub primary: bool,
}

/// The binary packets of `data`: as they are, or decoded from every armored block in it.
pub fn dearmor(data: &[u8]) -> Result<Vec<u8>, String> {
    let text = match std::str::from_utf8(data) {
        Ok(t) if t.contains("-----BEGIN PGP") => t,
        _ => return Ok(data.to_vec()),
    };
    let mut out = vec![];
    let mut lines = text.lines().map(str::trim);
    while lines.by_ref().any(|l| l.starts_with("-----BEGIN PGP")) {
        // Armor headers (`Version: ...`) end at the first blank line.
        let body: Vec<&str> = lines
            .by_ref()
            .skip_while(|l| l.contains(": "))
            .take_while(|l| !l.starts_with("-----END"))
            .filter(|l| !l.is_empty() && !l.starts_with('='))
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body.concat())
            .map_err(|e| format!("the armored key is not valid base64: {e}"))?;
        out.extend(decoded);
    }
    Ok(out)
}

/// The keys of a key file (armored or binary).
pub fn keys(data: &[u8]) -> Result<Vec<Key>, String> {
    let bin = dearmor(data)?;
    let mut keys = vec![];
    let mut rest = bin.as_slice();
    while !rest.is_empty() {
        let (tag, body, next) = packet(rest)?;
        if tag == 6 || tag == 14 {
            keys.push(key_of(body, tag == 6)?);
        }
        rest = next;
    }
    if keys.is_empty() {
        return Err("no OpenPGP public key found".into());
    }
    Ok(keys)
}

/// A binary keyring without the key `id` names (by its primary's or a subkey's id, last 8 or
/// 16 hex digits): every packet from that primary key up to the next primary goes.
pub fn without_key(data: &[u8], id: &str) -> Result<Vec<u8>, String> {
    // Transferable keys: (start, end) of each, from one primary packet to the next.
    let mut spans: Vec<(usize, usize, bool)> = vec![];
    let mut rest = data;
    while !rest.is_empty() {
        let at = data.len() - rest.len();
        let (tag, body, next) = packet(rest)?;
        if tag == 6 || spans.is_empty() {
            spans.push((at, at, false));
        }
        if tag == 6 || tag == 14 {
            let k = key_of(body, tag == 6)?;
            let span = spans.last_mut().expect("a span was pushed");
            span.2 |= k.long_id.ends_with(id) || id.ends_with(&k.long_id);
        }
        rest = next;
        spans.last_mut().expect("a span was pushed").1 = data.len() - rest.len();
    }
    Ok(spans
        .iter()
        .filter(|(_, _, hit)| !hit)
        .flat_map(|(a, b, _)| data[*a..*b].iter().copied())
        .collect())
}

/// The next packet: its tag, its body, and what follows it.
fn packet(data: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let bad = || "not an OpenPGP key (bad packet framing)".to_string();
    let first = *data.first().ok_or_else(bad)?;
    if first & 0x80 == 0 {
        return Err(bad());
    }
    let byte = |i: usize| data.get(i).copied().map(usize::from).ok_or_else(bad);
    let (tag, len, head): (u8, usize, usize) = if first & 0x40 != 0 {
        let o1 = byte(1)?;
        let (len, head) = match o1 {
            0..=191 => (o1, 2),
            192..=223 => (((o1 - 192) << 8) + byte(2)? + 192, 3),
            255 => (
                (byte(2)? << 24) | (byte(3)? << 16) | (byte(4)? << 8) | byte(5)?,
                6,
            ),
            _ => return Err("partial-length packets are not key material".into()),
        };
        (first & 0x3f, len, head)
    } else {
        let tag = (first >> 2) & 0x0f;
        match first & 3 {
            0 => (tag, byte(1)?, 2),
            1 => (tag, (byte(1)? << 8) | byte(2)?, 3),
            2 => (
                tag,
                (byte(1)? << 24) | (byte(2)? << 16) | (byte(3)? << 8) | byte(4)?,
                5,
            ),
            _ => (tag, data.len() - 1, 1),
        }
    };
    let end = head
        .checked_add(len)
        .filter(|e| *e <= data.len())
        .ok_or_else(bad)?;
    Ok((tag, &data[head..end], &data[end..]))
}

/// The fingerprint and key id of a public key packet's body.
fn key_of(body: &[u8], primary: bool) -> Result<Key, String> {
    let version = *body.first().ok_or("an empty key packet")?;
    let (fingerprint, long_id) = match version {
        4 => {
            let len = u16::try_from(body.len()).map_err(|_| "a key packet too long")?;
            let mut h = Sha1::new();
            h.update([0x99]);
            h.update(len.to_be_bytes());
            h.update(body);
            let fp = h.finalize().to_vec();
            let id = fp[12..].to_vec();
            (fp, id)
        }
        5 | 6 => {
            let len = u32::try_from(body.len()).map_err(|_| "a key packet too long")?;
            let mut h = Sha256::new();
            h.update([if version == 5 { 0x9a } else { 0x9b }]);
            h.update(len.to_be_bytes());
            h.update(body);
            let fp = h.finalize().to_vec();
            let id = fp[..8].to_vec();
            (fp, id)
        }
        v => return Err(format!("OpenPGP key version {v} is not supported")),
    };
    Ok(Key {
        fingerprint: hex::encode_upper(fingerprint),
        long_id: hex::encode_upper(long_id),
        primary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_errors_are_refused() {
        assert!(keys(b"hello").is_err());
        assert!(keys(&[0x99, 0x00, 0x10, 4]).is_err());
    }

    #[test]
    fn debians_archive_key_has_the_fingerprint_gpg_shows() {
        // Debian's own keys (debian-archive-keyring, on every Debian), as `gpg --show-keys`
        // prints them: a binary ed25519 key, and an armored RSA key with a subkey.
        let data = std::fs::read("/usr/share/keyrings/debian-archive-bookworm-stable.gpg").unwrap();
        let k = keys(&data).unwrap();
        assert_eq!(k[0].fingerprint, "4D64FEC119C2029067D6E791F8D2585B8783D481");
        assert_eq!(k[0].long_id, "F8D2585B8783D481");
        assert!(k[0].primary);
        let asc =
            std::fs::read("/etc/apt/trusted.gpg.d/debian-archive-bookworm-automatic.asc").unwrap();
        let ids: Vec<(String, bool)> = keys(&asc)
            .unwrap()
            .into_iter()
            .map(|k| (k.long_id, k.primary))
            .collect();
        assert_eq!(
            ids,
            [
                ("B7C5D7D6350947F8".to_string(), true),
                ("6ED0E7B82643E131".to_string(), false)
            ]
        );
    }
}
