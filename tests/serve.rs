//! `killswitch serve` end to end: the real binary on a free loopback port, the local flagd
//! workspace, alert payloads posted over HTTP, what services see read by the OpenFeature flagd
//! evaluator, and the status page rendered by a real headless Chromium.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use killswitch::commands::status::StatusReport;
use killswitch::provider::flagd;
use serde_json::{Value, json};
use support::Home;

const CHECKOUT_TOKEN: &str = "serve-test-checkout-token-5f1c9a2e";
const NO_OPT_IN_TOKEN: &str = "serve-test-no-opt-in-token-77aa01";
const STAGING_TOKEN: &str = "serve-test-staging-token-c0ffee42";

/// A running `killswitch serve`, stopped (by its own PID) when dropped.
struct Serve {
    child: Child,
    base: String,
    stderr: std::thread::JoinHandle<String>,
}

impl Serve {
    fn start(home: &Home, config: &Path) -> Serve {
        Serve::spawn(home.command().args(["--config"]).arg(config).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
        ]))
    }

    fn spawn(command: &mut Command) -> Serve {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start killswitch serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the listening line");
        let Some(address) = first
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
        else {
            let _ = child.wait();
            panic!(
                "no `listening on` line: {first:?}; log: {}",
                stderr.join().unwrap_or_default()
            );
        };
        assert!(address.starts_with("http://127.0.0.1:"), "{address}");
        Serve {
            child,
            base: address,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server (SIGTERM, then waits) and returns its log (stderr).
    fn stop(mut self) -> String {
        // SAFETY-free: the PID is our own child's.
        let pid = self.child.id();
        let _ = Command::new("kill").arg(pid.to_string()).status();
        let _ = self.child.wait();
        let stderr = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        stderr.join().unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seeded(home: &Home) {
    let output = home
        .command()
        .arg("status")
        .stdin(Stdio::null())
        .output()
        .expect("run killswitch status");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A config on the home's local flag files (prod protected) with three triggers.
fn write_config(home: &Home) -> PathBuf {
    let file = |env: &str| home.local_flags(env).display().to_string();
    let text = format!(
        r#"refresh_seconds = 2

[[environment]]
name = "dev"
provider = "flagd"
file = "{dev}"

[[environment]]
name = "staging"
provider = "flagd"
file = "{staging}"

[[environment]]
name = "prod"
provider = "flagd"
file = "{prod}"

[[trigger]]
name = "checkout-latency"
env = "prod"
flag = "kill_switch_checkout"
token = "{CHECKOUT_TOKEN}"
allow_protected = true

[[trigger]]
name = "recs-no-opt-in"
env = "prod"
flag = "kill_switch_recommendations"
token = "{NO_OPT_IN_TOKEN}"

[[trigger]]
name = "staging-recs"
env = "staging"
flag = "kill_switch_recommendations"
token = "{STAGING_TOKEN}"
"#,
        dev = file("dev"),
        staging = file("staging"),
        prod = file("prod"),
    );
    let path = home.path().join("serve.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn enabled_in(home: &Home, env: &str, flag: &str) -> bool {
    let text = std::fs::read_to_string(home.local_flags(env)).expect("flag file");
    let document = flagd::parse_document(&text).expect("valid flagd file");
    flagd::summarise(flag, &document["flags"][flag])
        .state
        .enabled
}

fn audit_lines(home: &Home) -> Vec<Value> {
    std::fs::read_to_string(home.audit_log())
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
        .collect()
}

fn alertmanager(status: &str) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutLatencyHigh\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "killswitch",
        "groupLabels": {"alertname": "CheckoutLatencyHigh"},
        "commonLabels": {"alertname": "CheckoutLatencyHigh", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": "CheckoutLatencyHigh", "service": "checkout"},
            "annotations": {"summary": "checkout p99 above 2s for 5m"},
            "startsAt": "2026-12-02T07:00:00Z",
            "endsAt": if status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-12-02T07:20:00Z" },
            "generatorURL": "http://prometheus:9090/graph?g0.expr=checkout_p99",
            "fingerprint": "c0ffee01c0ffee01"
        }]
    })
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = client.post(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("POST");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON answer");
    (status, body)
}

fn served_checkout(
    home: &Home,
) -> Option<std::collections::BTreeMap<String, Vec<support::sdk::Evaluation>>> {
    support::sdk::available()
        .then(|| support::sdk::flagd_evaluate(&home.local_flags("prod"), &["kill_switch_checkout"]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_firing_kills_once_and_resolved_does_not_restore() {
    let home = Home::new();
    seeded(&home);
    let config = write_config(&home);
    let served_before = served_checkout(&home);
    if let Some(served) = &served_before {
        let rows = &served["kill_switch_checkout"];
        assert!(
            rows.iter().all(|e| e.value() == &Value::Bool(true)),
            "serving before"
        );
    }
    let prod_before = std::fs::read(home.local_flags("prod")).expect("prod");
    let serve = Serve::start(&home, &config);
    let client = reqwest::Client::new();
    let hook = serve.url("/hooks/checkout-latency");

    // A wrong token, no token, an unknown trigger: nothing changes.
    let (status, body) = post(
        &client,
        &hook,
        Some("not-the-token-at-all-000"),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let (status, _) = post(&client, &hook, None, Some(&alertmanager("firing"))).await;
    assert_eq!(status, 401);
    let wrong_path = serve.url(&format!("/hooks/checkout-latency/{NO_OPT_IN_TOKEN}"));
    let (status, _) = post(&client, &wrong_path, None, Some(&alertmanager("firing"))).await;
    assert_eq!(status, 401, "another trigger's token is a wrong token");
    let (status, body) = post(
        &client,
        &serve.url("/hooks/nope"),
        Some(CHECKOUT_TOKEN),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert_eq!(
        std::fs::read(home.local_flags("prod")).expect("prod"),
        prod_before
    );
    assert!(audit_lines(&home).is_empty());

    // The firing alert kills the mapped flag.
    let (status, body) = post(
        &client,
        &hook,
        Some(CHECKOUT_TOKEN),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "applied", "{body}");
    assert_eq!(body["action"], "kill");
    assert_eq!(body["from"], "SERVING");
    assert_eq!(body["to"], "KILLED");
    let audit_id = body["audit_id"].as_str().expect("audit id").to_string();
    assert!(!enabled_in(&home, "prod", "kill_switch_checkout"));
    assert!(enabled_in(&home, "staging", "kill_switch_checkout"));
    if let Some(served) = served_checkout(&home) {
        support::sdk::assert_flagd_serves_off(&served, "kill_switch_checkout");
    }
    let records = audit_lines(&home);
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["id"], audit_id);
    assert_eq!(records[0]["phase"], "intent");
    assert_eq!(records[0]["operator"], "trigger:checkout-latency");
    let note = records[0]["note"].as_str().expect("note");
    assert!(note.contains("CheckoutLatencyHigh"), "{note}");
    assert!(note.contains("checkout p99 above 2s for 5m"), "{note}");
    assert!(
        note.contains("http://prometheus:9090/graph?g0.expr=checkout_p99"),
        "{note}"
    );
    assert_eq!(records[1]["result"], "ok");

    // The same alert again (Alertmanager repeats every repeat_interval): nothing.
    let (status, body) = post(
        &client,
        &hook,
        Some(CHECKOUT_TOKEN),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("nothing_to_do")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("same fingerprint"),
        "{body}"
    );
    assert_eq!(audit_lines(&home).len(), 2);

    // Resolved is recorded, never restores.
    let (status, body) = post(
        &client,
        &hook,
        Some(CHECKOUT_TOKEN),
        Some(&alertmanager("resolved")),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("recorded")),
        "{body}"
    );
    assert!(!enabled_in(&home, "prod", "kill_switch_checkout"));
    assert_eq!(audit_lines(&home).len(), 2);

    // A new alert on a flag already off: nothing to do (the flag, not the fingerprint, says so).
    let mut other = alertmanager("firing");
    other["alerts"][0]["fingerprint"] = json!("another-alert");
    let (status, body) = post(&client, &hook, Some(CHECKOUT_TOKEN), Some(&other)).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("nothing_to_do")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already is KILLED"),
        "{body}"
    );

    let metrics = client
        .get(serve.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("killswitch_flips_total{result=\"applied\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("killswitch_trigger_calls_total{trigger=\"checkout-latency\",result=\"unauthorized\"} 3\n"), "{metrics}");
    assert!(
        metrics.contains(
            "killswitch_trigger_calls_total{trigger=\"(unknown)\",result=\"not_found\"} 1\n"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "killswitch_vendor_call_duration_seconds_count{env=\"prod\",call=\"flip\"} 1\n"
        ),
        "{metrics}"
    );
    let health = client
        .get(serve.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);

    let log = serve.stop();
    assert!(
        log.contains("POST /hooks/checkout-latency from 127.0.0.1:"),
        "{log}"
    );
    assert!(log.contains("401, wrong token"), "{log}");
    assert!(log.contains("404, no such trigger"), "{log}");
    for token in [CHECKOUT_TOKEN, NO_OPT_IN_TOKEN] {
        assert!(
            !log.contains(token),
            "a token reached the server log:\n{log}"
        );
    }
    let audit = std::fs::read_to_string(home.audit_log()).unwrap_or_default();
    assert!(!audit.contains(CHECKOUT_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_environment_needs_the_opt_in_and_the_path_token_form_works() {
    let home = Home::new();
    seeded(&home);
    let config = write_config(&home);
    let prod_before = std::fs::read(home.local_flags("prod")).expect("prod");
    let serve = Serve::start(&home, &config);
    let client = reqwest::Client::new();

    let (status, body) = post(
        &client,
        &serve.url("/hooks/recs-no-opt-in"),
        Some(NO_OPT_IN_TOKEN),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (403, Some("refused")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("allow_protected = true"),
        "{body}"
    );
    assert_eq!(
        std::fs::read(home.local_flags("prod")).expect("prod"),
        prod_before
    );
    assert!(audit_lines(&home).is_empty());

    // A tool that cannot set headers: the token in the path; an empty body is a generic call.
    let url = serve.url(&format!("/hooks/staging-recs/{STAGING_TOKEN}"));
    let response = client.post(&url).send().await.expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["outcome"], "applied", "{body}");
    assert!(!enabled_in(&home, "staging", "kill_switch_recommendations"));
    let records = audit_lines(&home);
    assert_eq!(records[0]["operator"], "trigger:staging-recs");
    assert!(
        records[0]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("killswitch trigger staging-recs")
    );
    let log = serve.stop();
    assert!(!log.contains(STAGING_TOKEN), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_hit_at_once_flip_once() {
    let home = Home::new();
    seeded(&home);
    let config = write_config(&home);
    let first = Serve::start(&home, &config);
    let second = Serve::start(&home, &config);
    let client = reqwest::Client::new();
    let payload = alertmanager("firing");
    let first_hook = first.url("/hooks/checkout-latency");
    let second_hook = second.url("/hooks/checkout-latency");
    let (a, b) = tokio::join!(
        post(&client, &first_hook, Some(CHECKOUT_TOKEN), Some(&payload)),
        post(&client, &second_hook, Some(CHECKOUT_TOKEN), Some(&payload)),
    );
    let mut outcomes = vec![
        a.1["outcome"].as_str().unwrap_or_default().to_string(),
        b.1["outcome"].as_str().unwrap_or_default().to_string(),
    ];
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec!["applied", "nothing_to_do"],
        "{} / {}",
        a.1,
        b.1
    );
    assert_eq!((a.0, b.0), (200, 200));
    assert!(!enabled_in(&home, "prod", "kill_switch_checkout"));
    let applied: Vec<Value> = audit_lines(&home)
        .into_iter()
        .filter(|record| record["result"] == "ok")
        .collect();
    assert_eq!(
        applied.len(),
        1,
        "exactly one flip was applied: {applied:?}"
    );
    if let Some(served) = served_checkout(&home) {
        support::sdk::assert_flagd_serves_off(&served, "kill_switch_checkout");
    }
    first.stop();
    second.stop();
}

// ---- the status page in a real browser ----------------------------------------------------

fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.exists())
    });
    support::server_available(
        "chromium (headless)",
        found.is_some(),
        "bash tests/servers/install-chromium.sh",
    )
    .then_some(found)
    .flatten()
}

/// The page as the browser built it (`--dump-dom`).
fn browser_dom(chromium: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Text of an element's content as serialised by the browser (entities decoded).
fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The rows of the table with `id`, each a list of its cells' texts. Cells hold text only: a tag
/// inside one means a vendor's text became markup.
fn table_rows(dom: &str, id: &str) -> Vec<Vec<String>> {
    let start = dom
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no table {id} in {dom}"));
    let end = start + dom[start..].find("</table>").expect("table end");
    let table = &dom[start..end];
    let mut rows = Vec::new();
    for row in table.split("<tr").skip(1) {
        let mut cells = Vec::new();
        for cell in row.split("<td").skip(1) {
            let open = cell.find('>').expect("td open") + 1;
            let close = cell.find("</td>").expect("td close");
            let inner = &cell[open..close];
            assert!(!inner.contains('<'), "markup inside a cell: {inner}");
            cells.push(decode(inner));
        }
        if !cells.is_empty() {
            rows.push(cells);
        }
    }
    rows
}

const HOSTILE_KEY: &str = "release_<img src=x id=pwned>&amp;\"'";
const HOSTILE_OWNER: &str = "<script>document.title='pwned'</script>\u{1b}[31mteam\u{202e}x";

/// Adds a flag whose key and owner are markup, an escape sequence and a bidi control.
fn add_hostile_flag(home: &Home) {
    let path = home.local_flags("dev");
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dev")).expect("json");
    document["flags"][HOSTILE_KEY] = json!({
        "state": "ENABLED",
        "variants": {"on": true, "off": false},
        "defaultVariant": "off",
        "metadata": {"kind": "release", "owner": HOSTILE_OWNER, "expected_removal_date": "2026-01-01"}
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&document).expect("json"),
    )
    .expect("write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_headless_chromium_shows_every_flag_read_only_and_escaped() {
    let Some(chromium) = chromium() else { return };
    let home = Home::new();
    seeded(&home);
    add_hostile_flag(&home);
    let config = write_config(&home);
    let serve = Serve::start(&home, &config);
    let client = reqwest::Client::new();
    // Kill one flag first so the page has a KILLED cell to show.
    let (_, body) = post(
        &client,
        &serve.url("/hooks/checkout-latency"),
        Some(CHECKOUT_TOKEN),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(body["outcome"], "applied", "{body}");

    // The status document, once the refresh after the kill has read it.
    let mut report: Option<StatusReport> = None;
    for _ in 0..100 {
        let current: StatusReport = client
            .get(serve.url("/api/status"))
            .send()
            .await
            .expect("api")
            .json()
            .await
            .expect("status json");
        let killed = current
            .flags
            .iter()
            .any(|f| f.env == "prod" && f.flag == "kill_switch_checkout" && f.state == "KILLED");
        if killed && current.errors.is_empty() {
            report = Some(current);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let report = report.expect("the page's document shows the kill");
    // It is the `status --output json` document: the same flags and states as the CLI prints.
    let cli = home
        .command()
        .args(["--config"])
        .arg(&config)
        .args(["status", "--output", "json"])
        .output()
        .expect("status");
    let cli: StatusReport = serde_json::from_slice(&cli.stdout).expect("cli json");
    let pairs = |r: &StatusReport| -> Vec<(String, String, String)> {
        r.flags
            .iter()
            .map(|f| (f.env.clone(), f.flag.clone(), f.state.clone()))
            .collect()
    };
    assert_eq!(pairs(&report), pairs(&cli));

    let dom = browser_dom(&chromium, &serve.url("/"));
    for forbidden in [
        "<form",
        "<input",
        "<button",
        "<textarea",
        "<select",
        "<script",
        "<img",
        "id=\"pwned\"",
    ] {
        assert!(
            !dom.contains(forbidden),
            "`{forbidden}` in the page:\n{dom}"
        );
    }
    assert!(
        dom.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{dom}"
    );
    let rows = table_rows(&dom, "flags");
    let envs = ["dev", "staging", "prod"];
    let keys: std::collections::BTreeSet<&str> =
        report.flags.iter().map(|f| f.flag.as_str()).collect();
    assert_eq!(rows.len(), keys.len(), "one row per flag: {rows:?}");
    for row in &rows {
        assert_eq!(row.len(), 1 + envs.len() + 2, "{row:?}");
    }
    for status in &report.flags {
        let key = killswitch::text::line(&status.flag);
        let row = rows
            .iter()
            .find(|row| row[0] == key)
            .unwrap_or_else(|| panic!("no row for {key}: {rows:?}"));
        let column = 1 + envs.iter().position(|env| *env == status.env).expect("env");
        assert_eq!(
            row[column],
            killswitch::text::line(&status.state),
            "{key} in {}",
            status.env
        );
    }
    let hostile = rows
        .iter()
        .find(|row| row[0] == HOSTILE_KEY)
        .expect("the hostile flag, shown as text");
    assert_eq!(
        hostile[4],
        "<script>document.title='pwned'</script>\\e[31mteam\\u{202e}x"
    );
    assert!(hostile[5].starts_with("STALE"), "{hostile:?}");
    let checkout = rows
        .iter()
        .find(|row| row[0] == "kill_switch_checkout")
        .expect("checkout");
    assert_eq!(checkout[1..4], ["SERVING", "SERVING", "KILLED"]);
    let env_rows = table_rows(&dom, "environments");
    assert_eq!(env_rows.len(), 3);
    for row in &env_rows {
        assert_eq!(row[1], "loaded", "{row:?}");
    }
    assert!(dom.contains("<title>killswitch status</title>") || dom.contains("killswitch status"));
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_token_guards_the_page_and_the_document_but_not_health() {
    let home = Home::new();
    seeded(&home);
    let config = write_config(&home);
    let page_token = "serve-test-page-token-0a0b0c0d";
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!(
            "{text}\n[[trigger]]\nname = \"typo\"\nenv = \"dev\"\nflag = \"kill_switch_chekout\"\ntoken = \"{STAGING_TOKEN}-typo\"\n\n[serve]\npage_token = \"{page_token}\"\n"
        ),
    )
    .expect("write");
    let serve = Serve::start(&home, &config);
    let client = reqwest::Client::new();
    for path in ["/", "/api/status"] {
        let denied = client.get(serve.url(path)).send().await.expect("get");
        assert_eq!(denied.status().as_u16(), 401, "{path}");
        assert!(denied.headers().contains_key("www-authenticate"));
        let wrong = client
            .get(serve.url(path))
            .bearer_auth("serve-test-page-token-0a0b0c0X")
            .send()
            .await
            .expect("get");
        assert_eq!(wrong.status().as_u16(), 401, "{path}");
        let bearer = client
            .get(serve.url(path))
            .bearer_auth(page_token)
            .send()
            .await
            .expect("get");
        assert_eq!(bearer.status().as_u16(), 200, "{path}");
        let basic = client
            .get(serve.url(path))
            .basic_auth("viewer", Some(page_token))
            .send()
            .await
            .expect("get");
        assert_eq!(basic.status().as_u16(), 200, "{path}");
    }
    let health = client.get(serve.url("/healthz")).send().await.expect("get");
    assert_eq!(health.status().as_u16(), 200);
    // The page's token does not open a hook.
    let (status, _) = post(
        &client,
        &serve.url("/hooks/checkout-latency"),
        Some(page_token),
        None,
    )
    .await;
    assert_eq!(status, 401);
    // Once the environments are read, a trigger whose flag is not there is reported.
    for _ in 0..100 {
        let report: StatusReport = client
            .get(serve.url("/api/status"))
            .bearer_auth(page_token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        if !report.flags.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = serve.stop();
    assert!(!log.contains(page_token), "{log}");
    assert!(
        log.contains("WARNING: trigger `typo` (")
            && log.contains("did you mean `kill_switch_checkout`"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_token_read_from_openbao_opens_the_trigger_and_never_shows() {
    use support::openbao::{self, OpenBao, ROOT_TOKEN};
    if !openbao::available() {
        return;
    }
    let mut bao = OpenBao::start();
    let (status, answer) = bao.api(
        "POST",
        "/v1/sys/mounts/kv",
        Some(ROOT_TOKEN),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!((200..300).contains(&status), "{status} {answer}");
    let vault_token = "serve-test-token-from-openbao-9d8c7b6a";
    bao.put(
        "/v1/kv/data/killswitch/triggers/checkout",
        json!({"token": vault_token}),
    );
    let home = Home::new();
    seeded(&home);
    let config = write_config(&home);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        &format!("token = \"{CHECKOUT_TOKEN}\""),
        "token_vault_path = \"kv/killswitch/triggers/checkout\"",
        1,
    );
    std::fs::write(&config, &text).expect("write");
    let vault_env = |command: &mut Command| {
        command.env("VAULT_ADDR", &bao.addr);
        command.env("VAULT_TOKEN", ROOT_TOKEN);
    };

    // A path that holds no token stops the start, naming the path; nothing is served.
    let missing = text.replace(
        "kv/killswitch/triggers/checkout",
        "kv/killswitch/triggers/nope",
    );
    let missing_config = home.path().join("missing.toml");
    std::fs::write(&missing_config, missing).expect("write");
    let mut command = home.command();
    vault_env(&mut command);
    let failed = command
        .arg("--config")
        .arg(&missing_config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    assert_eq!(failed.status.code(), Some(1));
    let message = String::from_utf8_lossy(&failed.stderr);
    assert!(message.contains("kv/killswitch/triggers/nope"), "{message}");
    assert!(message.contains("checkout-latency"), "{message}");
    assert!(failed.stdout.is_empty());

    let mut command = home.command();
    vault_env(&mut command);
    let serve = Serve::spawn(command.arg("--config").arg(&config).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    let client = reqwest::Client::new();
    let hook = serve.url("/hooks/checkout-latency");
    let (status, _) = post(&client, &hook, Some(CHECKOUT_TOKEN), None).await;
    assert_eq!(status, 401, "the config's old token no longer opens it");
    let (status, body) = post(
        &client,
        &hook,
        Some(vault_token),
        Some(&alertmanager("firing")),
    )
    .await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("applied")),
        "{body}"
    );
    assert!(!enabled_in(&home, "prod", "kill_switch_checkout"));
    let page = client
        .get(serve.url("/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    let log = serve.stop();
    bao.stop();
    for (what, text) in [
        ("log", log),
        ("page", page),
        (
            "audit",
            std::fs::read_to_string(home.audit_log()).unwrap_or_default(),
        ),
    ] {
        assert!(
            !text.contains(vault_token),
            "the token in the {what}:\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_resolved_restore_restores_and_the_rate_limit_holds() {
    let home = Home::new();
    seeded(&home);
    let config = write_config(&home);
    let text = std::fs::read_to_string(&config).expect("config");
    let token = "serve-test-restore-token-31415926";
    std::fs::write(
        &config,
        format!(
            "{text}\n[[trigger]]\nname = \"staging-checkout\"\nenv = \"staging\"\nflag = \"kill_switch_checkout\"\ntoken = \"{token}\"\non_resolved = \"restore\"\nrate_limit_per_minute = 3\n"
        ),
    )
    .expect("write");
    let serve = Serve::start(&home, &config);
    let client = reqwest::Client::new();
    let hook = serve.url("/hooks/staging-checkout");
    let (_, body) = post(&client, &hook, Some(token), Some(&alertmanager("firing"))).await;
    assert_eq!(body["outcome"], "applied", "{body}");
    assert!(!enabled_in(&home, "staging", "kill_switch_checkout"));
    let (_, body) = post(&client, &hook, Some(token), Some(&alertmanager("resolved"))).await;
    assert_eq!(body["outcome"], "applied", "{body}");
    assert_eq!(body["action"], "restore", "{body}");
    assert!(enabled_in(&home, "staging", "kill_switch_checkout"));
    let records = audit_lines(&home);
    assert!(
        records[2]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("CheckoutLatencyHigh resolved"),
        "{records:?}"
    );
    // The alert fires again after it resolved: a new episode, it kills again.
    let (_, body) = post(&client, &hook, Some(token), Some(&alertmanager("firing"))).await;
    assert_eq!(body["outcome"], "applied", "{body}");
    // The fourth authorised call within a minute is refused; nothing changes.
    let before = std::fs::read(home.local_flags("staging")).expect("staging");
    let (status, body) = post(&client, &hook, Some(token), Some(&alertmanager("firing"))).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (429, Some("rate_limited")),
        "{body}"
    );
    assert_eq!(
        std::fs::read(home.local_flags("staging")).expect("staging"),
        before
    );
    serve.stop();
}
