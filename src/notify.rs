//! Announcing every change: after each outcome record (applied, not confirmed, pending
//! approval, failed, reconciled) the `[[notify]]` receivers are told, concurrently, each
//! delivery bounded (2 s by default, both attempts together), and how each went is appended to
//! the audit log as a `notified` record.
//!
//! Never in the way of a kill: it runs after the outcome is on disk, a slow or dead receiver
//! costs at most its bound, and nothing here changes the flip's result or exit code.
//!
//! - `slack`: Slack's incoming-webhook body, `{"text": "…"}`, one line: who did what where,
//!   the note, the result and the audit id. Operator and vendor text is made one inert line
//!   ([`crate::text::line`]), Slack's control characters (`&`, `<`, `>`) escaped so a note
//!   cannot mention `@channel`, and everything through the redactor.
//! - `webhook`: the audit record as JSON, the audit log's own schema plus
//!   `"schema_version": 1`, with `X-Killswitch-Signature: sha256=<hex HMAC-SHA256 of the body>`
//!   when `hmac_secret_field` names the key's field in the receiver's Vault secret.
//!
//! Receiver URLs (Slack's carry their token in the path) and HMAC keys are registered with the
//! redactor, and messages name a receiver by its name and origin only.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OnceCell;

use crate::audit::{self, AuditLog, AuditRecord, Phase};
use crate::clock::Clock;
use crate::config::{NotifyConfig, NotifyKind, NotifyUrl};
use crate::secret::Secret;
use crate::session::CredentialSource;

/// The webhook body's schema version (the audit record's fields plus this one).
pub const SCHEMA_VERSION: u32 = 1;

/// The header carrying the body's HMAC-SHA256.
pub const SIGNATURE_HEADER: &str = "X-Killswitch-Signature";

/// How one receiver took one record (defined with the audit log, which carries the receivers
/// as an [`audit::Listener`] without knowing them).
pub use crate::audit::Delivery;

impl Delivery {
    /// "team-slack ok" / "team-slack FAILED: no answer within 2000 ms".
    pub fn summary(&self) -> String {
        if self.ok {
            format!("{} ok", self.receiver)
        } else {
            format!("{} FAILED: {}", self.receiver, self.detail)
        }
    }
}

/// "notified: team-slack ok, audit-hook FAILED: …", for the result line and the status bar.
pub fn summary(deliveries: &[Delivery]) -> Option<String> {
    if deliveries.is_empty() {
        return None;
    }
    let parts: Vec<String> = deliveries.iter().map(Delivery::summary).collect();
    Some(crate::redact::line(&format!(
        "notified: {}",
        parts.join(", ")
    )))
}

/// A receiver's URL and key, once read.
struct Target {
    url: Secret,
    hmac_key: Option<Secret>,
}

struct Receiver {
    config: NotifyConfig,
    /// Read from Vault on first use; a failed read is retried on the next delivery.
    target: OnceCell<Target>,
}

/// The configured receivers, one HTTP client, and where Vault-held URLs come from.
pub struct Notifier {
    receivers: Vec<Receiver>,
    client: Result<reqwest::Client, String>,
    credentials: Arc<dyn CredentialSource>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .receivers
            .iter()
            .map(|r| r.config.name.as_str())
            .collect();
        f.debug_struct("Notifier")
            .field("receivers", &names)
            .finish()
    }
}

impl Notifier {
    pub fn new(receivers: &[NotifyConfig], credentials: Arc<dyn CredentialSource>) -> Notifier {
        // No redirects: a receiver URL holds a token, and a 3xx is an answer to report.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("killswitch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {}", err.is_builder()));
        Notifier {
            receivers: receivers
                .iter()
                .map(|config| Receiver {
                    config: config.clone(),
                    target: OnceCell::new(),
                })
                .collect(),
            client,
            credentials,
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.receivers
            .iter()
            .map(|r| r.config.name.clone())
            .collect()
    }

    /// Sends `record` to every receiver that wants its environment (all of them when
    /// `every_env`), concurrently, each within its bound.
    pub async fn send(
        &self,
        record: &AuditRecord,
        every_env: bool,
        only: Option<&str>,
    ) -> Vec<Delivery> {
        let sends = self
            .receivers
            .iter()
            .filter(|r| every_env || r.config.wants(&record.env))
            .filter(|r| only.is_none_or(|name| name == r.config.name))
            .map(|receiver| self.deliver(receiver, record));
        futures::future::join_all(sends).await
    }

    async fn deliver(&self, receiver: &Receiver, record: &AuditRecord) -> Delivery {
        let bound = receiver.config.timeout;
        let attempt = async {
            let target = self.target(receiver).await?;
            let first = self.post(receiver, target, record).await;
            match first {
                Ok(status) => Ok(status),
                // One retry, inside the same bound.
                Err(_) => self.post(receiver, target, record).await,
            }
        };
        let result = match tokio::time::timeout(bound, attempt).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {} ms", bound.as_millis())),
        };
        let origin = match &receiver.target.get() {
            Some(target) => origin(target.url.expose()),
            None => String::new(),
        };
        match result {
            Ok(status) => Delivery {
                receiver: receiver.config.name.clone(),
                ok: true,
                detail: format!("delivered (HTTP {status})"),
            },
            Err(error) => Delivery {
                receiver: receiver.config.name.clone(),
                ok: false,
                detail: crate::redact::line(&if origin.is_empty() {
                    error
                } else {
                    format!("{origin}: {error}")
                }),
            },
        }
    }

    async fn target<'a>(&self, receiver: &'a Receiver) -> Result<&'a Target, String> {
        receiver
            .target
            .get_or_try_init(|| async {
                match &receiver.config.url {
                    NotifyUrl::Inline(url) => Ok(Target {
                        url: url.clone(),
                        hmac_key: None,
                    }),
                    NotifyUrl::Vault { mount, path } => {
                        let mut fields = vec!["url"];
                        if let Some(field) = &receiver.config.hmac_secret_field {
                            fields.push(field.as_str());
                        }
                        let owner = format!("notify `{}`", receiver.config.name);
                        let read = self
                            .credentials
                            .secret_fields(&owner, mount, path, &fields)
                            .await?;
                        let url = read
                            .get("url")
                            .cloned()
                            .ok_or_else(|| format!("{owner}: Vault {mount}/{path} has no `url`"))?;
                        let hmac_key = receiver
                            .config
                            .hmac_secret_field
                            .as_ref()
                            .and_then(|field| read.get(field).cloned());
                        Ok(Target { url, hmac_key })
                    }
                }
            })
            .await
    }

    /// One POST; Ok(status) on a 2xx.
    async fn post(
        &self,
        receiver: &Receiver,
        target: &Target,
        record: &AuditRecord,
    ) -> Result<u16, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let body = match receiver.config.kind {
            NotifyKind::Slack => slack_body(record),
            NotifyKind::Webhook => webhook_body(record),
        }
        .map_err(|err| format!("cannot encode the message: {err}"))?;
        let mut request = client
            .post(target.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &target.hmac_key {
            request = request.header(SIGNATURE_HEADER, signature(key.expose(), &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| transport_cause(&err))?;
        let status = response.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(format!("HTTP {}", status.as_u16()))
        }
    }
}

/// The transport failure in words, never reqwest's own text (it carries the URL).
fn transport_cause(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "cannot connect".into()
    } else {
        "the request failed".into()
    }
}

/// "https://hooks.slack.com": a receiver URL as it may be shown (the path holds the token).
pub fn origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => "<invalid URL>".into(),
    }
}

/// `sha256=<hex>` of HMAC-SHA256(key, body).
pub fn signature(key: &str, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, body);
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for byte in tag.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    schema_version: u32,
    #[serde(flatten)]
    record: &'a AuditRecord,
}

/// The webhook body: the (redacted) audit record with its schema version.
pub fn webhook_body(record: &AuditRecord) -> serde_json::Result<Vec<u8>> {
    let record = record.redacted();
    serde_json::to_vec(&WebhookBody {
        schema_version: SCHEMA_VERSION,
        record: &record,
    })
}

/// Slack's incoming-webhook body: `{"text": "<one line>"}`.
pub fn slack_body(record: &AuditRecord) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&serde_json::json!({ "text": slack_text(record) }))
}

/// "alice KILL kill_switch_checkout in prod (SERVING -> KILLED): applied, confirmed in 40 ms.
/// Note: INC-42 p99. Audit 2026…".
pub fn slack_text(record: &AuditRecord) -> String {
    let action = record.action.to_ascii_uppercase().replace('_', " ");
    let mut line = format!(
        "{} {action} {} in {} ({} -> {}): {}.",
        record.operator,
        record.flag,
        record.env,
        record.from,
        record.to,
        result_words(record)
    );
    if let Some(batch) = &record.batch {
        line.push_str(&format!(" Batch {batch}."));
    }
    line.push_str(&format!(" Note: {}. Audit {}", record.note, record.id));
    slack_escape(&crate::redact::line(&line))
}

/// The outcome in words.
pub fn result_words(record: &AuditRecord) -> String {
    let error = record.error.as_deref().unwrap_or("");
    match (record.phase, record.result) {
        (Phase::Reconciled, Some(audit::Result::Ok)) => {
            "interrupted flip reconciled: applied".to_string()
        }
        (Phase::Reconciled, _) => "interrupted flip reconciled: NOT applied".to_string(),
        (_, Some(audit::Result::Ok)) if !error.is_empty() => format!("APPLIED, {error}"),
        (_, Some(audit::Result::Ok)) => match record.confirmed_ms {
            Some(ms) => format!("applied, confirmed in {ms} ms"),
            None => "applied".to_string(),
        },
        (_, Some(audit::Result::PendingApproval)) => format!(
            "PENDING APPROVAL, nothing is live yet (request {})",
            record.reference.as_deref().unwrap_or("?")
        ),
        (_, Some(audit::Result::NotApplied)) => "not applied".to_string(),
        (_, Some(audit::Result::Error)) => format!("FAILED: {error}"),
        (_, Some(audit::Result::Unknown)) => {
            format!("OUTCOME UNKNOWN, check the flag: {error}")
        }
        (_, None) => "test message, nothing was changed".to_string(),
    }
}

/// Slack's three control characters, escaped as Slack asks.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Tells the receivers of `record` (an outcome just written) and appends one `notified`
/// record per receiver. The one call the flip transaction makes after each outcome.
pub async fn announce(
    audit_log: &AuditLog,
    record: &AuditRecord,
    clock: &dyn Clock,
) -> Vec<Delivery> {
    let Some(notifier) = audit_log.notifier() else {
        return Vec::new();
    };
    let deliveries = notifier.send(record, false, None).await;
    for delivery in &deliveries {
        let mut notified = record.clone();
        notified.phase = Phase::Notified;
        notified.at = clock.now();
        notified.receiver = Some(delivery.receiver.clone());
        notified.result = Some(if delivery.ok {
            audit::Result::Ok
        } else {
            audit::Result::Error
        });
        notified.error = (!delivery.ok).then(|| delivery.detail.clone());
        notified.duration_ms = None;
        notified.confirmed_ms = None;
        // The delivery is already done; a log that cannot take this line loses only this line.
        let _ = audit_log.append(&notified);
    }
    deliveries
}

#[async_trait::async_trait]
impl audit::Listener for Notifier {
    fn names(&self) -> Vec<String> {
        Notifier::names(self)
    }

    async fn send(
        &self,
        record: &AuditRecord,
        every_env: bool,
        only: Option<&str>,
    ) -> Vec<Delivery> {
        Notifier::send(self, record, every_env, only).await
    }
}

/// The longest a notification can hold up a result: the largest receiver bound.
pub fn bound(receivers: &[NotifyConfig]) -> Duration {
    receivers
        .iter()
        .map(|r| r.timeout)
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_standard_hmac_sha256() {
        // RFC 4231, test case 2: what any receiver's HMAC library computes.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn record() -> AuditRecord {
        AuditRecord {
            v: crate::audit::RECORD_VERSION,
            id: "20261202T070000.000Z-1-0".into(),
            phase: Phase::Outcome,
            at: chrono::Utc::now(),
            operator: "alice".into(),
            env: "prod".into(),
            provider: "flagd".into(),
            flag: "kill_switch_checkout".into(),
            action: "kill".into(),
            from: "SERVING".into(),
            to: "KILLED".into(),
            enabled: false,
            rollout: None,
            previous: None,
            note: "INC-42 <!channel> p99\nsecond line".into(),
            result: Some(audit::Result::Ok),
            error: None,
            duration_ms: Some(3),
            confirmed_ms: Some(40),
            reference: None,
            batch: None,
            receiver: None,
        }
    }

    #[test]
    fn slack_line_names_who_what_where_note_result_and_id_inertly() {
        let text = slack_text(&record());
        assert_eq!(
            text,
            "alice KILL kill_switch_checkout in prod (SERVING -&gt; KILLED): applied, confirmed in 40 ms. \
             Note: INC-42 &lt;!channel&gt; p99⏎second line. Audit 20261202T070000.000Z-1-0"
        );
        let mut failed = record();
        failed.result = Some(audit::Result::Error);
        failed.error = Some("HTTP 503".into());
        assert!(slack_text(&failed).contains("FAILED: HTTP 503"));
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn webhook_body_is_the_versioned_audit_record() {
        let body = webhook_body(&record()).expect("encode");
        let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["phase"], "outcome");
        let back: AuditRecord = serde_json::from_value(value).expect("the audit schema");
        assert_eq!(back.flag, "kill_switch_checkout");
    }

    #[test]
    fn origin_hides_the_token_path() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/sekrit"),
            "https://hooks.slack.com"
        );
    }
}
