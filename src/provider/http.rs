//! Shared HTTP plumbing for the vendor providers: one client per environment with the
//! configured timeouts, and turning transport and status errors into [`ProviderError`]s that
//! name the URL (never a credential) and the cause.

use reqwest::StatusCode;

use super::{ErrorKind, ProviderError};
use crate::config::NetworkConfig;

/// The most redirects followed within one origin.
const MAX_REDIRECTS: usize = 5;

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
pub fn client(network: &NetworkConfig) -> Result<reqwest::Client, ProviderError> {
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
fn root_cause(err: &dyn std::error::Error) -> String {
    let mut deepest = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        deepest = cause.to_string();
        source = cause.source();
    }
    deepest
}

/// The causes of an error, outermost first. reqwest's own outermost message repeats the URL
/// with its query string (which may carry a key), so it is left out when there is a cause.
fn error_chain(err: &dyn std::error::Error) -> String {
    let outer = err.to_string();
    let mut parts = if outer.contains("for url (") && err.source().is_some() {
        Vec::new()
    } else {
        vec![outer]
    };
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = cause.source();
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
