//! The real evaluators and SDKs, installed by `tests/servers/install-sdks.sh` into
//! `.test-servers/sdks/venv` and driven by the scripts in `tests/sdk/`: what services see is
//! checked with what services run, not with killswitch's own reading of the vendor's JSON.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use crate::support::{server_available, servers_dir};

const HOW: &str = "bash tests/servers/install-sdks.sh";

/// Targeting keys (each with its own context) every flagd check evaluates.
pub const KEYS: usize = 1000;

pub fn python() -> PathBuf {
    servers_dir().join("sdks/venv/bin/python")
}

/// `false` (after printing why) when the SDKs are not installed outside CI; panics under CI.
pub fn available() -> bool {
    server_available(
        "the SDKs (OpenFeature flagd evaluator, UnleashClient, flagsmith-python, the LaunchDarkly Python server SDK)",
        python().exists()
            && std::fs::read_to_string(servers_dir().join("sdks/version"))
                .is_ok_and(|pinned| pinned.contains("launchdarkly-server-sdk")),
        HOW,
    )
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sdk")
        .join(name)
}

/// Runs a driver script and parses the JSON it prints.
fn run<T: for<'de> Deserialize<'de>>(name: &str, args: &[String]) -> T {
    let output = Command::new(python())
        .arg(script(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    assert!(
        output.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// One evaluation by the OpenFeature flagd provider: value, reason, variant, error code.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Evaluation(
    pub Value,
    pub Option<String>,
    pub Option<String>,
    pub Option<String>,
);

impl Evaluation {
    pub fn value(&self) -> &Value {
        &self.0
    }
    pub fn reason(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

/// What the flagd evaluator (FILE mode) serves for each flag to [`KEYS`] targeting keys, each
/// asked for as a boolean with the code default `true` (a kill switch's "feature enabled").
pub fn flagd_evaluate(file: &Path, flags: &[&str]) -> BTreeMap<String, Vec<Evaluation>> {
    let mut args = vec![file.display().to_string(), KEYS.to_string()];
    args.extend(flags.iter().map(|f| f.to_string()));
    run("flagd_eval.py", &args)
}

/// Panics unless every key gets the boolean `false` (a kill serves off to all).
pub fn assert_flagd_serves_off(results: &BTreeMap<String, Vec<Evaluation>>, flag: &str) {
    let rows = results
        .get(flag)
        .unwrap_or_else(|| panic!("no evaluation of {flag}"));
    assert_eq!(rows.len(), KEYS);
    let serving: Vec<&Evaluation> = rows
        .iter()
        .filter(|e| e.value() != &Value::Bool(false))
        .collect();
    assert!(
        serving.is_empty(),
        "{flag}: {} of {KEYS} keys still get something other than false, e.g. {:?}",
        serving.len(),
        serving.first()
    );
}

/// Panics unless each key gets the same value as before (same percentage bucket, segment).
pub fn assert_flagd_same_values(
    before: &BTreeMap<String, Vec<Evaluation>>,
    after: &BTreeMap<String, Vec<Evaluation>>,
    flag: &str,
) {
    let values = |results: &BTreeMap<String, Vec<Evaluation>>| -> Vec<Value> {
        results
            .get(flag)
            .unwrap_or_else(|| panic!("no evaluation of {flag}"))
            .iter()
            .map(|e| e.value().clone())
            .collect()
    };
    let (before, after) = (values(before), values(after));
    let differ = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert_eq!(
        differ, 0,
        "{flag}: {differ} of {KEYS} keys get a different value than before the kill"
    );
}

/// How many keys get `true`.
pub fn count_true(results: &BTreeMap<String, Vec<Evaluation>>, flag: &str) -> usize {
    results
        .get(flag)
        .map(|rows| {
            rows.iter()
                .filter(|e| e.value() == &Value::Bool(true))
                .count()
        })
        .unwrap_or(0)
}

/// A running Unleash Python SDK (`tests/sdk/unleash_sdk.py`) whose polls the test triggers.
/// Stopped (by its own PID) when dropped.
pub struct UnleashSdk {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    _cache: tempfile::TempDir,
}

impl UnleashSdk {
    /// Starts the SDK against `base_url` (the server, without `/api`) with a backend token;
    /// returns once its first poll is done.
    pub fn start(base_url: &str, token: &str) -> UnleashSdk {
        use std::io::BufRead;
        use std::process::Stdio;
        let cache = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(python())
            .arg(script("unleash_sdk.py"))
            .arg(format!("{base_url}/api"))
            .arg(token)
            .arg(cache.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Unleash SDK");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "ready", "the Unleash SDK did not start");
        UnleashSdk {
            child,
            stdin,
            stdout,
            _cache: cache,
        }
    }

    /// Runs the SDK's next poll now and returns whether it then serves `flag` as enabled.
    pub fn poll(&mut self, flag: &str) -> bool {
        use std::io::{BufRead, Write};
        writeln!(self.stdin, "poll {flag}").expect("write");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read");
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the Unleash SDK said {line:?}: {e}"));
        answer["enabled"]
            .as_bool()
            .unwrap_or_else(|| panic!("the Unleash SDK said {line:?}"))
    }
}

impl Drop for UnleashSdk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What flagsmith-python gets: `mode` "remote" (`/api/v1/flags/`) or "local" (the environment
/// document, evaluated by the SDK, identities included). `api_url` ends in `/api/v1/`.
pub fn flagsmith_evaluate(api_url: &str, key: &str, mode: &str, flags: &[&str]) -> Value {
    let mut args = vec![api_url.to_string(), key.to_string(), mode.to_string()];
    args.extend(flags.iter().map(|f| f.to_string()));
    run("flagsmith_sdk.py", &args)
}

/// Whether the flagd evaluator serves `flag` from `file` as `true` to every one of [`KEYS`]
/// keys (`Some(true)`) or `false` to every one (`Some(false)`); panics when keys differ.
/// `None` when the evaluator is not installed outside CI (under CI that panics).
pub fn flagd_serves_all(file: &Path, flag: &str) -> Option<bool> {
    if !available() {
        return None;
    }
    let results = flagd_evaluate(file, &[flag]);
    match count_true(&results, flag) {
        0 => Some(false),
        n if n == KEYS => Some(true),
        n => panic!("{flag}: the evaluator serves true to {n} of {KEYS} keys"),
    }
}

/// One row of `flagd_variants.py`: value, variant, reason, error code.
type VariantRow = (Value, Option<String>, Option<String>, Option<String>);

/// Which variant the flagd evaluator serves each of [`KEYS`] targeting keys for `flag`, asked
/// for as `kind` ("boolean" or "string"): the variant's name per key (`None`: the evaluator
/// served the code default), in key order (`user-0` first).
pub fn flagd_variants(file: &Path, flag: &str, kind: &str) -> Vec<Option<String>> {
    let args = vec![
        file.display().to_string(),
        KEYS.to_string(),
        kind.to_string(),
        flag.to_string(),
    ];
    let results: BTreeMap<String, Vec<VariantRow>> = run("flagd_variants.py", &args);
    let rows = results
        .get(flag)
        .unwrap_or_else(|| panic!("no evaluation of {flag}"));
    assert_eq!(rows.len(), KEYS);
    rows.iter()
        .map(|(_, variant, _, error)| {
            assert!(error.is_none(), "{flag}: the evaluator erred: {error:?}");
            variant.clone()
        })
        .collect()
}

/// What the Unleash Python SDK serves userIds `user-0` ... `user-{KEYS-1}` for `flag` after one
/// poll at start (`tests/sdk/unleash_rollout.py`): whether each is enabled, and its variant's
/// name ("disabled" when none).
pub fn unleash_users(base_url: &str, token: &str, flag: &str) -> (Vec<bool>, Vec<String>) {
    let cache = tempfile::tempdir().expect("tempdir");
    let args = vec![
        format!("{base_url}/api"),
        token.to_string(),
        cache.path().display().to_string(),
        KEYS.to_string(),
        flag.to_string(),
    ];
    let results: Value = run("unleash_rollout.py", &args);
    let enabled = results[flag]["enabled"]
        .as_array()
        .unwrap_or_else(|| panic!("no evaluation of {flag}: {results}"))
        .iter()
        .map(|v| v.as_bool().unwrap_or_else(|| panic!("{flag}: {v}")))
        .collect::<Vec<_>>();
    let variants = results[flag]["variant"]
        .as_array()
        .unwrap_or_else(|| panic!("no variants of {flag}: {results}"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>();
    assert_eq!(enabled.len(), KEYS);
    (enabled, variants)
}

/// What flagsmith-python in local evaluation mode serves `flag` to [`KEYS`] identities
/// (`user-0`…): (enabled, value) per identity, in order. `api_url` ends in `/api/v1/`.
pub fn flagsmith_identities(api_url: &str, server_key: &str, flag: &str) -> Vec<(bool, Value)> {
    #[derive(Deserialize)]
    struct Out {
        identities: Vec<(bool, Value)>,
    }
    let out: Out = run(
        "flagsmith_rollout.py",
        &[
            api_url.to_string(),
            server_key.to_string(),
            flag.to_string(),
            KEYS.to_string(),
        ],
    );
    out.identities
}

/// What the LaunchDarkly Python server SDK (polling mode, its base URI the fake) serves
/// `flag` to [`KEYS`] contexts (`user-0`…), evaluated with `default`: the values in order.
pub fn launchdarkly_values(
    base_uri: &str,
    sdk_key: &str,
    flag: &str,
    default: &Value,
) -> Vec<Value> {
    #[derive(Deserialize)]
    struct Out {
        values: Vec<Value>,
    }
    let out: Out = run(
        "launchdarkly_sdk.py",
        &[
            base_uri.to_string(),
            sdk_key.to_string(),
            flag.to_string(),
            KEYS.to_string(),
            default.to_string(),
        ],
    );
    out.values
}
