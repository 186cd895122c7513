//! `uri`: an HTTP request from the host (health checks, API calls), as Ansible makes it
//! there; the client is the host's `curl` ([`crate::host::http`]). The response comes back
//! as Ansible returns it: `status`, `url`, `redirected`, `msg`, the headers as lower-cased
//! keys with `_` for `-`, `json` when the answer is JSON, `content` with `return_content`.
//!
//! As in Ansible, a request changes nothing that prov can see (`changed` is false; tasks say
//! otherwise with `changed_when`), `creates`/`removes` skip the request, and check mode skips
//! the task, since a request may change the far end.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de};
use crate::host::http::{self, Request};
use crate::shell::quote_path;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    body: Option<Json>,
    #[serde(default = "raw")]
    body_format: String,
    /// One code, a list, or a comma-separated string of them.
    #[serde(default = "ok_status")]
    status_code: Json,
    #[serde(default, deserialize_with = "de::bool_like")]
    return_content: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    creates: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    removes: Option<String>,
    /// `safe` (GET and HEAD only), `all`, `none`; `yes`/`urllib2` follow, `no` does not.
    #[serde(default = "safe")]
    follow_redirects: String,
    #[serde(default)]
    headers: Map<String, Json>,
    #[serde(default = "thirty", deserialize_with = "de::opt_uint")]
    timeout: Option<u64>,
    #[serde(default, alias = "user", deserialize_with = "de::opt_stringish")]
    url_username: Option<String>,
    #[serde(default, alias = "password", deserialize_with = "de::opt_stringish")]
    url_password: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    force_basic_auth: bool,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    validate_certs: Option<bool>,
    #[serde(default = "http::default_agent")]
    http_agent: String,
    /// Ask past caches (`Cache-Control: no-cache`).
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
}

fn get() -> String {
    "GET".into()
}
fn raw() -> String {
    "raw".into()
}
fn ok_status() -> Json {
    json!([200])
}
fn safe() -> String {
    "safe".into()
}
fn thirty() -> Option<u64> {
    Some(30)
}

/// The `uri` module.
pub struct UriModule;

impl Module for UriModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("method", "GET"),
        ("body_format", "raw"),
        ("status_code", "[200]"),
        ("return_content", "false"),
        ("follow_redirects", "safe"),
        ("timeout", "30"),
        ("force_basic_auth", "false"),
        ("validate_certs", "true"),
        ("http_agent", "ansible-httpget"),
        ("force", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The service answers
  uri:
    url: http://localhost:8080/health
  register: health
  until: health.status == 200
  retries: 10
  delay: 3
- name: Register with the API
  uri:
    url: https://api.example.com/nodes
    method: POST
    body_format: json
    body: {name: \"{{ inventory_hostname }}\"}
    status_code: [200, 201]
";
    const NAME: &'static str = "uri";
    const REQUIRED: &'static [&'static str] = &["url"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        super::get_url::check_url(&a.url).map_err(|e| ArgError::at("url", e))?;
        http::check_headers(&a.headers).map_err(|e| ArgError::at("headers", e))?;
        let method = a.method.to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ArgError::at(
                "method",
                "Parameter 'method' needs to be a single word in uppercase, like GET or POST.",
            ));
        }
        if !matches!(
            a.body_format.to_ascii_lowercase().as_str(),
            "raw" | "json" | "form-urlencoded"
        ) {
            return Err(ArgError::at(
                "body_format",
                format!(
                    "body_format must be one of raw, json, form-urlencoded (got '{}')",
                    a.body_format
                ),
            ));
        }
        if !matches!(
            a.follow_redirects.as_str(),
            "safe" | "all" | "none" | "yes" | "no" | "urllib2"
        ) {
            return Err(ArgError::at(
                "follow_redirects",
                format!(
                    "follow_redirects must be one of safe, all, none, yes, no, urllib2 (got '{}')",
                    a.follow_redirects
                ),
            ));
        }
        status_codes(&a.status_code).map_err(|e| ArgError::at("status_code", e))?;
        body_bytes(a).map_err(|e| ArgError::at("body", e))?;
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// The accepted codes: a number, a list, or `"200,201"`.
fn status_codes(v: &Json) -> Result<Vec<u16>, String> {
    let one = |v: &Json| -> Result<u16, String> {
        match v {
            Json::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Json::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| format!("status_code must be HTTP status codes (got {v})"))
    };
    match v {
        Json::Array(items) => items.iter().map(one).collect(),
        Json::String(s) => s.split(',').map(|c| one(&json!(c))).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// The request body and its default `Content-Type`, as Ansible encodes each `body_format`.
fn body_bytes(a: &Args) -> Result<Option<(Vec<u8>, &'static str)>, String> {
    let Some(body) = a.body.as_ref().filter(|b| !b.is_null()) else {
        return Ok(None);
    };
    const FORM: &str = "application/x-www-form-urlencoded";
    let bytes = match (a.body_format.to_ascii_lowercase().as_str(), body) {
        (_, Json::String(s)) => (s.clone().into_bytes(), form_or_json(&a.body_format)),
        ("json", v) => (
            crate::template::filters::python_json(v).into_bytes(),
            "application/json",
        ),
        ("form-urlencoded", v) => (form_encode(v)?.into_bytes(), FORM),
        (_, other) => {
            return Err(format!(
                "a raw body must be text (got {other}); use body_format: json or form-urlencoded"
            ));
        }
    };
    Ok(Some(bytes))
}

fn form_or_json(format: &str) -> &'static str {
    match format.to_ascii_lowercase().as_str() {
        "json" => "application/json",
        _ => "application/x-www-form-urlencoded",
    }
}

/// Python's `urlencode(..., doseq=True)`: a list repeats its key, `None` is left out.
fn form_encode(v: &Json) -> Result<String, String> {
    let pairs: Vec<(String, Json)> = match v {
        Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Json::Array(items) => items
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([k, v]) => Ok((text(k), v.clone())),
                _ => Err(format!(
                    "a form body list holds [key, value] pairs (got {p})"
                )),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("a form body is a mapping (got {other})")),
    };
    let mut out = vec![];
    for (k, v) in pairs {
        let values = match v {
            Json::Null => vec![],
            Json::Array(items) => items,
            v => vec![v],
        };
        for v in values {
            out.push(format!("{}={}", quote_plus(&k), quote_plus(&text(&v))));
        }
    }
    Ok(out.join("&"))
}

/// A value as Python's `str()` writes it (`True`, `1`, text as is).
fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Null => "None".into(),
        other => crate::template::filters::python_json(other),
    }
}

/// Python's `quote_plus`: unreserved characters kept, space as `+`, the rest `%XX`.
fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if ctx.check {
        return Ok(Outcome::skipped(
            "This action (uri) does not support check mode.",
        ));
    }
    if let Some(skip) = creates_or_removes(ctx, &a).await? {
        return Ok(Outcome::ok("")
            .with("stdout_lines", json!([skip]))
            .with("stdout", skip));
    }
    let method = a.method.to_ascii_uppercase();
    let body = body_bytes(&a).map_err(ModError::Failed)?;
    let mut headers = http::header_pairs(&a.headers);
    let typed = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    if let (Some((_, content_type)), false) = (&body, typed) {
        headers.push(("Content-Type".into(), content_type.to_string()));
    }
    let follow = match a.follow_redirects.as_str() {
        "safe" => matches!(method.as_str(), "GET" | "HEAD"),
        "none" | "no" => false,
        _ => true,
    };
    let resp = http::request(
        ctx,
        &Request {
            url: &a.url,
            method: &method,
            headers,
            body: body.map(|(b, _)| b),
            timeout_secs: a.timeout.unwrap_or(30),
            validate_certs: a.validate_certs.unwrap_or(true),
            credentials: a
                .url_username
                .as_deref()
                .map(|u| (u, a.url_password.as_deref().unwrap_or_default())),
            force_basic_auth: a.force_basic_auth,
            follow_redirects: follow,
            no_cache: a.force,
            user_agent: &a.http_agent,
            ..Request::default()
        },
    )
    .await?;
    let o = outcome(&a, &resp);
    let accepted = status_codes(&a.status_code).map_err(ModError::Failed)?;
    if accepted.contains(&resp.status) {
        return Ok(o);
    }
    Ok(Outcome {
        failed: true,
        msg: format!(
            "Status code was {} and not {accepted:?}: {}",
            resp.status, o.msg
        ),
        ..o
    })
}

/// `creates` that exists or `removes` that does not: the request is skipped, with Ansible's
/// words for why.
async fn creates_or_removes(ctx: &ModuleCtx<'_>, a: &Args) -> Result<Option<String>, ModError> {
    if a.creates.is_none() && a.removes.is_none() {
        return Ok(None);
    }
    let test = |p: &Option<String>| {
        p.as_deref().map_or("echo -".into(), |p| {
            format!("if [ -e {} ]; then echo 1; else echo 0; fi", quote_path(p))
        })
    };
    let out = ctx
        .exec(&format!("{}; {}", test(&a.creates), test(&a.removes)))
        .await?;
    let out = out.stdout_str();
    let mut lines = out.lines();
    if let (Some("1"), Some(p)) = (lines.next(), &a.creates) {
        return Ok(Some(format!("skipped, since '{p}' exists")));
    }
    if let (Some("0"), Some(p)) = (lines.next(), &a.removes) {
        return Ok(Some(format!("skipped, since '{p}' does not exist")));
    }
    Ok(None)
}

/// The result as Ansible's `uri` returns it.
fn outcome(a: &Args, resp: &http::Response) -> Outcome {
    // The headers first: Ansible's own keys win over a header of the same name.
    let mut o = Outcome::ok(resp.msg());
    for (name, value) in &resp.headers {
        if !name.starts_with(':') {
            o.data.insert(name.replace('-', "_"), json!(value));
        }
    }
    let mut o = o
        .with("status", resp.status)
        .with("url", resp.url.as_str())
        .with("redirected", resp.url != a.url)
        .with("elapsed", 0)
        .with("cookies", json!({}));
    let body = String::from_utf8_lossy(&resp.body).into_owned();
    if is_json(resp.header("content-type").unwrap_or_default())
        && let Ok(v) = serde_json::from_str::<Json>(&body)
    {
        o.data.insert("json".into(), v);
    }
    if a.return_content {
        o.data.insert("content".into(), json!(body));
    }
    o
}

/// `application/json`, `text/javascript`, `application/vnd.api+json; charset=utf-8`, ...
fn is_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    let subtype = mime.split_once('/').map_or("", |(_, s)| s);
    matches!(subtype, "json" | "javascript") || subtype.ends_with("+json")
}

#[cfg(test)]
mod tests {
    const URI: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<UriModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused, http_server};

    #[test]
    fn bodies_are_encoded_as_ansible_encodes_them() {
        let args = |body: Json, format: &str| -> Args {
            crate::host::testing::decode(
                json!({"url": "http://h/", "body": body, "body_format": format}),
            )
            .unwrap()
        };
        let (b, ct) = body_bytes(&args(json!({"n": 1, "u": "é"}), "json"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (String::from_utf8(b).unwrap().as_str(), ct),
            ("{\"n\": 1, \"u\": \"\\u00e9\"}", "application/json")
        );
        let form = json!({"a": "1 2", "b": ["x", "y"], "c": "&=", "d": null, "e": true});
        let (b, _) = body_bytes(&args(form, "form-urlencoded")).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "a=1+2&b=x&b=y&c=%26%3D&e=True"
        );
        assert!(body_bytes(&args(json!({"a": 1}), "raw")).is_err());
    }

    #[test]
    fn status_codes_and_json_types_are_read_as_ansible_reads_them() {
        assert_eq!(status_codes(&json!("200, 201")).unwrap(), [200, 201]);
        assert_eq!(status_codes(&json!(204)).unwrap(), [204]);
        assert!(is_json("application/vnd.api+json; charset=utf-8"));
        assert!(!is_json("text/plain"));
        assert_refused(
            &URI,
            json!({"url": "http://h/", "method": "GET POST"}),
            Some("method"),
            "Parameter 'method' needs to be a single word in uppercase, like GET or POST.",
        );
    }

    #[tokio::test]
    async fn requests_answer_as_ansible_reports_them() {
        let h = Harness::new();
        let base = http_server("hello\n");
        let o = h
            .apply(
                &URI,
                json!({"url": format!("{base}/page"), "return_content": true}),
            )
            .await;
        assert!(!o.changed && !o.failed, "{o:?}");
        assert_eq!(
            (o.data["status"].clone(), o.data["content"].clone()),
            (json!(200), json!("hello\n"))
        );
        assert_eq!(o.msg, "OK (6 bytes)");
        // A JSON body goes out with its type; the JSON answer comes back parsed.
        let o = h
            .apply(&URI, json!({"url": format!("{base}/echo"), "method": "post", "body_format": "json", "body": {"a": 1}}))
            .await;
        assert_eq!(
            o.data["json"],
            json!({"method": "POST", "body": "{\"a\": 1}", "content_type": "application/json"})
        );
        // A GET may carry a body and stays a GET; a POST followed (all) becomes a GET.
        let o = h
            .apply(
                &URI,
                json!({"url": format!("{base}/echo"), "body_format": "json", "body": {"q": 1}}),
            )
            .await;
        assert_eq!(
            (
                o.data["json"]["method"].clone(),
                o.data["json"]["body"].clone()
            ),
            (json!("GET"), json!("{\"q\": 1}"))
        );
        let o = h
            .apply(&URI, json!({"url": format!("{base}/redirect"), "method": "POST", "body": "x", "follow_redirects": "all"}))
            .await;
        assert_eq!(o.data["json"]["method"], json!("GET"));
        // Redirects: followed for GET (safe), not for POST.
        let o = h
            .apply(&URI, json!({"url": format!("{base}/redirect")}))
            .await;
        assert_eq!(
            (
                o.data["redirected"].clone(),
                o.data["json"]["method"].clone()
            ),
            (json!(true), json!("GET"))
        );
        let o = h
            .run_mode(
                &URI,
                json!({"url": format!("{base}/redirect"), "method": "POST", "body": "x"}),
                false,
                false,
            )
            .await
            .unwrap();
        assert!(
            o.failed && o.msg.starts_with("Status code was 302 and not [200]"),
            "{o:?}"
        );
        // An accepted error status; creates skips the request; check mode skips the task.
        let o = h
            .apply(
                &URI,
                json!({"url": format!("{base}/missing"), "status_code": [200, 404]}),
            )
            .await;
        assert!(!o.failed && o.data["status"] == json!(404));
        h.write("done", "");
        let o = h
            .apply(
                &URI,
                json!({"url": format!("{base}/missing"), "creates": h.p("done")}),
            )
            .await;
        assert_eq!(
            o.data["stdout"],
            json!(format!("skipped, since '{}' exists", h.p("done")))
        );
        assert!(
            h.check(&URI, json!({"url": format!("{base}/page")}))
                .await
                .skipped
        );
    }
}
