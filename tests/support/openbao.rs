//! A real OpenBao dev server for the Vault tests: installed by `tests/servers/install-openbao.sh`
//! into `.test-servers/openbao/venv`, started on 127.0.0.1 at a free port, seeded with KV v2
//! secrets and policies, and stopped when the test process ends.
//!
//! Orphans are prevented three ways: the server gets `PR_SET_PDEATHSIG` (SIGKILL when the
//! thread that spawned it ends; the shared server is spawned from a thread that never ends
//! before the process does), an `atexit` hook kills the shared server, and per-test servers
//! are killed by `Drop`. Server output goes to a log file, never to the test's pipes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ROOT_TOKEN: &str = "root";
/// The provider name the seeded paths use (`kv/feature-flags/testvendor/<env>`).
pub const VENDOR: &str = "testvendor";
pub const INSTALL: &str = "bash tests/servers/install-openbao.sh";

/// Secret values seeded into the server. Tests grep every output for these.
pub const SECRETS: &[&str] = &[
    "ser.dev-7Hq2-SECRET-env-key",
    "ser.staging-Zp91-SECRET-env-key",
    "ser.prod-Kx55-SECRET-env-key",
    "adm.dev-Qw11-SECRET-admin",
    "adm.staging-Rt22-SECRET-admin",
    "adm.prod-Yu33-SECRET-admin",
    "ser.qa-Lm44-SECRET-env-key",
    "ser.team-a-Nn66-SECRET-env-key",
];

pub fn bao_bin() -> PathBuf {
    super::servers_dir().join("openbao/venv/bin/bao")
}

pub fn installed() -> bool {
    bao_bin().is_file()
}

/// True when the tests can run; under CI a missing `bao` fails the test.
pub fn available() -> bool {
    super::server_available("OpenBao (bao)", installed(), INSTALL)
}

pub struct OpenBao {
    pub addr: String,
    pub port: u16,
    pub log: PathBuf,
    pid: i32,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

static SHARED_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn kill_shared() {
    let pid = SHARED_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: signalling the server this process started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// The server shared by every test of the binary, started and seeded once. `None` when `bao`
/// is not installed (and not in CI).
pub fn shared() -> Option<&'static OpenBao> {
    static SHARED: OnceLock<Option<OpenBao>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if !installed() {
                return None;
            }
            // Spawned from a thread that lives as long as the process, so PDEATHSIG fires at
            // process exit, not when the first test's thread ends.
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let bao = OpenBao::start();
                let _ = sender.send(bao);
                loop {
                    std::thread::park();
                }
            });
            let mut bao = receiver.recv().expect("the OpenBao starter thread");
            SHARED_PID.store(bao.pid, Ordering::SeqCst);
            // SAFETY: registering a plain extern "C" function.
            unsafe { libc::atexit(kill_shared) };
            // Dropping this handle must not kill the shared server: the atexit hook does that.
            bao.child = None;
            bao.seed();
            Some(bao)
        })
        .as_ref()
}

impl OpenBao {
    /// Starts a dev server on a free port (it also binds port+1) and waits until it answers.
    pub fn start() -> OpenBao {
        OpenBao::start_with(false)
    }

    /// With `tls`, `-dev-tls`: HTTPS with a generated CA at [`OpenBao::ca_file`]. Such a
    /// server is not seeded (the setup client here speaks plain HTTP); use the root token.
    pub fn start_with(tls: bool) -> OpenBao {
        let mut last_log = String::new();
        // A port taken between free_pair() and bind is retried on another one.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir for OpenBao");
            let log = dir.path().join("bao.log");
            let port = free_pair();
            let scheme = if tls { "https" } else { "http" };
            let addr = format!("{scheme}://127.0.0.1:{port}");
            let out = std::fs::File::create(&log).expect("OpenBao log file");
            let err = out.try_clone().expect("OpenBao log file");
            let mut command = Command::new(bao_bin());
            command
                .args([
                    "server",
                    "-dev",
                    &format!("-dev-root-token-id={ROOT_TOKEN}"),
                    &format!("-dev-listen-address=127.0.0.1:{port}"),
                    "-dev-no-store-token",
                ])
                .args(if tls {
                    vec![
                        "-dev-tls".to_string(),
                        format!("-dev-tls-cert-dir={}", dir.path().display()),
                    ]
                } else {
                    Vec::new()
                })
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_ADDR")
                .env("HOME", dir.path())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err);
            // SAFETY: prctl is async-signal-safe; it only sets this child's death signal.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let child = command.spawn().expect("spawn bao server");
            let pid = child.id() as i32;
            let mut bao = OpenBao {
                addr,
                port,
                log: log.clone(),
                pid,
                child: Some(child),
                _dir: dir,
            };
            let healthy = if tls {
                bao.wait_listening(Duration::from_secs(15))
            } else {
                bao.wait_healthy(Duration::from_secs(15))
            };
            if healthy {
                return bao;
            }
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            bao.stop();
        }
        panic!("OpenBao did not start; its log:\n{last_log}");
    }

    /// The generated CA of a `-dev-tls` server.
    pub fn ca_file(&self) -> PathBuf {
        self._dir.path().join("vault-ca.pem")
    }

    /// For TLS servers: the CA file is written and the port accepts connections.
    fn wait_listening(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if self.ca_file().is_file() && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Listening starts a moment before the server is unsealed and ready.
                std::thread::sleep(Duration::from_millis(300));
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn wait_healthy(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if let Ok((200, _)) = self.try_api("GET", "/v1/sys/health", None, None, None) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// SIGKILL and reap (used by Drop; a sealed or broken test server needs no grace).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Enables KV v2 at `kv`, writes the environments' secrets, the policies, a namespace.
    pub fn seed(&self) {
        self.ok(
            "POST",
            "/v1/sys/mounts/kv",
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        let base = format!("/v1/kv/data/feature-flags/{VENDOR}");
        // dev keeps its admin credential in the environment's own secret.
        self.put(
            &format!("{base}/dev"),
            json!({
                "api_url": "http://127.0.0.1:9/api/v1/",
                "environment_key": SECRETS[0],
                "admin_token": SECRETS[3],
            }),
        );
        // staging and prod keep it in the sibling `<path>/admin`.
        self.put(
            &format!("{base}/staging"),
            json!({
                "api_url": "http://127.0.0.1:9/api/v1/",
                "environment_key": SECRETS[1],
            }),
        );
        self.put(
            &format!("{base}/staging/admin"),
            json!({"admin_token": SECRETS[4]}),
        );
        self.put(
            &format!("{base}/prod"),
            json!({
                "api_url": "http://127.0.0.1:9/api/v1/",
                "environment_key": SECRETS[2],
            }),
        );
        self.put(
            &format!("{base}/prod/admin"),
            json!({"admin_token": SECRETS[5]}),
        );
        // qa has no admin credential stored at all.
        self.put(
            &format!("{base}/qa"),
            json!({
                "api_url": "http://127.0.0.1:9/api/v1/",
                "environment_key": SECRETS[6],
            }),
        );
        // Mistyped fields.
        self.put(
            &format!("{base}/broken"),
            json!({
                "api_url": {"host": "x"},
                "environment_key": 12345,
                "admin_token": "",
            }),
        );
        // A soft-deleted secret: KV v2 answers 404 with the version metadata, not `errors`.
        self.put(
            &format!("{base}/deleted"),
            json!({"environment_key": "ser.deleted"}),
        );
        self.ok("DELETE", &format!("{base}/deleted"), None);
        self.put(
            "/v1/kv/data/forbidden/thing",
            json!({"environment_key": "ser.forbidden-value"}),
        );
        self.ok(
            "PUT",
            "/v1/sys/policies/acl/kill-reader",
            Some(json!({"policy":
            "path \"kv/data/feature-flags/*\" { capabilities = [\"read\"] }\n\
             path \"kv/data/feature-flags/+/+/admin\" { capabilities = [\"deny\"] }\n"})),
        );
        self.ok(
            "PUT",
            "/v1/sys/policies/acl/kill-admin",
            Some(json!({"policy":
            "path \"kv/data/feature-flags/*\" { capabilities = [\"read\"] }\n"})),
        );
        // A namespace (OpenBao has them since 2.3) with its own kv mount and secret.
        self.ok("POST", "/v1/sys/namespaces/team-a", None);
        self.api_ns(
            "POST",
            "/v1/sys/mounts/kv",
            Some(ROOT_TOKEN),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
            Some("team-a"),
        );
        let (status, body) = self.api_ns(
            "POST",
            &format!("{base}/dev"),
            Some(ROOT_TOKEN),
            Some(json!({"data": {"api_url": "http://127.0.0.1:9/ns/", "environment_key": SECRETS[7]}})),
            Some("team-a"),
        );
        assert_eq!(status, 200, "seed the namespaced secret: {body}");
    }

    /// A token with `display_name` (OpenBao makes it "token-<name>"), policies and a TTL.
    pub fn token(&self, name: &str, policies: &[&str], ttl: &str) -> String {
        let (status, body) = self.api(
            "POST",
            "/v1/auth/token/create",
            Some(ROOT_TOKEN),
            Some(
                json!({"display_name": name, "policies": policies, "ttl": ttl, "no_parent": true}),
            ),
        );
        assert_eq!(status, 200, "token create: {body}");
        body["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_string()
    }

    pub fn revoke(&self, token: &str) {
        let (status, body) = self.api(
            "POST",
            "/v1/auth/token/revoke",
            Some(ROOT_TOKEN),
            Some(json!({"token": token})),
        );
        assert_eq!(status, 204, "revoke: {body}");
    }

    /// `bao operator seal`, through the API.
    pub fn seal(&self) {
        self.ok("PUT", "/v1/sys/seal", None);
    }

    pub fn put(&self, path: &str, data: Value) {
        self.ok("POST", path, Some(json!({ "data": data })));
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) {
        let (status, answer) = self.api(method, path, Some(ROOT_TOKEN), body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {answer}"
        );
    }

    pub fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.api_ns(method, path, token, body, None)
    }

    pub fn api_ns(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        namespace: Option<&str>,
    ) -> (u16, Value) {
        self.try_api(method, path, token, body, namespace)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}"))
    }

    /// A minimal HTTP/1.1 client (one request per connection) so test setup needs no runtime.
    fn try_api(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        namespace: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.port)).map_err(|err| err.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|err| err.to_string())?;
        let payload = body.map(|b| b.to_string()).unwrap_or_default();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            self.port,
            payload.len()
        );
        if let Some(token) = token {
            request.push_str(&format!("X-Vault-Token: {token}\r\n"));
        }
        if let Some(namespace) = namespace {
            request.push_str(&format!("X-Vault-Namespace: {namespace}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(&payload);
        stream
            .write_all(request.as_bytes())
            .map_err(|err| err.to_string())?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .map_err(|err| err.to_string())?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or("no HTTP status")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        let json = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
        Ok((status, json))
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// A free port whose successor is free too (the dev server also binds port+1).
fn free_pair() -> u16 {
    loop {
        let port = super::free_port();
        if port < 65535 && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
