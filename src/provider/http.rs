//! The one vendor HTTP client. Every vendor file builds a [`Request`] (its URL, its credential
//! header, its body) and sends it with [`Client::send`] under a [`Policy`]; what comes back is an
//! [`Answer`] (any status) or a [`ProviderError`] that names the URL (never a credential) and
//! the cause. [`Client::call`] wants a 2xx, [`Client::json`] decodes it into the vendor's serde
//! types. Here too: the redirect rule, rate limits (429 and `Retry-After`, the same for every
//! vendor), the path-segment encoder, the content-version hash, and the error-chain wording
//! shared with `vault.rs`.

use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
pub use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::{ErrorKind, ProviderError};
use crate::config::NetworkConfig;
use crate::secret::Secret;

/// The most redirects followed within one origin.
const MAX_REDIRECTS: usize = 5;
/// The shortest pause before a rate-limited read is sent again, so a reset already past cannot
/// make a busy loop (every pause counts against the budget, so the loop ends).
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// What a call may do about a rate limit (429). One policy for every vendor; the settings are
/// per call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Wait out a 429 and send the request again. Reads only: a write is never sent twice by
    /// killswitch (the operator decides, with the error saying when to retry).
    pub wait_out_rate_limits: bool,
    /// The most time one call spends waiting for rate limits, all waits together. `None`: the
    /// client's read budget (one request timeout). A 429 asking for a longer wait fails at
    /// once, saying when to retry.
    pub wait_budget: Option<Duration>,
}

impl Policy {
    /// A read: a 429 is waited out within the client's read budget.
    pub const READ: Policy = Policy {
        wait_out_rate_limits: true,
        wait_budget: None,
    };
    /// A write: a 429 is reported at once, never retried.
    pub const WRITE: Policy = Policy {
        wait_out_rate_limits: false,
        wait_budget: None,
    };
}

/// One request as a vendor file describes it: sent as is, again for each attempt.
#[derive(Clone)]
pub struct Request {
    /// What is being done, for messages ("prod: read flag `x`").
    what: String,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Option<String>,
}

impl std::fmt::Debug for Request {
    /// The method and the URL as they may be shown; never a header (credentials travel there).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, display_url(&self.url))
    }
}

impl Request {
    /// A request that accepts JSON.
    pub fn new(what: impl Into<String>, method: Method, url: impl Into<String>) -> Request {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Request {
            what: what.into(),
            method,
            url: url.into(),
            headers,
            body: None,
        }
    }

    pub fn get(what: impl Into<String>, url: impl Into<String>) -> Request {
        Request::new(what, Method::GET, url)
    }

    /// A header that is not a secret (a version pin, an ETag).
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Request {
        self.headers.insert(name, value);
        self
    }

    /// A credential header, marked sensitive (left out of any `Debug` of the request). A value
    /// no HTTP header can carry is an error naming what was being done, never the value.
    pub fn credential(
        mut self,
        name: HeaderName,
        value: &Secret,
        scheme: &str,
    ) -> Result<Request, ProviderError> {
        let text = if scheme.is_empty() {
            value.expose().to_string()
        } else {
            format!("{scheme} {}", value.expose())
        };
        let mut header = HeaderValue::from_str(&text).map_err(|_| {
            ProviderError::new(
                ErrorKind::Auth,
                format!(
                    "{}: the credential for {} is not usable in an HTTP header (a line break or another control character)",
                    self.what,
                    display_url(&self.url)
                ),
            )
        })?;
        header.set_sensitive(true);
        self.headers.insert(name, header);
        Ok(self)
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(self, body: &serde_json::Value) -> Request {
        self.body(
            HeaderValue::from_static("application/json"),
            body.to_string(),
        )
    }

    /// A body of another content type (LaunchDarkly's semantic patch).
    pub fn body(mut self, content_type: HeaderValue, body: String) -> Request {
        self.headers.insert(CONTENT_TYPE, content_type);
        self.body = Some(body);
        self
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A finished exchange: any status.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    /// A header's value as text, trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    }

    /// The status as an error when it is not a 2xx.
    pub fn success(self, request: &Request) -> Result<Answer, ProviderError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(status_error(
                &request.what,
                &request.url,
                self.status,
                &self.body,
            ))
        }
    }

    /// The body decoded into the vendor's types; an error names the URL, the size and why.
    pub fn decode<T: DeserializeOwned>(&self, request: &Request) -> Result<T, ProviderError> {
        decode(&request.what, &request.url, &self.body)
    }
}

/// `body` decoded into `T`: malformed JSON and JSON of another shape are told apart.
pub fn decode<T: DeserializeOwned>(what: &str, url: &str, body: &str) -> Result<T, ProviderError> {
    serde_json::from_str(body).map_err(|err| decode_error(what, url, body, &err))
}

/// Why `body` could not be decoded, naming the URL and the size (never the body: it may echo
/// anything).
pub fn decode_error(what: &str, url: &str, body: &str, err: &serde_json::Error) -> ProviderError {
    let problem = if err.is_data() {
        "JSON killswitch cannot read"
    } else {
        "malformed JSON"
    };
    ProviderError::new(
        ErrorKind::Api,
        format!(
            "{what}: {} answered {problem} ({} bytes): {err}",
            display_url(url),
            body.len()
        ),
    )
}

/// One HTTP client per vendor connection: timeouts, TLS verified, connections kept alive and
/// reused, [`redirect_policy`], and the rate-limit [`Policy`].
pub struct Client {
    http: reqwest::Client,
    /// How long a read may wait out 429s in total: one request timeout.
    read_wait_budget: Duration,
}

impl Client {
    pub fn new(network: &NetworkConfig) -> Result<Client, ProviderError> {
        Ok(Client {
            http: client(network)?,
            read_wait_budget: network.request_timeout,
        })
    }

    /// Sends `request`; any status but a 429 is an answer. A 429 is waited out and the request
    /// sent again when `policy` allows it and the wait fits its budget; otherwise it is a
    /// [`ErrorKind::RateLimited`] error saying when to retry and why killswitch did not wait.
    pub async fn send(&self, request: &Request, policy: Policy) -> Result<Answer, ProviderError> {
        let started = Instant::now();
        let budget = policy.wait_budget.unwrap_or(self.read_wait_budget);
        loop {
            let answer = self.exchange(request).await?;
            if answer.status != StatusCode::TOO_MANY_REQUESTS {
                return Ok(answer);
            }
            let wait = retry_after(&answer.headers, chrono::Utc::now());
            // At least a short pause, so a reset already past cannot make a busy loop; every
            // pause counts against the budget, so the loop ends.
            let pause = wait.map(|wait| wait.max(MIN_PAUSE));
            let why = match pause {
                _ if !policy.wait_out_rate_limits => NotWaited::Write,
                Some(pause) if started.elapsed() + pause <= budget => {
                    tokio::time::sleep(pause).await;
                    continue;
                }
                _ => NotWaited::OverBudget(budget),
            };
            return Err(rate_limited(
                &request.what,
                &request.url,
                &answer.body,
                wait,
                why,
            ));
        }
    }

    /// [`Client::send`], wanting a 2xx.
    pub async fn call(&self, request: &Request, policy: Policy) -> Result<Answer, ProviderError> {
        self.send(request, policy).await?.success(request)
    }

    /// [`Client::call`], the body decoded into the vendor's types.
    pub async fn json<T: DeserializeOwned>(
        &self,
        request: &Request,
        policy: Policy,
    ) -> Result<T, ProviderError> {
        self.call(request, policy).await?.decode(request)
    }

    /// One exchange, body read in full; transport failures are errors.
    async fn exchange(&self, request: &Request) -> Result<Answer, ProviderError> {
        let mut builder = self
            .http
            .request(request.method.clone(), &request.url)
            .headers(request.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder
            .send()
            .await
            .map_err(|err| transport_error(&request.what, &request.url, &err))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .map_err(|err| transport_error(&request.what, &request.url, &err))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// Why a 429 was not waited out.
enum NotWaited {
    /// Writes are never retried.
    Write,
    /// The wait asked for (or none given) does not fit a read's budget.
    OverBudget(Duration),
}

/// How long the server asks us to wait: `Retry-After` in seconds or as an HTTP date (RFC 9110,
/// what Flagsmith's and Unleash's throttles send), else a reset time in epoch milliseconds
/// (LaunchDarkly's `X-Ratelimit-Auth-Token-Reset`, then `X-Ratelimit-Reset`).
pub fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = header("retry-after") {
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(value) {
            let millis = (at.with_timezone(&chrono::Utc) - now)
                .num_milliseconds()
                .max(0);
            return Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)));
        }
    }
    let reset = header("x-ratelimit-auth-token-reset")
        .or_else(|| header("x-ratelimit-reset"))
        .and_then(|v| v.parse::<i64>().ok())?;
    let millis = reset.saturating_sub(now.timestamp_millis()).max(0);
    Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

/// A 429 in words: the vendor's message, when to retry, and why killswitch did not wait.
fn rate_limited(
    what: &str,
    url: &str,
    body: &str,
    wait: Option<Duration>,
    why: NotWaited,
) -> ProviderError {
    let detail = body_message(body);
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    let when = match wait {
        Some(wait) => {
            let at = chrono::Utc::now()
                + chrono::Duration::milliseconds(i64::try_from(wait.as_millis()).unwrap_or(0));
            format!(
                "retry after {:.1}s (at {} UTC)",
                wait.as_secs_f64(),
                at.format("%H:%M:%S")
            )
        }
        None => "retry in a few seconds (no reset time given)".to_string(),
    };
    let why = match (why, wait) {
        (NotWaited::Write, _) => {
            "; nothing was changed, and killswitch never sends a write twice".to_string()
        }
        (NotWaited::OverBudget(budget), Some(_)) => format!(
            "; not waited for: a read waits at most {:.1}s (the request timeout)",
            budget.as_secs_f64()
        ),
        (NotWaited::OverBudget(_), None) => String::new(),
    };
    ProviderError::new(
        ErrorKind::RateLimited,
        format!(
            "{what}: {} answered 429 rate limited{detail}; {when}{why}",
            display_url(url)
        ),
    )
}

/// A path segment, percent-encoded (flag keys may hold `.`, spaces or anything else; a `/`
/// must not become a path separator).
pub fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A stable content hash (FNV-1a, 64 bit, as 16 hex digits): the same on every run, platform
/// and Rust version, unlike std's hasher. The versions the re-read guards compare.
pub fn content_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The redirect rule: a redirect within the same origin (scheme, host and port) is followed;
/// one to another origin is not, so no credential header (`Authorization`,
/// `X-Environment-Key`, …) is ever sent there. The 3xx answer then becomes an error saying so.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// A client with connect and total timeouts, TLS verified, connections kept alive and reused,
/// and [`redirect_policy`].
fn client(network: &NetworkConfig) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .redirect(redirect_policy())
        .connect_timeout(network.connect_timeout)
        .timeout(network.request_timeout)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .user_agent(concat!("killswitch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| {
            ProviderError::new(
                ErrorKind::Api,
                format!("cannot build the HTTP client: {err}"),
            )
        })
}

/// A URL as it may appear in a message: no user info, no query string (keys sometimes travel
/// there).
pub fn display_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.to_string()
        }
        Err(_) => "<invalid URL>".to_string(),
    }
}

/// A transport failure (no HTTP status) in words: timeout, refused, TLS.
pub fn transport_error(what: &str, url: &str, err: &reqwest::Error) -> ProviderError {
    let cause = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        let detail = error_chain(err);
        if detail.to_ascii_lowercase().contains("certificate")
            || detail.to_ascii_lowercase().contains("tls")
        {
            format!("TLS failure: {detail}")
        } else {
            format!("cannot connect: {detail}")
        }
    } else if err.is_decode() {
        format!("malformed response: {}", error_chain(err))
    } else if err.is_request() || err.is_body() {
        // The connection went away mid-request: the root cause says how.
        format!("connection lost: {}", root_cause(err))
    } else {
        error_chain(err)
    };
    let kind = if err.is_decode() {
        ErrorKind::Api
    } else {
        ErrorKind::Unreachable
    };
    let error = ProviderError::new(kind, format!("{what}: {} {cause}", display_url(url)));
    // A failed connect never sent the request; anything later (a timeout while waiting for
    // the answer, a reset, a closed connection, a torn body) may have reached the vendor.
    if err.is_connect() {
        error
    } else {
        error.with_outcome_unknown()
    }
}

/// An HTTP error status in words, with the vendor's message from the body when it has one.
pub fn status_error(what: &str, url: &str, status: StatusCode, body: &str) -> ProviderError {
    let kind = match status.as_u16() {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        409 | 412 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::Api,
    };
    let meaning = match status.as_u16() {
        401 => "unauthorized (bad or expired credential)",
        403 => "forbidden (the credential may not do this)",
        404 => "not found",
        409 => "conflict",
        429 => "rate limited",
        300..=399 => {
            "a redirect to another origin, not followed (killswitch never sends credentials to \
             another scheme, host or port: check the configured URL)"
        }
        500..=599 => "server error",
        _ => "rejected",
    };
    let detail = body_message(body);
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    let error = ProviderError::new(
        kind,
        format!(
            "{what}: {} answered {} {meaning}{detail}",
            display_url(url),
            status.as_u16()
        ),
    );
    // A 5xx (a proxy's 502/504 included) says nothing about whether the change was made.
    if status.is_server_error() {
        error.with_outcome_unknown()
    } else {
        error
    }
}

/// The human part of a JSON error body (`detail`, `message`, `error`, `errors`), cut short.
/// Non-JSON bodies (HTML error pages) are summarised by length only.
pub fn body_message(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => {
            let pick = ["detail", "message", "error", "errors", "non_field_errors"]
                .iter()
                .find_map(|field| json.get(field).cloned());
            let mut text = match pick {
                Some(serde_json::Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => json.to_string(),
            };
            // Unleash puts the actual cause in `details[].message` under a generic message.
            let details: Vec<&str> = json
                .get("details")
                .and_then(serde_json::Value::as_array)
                .map(|details| {
                    details
                        .iter()
                        .filter_map(|d| d.get("message").and_then(serde_json::Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if !details.is_empty() {
                text = format!("{text} ({})", details.join("; "));
            }
            text
        }
        Err(_) if body.trim().is_empty() => String::new(),
        Err(_) => format!("non-JSON body of {} bytes", body.len()),
    };
    let mut cut: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        cut.push('…');
    }
    cut
}

/// The deepest cause of an error ("Connection reset by peer (os error 104)").
pub fn root_cause(err: &dyn std::error::Error) -> String {
    let mut deepest = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        deepest = cause.to_string();
        source = cause.source();
    }
    deepest
}

/// The causes of an error in words, outermost first ("tcp connect error: Connection refused
/// (os error 111)"), for the providers and for Vault alike. A cause already said by an outer
/// one is not repeated. Left out while a more specific cause follows: reqwest's outermost
/// message, which repeats the URL with its query string (which may carry a key), and the
/// generic layers vaultrs, rustify, reqwest and hyper wrap a cause in.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(error) = current {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = error.source();
    }
    if parts.len() > 1 {
        parts.retain(|part| !part.contains("for url ("));
    }
    let generic = |part: &String| {
        part.starts_with("An error occurred with the request")
            || part.starts_with("Error sending HTTP request")
            || part.starts_with("error sending request")
            || part.starts_with("client error (")
    };
    if parts.iter().any(|part| !generic(part)) {
        parts.retain(|part| !generic(part));
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            display_url("https://user:pw@flags.example/api/v1/flags/?key=ser.abc"),
            "https://flags.example/api/v1/flags/"
        );
        assert_eq!(display_url("not a url"), "<invalid URL>");
    }

    #[test]
    fn details_under_a_generic_message_are_kept() {
        let text = body_message(
            r#"{"message":"Request validation failed","details":[{"message":"\"value\" length must be at least 2 characters long"}]}"#,
        );
        assert_eq!(
            text,
            "Request validation failed (\"value\" length must be at least 2 characters long)"
        );
    }

    #[test]
    fn retry_after_takes_seconds_dates_then_reset_millis() {
        let now = chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("1700000001500"),
        );
        assert_eq!(
            retry_after(&headers, now),
            Some(Duration::from_millis(1500))
        );
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        // 2023-11-14T22:13:20Z is `now`; the date is 30 s later.
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Tue, 14 Nov 2023 22:13:50 GMT"),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        let mut past = HeaderMap::new();
        past.insert(
            "x-ratelimit-reset",
            HeaderValue::from_static("1600000000000"),
        );
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn rate_limits_say_when_and_why_not_waited() {
        let write = rate_limited(
            "prod: turn off `x`",
            "http://h/api/?key=ser.secret",
            r#"{"detail":"Request was throttled."}"#,
            Some(Duration::from_secs(3)),
            NotWaited::Write,
        );
        assert_eq!(write.kind, ErrorKind::RateLimited);
        assert!(write.message.starts_with("prod: turn off `x`: http://h/api/ answered 429 rate limited: Request was throttled.; retry after 3.0s (at "), "{}", write.message);
        assert!(
            write
                .message
                .ends_with("killswitch never sends a write twice"),
            "{}",
            write.message
        );
        let long = rate_limited(
            "prod: read",
            "http://h/",
            "",
            Some(Duration::from_secs(3600)),
            NotWaited::OverBudget(Duration::from_secs(5)),
        );
        assert!(
            long.message.contains("retry after 3600.0s"),
            "{}",
            long.message
        );
        assert!(
            long.message
                .ends_with("not waited for: a read waits at most 5.0s (the request timeout)"),
            "{}",
            long.message
        );
    }

    #[test]
    fn path_segments_and_content_hashes() {
        assert_eq!(path_segment("a b/c.d+e"), "a%20b%2Fc.d%2Be");
        // FNV-1a of the empty string and of "a" (the published test vectors).
        assert_eq!(content_hash(""), "cbf29ce484222325");
        assert_eq!(content_hash("a"), "af63dc4c8601ec8c");
    }

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|layer| layer as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn error_chains_keep_the_cause_and_never_the_url() {
        let err = Layer(
            "error sending request for url (http://h/?key=ser.abc)",
            Some(Box::new(Layer(
                "client error (Connect)",
                Some(Box::new(Layer(
                    "tcp connect error: Connection refused (os error 111)",
                    Some(Box::new(Layer("Connection refused (os error 111)", None))),
                ))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "tcp connect error: Connection refused (os error 111)"
        );
        assert_eq!(root_cause(&err), "Connection refused (os error 111)");
        assert_eq!(
            error_chain(&Layer("client error (Connect)", None)),
            "client error (Connect)"
        );
    }

    #[test]
    fn status_errors_say_what_and_why() {
        let err = status_error(
            "read flags of prod",
            "http://127.0.0.1:8000/api/v1/flags/",
            StatusCode::UNAUTHORIZED,
            r#"{"detail":"Invalid token."}"#,
        );
        assert_eq!(err.kind, ErrorKind::Auth);
        assert_eq!(
            err.message,
            "read flags of prod: http://127.0.0.1:8000/api/v1/flags/ answered 401 unauthorized (bad or expired credential): Invalid token."
        );
        let html = status_error(
            "x",
            "http://h/",
            StatusCode::BAD_REQUEST,
            "<html>oops</html>",
        );
        assert!(
            html.message.ends_with("non-JSON body of 17 bytes"),
            "{}",
            html.message
        );
    }
}
