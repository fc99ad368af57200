//! One trait for every flag vendor. Nothing outside this folder knows which vendor is behind a
//! [`Connection`]; vendor JSON types stay private to their own file.
//!
//! Read and write are separate traits on purpose: a read-only connection is one whose
//! `writer` was never built, so "read-only" is a property of the value, not a flag checked at
//! call time.

pub mod flagd;
pub mod flagsmith;
pub mod http;
pub mod launchdarkly;
pub mod unleash;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{EnvironmentConfig, NetworkConfig, ProviderKind};
use crate::model::{Flag, FlagKind, FlagMeta, FlagState, ServedState};
use crate::rollout::RolloutTarget;
use crate::secret::SecretFields;

/// Who and where, for the status bar and error messages. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// "flagd", "flagsmith", "unleash", "launchdarkly".
    pub vendor: &'static str,
    /// A file path or a URL without credentials.
    pub location: String,
    /// Where "what services see" is read after a flip, in words for the result line:
    /// "the Unleash client API".
    pub served_via: &'static str,
}

/// What went wrong, sorted so the CLI can map it to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The flag (or environment) does not exist at the vendor.
    NotFound,
    /// 401/403 or a credential that does not fit the call.
    Auth,
    /// The flag changed under us (conditional write refused, 409).
    Conflict,
    /// Connection refused, reset, DNS, TLS or timeout.
    Unreachable,
    /// Rate limited; the message says when to retry.
    RateLimited,
    /// The vendor answered with something we could not use (5xx, bad JSON, validation error).
    Api,
    /// Local file problems (flagd): unreadable, malformed, cannot write.
    Io,
    /// killswitch will not make the change: it could not make services get what was asked
    /// (a kill switch with no off value, a file whose owner cannot be kept). Nothing changed.
    Refused,
}

/// An error that already names the environment, the flag or URL, and the cause.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ErrorKind,
    pub message: String,
    /// The request may have reached the vendor and its answer was lost (a timeout, a reset or
    /// a closed connection after it was sent, a 5xx): whether a write took effect is unknown
    /// until the flag is read again. `false` when the request surely changed nothing
    /// (refused connection, 4xx).
    pub outcome_unknown: bool,
}

impl ProviderError {
    /// The message passes through the redactor here, so no vendor error can carry a credential
    /// (an error body echoing the request headers) to any output or the audit log.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError {
            kind,
            message: crate::redact::text(&message.into()),
            outcome_unknown: false,
        }
    }

    /// Marks the error as one after which a write may or may not have taken effect.
    pub fn with_outcome_unknown(mut self) -> ProviderError {
        self.outcome_unknown = true;
        self
    }
}

/// The audit note as it travels to the vendor. The same text goes to killswitch's own log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeNote {
    pub audit_id: String,
    pub operator: String,
    pub note: String,
}

impl ChangeNote {
    /// One line for vendor fields that hold free text (comments, descriptions, tags).
    pub fn vendor_text(&self) -> String {
        format!(
            "{} (by {} via killswitch, audit {})",
            self.note, self.operator, self.audit_id
        )
    }
}

/// What a write did at the vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// The change is live at the vendor.
    Applied,
    /// The vendor requires an approval; a request was created and nothing is live yet.
    PendingApproval { reference: String },
}

/// One entry of a vendor's history for a flag.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub who: Option<String>,
    pub what: String,
    pub comment: Option<String>,
}

/// Reading an environment's flags. Every call goes to the source (no cache): the re-read guard
/// and verification depend on that.
#[async_trait]
pub trait FlagSource: Send + Sync {
    fn info(&self) -> &ProviderInfo;

    /// Every flag of this environment, summarised into the domain model.
    async fn list_flags(&self) -> Result<Vec<Flag>, ProviderError>;

    /// One flag, fresh from the source. Like `list_flags`, it reads states only: the kill path
    /// never waits on metadata.
    async fn read_flag(&self, key: &str) -> Result<Flag, ProviderError>;

    /// One flag's state, fresh from the source, without its metadata: what a flip reads after
    /// its write. Providers whose metadata costs extra calls (Flagsmith's Admin API) skip them.
    async fn read_state(&self, key: &str) -> Result<FlagState, ProviderError> {
        Ok(self.read_flag(key).await?.state)
    }

    /// What the states' read lacks (owners, tags, descriptions, the vendor's kind label), read
    /// from the vendor's admin API beside the states, never in front of them. Empty when the
    /// states' read already carries everything this vendor has.
    async fn metadata(&self) -> Result<Vec<FlagMeta>, ProviderError> {
        Ok(Vec::new())
    }

    /// What services get for this flag now, read the way an SDK reads it.
    async fn served(&self, key: &str) -> Result<ServedState, ProviderError>;

    /// The flag's rule as services download it (the SDK-facing read: the flagd file, Unleash's
    /// client feature list, LaunchDarkly's SDK payload, Flagsmith's environment document),
    /// summarised like [`FlagSource::read_state`]: what a rollout's verification compares with
    /// its target ([`crate::rollout::RolloutTarget::reached_by`]).
    async fn served_rule(&self, key: &str) -> Result<FlagState, ProviderError> {
        let _ = key;
        Err(ProviderError::new(
            ErrorKind::Api,
            format!(
                "{} gives killswitch no way to read the rule services get",
                self.info().vendor
            ),
        ))
    }

    /// The vendor's own change history for the flag, when it keeps one.
    async fn history(&self, key: &str) -> Result<Vec<HistoryEntry>, ProviderError> {
        let _ = key;
        Err(ProviderError::new(
            ErrorKind::Api,
            format!(
                "{} keeps no change history killswitch can read",
                self.info().vendor
            ),
        ))
    }
}

/// Changing a flag. Only built for connections allowed to write.
#[async_trait]
pub trait FlagWriter: Send + Sync {
    /// Turns the flag on or off. `seen` is the state the re-read guard just checked: providers
    /// with conditional writes send its version so a concurrent change is refused, not lost.
    async fn set_enabled(
        &self,
        key: &str,
        enabled: bool,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError>;

    /// Sets how the flag's default audience is split ([`RolloutTarget`]): the share that gets
    /// the on variant, or everyone to one variant. Segment and identity overrides are left as
    /// they are; the split's stickiness (hash key, seed, group id) is kept, so stepping up keeps
    /// everyone who already had the feature. `seen` as for [`FlagWriter::set_enabled`].
    async fn set_rollout(
        &self,
        key: &str,
        target: &RolloutTarget,
        note: &ChangeNote,
        seen: &FlagState,
    ) -> Result<WriteResult, ProviderError> {
        let _ = (key, note, seen);
        Err(ProviderError::new(
            ErrorKind::Refused,
            format!(
                "this vendor's rollouts cannot be changed by killswitch ({} asked): nothing was changed",
                target.summary()
            ),
        ))
    }

    /// What this flag's rollout can be set to, as the vendor defines it (whether a percentage
    /// applies, the variants it has): checked before anything is written or audited, so a
    /// variant the flag lacks is a usage error naming the ones it has. `None` when the vendor
    /// file does not say (its write then refuses what it cannot do).
    async fn rollout_choices(
        &self,
        key: &str,
    ) -> Result<Option<crate::rollout::RolloutChoices>, ProviderError> {
        let _ = key;
        Ok(None)
    }

    /// Other environments the same rollout write changes too, as the vendor names them (a
    /// Flagsmith segment is project-wide: its percentage is every environment's that uses it).
    /// Empty when the change stays in this environment. The dialog and the CLI say these and
    /// ask for the typed confirmation of any protected one among them.
    async fn rollout_shared_with(
        &self,
        key: &str,
        target: &RolloutTarget,
        seen: &FlagState,
    ) -> Result<Vec<String>, ProviderError> {
        let _ = (key, target, seen);
        Ok(Vec::new())
    }
}

/// Whether a write path should be built at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// One environment, connected.
#[derive(Clone)]
pub struct Connection {
    pub env: String,
    pub source: Arc<dyn FlagSource>,
    /// `None` when read-only: by `--read-only`, or because the credentials allow no writes.
    pub writer: Option<Arc<dyn FlagWriter>>,
    /// Why `writer` is `None`, in words for the status bar.
    pub read_only_reason: Option<String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("env", &self.env)
            .field("source", self.source.info())
            .field("writable", &self.writer.is_some())
            .field("read_only_reason", &self.read_only_reason)
            .finish()
    }
}

impl Connection {
    /// A connection with its write path removed (for `--read-only`).
    pub fn read_only(
        source: Arc<dyn FlagSource>,
        env: &str,
        reason: impl Into<String>,
    ) -> Connection {
        Connection {
            env: env.to_string(),
            source,
            writer: None,
            read_only_reason: Some(reason.into()),
        }
    }
}

/// Builds the connection for one environment. `secrets` are the fields read from Vault (None
/// for providers that need none, like flagd). This is the registry: a new vendor is one module
/// plus one arm here.
pub fn connect(
    env: &EnvironmentConfig,
    secrets: Option<&SecretFields>,
    access: Access,
    network: &NetworkConfig,
) -> Result<Connection, ProviderError> {
    match env.provider {
        ProviderKind::Flagd => flagd::connect(env, access),
        ProviderKind::Flagsmith => flagsmith::connect(env, secrets, access, network),
        ProviderKind::LaunchDarkly => launchdarkly::connect(env, secrets, access, network),
        ProviderKind::Unleash => unleash::connect(env, secrets, access, network),
    }
}

/// The Vault fields a provider reads, in the order docs/providers/ documents them. `required` are
/// all needed to read; `write` are alternatives needed only to change flags: any one of them
/// (in the environment's secret or its `/admin` sibling) makes the environment writable.
pub struct CredentialFields {
    pub required: &'static [&'static str],
    pub write: &'static [&'static str],
    /// Fields that name or locate things (URLs, project and environment keys) and appear in
    /// messages; every other field is a credential the redactor blanks wherever it shows up.
    pub public: &'static [&'static str],
}

pub fn credential_fields(kind: ProviderKind) -> CredentialFields {
    match kind {
        ProviderKind::Flagd => CredentialFields {
            required: &[],
            write: &[],
            public: &[],
        },
        ProviderKind::Flagsmith => CredentialFields {
            required: flagsmith::REQUIRED_FIELDS,
            write: flagsmith::WRITE_FIELDS,
            // Flagsmith's `environment_key` is the server-side key: a credential.
            public: &["api_url"],
        },
        ProviderKind::LaunchDarkly => CredentialFields {
            required: launchdarkly::REQUIRED_FIELDS,
            write: launchdarkly::WRITE_FIELDS,
            // LaunchDarkly's project and environment keys are names, shown in messages.
            public: &["api_url", "sdk_url", "project_key", "environment_key"],
        },
        // Reading also needs `read_token` or `admin_token`; `api_url` may come from options.
        ProviderKind::Unleash => CredentialFields {
            required: &["backend_token"],
            write: &["admin_token"],
            public: &["api_url"],
        },
    }
}

/// Puts metadata read beside the states onto the flags. The kind the metadata brings wins only
/// when it says more than the key does (a vendor tag), so a kind the states' read learned (a
/// multivariate feature, an Unleash flag type) is not lost to a metadata read without tags.
pub fn merge_metadata(flags: &mut [Flag], metadata: &[FlagMeta]) {
    if metadata.is_empty() {
        return;
    }
    let by_key: std::collections::HashMap<&str, &FlagMeta> = metadata
        .iter()
        .map(|meta| (meta.key.as_str(), meta))
        .collect();
    for flag in flags {
        let Some(meta) = by_key.get(flag.meta.key.as_str()) else {
            continue;
        };
        let mut merged = (*meta).clone();
        if merged.kind == FlagKind::classify(&merged.key, None) {
            merged.kind = flag.meta.kind;
        }
        if merged.runbook.is_none() {
            merged.runbook = flag.meta.runbook.clone();
        }
        if merged != *flag.meta {
            flag.meta = Arc::new(merged);
        }
    }
}
