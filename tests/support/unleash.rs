//! A real Unleash 8.2.0 on a throwaway PostgreSQL cluster, started once per test binary on
//! 127.0.0.1 at free ports, seeded with the sample flags, stopped when the test process ends.
//!
//! Installed by `tests/servers/install-unleash.sh`. Orphans are prevented three ways: both
//! servers get `PR_SET_PDEATHSIG` (set after the uid change, which clears it) and are spawned
//! from a thread that lives as long as the process; Unleash also exits when its stdin (a pipe
//! from this process) closes; and an `atexit` hook stops both and removes the data directory.
#![allow(dead_code)]

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{free_port, server_available, servers_dir};

pub const ADMIN_TOKEN: &str = "*:*.ks-test-admin-7f3a9c1e5d";
pub const BACKEND_TOKEN: &str = "*:production.ks-test-backend-51d2e8a4";
pub const DEV_BACKEND_TOKEN: &str = "*:development.ks-test-backend-dev-0b4c77";
/// A token of the wrong type for both the Admin and the client API.
pub const FRONTEND_TOKEN: &str = "*:production.ks-test-frontend-93aa60";

/// Debian's PostgreSQL server binaries, newest version first (15 on Debian 12).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}
const HOW: &str = "bash tests/servers/install-unleash.sh";

pub struct Unleash {
    pub url: String,
    pub dir: PathBuf,
}

impl Unleash {
    /// The Unleash log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.dir.join("unleash.log"))
    }
}

fn module_dir() -> PathBuf {
    servers_dir().join("unleash/node_modules/unleash-server")
}

pub fn installed() -> bool {
    module_dir().join("package.json").exists()
        && pg_bin().join("initdb").exists()
        && Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

static SERVER: OnceLock<Result<Unleash, String>> = OnceLock::new();
static PG_PID: AtomicI32 = AtomicI32::new(0);
static NODE_PID: AtomicI32 = AtomicI32::new(0);
static DATA_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The shared server, started on first use. `None` = not installed and not in CI (skip).
pub fn server() -> Option<&'static Unleash> {
    if !server_available("unleash + postgresql", installed(), HOW) {
        return None;
    }
    let started = SERVER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        // PR_SET_PDEATHSIG fires when the *thread* that forked dies: fork from one that never
        // ends before the process does.
        std::thread::Builder::new()
            .name("unleash-servers".into())
            .spawn(move || {
                let mut children = Vec::new();
                let result = start(&mut children);
                let _ = sender.send(result);
                loop {
                    std::thread::park();
                }
            })
            .expect("spawn the server thread");
        receiver
            .recv()
            .unwrap_or_else(|_| Err("the server thread died".into()))
    });
    match started {
        Ok(server) => Some(server),
        Err(message) => panic!("could not start Unleash: {message}"),
    }
}

extern "C" fn stop_servers() {
    let node = NODE_PID.load(Ordering::SeqCst);
    if node > 0 {
        unsafe { libc::kill(node, libc::SIGKILL) };
        wait_for(node, Duration::from_secs(2));
    }
    let pg = PG_PID.load(Ordering::SeqCst);
    if pg > 0 {
        // SIGQUIT: immediate shutdown, backends included.
        unsafe { libc::kill(pg, libc::SIGQUIT) };
        wait_for(pg, Duration::from_secs(3));
    }
    if let Some(dir) = DATA_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn wait_for(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let mut status = 0;
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid || done < 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Dies with this process: set after any uid change (which clears it), and checks the parent
/// did not already go before the call.
fn die_with_parent(command: &mut Command, signal: i32) {
    let parent = std::process::id() as i32;
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent already gone"));
            }
            Ok(())
        });
    }
}

fn postgres_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").ok()?;
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        return None;
    }
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

fn log_file(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("create {}: {e}", path.display()))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}

fn start(children: &mut Vec<Child>) -> Result<Unleash, String> {
    let began = Instant::now();
    remove_stale_dirs();
    let dir = tempfile::Builder::new()
        .prefix(&format!("ks-unleash-{}-", std::process::id()))
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    let _ = DATA_DIR.set(dir.clone());
    unsafe { libc::atexit(stop_servers) };
    let user = postgres_user();
    // initdb refuses root: the cluster belongs to `postgres` when we are root.
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }
    let as_postgres = |command: &mut Command| {
        if let Some((uid, gid)) = user {
            command.uid(uid).gid(gid);
        }
    };
    let data = dir.join("data");
    let mut initdb = Command::new(pg_bin().join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-U", "unleash", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .stdin(Stdio::null())
        .stdout(log_file(&dir.join("initdb.log"))?)
        .stderr(log_file(&dir.join("initdb.err"))?);
    as_postgres(&mut initdb);
    let status = initdb.status().map_err(|e| format!("initdb: {e}"))?;
    if !status.success() {
        return Err(format!("initdb failed: {}", tail(&dir.join("initdb.err"))));
    }

    let pg_port = free_port();
    let mut postgres = Command::new(pg_bin().join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-p",
            &pg_port.to_string(),
        ])
        .arg("-k")
        .arg(&dir)
        .args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ])
        .stdin(Stdio::null())
        .stdout(log_file(&dir.join("postgres.log"))?)
        .stderr(log_file(&dir.join("postgres.err"))?);
    as_postgres(&mut postgres);
    die_with_parent(&mut postgres, libc::SIGQUIT);
    let child = postgres.spawn().map_err(|e| format!("postgres: {e}"))?;
    PG_PID.store(child.id() as i32, Ordering::SeqCst);
    children.push(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = Command::new(pg_bin().join("pg_isready"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &pg_port.to_string(),
                "-U",
                "unleash",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "postgres not ready: {}",
                tail(&dir.join("postgres.err"))
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/servers/unleash-start.js");
    let mut node = Command::new("node");
    node.arg(script)
        .env("UNLEASH_MODULE", module_dir())
        .env("UNLEASH_PORT", port.to_string())
        .env("DATABASE_PORT", pg_port.to_string())
        .env("DATABASE_USERNAME", "unleash")
        .env("DATABASE_NAME", "postgres")
        .env("KS_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("KS_BACKEND_TOKEN", BACKEND_TOKEN)
        .env("KS_DEV_BACKEND_TOKEN", DEV_BACKEND_TOKEN)
        .env("KS_FRONTEND_TOKEN", FRONTEND_TOKEN)
        .env("SEND_TELEMETRY", "false")
        .env("CHECK_VERSION", "false")
        .env("TZ", "UTC")
        .stdin(Stdio::piped())
        .stdout(log_file(&dir.join("unleash.log"))?)
        .stderr(log_file(&dir.join("unleash.err"))?);
    die_with_parent(&mut node, libc::SIGKILL);
    let mut child = node.spawn().map_err(|e| format!("node: {e}"))?;
    NODE_PID.store(child.id() as i32, Ordering::SeqCst);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if health(port) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "unleash exited ({status}): {}",
                tail(&dir.join("unleash.err"))
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "unleash not healthy after 60 s: {}",
                tail(&dir.join("unleash.err"))
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    children.push(child);
    let server = Unleash { url, dir };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("runtime: {e}"))?;
    runtime.block_on(seed(&server))?;
    eprintln!(
        "unleash ready at {} in {} ms",
        server.url,
        began.elapsed().as_millis()
    );
    Ok(server)
}

/// Data directories of test processes that were killed (no `atexit`): their servers died
/// with them (PDEATHSIG), the files stay. `ks-unleash-<pid>-…` with a dead pid goes.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("ks-unleash-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn health(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200")
}

/// A call to the Admin API as "someone else" (the admin token), for seeding and for changing
/// flags behind killswitch's back. Panics on failure: test setup only.
pub async fn admin(server: &Unleash, method: &str, path: &str, body: Option<Value>) -> Value {
    admin_call(server, method, path, body)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn admin_call(
    server: &Unleash,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = client
        .request(method.clone(), format!("{}{path}", server.url))
        .header("Authorization", ADMIN_TOKEN)
        .header("Accept", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.map_err(|e| format!("{path}: {e}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{method} {path}: {status}: {text}"));
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Calls the client API with a token, as an SDK would.
pub async fn client_enabled(server: &Unleash, flag: &str) -> bool {
    let response = reqwest::Client::new()
        .get(format!("{}/api/client/features/{flag}", server.url))
        .header("Authorization", BACKEND_TOKEN)
        .send()
        .await
        .expect("client API");
    let body: Value = response.json().await.expect("client API json");
    body["enabled"].as_bool().expect("enabled")
}

async fn create_flag(server: &Unleash, name: &str, kind: &str) -> Result<(), String> {
    admin_call(
        server,
        "POST",
        "/api/admin/projects/default/features",
        Some(json!({"name": name, "type": kind, "description": format!("seeded {kind} flag")})),
    )
    .await
    .map(|_| ())
}

async fn add_strategy(
    server: &Unleash,
    flag: &str,
    env: &str,
    strategy: Value,
) -> Result<(), String> {
    admin_call(
        server,
        "POST",
        &format!("/api/admin/projects/default/features/{flag}/environments/{env}/strategies"),
        Some(strategy),
    )
    .await
    .map(|_| ())
}

async fn toggle(server: &Unleash, flag: &str, env: &str, on: bool) -> Result<(), String> {
    let action = if on { "on" } else { "off" };
    admin_call(
        server,
        "POST",
        &format!("/api/admin/projects/default/features/{flag}/environments/{env}/{action}"),
        None,
    )
    .await
    .map(|_| ())
}

fn rollout(flag: &str, percent: u32) -> Value {
    json!({"name": "flexibleRollout", "parameters": {"rollout": percent.to_string(), "stickiness": "default", "groupId": flag}})
}

/// The sample flags, in the `default` project:
/// - `kill_switch_checkout` (kill-switch), ON in both environments: the kill test flips it;
/// - `payments_off` (type kill-switch, no prefix), ON in production;
/// - `search_v2` (release), 10% flexibleRollout in production, OFF in development;
/// - `checkout_ab` (experiment), variants 333/333/334 in production;
/// - `beta_banner` (release), ON in production for segment `beta_users` and a userId
///   constraint at 25% only;
/// - `legacy_off` (release), a strategy but OFF in production;
/// - `kill_switch_race` (kill-switch), ON in production: the conflict test changes it;
/// - `kill_switch_quiet` (kill-switch), ON in production: error-path tests (never changed);
/// - `kill_switch_payments` (kill-switch), ON in production: the binary end-to-end test;
/// - `kill_switch_sdk` (kill-switch), ON in production: killed and restored with the Unleash
///   SDK polling.
async fn seed(server: &Unleash) -> Result<(), String> {
    let switches = [
        "kill_switch_checkout",
        "payments_off",
        "kill_switch_race",
        "kill_switch_quiet",
        "kill_switch_payments",
        "kill_switch_sdk",
    ];
    for name in switches {
        create_flag(server, name, "kill-switch").await?;
        add_strategy(server, name, "production", rollout(name, 100)).await?;
        toggle(server, name, "production", true).await?;
    }
    add_strategy(
        server,
        "kill_switch_checkout",
        "development",
        rollout("kill_switch_checkout", 100),
    )
    .await?;
    toggle(server, "kill_switch_checkout", "development", true).await?;

    create_flag(server, "search_v2", "release").await?;
    add_strategy(server, "search_v2", "production", rollout("search_v2", 10)).await?;
    toggle(server, "search_v2", "production", true).await?;

    create_flag(server, "checkout_ab", "experiment").await?;
    let mut split = rollout("checkout_ab", 100);
    split["variants"] = json!([
        {"name": "control", "weight": 333, "weightType": "variable", "stickiness": "default"},
        {"name": "one_click", "weight": 333, "weightType": "variable", "stickiness": "default"},
        {"name": "express", "weight": 334, "weightType": "variable", "stickiness": "default"},
    ]);
    add_strategy(server, "checkout_ab", "production", split).await?;
    toggle(server, "checkout_ab", "production", true).await?;

    let segment = admin_call(
        server,
        "POST",
        "/api/admin/segments",
        Some(json!({"name": "beta_users", "constraints": [
            {"contextName": "userId", "operator": "IN", "values": ["u1", "u2"]}]})),
    )
    .await?;
    let segment_id = segment["id"].as_i64().ok_or("segment id")?;
    create_flag(server, "beta_banner", "release").await?;
    let mut for_segment = rollout("beta_banner", 100);
    for_segment["segments"] = json!([segment_id]);
    add_strategy(server, "beta_banner", "production", for_segment).await?;
    let mut for_tenants = rollout("beta_banner", 25);
    for_tenants["constraints"] =
        json!([{"contextName": "tenant", "operator": "IN", "values": ["acme", "globex"]}]);
    add_strategy(server, "beta_banner", "production", for_tenants).await?;
    toggle(server, "beta_banner", "production", true).await?;

    create_flag(server, "legacy_off", "release").await?;
    add_strategy(
        server,
        "legacy_off",
        "production",
        rollout("legacy_off", 100),
    )
    .await?;
    Ok(())
}
