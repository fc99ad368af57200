//! `[[notify]]` end to end: the real binary kills on the local flagd workspace and tells a
//! local HTTP receiver (Slack's format, a signed webhook), a hanging one and a dead one; the
//! `notified` records land in the audit log; exit codes never change.

mod support;

use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use support::Home;

/// One request the receiver took.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    signature: Option<String>,
    body: serde_json::Value,
    raw: Vec<u8>,
}

#[derive(Clone, Default)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    /// Requests to answer 500 before answering 200 (to see the one retry).
    fail_first: Arc<Mutex<usize>>,
}

impl Inbox {
    fn all(&self) -> Vec<Received> {
        self.received.lock().expect("inbox").clone()
    }
}

async fn take(
    State(inbox): State<Inbox>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_string();
    if path.starts_with("/hang") {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let received = Received {
        path,
        signature: headers
            .get("x-killswitch-signature")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        raw: body.to_vec(),
    };
    inbox.received.lock().expect("inbox").push(received);
    let mut fail = inbox.fail_first.lock().expect("inbox");
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

/// A receiver on 127.0.0.1 at a free port, serving in a thread of its own.
fn receiver() -> (String, Inbox) {
    let inbox = Inbox::default();
    let app = Router::new()
        .route("/{*rest}", post(take))
        .with_state(inbox.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    (format!("http://{addr}"), inbox)
}

fn run(home: &Home, args: &[&str]) -> Output {
    home.command()
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run killswitch")
}

fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Seeds the local workspace, then writes a config on its files with `notify` appended.
fn home_with(notify: &str) -> Home {
    let home = Home::new();
    let seeded = run(&home, &["status"]);
    assert_eq!(code(&seeded), 0, "{}", stderr(&seeded));
    let mut config = String::new();
    for env in ["dev", "staging", "prod"] {
        config.push_str(&format!(
            "[[environment]]\nname = \"{env}\"\nprovider = \"flagd\"\nfile = \"{}\"\n\n",
            home.local_flags(env).display()
        ));
    }
    config.push_str(notify);
    let dir = home.path().join("config/killswitch");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("config.toml"), config).expect("config");
    home
}

fn audit_lines(home: &Home) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
        .collect()
}

const KILL: &[&str] = &[
    "kill",
    "kill_switch_checkout",
    "--env",
    "prod",
    "--note",
    "INC-42 <!channel> checkout p99",
    "--yes",
];

#[test]
fn a_kill_is_announced_to_slack_in_one_line_and_recorded_as_notified() {
    let (base, inbox) = receiver();
    let home = home_with(&format!(
        "[[notify]]\nname = \"incident-channel\"\nkind = \"slack\"\nurl = \"{base}/services/T0/B0/sekrit-token\"\n"
    ));
    let killed = run(&home, KILL);
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    assert!(
        stderr(&killed).contains("notified: incident-channel ok"),
        "{}",
        stderr(&killed)
    );
    let got = inbox.all();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/services/T0/B0/sekrit-token");
    let text = got[0].body["text"].as_str().expect("Slack's {\"text\": …}");
    let lines = audit_lines(&home);
    let outcome = &lines[1];
    let id = outcome["id"].as_str().expect("id");
    assert!(!text.contains('\n'), "{text}");
    assert!(
        text.starts_with("tester")
            && text.contains(" KILL kill_switch_checkout in prod (SERVING -&gt; KILLED): applied"),
        "{text}"
    );
    assert!(
        text.contains("Note: INC-42 &lt;!channel&gt; checkout p99."),
        "a note cannot mention @channel: {text}"
    );
    assert!(text.ends_with(&format!("Audit {id}")), "{text}");
    // intent, outcome, notified: in that order, the same id.
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[2]["phase"], "notified");
    assert_eq!(lines[2]["id"], id);
    assert_eq!(lines[2]["receiver"], "incident-channel");
    assert_eq!(lines[2]["result"], "ok");
    // The token in the URL's path is shown nowhere.
    let log = std::fs::read_to_string(home.audit_log()).expect("log");
    assert!(!log.contains("sekrit-token"));
    assert!(!stderr(&killed).contains("sekrit-token"));
}

#[test]
fn a_webhook_gets_the_versioned_audit_record_with_a_valid_hmac_and_one_retry() {
    let (base, inbox) = receiver();
    *inbox.fail_first.lock().expect("inbox") = 1;
    let Some(bao) = support::openbao::available()
        .then(support::openbao::shared)
        .flatten()
    else {
        return;
    };
    let key = "whsec-Zz77-SECRET-hmac";
    bao.put(
        "/v1/kv/data/feature-flags/notify/audit-hook",
        serde_json::json!({"url": format!("{base}/hook"), "hmac": key}),
    );
    let home = home_with(
        "[[notify]]\nname = \"audit-hook\"\nkind = \"webhook\"\nvault_path = \"feature-flags/notify/audit-hook\"\nhmac_secret_field = \"hmac\"\nenvs = [\"prod\"]\n",
    );
    let mut command = home.command();
    command
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", support::openbao::ROOT_TOKEN)
        .args(KILL)
        .args(["--output", "json"])
        .stdin(std::process::Stdio::null());
    let killed = command.output().expect("run");
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    let report: serde_json::Value =
        serde_json::from_slice(&killed.stdout).expect("the JSON result");
    assert_eq!(report["notified"][0]["receiver"], "audit-hook");
    assert_eq!(report["notified"][0]["ok"], true);
    let got = inbox.all();
    assert_eq!(got.len(), 2, "a 500, then the one retry: {got:?}");
    let body = &got[1].body;
    assert_eq!(body["schema_version"], 1);
    assert_eq!(body["phase"], "outcome");
    assert_eq!(body["flag"], "kill_switch_checkout");
    assert_eq!(body["result"], "ok");
    // The signature is HMAC-SHA256 of exactly the bytes sent.
    let sent = &got[1].raw;
    let signature = got[1].signature.clone().expect("X-Killswitch-Signature");
    assert_eq!(signature, killswitch::notify::signature(key, sent));
    assert_ne!(
        signature,
        killswitch::notify::signature("another key", sent)
    );
    let log = std::fs::read_to_string(home.audit_log()).expect("log");
    assert!(!log.contains(key));
    // A restore in dev is not for this receiver (`envs = ["prod"]`).
    let mut command = home.command();
    command
        .env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", support::openbao::ROOT_TOKEN)
        .args([
            "kill",
            "kill_switch_checkout",
            "--env",
            "dev",
            "--note",
            "drill",
            "--yes",
        ])
        .stdin(std::process::Stdio::null());
    let dev = command.output().expect("run");
    assert_eq!(code(&dev), 0, "{}", stderr(&dev));
    assert_eq!(inbox.all().len(), 2);
}

#[test]
fn a_hanging_receiver_costs_at_most_its_bound_and_never_the_exit_code() {
    let (base, _inbox) = receiver();
    let dead = format!("http://127.0.0.1:{}/dead", support::free_port());
    let home = home_with(&format!(
        "[[notify]]\nname = \"slow\"\nkind = \"webhook\"\nurl = \"{base}/hang\"\ntimeout_ms = 800\n\n\
         [[notify]]\nname = \"gone\"\nkind = \"slack\"\nurl = \"{dead}\"\n"
    ));
    let started = Instant::now();
    let killed = run(&home, KILL);
    let took = started.elapsed();
    assert_eq!(code(&killed), 0, "{}", stderr(&killed));
    // The bound is checked here as behaviour (the hang is 60 s), not as a speed target.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let err = stderr(&killed);
    assert!(err.contains("slow FAILED: "), "{err}");
    assert!(err.contains("no answer within 800 ms"), "{err}");
    assert!(err.contains("gone FAILED: "), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    let lines = audit_lines(&home);
    let notified: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["phase"] == "notified").collect();
    assert_eq!(notified.len(), 2, "{lines:?}");
    for record in notified {
        assert_eq!(record["result"], "error");
        assert!(record["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    // The flag is killed whatever the receivers did.
    let status = run(&home, &["status", "--env", "prod", "--output", "json"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("KILLED"),
        "{}",
        String::from_utf8_lossy(&status.stdout)
    );
}

#[test]
fn notify_test_reports_each_receiver() {
    let (base, inbox) = receiver();
    let dead = format!("http://127.0.0.1:{}/dead", support::free_port());
    let home = home_with(&format!(
        "[[notify]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"{base}/chat\"\n\n\
         [[notify]]\nname = \"gone\"\nkind = \"webhook\"\nurl = \"{dead}\"\n"
    ));
    let only = run(&home, &["notify", "test", "--name", "chat"]);
    assert_eq!(code(&only), 0, "{}", stderr(&only));
    let out = String::from_utf8_lossy(&only.stdout).into_owned();
    assert!(out.contains("chat: ok"), "{out}");
    assert!(!out.contains("gone"), "{out}");
    let got = inbox.all();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].body["text"]
            .as_str()
            .is_some_and(|t| t.contains("test message")),
        "{got:?}"
    );
    let all = run(&home, &["notify", "test"]);
    assert_eq!(code(&all), 7, "a failed receiver: exit 7");
    let out = String::from_utf8_lossy(&all.stdout).into_owned();
    assert!(out.contains("gone: FAILED"), "{out}");
    let unknown = run(&home, &["notify", "test", "--name", "chta"]);
    assert_eq!(code(&unknown), 5);
    assert!(
        stderr(&unknown).contains("did you mean `chat`"),
        "{}",
        stderr(&unknown)
    );
    // A notification test changes nothing: no audit record.
    assert!(audit_lines(&home).is_empty());
}
