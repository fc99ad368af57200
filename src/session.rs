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

/// Why an environment could not be connected: credentials (Vault) or the provider setup.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectError {
    /// Vault (or another credential source) failed: path, field, status, cause.
    #[error("{0}")]
    Credentials(String),
    #[error("{0}")]
    Provider(ProviderError),
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
}

/// For setups without Vault (the local flagd workspace): any provider that needs credentials
/// gets a clear error saying where they should have come from.
pub struct NoCredentials;

#[async_trait]
impl CredentialSource for NoCredentials {
    async fn credentials(&self, env: &EnvironmentConfig) -> Result<Credentials, ConnectError> {
        Err(ConnectError::Credentials(format!(
            "{}: provider {} reads its credentials from Vault at {}, but VAULT_ADDR is not set",
            env.name,
            env.provider.name(),
            env.vault_location()
        )))
    }
}

pub struct Session {
    pub config: Config,
    pub access: Access,
    pub credentials: Arc<dyn CredentialSource>,
    pub audit: Arc<AuditLog>,
    pub clock: Arc<dyn Clock>,
    connections: Mutex<HashMap<String, Connection>>,
    /// Environments whose last load failed on credentials (Vault), for exit code 6.
    credential_failures: std::sync::Mutex<std::collections::HashSet<String>>,
    /// One copy of each flag's metadata, shared by every environment that holds it unchanged.
    shared_meta: std::sync::Mutex<HashMap<String, Arc<FlagMeta>>>,
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
            credential_failures: std::sync::Mutex::new(std::collections::HashSet::new()),
            shared_meta: std::sync::Mutex::new(HashMap::new()),
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
        let config = self.config.environment(env).ok_or_else(|| {
            ConnectError::Provider(ProviderError::new(
                ErrorKind::NotFound,
                self.config.unknown_environment(env),
            ))
        })?;
        let credentials = if config.provider.uses_vault() {
            Some(self.credentials.credentials(config).await?)
        } else {
            None
        };
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
            &self.config.network,
        )
        .map_err(ConnectError::Provider)?;
        if let Some(reason) = denied {
            connection.read_only_reason = Some(reason);
        }
        self.connections
            .lock()
            .await
            .insert(env.to_string(), connection.clone());
        Ok(connection)
    }

    /// Connects if needed and reads every flag of the environment.
    pub async fn load(&self, env: &str) -> Result<EnvSnapshot, String> {
        let connected = self.connection(env).await;
        if let Ok(mut failed) = self.credential_failures.lock() {
            if matches!(connected, Err(ConnectError::Credentials(_))) {
                failed.insert(env.to_string());
            } else {
                failed.remove(env);
            }
        }
        let connection = connected.map_err(|err| err.to_string())?;
        let started = std::time::Instant::now();
        let flags = match connection.source.list_flags().await {
            Ok(flags) => flags,
            // A read is safe to repeat: one retry for a blip (a dropped or reset connection,
            // a 5xx, a torn body), only when it failed fast, so a dead or hung vendor is
            // reported after one timeout, not two.
            Err(first)
                if matches!(first.kind, ErrorKind::Unreachable | ErrorKind::Api)
                    && started.elapsed() < self.config.network.request_timeout / 2 =>
            {
                tokio::time::sleep(READ_RETRY_PAUSE).await;
                connection
                    .source
                    .list_flags()
                    .await
                    .map_err(|err| err.message)?
            }
            Err(err) => return Err(err.message),
        };
        Ok(EnvSnapshot {
            env: env.to_string(),
            flags: self.share_metadata(flags),
            fetched_at: self.clock.now(),
        })
    }

    /// Replaces each flag's metadata by the copy another environment already holds when they
    /// are equal, so N environments of the same flags keep one copy, not N. The fresh copy is
    /// dropped here, in the loading task, before the snapshot reaches the dashboard.
    fn share_metadata(&self, mut flags: Vec<Flag>) -> Vec<Flag> {
        let Ok(mut known) = self.shared_meta.lock() else {
            return flags;
        };
        for flag in &mut flags {
            match known.get(&flag.meta.key) {
                Some(shared) if **shared == *flag.meta => flag.meta = shared.clone(),
                _ => {
                    known.insert(flag.meta.key.clone(), flag.meta.clone());
                }
            }
        }
        flags
    }
}

impl Session {
    /// Whether the last load of `env` failed on its credentials (Vault) rather than at the
    /// provider: `status` then exits 6, not 7.
    pub fn credentials_failed(&self, env: &str) -> bool {
        self.credential_failures
            .lock()
            .map(|failed| failed.contains(env))
            .unwrap_or(false)
    }
}

/// The pause before the one retry of a failed read.
const READ_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(150);

/// `$USER@host`, the operator when no Vault identity is known.
pub fn local_operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        user
    } else {
        format!("{user}@{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn environments_share_equal_metadata_and_keep_their_own_when_it_differs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = crate::workspace::local_config(&dir.path().join("local")).expect("config");
        // staging's owner of one flag differs from the others'.
        let staging = dir.path().join("local/staging.flagd.json");
        let text = std::fs::read_to_string(&staging).expect("staging");
        std::fs::write(
            &staging,
            text.replacen(
                "\"owner\": \"team-checkout\"",
                "\"owner\": \"team-payments\"",
                1,
            ),
        )
        .expect("write");
        let audit = AuditLog::open(&dir.path().join("audit.jsonl")).expect("audit");
        let session = Session::new(
            config,
            Access::ReadOnly,
            Arc::new(NoCredentials),
            Arc::new(audit),
            Arc::new(SystemClock),
        );
        let dev = session.load("dev").await.expect("dev");
        let prod = session.load("prod").await.expect("prod");
        let staging = session.load("staging").await.expect("staging");
        for flag in &prod.flags {
            let twin = dev.flag(&flag.meta.key).expect("same flags");
            assert!(Arc::ptr_eq(&flag.meta, &twin.meta), "{}", flag.meta.key);
        }
        let changed = staging
            .flags
            .iter()
            .find(|f| f.meta.owner.as_deref() == Some("team-payments"))
            .expect("the changed owner is kept");
        let original = dev.flag(&changed.meta.key).expect("in dev");
        assert_eq!(original.meta.owner.as_deref(), Some("team-checkout"));
        assert!(!Arc::ptr_eq(&changed.meta, &original.meta));
    }
}
