//! Values for dynamic shell completion (clap_complete's `unstable-dynamic` engine): `--env`
//! completes with the configured environment names, flags with the keys the environments hold.
//! Completion runs in the shell's prompt, so it never fails loudly: no config, no candidates.

use std::time::Duration;

use clap_complete::engine::CompletionCandidate;

use crate::cli::GlobalArgs;
use crate::provider::Access;

/// The longest a flag-key completion waits for the environments (the local files answer at
/// once; a vendor that does not is left out).
const FLAG_WAIT: Duration = Duration::from_secs(3);

fn config() -> Option<crate::config::Config> {
    let dirs = crate::workspace::Dirs::discover().ok()?;
    crate::workspace::resolve_config(None, &dirs).ok()
}

/// The configured environment names.
pub fn environments() -> Vec<CompletionCandidate> {
    let Some(config) = config() else {
        return Vec::new();
    };
    config
        .environments
        .iter()
        .map(|env| {
            let help = format!(
                "{}{}",
                env.provider.name(),
                if env.protected { ", protected" } else { "" }
            );
            CompletionCandidate::new(env.name.clone()).help(Some(help.into()))
        })
        .collect()
}

/// The flag keys of every environment that answers within [`FLAG_WAIT`].
pub fn flags() -> Vec<CompletionCandidate> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let keys = runtime.block_on(async {
        let global = GlobalArgs {
            config: None,
            read_only: true,
            audit_log: None,
            local: false,
        };
        let Ok(session) = super::build_session(&global, Access::ReadOnly).await else {
            return Vec::new();
        };
        let loaded = tokio::time::timeout(FLAG_WAIT, super::load_all(&session, &[]))
            .await
            .unwrap_or_default();
        let mut keys: Vec<(String, String)> = Vec::new();
        for (_, result) in loaded {
            for flag in result.into_iter().flat_map(|snapshot| snapshot.flags) {
                if !keys.iter().any(|(key, _)| *key == flag.meta.key) {
                    keys.push((flag.meta.key.clone(), flag.meta.kind.label().to_string()));
                }
            }
        }
        keys.sort();
        keys
    });
    keys.into_iter()
        .map(|(key, kind)| CompletionCandidate::new(key).help(Some(kind.into())))
        .collect()
}
