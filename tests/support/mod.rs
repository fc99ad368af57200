//! Shared test support. Each real server or fake has its own module here; the servers are
//! installed under `.test-servers/` by `tests/servers/install-*.sh` (run by `tests/run.sh`).
#![allow(dead_code)]

pub mod dashboard;
pub mod faults;
pub mod openbao;
pub mod pty;
pub mod sdk;
pub mod svg;
pub mod vendor;

use std::path::PathBuf;

/// True under CI (`CI=true`): a missing server is then a failure, never a skip.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Where `tests/servers/install-*.sh` put the servers.
pub fn servers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".test-servers")
}

/// Call when a server the test needs is not installed: fails under CI, otherwise prints why
/// the test did nothing. Returns `false` so the caller can `return`.
pub fn server_available(name: &str, available: bool, how_to_install: &str) -> bool {
    if available {
        return true;
    }
    if in_ci() {
        panic!(
            "{name} is not installed and CI=true: a missing server is a failure. Install it with {how_to_install}"
        );
    }
    eprintln!("SKIPPED: {name} is not installed; run {how_to_install}");
    false
}

/// A free TCP port on 127.0.0.1 (bind to port 0, read it, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

/// A scratch home for the binary: XDG dirs inside a temp dir, so tests never touch the user's.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Home {
        Home {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Environment variables that point the binary's XDG dirs into this home.
    pub fn envs(&self) -> Vec<(String, String)> {
        let p = |sub: &str| self.dir.path().join(sub).display().to_string();
        vec![
            ("HOME".into(), self.dir.path().display().to_string()),
            ("XDG_CONFIG_HOME".into(), p("config")),
            ("XDG_DATA_HOME".into(), p("data")),
            ("XDG_STATE_HOME".into(), p("state")),
            ("NO_COLOR".into(), "1".into()),
        ]
    }

    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("state/killswitch/audit.jsonl")
    }

    pub fn local_flags(&self, env: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("data/killswitch/local/{env}.flagd.json"))
    }

    /// A `Command` for the killswitch binary with this home's environment.
    pub fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_killswitch"));
        command.env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("USER", "tester");
        for (key, value) in self.envs() {
            command.env(key, value);
        }
        command
    }
}
