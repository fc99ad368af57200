//! What every vendor test file shares (tests/flagsmith.rs, tests/launchdarkly.rs,
//! tests/unleash.rs, and the next vendor's): timeouts, an environment of the config, connecting
//! through `provider::connect` as the session does, the flip request the dashboard builds, and
//! the check that a flip was applied and confirmed by what services see. Each vendor file keeps
//! only its credentials (which Vault fields, which fake or server).

use std::collections::BTreeMap;
use std::time::Duration;

use killswitch::audit::AuditLog;
use killswitch::clock::SystemClock;
use killswitch::config::{EnvironmentConfig, NetworkConfig, ProviderKind};
use killswitch::flip::{self, Change, FlipError, FlipOutcome, FlipRequest, Verification};
use killswitch::model::Flag;
use killswitch::provider::{self, Access, Connection, ProviderError};
use killswitch::rollout::RolloutTarget;
use killswitch::secret::SecretFields;

/// The operator every vendor test flips as.
pub const OPERATOR: &str = "alice@bastion";

/// Connect, request and verification timeouts, in milliseconds.
pub fn network(connect_ms: u64, request_ms: u64, verify_ms: u64) -> NetworkConfig {
    NetworkConfig {
        connect_timeout: Duration::from_millis(connect_ms),
        request_timeout: Duration::from_millis(request_ms),
        verify_timeout: Duration::from_millis(verify_ms),
    }
}

/// Environment `name` of `provider`, its secret at `kv/feature-flags/<provider>/<name>`,
/// protected when it is `prod`.
pub fn env_config(
    provider: ProviderKind,
    name: &str,
    options: &[(&str, &str)],
) -> EnvironmentConfig {
    EnvironmentConfig {
        name: name.to_string(),
        provider,
        protected: name == "prod",
        file: None,
        vault_mount: "kv".into(),
        vault_path: format!("feature-flags/{}/{name}", provider.name()),
        options: options
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The connection the session would make from these Vault fields; panics (naming the
/// environment) when the provider refuses them.
pub fn connect(
    env: &EnvironmentConfig,
    fields: &SecretFields,
    access: Access,
    network: &NetworkConfig,
) -> Connection {
    match provider::connect(env, Some(fields), access, network) {
        Ok(connection) => connection,
        Err(err) => panic!("connect {}: {}", env.name, err.message),
    }
}

/// Why the provider refuses to connect; panics when it connects.
pub fn connect_err(
    env: &EnvironmentConfig,
    fields: Option<&SecretFields>,
    network: &NetworkConfig,
) -> ProviderError {
    match provider::connect(env, fields, Access::ReadWrite, network) {
        Ok(_) => panic!("connect {} should fail", env.name),
        Err(err) => err,
    }
}

/// The switch the dashboard asks for after showing `seen`: to `enabled`, with `note`.
pub fn flip_request(env: &str, seen: &Flag, enabled: bool, note: &str) -> FlipRequest {
    FlipRequest {
        env: env.to_string(),
        flag: seen.meta.key.clone(),
        kind: seen.meta.kind,
        change: Change::Switch { enabled },
        seen: seen.state.clone(),
        note: note.to_string(),
        operator: OPERATOR.to_string(),
    }
}

/// The flip was applied and what services see confirmed it: its audit id and how long after
/// the write the confirmation came. Panics with `context` and the outcome otherwise.
pub fn assert_confirmed(outcome: &FlipOutcome, context: &str) -> (String, Duration) {
    match outcome {
        FlipOutcome::Applied {
            audit_id,
            verification: Verification::Confirmed { after },
            ..
        } => (audit_id.clone(), *after),
        other => panic!("{context}: not applied and confirmed: {other:?}"),
    }
}

/// A rollout of `flag` to `target`, asked for after reading the flag as the dashboard does, run
/// through the one flip transaction.
pub async fn rollout(
    connection: &Connection,
    log: &AuditLog,
    flag: &str,
    target: RolloutTarget,
    note: &str,
    verify_timeout: Duration,
) -> Result<FlipOutcome, FlipError> {
    let current = match connection.source.read_flag(flag).await {
        Ok(current) => current,
        Err(err) => panic!("read {flag} before the rollout: {}", err.message),
    };
    let request = FlipRequest {
        env: connection.env.clone(),
        flag: flag.to_string(),
        kind: current.meta.kind,
        change: Change::Rollout { target },
        seen: current.state,
        note: note.to_string(),
        operator: OPERATOR.to_string(),
    };
    flip::execute(&request, connection, log, &SystemClock, verify_timeout).await
}

/// `--to PERCENT`.
pub fn percent(percent: f64) -> RolloutTarget {
    RolloutTarget::Percent { percent }
}

/// `--variant NAME`.
pub fn variant(name: &str) -> RolloutTarget {
    RolloutTarget::Variant {
        variant: name.to_string(),
    }
}

/// The rollout was applied and what services see confirmed it.
pub fn assert_applied(outcome: &Result<FlipOutcome, FlipError>) {
    match outcome {
        Ok(outcome) => {
            assert_confirmed(outcome, "rollout");
        }
        Err(err) => panic!("not applied: {err}"),
    }
}
