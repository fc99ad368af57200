//! A running session: the config, the credentials source, the audit log, the clock, and one
//! connection per environment, built on first use and reused. Shared by the TUI and the
//! subcommands so both take the same path to the vendors.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::audit::AuditLog;
use crate::clock::Clock;
use crate::config::{Config, EnvironmentConfig};
use crate::model::{EnvSnapshot, Flag, FlagMeta};
use crate::provider::{self, Access, Connection, ErrorKind, ProviderError};
use crate::secret::SecretFields;

/// Why an environment could not be connected or read: its credentials (Vault) or the vendor
/// (with the vendor error's kind). The kind travels with the failure to the dashboard and the
/// commands, which take exit codes from it (the outcome presenter's `Class::of_connect`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// Vault (or another credential source) failed: path, field, status, cause.
    #[error("{0}")]
    Credentials(CredentialError),
    /// The provider's setup, or the read of its flags, failed.
    #[error("{0}")]
    Provider(ProviderError),
}

/// What failed when an environment's credentials could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// No credential source: `VAULT_ADDR` is not set.
    NotConfigured,
    /// The token was refused (expired, revoked, invalid): log in again.
    Auth,
    /// The token's policy does not allow reading the secret.
    Denied,
    /// No secret at the path, or a field missing, empty or not a string.
    Missing,
    /// Vault did not answer usefully (unreachable, sealed, an error status, a setup problem).
    Unavailable,
}

impl CredentialKind {
    /// What to do about it, in words (`doctor`'s fix line).
    pub fn advice(self, location: &str) -> String {
        match self {
            CredentialKind::NotConfigured => {
                "export VAULT_ADDR (and log in: vault login), or use --local".to_string()
            }
            CredentialKind::Auth => "vault login (the token was refused), then run again".into(),
            CredentialKind::Denied => {
                format!(
                    "ask for a Vault policy with read on {location} (see the policies in docs/vault.md)"
                )
            }
            CredentialKind::Missing => {
                format!("vault kv put {location} with the fields in docs/vault.md (layout)")
            }
            CredentialKind::Unavailable => {
                "check VAULT_ADDR and that Vault is unsealed and reachable".into()
            }
        }
    }
}

/// Credentials that could not be read: the kind, and the message (names the Vault path and
/// field, never a value).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    pub kind: CredentialKind,
    pub message: String,
}

impl CredentialError {
    pub fn new(kind: CredentialKind, message: impl Into<String>) -> CredentialError {
        CredentialError {
            kind,
            message: message.into(),
        }
    }
}

impl ConnectError {
    /// Whether the credentials (Vault), not the vendor, failed: `status` then exits 6, not 7.
    pub fn is_credentials(&self) -> bool {
        matches!(self, ConnectError::Credentials(_))
    }

    /// The same failure with its message rewritten (the kind kept).
    fn map_message(self, change: impl FnOnce(String) -> String) -> ConnectError {
        match self {
            ConnectError::Credentials(error) => ConnectError::Credentials(CredentialError {
                message: change(error.message),
                ..error
            }),
            ConnectError::Provider(error) => ConnectError::Provider(ProviderError {
                message: change(error.message),
                ..error
            }),
        }
    }
}

/// Credentials plus the fields the reader may not see (for read-only-by-policy).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub fields: SecretFields,
    /// Set when the policy let us read the environment keys but not the admin credential.
    pub write_denied: Option<String>,
}

/// Where environment credentials come from (Vault KV v2 in production).
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// The fields stored for one environment.
    async fn credentials(&self, env: &EnvironmentConfig) -> Result<Credentials, ConnectError>;

    /// Who is operating, for the audit log ("token-alice").
    async fn operator(&self) -> Option<String> {
        None
    }

    /// Loud warnings about the setup (VAULT_SKIP_VERIFY), for stderr and the status line.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// `fields` of a secret that is not an environment's (a notification receiver's URL),
    /// for `owner` ("notify `team-channel`"). Every value is registered with the redactor.
    async fn secret_fields(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        fields: &[&str],
    ) -> Result<SecretFields, String> {
        let _ = fields;
        Err(format!(
            "{owner}: reads Vault {mount}/{path}, but VAULT_ADDR is not set"
        ))
    }
}

/// For setups without Vault (the local flagd workspace): any provider that needs credentials
/// gets a clear error saying where they should have come from.
pub struct NoCredentials;

#[async_trait]
impl CredentialSource for NoCredentials {
    async fn credentials(&self, env: &EnvironmentConfig) -> Result<Credentials, ConnectError> {
        Err(ConnectError::Credentials(CredentialError::new(
            CredentialKind::NotConfigured,
            format!(
                "{}: provider {} reads its credentials from Vault at {}, but VAULT_ADDR is not set",
                env.name,
                env.provider.name(),
                env.vault_location()
            ),
        )))
    }
}

/// One environment's metadata, read at most once per session.
type MetadataCell = tokio::sync::OnceCell<Arc<Vec<FlagMeta>>>;

pub struct Session {
    pub config: Config,
    pub access: Access,
    pub credentials: Arc<dyn CredentialSource>,
    pub audit: Arc<AuditLog>,
    pub clock: Arc<dyn Clock>,
    connections: Mutex<HashMap<String, Connection>>,
    /// One lock per environment while its connection is built, so the states' and the
    /// metadata's first reads share one credential read.
    connecting: std::sync::Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Credentials read once per environment: the first-read connection and the regular one
    /// are built from the same read.
    credentials_read: Mutex<HashMap<String, Option<Credentials>>>,
    /// Environments that have loaded at least once in this process: their reads get the
    /// regular request timeout, the others the longer first-read budget.
    loaded_once: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Each flag's metadata: what each environment holds, and the copy merged across them that
    /// every snapshot shares.
    shared_meta: std::sync::Mutex<HashMap<String, MetaEntry>>,
    /// Each environment's metadata (owners, tags, descriptions), read once per session; a
    /// failed read is not kept, so the next load tries again.
    metadata: std::sync::Mutex<HashMap<String, Arc<MetadataCell>>>,
}

/// One flag's metadata as each environment (by config index) holds it, and merged.
struct MetaEntry {
    by_env: std::collections::BTreeMap<usize, Arc<FlagMeta>>,
    merged: Arc<FlagMeta>,
}

impl Session {
    pub fn new(
        config: Config,
        access: Access,
        credentials: Arc<dyn CredentialSource>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
    ) -> Session {
        Session {
            config,
            access,
            credentials,
            audit,
            clock,
            connections: Mutex::new(HashMap::new()),
            connecting: std::sync::Mutex::new(HashMap::new()),
            credentials_read: Mutex::new(HashMap::new()),
            loaded_once: std::sync::Mutex::new(std::collections::HashSet::new()),
            shared_meta: std::sync::Mutex::new(HashMap::new()),
            metadata: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The operator's name for audit records: the Vault identity when there is one, else the
    /// local user.
    pub async fn operator(&self) -> String {
        if let Some(name) = self.credentials.operator().await {
            return name;
        }
        local_operator()
    }

    /// The environment's connection, built once (credentials read once) and reused.
    pub async fn connection(&self, env: &str) -> Result<Connection, ConnectError> {
        if let Some(existing) = self.connections.lock().await.get(env) {
            return Ok(existing.clone());
        }
        let building = self.building_lock(env);
        let _building = building.lock().await;
        if let Some(existing) = self.connections.lock().await.get(env) {
            return Ok(existing.clone());
        }
        let connection = self.build_connection(env, &self.config.network).await?;
        self.connections
            .lock()
            .await
            .insert(env.to_string(), connection.clone());
        Ok(connection)
    }

    /// One lock per environment while a connection is built (one credential read).
    fn building_lock(&self, env: &str) -> Arc<Mutex<()>> {
        match self.connecting.lock() {
            Ok(mut locks) => locks.entry(env.to_string()).or_default().clone(),
            Err(_) => Arc::new(Mutex::new(())),
        }
    }

    /// A connection whose requests may take the first-read budget, for the state reads of an
    /// environment that has not loaded yet in this process. Not kept: once the environment
    /// loaded, reads go through [`Session::connection`] with the regular timeout.
    async fn first_read_connection(&self, env: &str) -> Result<Connection, ConnectError> {
        let mut network = self.config.network.clone();
        network.request_timeout = network.first_read_timeout();
        let building = self.building_lock(env);
        let _building = building.lock().await;
        self.build_connection(env, &network).await
    }

    async fn build_connection(
        &self,
        env: &str,
        network: &crate::config::NetworkConfig,
    ) -> Result<Connection, ConnectError> {
        let config = self.config.environment(env).ok_or_else(|| {
            ConnectError::Provider(ProviderError::new(
                ErrorKind::NotFound,
                self.config.unknown_environment(env),
            ))
        })?;
        let credentials = self.read_credentials(config).await?;
        let mut access = self.access;
        let mut denied = None;
        if let Some(reason) = credentials.as_ref().and_then(|c| c.write_denied.clone()) {
            access = Access::ReadOnly;
            denied = Some(reason);
        }
        let mut connection = provider::connect(
            config,
            credentials.as_ref().map(|c| &c.fields),
            access,
            network,
        )
        .map_err(ConnectError::Provider)?;
        if let Some(reason) = denied {
            connection.read_only_reason = Some(reason);
        }
        Ok(connection)
    }

    /// The environment's credentials, read from the source once and kept (a failed read is
    /// not kept: the next attempt asks again).
    async fn read_credentials(
        &self,
        config: &EnvironmentConfig,
    ) -> Result<Option<Credentials>, ConnectError> {
        if !config.provider.uses_vault() {
            return Ok(None);
        }
        if let Some(known) = self.credentials_read.lock().await.get(&config.name) {
            return Ok(known.clone());
        }
        let credentials = Some(self.credentials.credentials(config).await?);
        self.credentials_read
            .lock()
            .await
            .insert(config.name.clone(), credentials.clone());
        Ok(credentials)
    }

    fn has_loaded(&self, env: &str) -> bool {
        self.loaded_once
            .lock()
            .map(|loaded| loaded.contains(env))
            .unwrap_or(false)
    }

    /// Connects if needed and reads every flag of the environment with its metadata: the
    /// states and the metadata are read at the same time (for `status`, `stale`, `runbook`,
    /// which print once). A failed metadata read leaves the metadata out, never the states.
    pub async fn load(&self, env: &str) -> Result<EnvSnapshot, ConnectError> {
        let (states, metadata) = tokio::join!(self.load_states(env), self.metadata(env));
        let mut snapshot = states?;
        if let Ok(metadata) = metadata {
            provider::merge_metadata(&mut snapshot.flags, &metadata);
            snapshot.flags = self.share_metadata(self.env_index(env), snapshot.flags);
        }
        Ok(snapshot)
    }

    /// The environment's metadata, read once per session: concurrent callers share one read.
    pub async fn metadata(&self, env: &str) -> Result<Arc<Vec<FlagMeta>>, ConnectError> {
        let cell = match self.metadata.lock() {
            Ok(mut cells) => cells.entry(env.to_string()).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::OnceCell::new()),
        };
        cell.get_or_try_init(|| async {
            let connection = self.connection(env).await?;
            connection
                .source
                .metadata()
                .await
                .map(Arc::new)
                .map_err(ConnectError::Provider)
        })
        .await
        .cloned()
    }

    /// The metadata this session already read for `env`, without reading anything.
    pub fn known_metadata(&self, env: &str) -> Option<Arc<Vec<FlagMeta>>> {
        let cells = self.metadata.lock().ok()?;
        cells.get(env)?.get().cloned()
    }

    /// Connects if needed and reads the states of every flag of the environment: the one bulk
    /// call per environment (plus the metadata this session already knows, which costs
    /// nothing). The dashboard paints from this and fills metadata when it arrives.
    pub async fn load_states(&self, env: &str) -> Result<EnvSnapshot, ConnectError> {
        let first = !self.has_loaded(env);
        let limit = if first {
            self.config.network.first_read_timeout()
        } else {
            self.config.network.request_timeout
        };
        let connected = if first {
            self.first_read_connection(env).await
        } else {
            self.connection(env).await
        };
        let connection = connected?;
        let started = std::time::Instant::now();
        let timed_out = |error: ProviderError| {
            ConnectError::Provider(error).map_message(|m| with_limit(m, limit))
        };
        let flags = match connection.source.list_flags().await {
            Ok(flags) => flags,
            // A read is safe to repeat: one retry for a blip (a dropped or reset connection,
            // a 5xx, a torn body), only when it failed fast, so a dead or hung vendor is
            // reported after one timeout, not two.
            Err(first)
                if matches!(first.kind, ErrorKind::Unreachable | ErrorKind::Api)
                    && started.elapsed() < limit / 2 =>
            {
                tokio::time::sleep(READ_RETRY_PAUSE).await;
                connection.source.list_flags().await.map_err(timed_out)?
            }
            Err(err) => return Err(timed_out(err)),
        };
        if let Ok(mut loaded) = self.loaded_once.lock() {
            loaded.insert(env.to_string());
        }
        let mut flags = flags;
        if let Some(metadata) = self.known_metadata(env) {
            provider::merge_metadata(&mut flags, &metadata);
        }
        let index = self.env_index(env);
        Ok(EnvSnapshot {
            env: env.to_string(),
            flags: self.share_metadata(index, flags),
            fetched_at: self.clock.now(),
        })
    }

    /// The environment's position in the config (metadata merges in config order).
    fn env_index(&self, env: &str) -> usize {
        self.config
            .environment_names()
            .iter()
            .position(|name| name == env)
            .unwrap_or(usize::MAX)
    }

    /// Replaces each flag's metadata by the copy merged across every environment loaded so far
    /// (each field from the first environment, in config order, that has it), shared by all of
    /// them: N environments of the same flags keep one copy, not N, and an environment read
    /// without the credential that gives owners (Flagsmith's admin key) still shows the owner
    /// another environment has. Environments loaded earlier get the merge of later ones
    /// through [`Session::merge_metadata`].
    fn share_metadata(&self, env_index: usize, mut flags: Vec<Flag>) -> Vec<Flag> {
        let Ok(mut known) = self.shared_meta.lock() else {
            return flags;
        };
        for flag in &mut flags {
            let entry = known
                .entry(flag.meta.key.clone())
                .or_insert_with(|| MetaEntry {
                    by_env: std::collections::BTreeMap::new(),
                    merged: flag.meta.clone(),
                });
            // Keep one copy of equal metadata across environments.
            let own = entry
                .by_env
                .values()
                .find(|other| ***other == *flag.meta)
                .cloned()
                .unwrap_or_else(|| flag.meta.clone());
            entry.by_env.insert(env_index, own);
            let merged = FlagMeta::merged(entry.by_env.values().map(|meta| meta.as_ref()));
            if merged != *entry.merged {
                entry.merged = entry
                    .by_env
                    .values()
                    .find(|other| ***other == merged)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(merged));
            }
            flag.meta = entry.merged.clone();
        }
        flags
    }

    /// Points every flag of `snapshot` at the metadata merged across all environments loaded
    /// so far (for snapshots loaded before the others).
    pub fn merge_metadata(&self, snapshot: &mut EnvSnapshot) {
        let Ok(known) = self.shared_meta.lock() else {
            return;
        };
        for flag in &mut snapshot.flags {
            if let Some(entry) = known.get(&flag.meta.key) {
                flag.meta = entry.merged.clone();
            }
        }
    }
}

/// "… timed out" with the limit that ran out ("… timed out after 15 s").
fn with_limit(message: String, limit: std::time::Duration) -> String {
    match message.strip_suffix("timed out") {
        Some(start) => {
            let secs = limit.as_secs_f64();
            let shown = if limit.subsec_millis() == 0 {
                format!("{secs:.0} s")
            } else {
                format!("{secs:.1} s")
            };
            format!("{start}timed out after {shown}")
        }
        None => message,
    }
}

/// The pause before the one retry of a failed read.
const READ_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(150);

/// `$USER@host`, the operator when no Vault identity is known. Without `$USER` / `$LOGNAME`
/// (services, `env -i`, some containers) the account comes from the OS; `uid-N` when the
/// account has no name.
pub fn local_operator() -> String {
    let user = std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .or_else(os_account)
        .unwrap_or_else(|| {
            // SAFETY: geteuid cannot fail and has no preconditions.
            format!("uid-{}", unsafe { libc::geteuid() })
        });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

/// The name of the account this process runs as, from the password database (`getpwuid_r`).
pub fn os_account() -> Option<String> {
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into `entry` and `buffer`,
    // whose sizes are passed, and `result` points into them or is null.
    unsafe {
        let uid = libc::geteuid();
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut buffer = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let status = libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        );
        if status != 0 || result.is_null() || entry.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(entry.pw_name)
            .to_string_lossy()
            .trim()
            .to_string();
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn local_session(dir: &std::path::Path) -> Session {
        let config = crate::workspace::local_config(&dir.join("local")).expect("config");
        let audit = AuditLog::open(&dir.join("audit.jsonl")).expect("audit");
        Session::new(
            config,
            Access::ReadOnly,
            Arc::new(NoCredentials),
            Arc::new(audit),
            Arc::new(SystemClock),
        )
    }

    fn edit(dir: &std::path::Path, env: &str, from: &str, to: &str) {
        let path = dir.join(format!("local/{env}.flagd.json"));
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains(from), "{from} in {env}");
        std::fs::write(&path, text.replace(from, to)).expect("write");
    }

    #[tokio::test]
    async fn environments_share_one_merged_copy_of_the_metadata() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = local_session(dir.path());
        // staging's owner of one flag differs: the first environment's owner is the flag's.
        edit(
            dir.path(),
            "staging",
            "\"owner\": \"team-checkout\"",
            "\"owner\": \"team-payments\"",
        );
        let dev = session.load("dev").await.expect("dev");
        let staging = session.load("staging").await.expect("staging");
        let prod = session.load("prod").await.expect("prod");
        for flag in &prod.flags {
            for other in [&dev, &staging] {
                let twin = other.flag(&flag.meta.key).expect("same flags");
                assert!(Arc::ptr_eq(&flag.meta, &twin.meta), "{}", flag.meta.key);
            }
        }
        assert!(
            staging
                .flags
                .iter()
                .all(|f| f.meta.owner.as_deref() != Some("team-payments"))
        );
    }

    #[tokio::test]
    async fn an_environment_without_metadata_gets_the_other_environments_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = local_session(dir.path());
        // dev, the first environment, has no owner, date or description for any flag (as a
        // Flagsmith environment read without the admin credential).
        let path = dir.path().join("local/dev.flagd.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        if let Some(flags) = json.get_mut("flags").and_then(|f| f.as_object_mut()) {
            for flag in flags.values_mut() {
                if let Some(flag) = flag.as_object_mut() {
                    flag.remove("metadata");
                }
            }
        }
        std::fs::write(&path, json.to_string()).expect("write");
        let mut dev = session.load("dev").await.expect("dev");
        assert!(dev.flags.iter().all(|f| f.meta.owner.is_none()));
        let prod = session.load("prod").await.expect("prod");
        session.merge_metadata(&mut dev);
        for flag in &dev.flags {
            let in_prod = prod.flag(&flag.meta.key).expect("same flags");
            assert!(flag.meta.owner.is_some(), "{}", flag.meta.key);
            assert_eq!(flag.meta.owner, in_prod.meta.owner);
            assert_eq!(flag.meta.expected_removal, in_prod.meta.expected_removal);
            assert_eq!(flag.meta.kind, in_prod.meta.kind);
            assert!(Arc::ptr_eq(&flag.meta, &in_prod.meta));
        }
    }

    #[test]
    fn the_os_account_is_this_process_s_user() {
        let expected = std::process::Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        assert!(!expected.is_empty());
        assert_eq!(os_account().as_deref(), Some(expected.as_str()));
    }
}
