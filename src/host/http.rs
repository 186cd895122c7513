//! HTTP requests made from the host, as Ansible's `get_url` and `uri` make them there (the
//! host's network, proxies and name resolution, not the control machine's): prov runs no
//! Python on the host, so the client is `curl`, which the task fails without, by name.
//!
//! One remote command per request. Everything secret or free-form (URL, headers, the
//! password) goes into a curl config file written from stdin with mode 0600 and removed
//! afterwards, never onto a command line (`ps` shows those to every user); the request body
//! follows it on stdin. The answer comes back framed: a status line, the last response's
//! headers, and the body when it is not kept on the host.

use super::probe::Reader;
use super::{ModError, ModuleCtx, fail};
use crate::shell::quote_path;

/// One request.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    pub url: &'a str,
    /// `GET` when empty.
    pub method: &'a str,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_secs: u64,
    pub validate_certs: bool,
    pub credentials: Option<(&'a str, &'a str)>,
    /// Send the credentials on the first request (else only after a 401 challenge).
    pub force_basic_auth: bool,
    pub follow_redirects: bool,
    /// Ask only for content newer than this host file (`If-Modified-Since`).
    pub newer_than: Option<&'a str>,
    /// `Cache-Control: no-cache`.
    pub no_cache: bool,
    pub user_agent: &'a str,
    /// Keep the body on the host, in a new temp file (mode 0600) in this directory, else
    /// return it.
    pub keep_in: Option<&'a str>,
    /// With `keep_in`: also the kept file's checksum with this algorithm (one of
    /// [`super::fs::CHECKSUM_ALGOS`]).
    pub digest: Option<&'static str>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    /// The URL after redirects.
    pub url: String,
    /// The final response's headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, unless it was kept on the host.
    pub body: Vec<u8>,
    /// Length of the body as received (kept or returned).
    pub size: u64,
    /// The kept body: its temp file on the host, its sha1, md5 and `digest` checksums.
    pub kept: Option<Kept>,
}

/// A body kept on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub path: String,
    pub sha1: String,
    pub md5: String,
    pub digest: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Ansible's message for a response: `OK (N bytes)`, or `HTTP Error N: Reason`.
    pub fn msg(&self) -> String {
        match self.status {
            200..=299 => format!("OK ({} bytes)", self.size),
            s => format!("HTTP Error {s}: {}", self.reason()),
        }
    }

    /// The status line's reason phrase (HTTP/2 has none: then the usual one for the code).
    pub fn reason(&self) -> &str {
        match self.header(":reason") {
            Some(r) if !r.is_empty() => r,
            _ => match self.status {
                301 => "Moved Permanently",
                302 => "Found",
                304 => "Not Modified",
                400 => "Bad Request",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "Not Found",
                500 => "Internal Server Error",
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                _ => "",
            },
        }
    }
}

/// Ansible's `http_agent` default, sent by every request a task does not name an agent for.
pub const AGENT: &str = "ansible-httpget";

/// The default of a module's `http_agent` argument.
pub fn default_agent() -> String {
    AGENT.into()
}

/// A task's `headers` as (name, value) pairs, values as text.
pub fn header_pairs(headers: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or(v.to_string(), str::to_string)))
        .collect()
}

/// Headers as tasks give them: no line break in a name or a value (it would start another
/// header), as Python's client refuses them.
pub fn check_headers(headers: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    for (k, v) in headers {
        let v = v.as_str().map_or(v.to_string(), str::to_string);
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!(
                "invalid header '{}': no line breaks (nor ':' in the name)",
                k.escape_debug()
            ));
        }
    }
    Ok(())
}

/// A value inside double quotes of curl's config file.
fn conf_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The curl config for a request.
fn config(r: &Request<'_>) -> String {
    let mut c = vec![
        format!("url = {}", conf_quote(r.url)),
        format!("user-agent = {}", conf_quote(r.user_agent)),
        format!("max-time = {}", r.timeout_secs.max(1)),
        "silent".into(),
        "show-error".into(),
    ];
    // A body makes curl POST unless told otherwise, and a POST it sends by itself turns into
    // a GET after a 301, 302 or 303, as Ansible's urllib does; any other method is named.
    let implied = matches!(
        (r.method, r.body.is_some()),
        ("" | "GET", false) | ("HEAD", _) | ("POST", true)
    );
    if !implied {
        let method = if r.method.is_empty() { "GET" } else { r.method };
        c.push(format!("request = {}", conf_quote(method)));
    }
    if r.method == "HEAD" {
        c.push("head".into());
    }
    for (k, v) in &r.headers {
        c.push(format!("header = {}", conf_quote(&format!("{k}: {v}"))));
    }
    if r.no_cache {
        c.push("header = \"Cache-Control: no-cache\"".into());
    }
    if !r.validate_certs {
        c.push("insecure".into());
    }
    if let Some((user, password)) = r.credentials {
        c.push(format!(
            "user = {}",
            conf_quote(&format!("{user}:{password}"))
        ));
        if !r.force_basic_auth {
            c.push("anyauth".into());
        }
    }
    if r.follow_redirects {
        c.push("location".into());
    }
    if let Some(path) = r.newer_than {
        c.push(format!("time-cond = {}", conf_quote(path)));
    }
    c.push(String::new());
    c.join("\n")
}

/// The script: the config (its length first) and the body come on stdin. Prints
/// `R <status> <size> <url>`, for a kept body `K <sha1> <md5> <digest> <path>`, then
/// `H <len>` and the header block, then the body (when returned).
fn script(r: &Request<'_>, config_len: usize) -> String {
    let (keep, out, kept) = match r.keep_in {
        Some(dir) => (
            format!(
                "o=$(mktemp {}/.prov.XXXXXX) || exit 3\n",
                quote_path(dir.trim_end_matches('/'))
            ),
            "\"$o\"",
            format!(
                "s1=$(sha1sum < \"$o\"); s5=$(md5sum < \"$o\"); sd=$({}sum < \"$o\")\n\
                 printf 'K %s %s %s %s\\n' \"${{s1%% *}}\" \"${{s5%% *}}\" \"${{sd%% *}}\" \"$o\"; o=\n",
                r.digest.unwrap_or("sha1")
            ),
        ),
        None => (String::new(), "\"$b\"", String::new()),
    };
    let body_arg = if r.body.is_some() {
        "--data-binary @-"
    } else {
        ""
    };
    format!(
        "command -v curl >/dev/null 2>&1 || {{ echo 'curl is not installed on the host' >&2; exit 127; }}\n\
         umask 077; c=$(mktemp); h=$(mktemp); b=$(mktemp); o=\n\
         trap 'rm -f -- \"$c\" \"$h\" \"$b\" ${{o:+\"$o\"}}' EXIT; trap 'exit 1' HUP INT TERM PIPE\n\
         head -c {config_len} > \"$c\"\n\
         {keep}\
         m=$(curl -K \"$c\" {body_arg} -D \"$h\" -o {out} -w '%{{http_code}} %{{size_download}} %{{url_effective}}') \
         || {{ r=$?; rm -f -- {out}; exit $r; }}\n\
         printf 'R %s\\n' \"$m\"\n{kept}\
         printf 'H %s\\n' \"$(wc -c < \"$h\")\"; cat \"$h\"\n\
         {}",
        if r.keep_in.is_some() {
            ""
        } else {
            "cat \"$b\"\n"
        }
    )
}

/// Runs the request on the host.
pub async fn request(ctx: &ModuleCtx<'_>, r: &Request<'_>) -> Result<Response, ModError> {
    let conf = config(r);
    let mut stdin = conf.clone().into_bytes();
    if let Some(b) = &r.body {
        stdin.extend_from_slice(b);
    }
    let out = ctx.exec_stdin(&script(r, conf.len()), Some(&stdin)).await?;
    match out.rc {
        0 => parse(&out.stdout),
        3 => fail(format!(
            "Destination {} does not exist or is not writable",
            r.keep_in.unwrap_or_default()
        )),
        127 => fail(
            "curl is not installed on the host: prov makes HTTP requests with it (no Python there); install it first, e.g. with apt",
        ),
        _ => fail(format!("Request failed: {}", out.stderr_str().trim())),
    }
}

fn parse(out: &[u8]) -> Result<Response, ModError> {
    let bad = || ModError::Failed("unexpected answer of the HTTP request".into());
    let mut r = Reader::new(out);
    let head = r.complete_line()?;
    let mut f = head.strip_prefix("R ").ok_or_else(bad)?.splitn(3, ' ');
    let status = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let size = f.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let url = f.next().unwrap_or_default().to_string();
    let mut line = r.complete_line()?;
    let mut kept = None;
    if let Some(k) = line.strip_prefix("K ") {
        let mut f = k.splitn(4, ' ').map(str::to_string);
        let mut next = || f.next().ok_or_else(bad);
        kept = Some(Kept {
            sha1: next()?,
            md5: next()?,
            digest: next()?,
            path: next()?,
        });
        line = r.complete_line()?;
    }
    let len: usize = line
        .strip_prefix("H ")
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(bad)?;
    let rest = r.rest();
    if rest.len() < len {
        return Err(bad());
    }
    let headers = last_headers(&String::from_utf8_lossy(&rest[..len]));
    Ok(Response {
        status,
        url,
        headers,
        body: rest[len..].to_vec(),
        size,
        kept,
    })
}

/// The last response's headers from curl's dump (one block per response when redirects
/// were followed, each starting with its status line).
fn last_headers(dump: &str) -> Vec<(String, String)> {
    let blocks: Vec<&str> = dump
        .split("\r\n\r\n")
        .flat_map(|b| b.split("\n\n"))
        .filter(|b| !b.trim().is_empty())
        .collect();
    let Some(last) = blocks.last() else {
        return vec![];
    };
    let mut lines = last.lines();
    // `HTTP/1.1 404 Not Found`: kept as the pseudo header `:reason`.
    let reason = lines
        .next()
        .and_then(|l| l.trim().splitn(3, ' ').nth(2))
        .unwrap_or_default();
    let mut headers: Vec<(String, String)> = vec![(":reason".into(), reason.trim().into())];
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
        // Repeated headers are joined, as Python's http client joins them.
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    headers
}

/// The file name a response names (`Content-Disposition`), else the last part of the URL's
/// path, else `index.html`: where a download into a directory goes.
pub fn file_name(resp: &Response) -> String {
    let from_disposition = resp.header("content-disposition").and_then(|d| {
        d.split(';').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k.trim() == "filename").then(|| v.trim().trim_matches('"').to_string())
        })
    });
    let from_url = || {
        let path = resp.url.split(['?', '#']).next().unwrap_or_default();
        let path = path.split_once("://").map_or(path, |(_, rest)| rest);
        path.split_once('/')
            .map(|(_, p)| p.rsplit('/').next().unwrap_or_default().to_string())
    };
    let name = from_disposition
        .map(|n| n.rsplit('/').next().unwrap_or_default().to_string())
        .or_else(from_url)
        .unwrap_or_default();
    match name.as_str() {
        "" | "." | ".." => "index.html".into(),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_free_text_go_into_the_config_never_the_command_line() {
        let r = Request {
            url: "https://example.com/a b?x=\"1\"",
            credentials: Some(("me", "p\"w")),
            headers: vec![("X-Token".into(), "t\\1".into())],
            user_agent: "ansible-httpget",
            timeout_secs: 10,
            validate_certs: true,
            ..Request::default()
        };
        let c = config(&r);
        assert!(
            c.contains("url = \"https://example.com/a b?x=\\\"1\\\"\""),
            "{c}"
        );
        assert!(
            c.contains("user = \"me:p\\\"w\"") && c.contains("anyauth"),
            "{c}"
        );
        assert!(c.contains("header = \"X-Token: t\\\\1\""), "{c}");
        let s = script(&r, c.len());
        assert!(!s.contains("example.com") && !s.contains("me:"), "{s}");
    }

    #[test]
    fn the_answer_is_parsed_with_the_last_responses_headers() {
        let dump = "HTTP/1.1 302 Found\r\nLocation: /f.txt\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n";
        let out = format!("R 200 5 http://h/f.txt\nH {}\n{dump}hello", dump.len());
        let r = parse(out.as_bytes()).unwrap();
        assert_eq!(
            (r.status, r.size, r.url.as_str()),
            (200, 5, "http://h/f.txt")
        );
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("set-cookie"), Some("a=1, b=2"));
        assert_eq!(r.header("location"), None);
        assert_eq!(r.body, b"hello");
    }

    #[test]
    fn a_download_into_a_directory_is_named_as_ansible_names_it() {
        let resp = |url: &str, cd: Option<&str>| Response {
            status: 200,
            url: url.into(),
            headers: cd
                .map(|v| vec![("content-disposition".to_string(), v.to_string())])
                .unwrap_or_default(),
            body: vec![],
            size: 0,
            kept: None,
        };
        assert_eq!(file_name(&resp("http://h/d/f.tgz?x=1", None)), "f.tgz");
        assert_eq!(file_name(&resp("http://h/", None)), "index.html");
        assert_eq!(
            file_name(&resp(
                "http://h/x",
                Some("attachment; filename=\"../n.bin\"")
            )),
            "n.bin"
        );
    }
}
