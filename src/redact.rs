//! The one redactor: every message built from vendor or Vault text passes through [`text`]
//! before it reaches stdout, stderr, the TUI, JSON or the audit log.
//!
//! It knows every secret value of the process: the Vault token (registered when the Vault client
//! is built) and every credential field read from Vault (registered by the credential source;
//! fields that only name things, like `api_url` or LaunchDarkly's `project_key`, are listed in
//! [`CredentialFields::public`](crate::provider::CredentialFields) and stay readable), so a
//! vendor that echoes request headers or credentials in an error body cannot carry one to the
//! operator. It also blanks header-shaped text (`Authorization: …`,
//! `X-Environment-Key: …`, `X-Vault-Token: …`, `"authorization":"…"`) whatever the value, for
//! credentials killswitch never saw (another service's key echoed by a proxy).
//!
//! The choke points: [`ProviderError::new`](crate::provider::ProviderError::new) (every vendor
//! error), Vault's credential errors, the audit log's append, and the CLI's printing of errors.

use std::sync::RwLock;

use secrecy::{ExposeSecret, SecretString};

pub use crate::secret::REDACTED;

/// Secret values shorter than this are not replaced by value: a two-letter "secret" would
/// blank half of every message. (Header-shaped text is still redacted.)
pub const MIN_SECRET_CHARS: usize = 6;

static SECRETS: RwLock<Vec<SecretString>> = RwLock::new(Vec::new());

/// Remembers a secret value so every later message has it replaced by `[redacted]`.
pub fn register(value: &str) {
    if value.chars().count() < MIN_SECRET_CHARS {
        return;
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if secrets.iter().any(|known| known.expose_secret() == value) {
        return;
    }
    secrets.push(SecretString::from(value.to_string()));
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|known| std::cmp::Reverse(known.expose_secret().len()));
}

/// `message` with every known secret value and every header-shaped credential replaced by
/// `[redacted]`. Everything else is left as it was (sanitising for a terminal is
/// [`crate::text::line`]'s job).
pub fn text(message: &str) -> String {
    let mut out = message.to_string();
    {
        let secrets = SECRETS
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for secret in secrets.iter() {
            let value = secret.expose_secret();
            if out.contains(value) {
                out = out.replace(value, REDACTED);
            }
        }
    }
    headers(&out)
}

/// [`text`] made one inert line ([`crate::text::line`]): for stderr and single-line fields.
pub fn line(message: &str) -> String {
    crate::text::line(&text(message))
}

/// Whether a header name carries a credential: `Authorization`, `Proxy-Authorization`,
/// `Cookie`, `X-Vault-Token`, `Api-Key`, and any `X-…-Key` / `X-…-Token`.
fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "api-key" | "apikey"
    ) || (name.starts_with("x-")
        && (name.ends_with("-key") || name.ends_with("-token") || name.ends_with("-auth")))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Blanks the value after every credential header name followed by `:` or `=` (with optional
/// quotes and spaces around), as in `Authorization: Token abc`, `"x-vault-token":"hvs.…"`,
/// `x-api-key=abc`.
fn headers(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_name = is_name_char(chars[i]) && (i == 0 || !is_name_char(chars[i - 1]));
        if !starts_name {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let mut end = i;
        while end < chars.len() && is_name_char(chars[end]) {
            end += 1;
        }
        let name: String = chars[i..end].iter().collect();
        out.push_str(&name);
        i = end;
        if !is_credential_header(&name) {
            continue;
        }
        // Separator: optional closing quote, spaces, `:` or `=`, spaces, optional quote.
        let mut j = i;
        if j < chars.len() && (chars[j] == '"' || chars[j] == '\'') {
            j += 1;
        }
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j >= chars.len() || !(chars[j] == ':' || chars[j] == '=') {
            continue;
        }
        j += 1;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        let quote = (j < chars.len() && (chars[j] == '"' || chars[j] == '\'')).then(|| chars[j]);
        if quote.is_some() {
            j += 1;
        }
        let mut value_end = j;
        while value_end < chars.len() {
            let c = chars[value_end];
            let stop = match quote {
                Some(q) => c == q || c == '\n' || c == '\r',
                None => matches!(c, '\n' | '\r' | ',' | ';' | '}' | '&' | '"' | '\''),
            };
            if stop {
                break;
            }
            // An escaped quote inside a JSON string does not end it.
            if c == '\\' && value_end + 1 < chars.len() {
                value_end += 1;
            }
            value_end += 1;
        }
        if value_end == j {
            continue;
        }
        out.extend(&chars[i..j]);
        out.push_str(REDACTED);
        i = value_end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secret_values_are_replaced_anywhere() {
        register("ser.redact-unit-test-key");
        let shown = text(
            r#"{"detail":{"headers":{"x-thing":"ser.redact-unit-test-key"}}} and ser.redact-unit-test-key"#,
        );
        assert!(!shown.contains("ser.redact-unit-test-key"), "{shown}");
        assert_eq!(shown.matches(REDACTED).count(), 2, "{shown}");
    }

    #[test]
    fn short_values_are_not_replaced_by_value() {
        register("abc");
        assert_eq!(text("abc abcdef"), "abc abcdef");
    }

    #[test]
    fn header_shaped_credentials_are_blanked_whatever_the_value() {
        assert_eq!(
            text("echo: Authorization: Token 0123abcd\nX-Environment-Key: ser.zzz, next"),
            "echo: Authorization: [redacted]\nX-Environment-Key: [redacted], next"
        );
        assert_eq!(
            text(r#"{"x-vault-token":"hvs.unit","accept":"*/*","authorization": "Bearer q\"x"}"#),
            r#"{"x-vault-token":"[redacted]","accept":"*/*","authorization": "[redacted]"}"#
        );
        assert_eq!(text("x-api-key=abc&page=2"), "x-api-key=[redacted]&page=2");
        // Words that merely contain a header name, and names without a value, are left alone.
        assert_eq!(
            text("the authorization failed: 401"),
            "the authorization failed: 401"
        );
        assert_eq!(text("no_authorization: x"), "no_authorization: x");
        assert_eq!(text("X-Request-Id: 42"), "X-Request-Id: 42");
    }

    #[test]
    fn line_is_redacted_and_inert() {
        assert_eq!(
            line("Authorization: Token t\u{1b}[2J\nnext\u{202e}"),
            "Authorization: [redacted]⏎next\\u{202e}"
        );
    }
}
