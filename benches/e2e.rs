//! End-to-end timings of the real binary (issue 9), written as markdown to stdout and to
//! `target/bench-e2e.md` (`benches/run.sh` puts them into BENCHMARKS.md):
//!
//! 1. time to kill: the TUI opened the way a runbook link opens it, keys and note typed by the
//!    script as soon as the screen asks for them, until the result shows "Confirmed";
//! 2. cold start to a full dashboard: 3 environments x 200 flags;
//! 3. peak memory with 5,000 flags x 6 environments;
//! 4. non-interactive kill (`killswitch kill … --yes`) as a whole process.
//!
//! Only runs under `cargo bench` (cargo passes `--bench`); under `cargo test` it says so and
//! returns, so the test suite stays fast.

#[path = "../tests/support/flagsmith_fake.rs"]
mod flagsmith_fake;
#[path = "../tests/support/launchdarkly_fake.rs"]
mod launchdarkly_fake;
#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;
#[path = "../tests/support/unleash.rs"]
mod unleash_server;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::{Value, json};
use support::Home;
use support::faults::{Fault, FaultProxy};
use support::openbao::{OpenBao, ROOT_TOKEN};

const LIMIT: Duration = Duration::from_secs(30);

fn main() {
    // Unleash OSS refuses more than 5,000 flags by default; the scale rows need 5,000 more
    // than the seeded ones. Set before any thread exists (the server inherits it).
    unsafe { std::env::set_var("UNLEASH_FEATURE_FLAGS_LIMIT", "20000") };
    if !std::env::args().any(|arg| arg == "--bench") {
        println!(
            "e2e: end-to-end benchmarks run under `cargo bench --bench e2e`; skipped in tests"
        );
        return;
    }
    let runs: usize = std::env::var("E2E_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let mut report = String::new();
    report.push_str("| measurement | median | min | max | runs |\n|---|---|---|---|---|\n");

    let local = LocalSetup::new(3, 6);
    add(
        &mut report,
        "time to kill, TUI via runbook link, local flagd (launch → Confirmed)",
        &measure(runs, || local.time_to_kill_tui()),
    );
    let phases: Vec<[Duration; 4]> = (0..runs).map(|_| local.time_to_kill_phases()).collect();
    for (index, name) in [
        "… of which launch → dashboard loaded",
        "… launch → flip dialog shown",
        "… launch → confirmation asked",
    ]
    .iter()
    .enumerate()
    {
        let samples: Vec<Duration> = phases.iter().map(|p| p[index]).collect();
        add(&mut report, name, &samples);
    }
    add(
        &mut report,
        "non-interactive `kill --yes`, local flagd (whole process)",
        &measure(runs, || local.kill_process()),
    );
    let cold = LocalSetup::new(3, 200);
    add(
        &mut report,
        "cold start to a full dashboard, 3 envs x 200 flags, local flagd",
        &measure(runs, || cold.cold_start(3)),
    );
    let big = LocalSetup::new(6, 5_000);
    let (elapsed, rss) = big.peak_memory(6);
    report.push_str(&format!(
        "| cold start, 6 envs x 5,000 flags, local flagd | {} | | | 1 |\n| peak RSS (VmHWM), 6 envs x 5,000 flags | {:.1} MB | | | 1 |\n",
        ms(elapsed),
        rss as f64 / 1024.0
    ));

    // The vendors: a real OpenBao and a real Unleash on loopback.
    if support::openbao::installed() && unleash_server::installed() {
        let vendor = VendorSetup::new();
        add(
            &mut report,
            "floor: curl chain, Vault read x2 + Unleash read + toggle + client read (one bash process)",
            &measure(runs, || vendor.curl_floor()),
        );
        add(
            &mut report,
            "floor, waiting like the confirmation: the same chain with the client list read first (ETag), then polled with If-None-Match until it shows the flag off (Unleash caches the list ~1 s)",
            &measure(runs, || vendor.curl_floor_list()),
        );
        add(
            &mut report,
            "time to kill, TUI via runbook link, OpenBao + Unleash (launch → Confirmed)",
            &measure(runs, || vendor.time_to_kill_tui()),
        );
        add(
            &mut report,
            "non-interactive `kill --yes`, OpenBao + Unleash (whole process)",
            &measure(runs, || vendor.kill_process()),
        );
    } else {
        report.push_str(
            "| OpenBao / Unleash rows | not run: `bash tests/run.sh` installs them | | | |\n",
        );
    }

    // Cold start through 100 ms of latency on every call (Vault and LaunchDarkly fake).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if support::openbao::installed() {
        let latency = runtime.block_on(LatencySetup::new(200));
        for (name, delay) in [("no added latency", None), ("100 ms per call", Some(100))] {
            latency.set_delay(delay);
            add(
                &mut report,
                &format!(
                    "cold start to a full dashboard, 3 envs x 200 flags, OpenBao + LaunchDarkly fake, {name}"
                ),
                &measure(runs.min(5), || latency.cold_start()),
            );
        }
        report.push_str(
            "| (with 100 ms per call, the longest chain is Vault read + 3 pages of flags = 4 calls ≈ 400 ms; the sum over 3 environments would be ≈ 1,200 ms) | | | | |\n",
        );
        drop(latency);
    }

    // Issue 15: Flagsmith's kill path, with and without the cost of an organisation API key.
    if support::openbao::installed() {
        let flagsmith = runtime.block_on(FlagsmithSetup::new());
        report.push_str("\n| Flagsmith fake + OpenBao, credential `admin_api_key` | median | min | max | runs |\n|---|---|---|---|---|\n");
        for (name, delay) in [
            ("no Api-Key delay", None),
            ("600 ms per Api-Key request", Some(600)),
        ] {
            flagsmith
                .fake
                .set_api_key_delay(delay.map(Duration::from_millis));
            add(
                &mut report,
                &format!("{name}: curl chain (Vault read, PATCH, GET /api/v1/flags/)"),
                &measure(runs.min(5), || flagsmith.curl(false)),
            );
            add(
                &mut report,
                &format!("{name}: `kill --yes` (whole process)"),
                &measure(runs.min(5), || flagsmith.flip(false)),
            );
            add(
                &mut report,
                &format!("{name}: `restore --yes` (whole process)"),
                &measure(runs.min(5), || flagsmith.flip(true)),
            );
        }
        flagsmith.fake.set_api_key_delay(None);
        add(
            &mut report,
            "no Api-Key delay: time to kill, TUI via runbook link (launch → Confirmed)",
            &measure(runs.min(5), || flagsmith.time_to_kill_tui()),
        );
        let (kill, restore) = (flagsmith.admin_calls(false), flagsmith.admin_calls(true));
        report.push_str(&format!(
            "| Admin API calls per `kill --yes` / `restore --yes` (a fresh process learns the settings) | {} / {} | | | 1 |\n",
            kill.join(" + "),
            restore.join(" + ")
        ));
        drop(flagsmith);
    }

    // Issue 15: LaunchDarkly's kill path beside its curl chain.
    if support::openbao::installed() {
        let ld = runtime.block_on(LdKillSetup::new());
        report.push_str("\n| LaunchDarkly fake + OpenBao | median | min | max | runs |\n|---|---|---|---|---|\n");
        add(
            &mut report,
            "curl chain (Vault read, GET flag, semantic PATCH, GET /sdk/latest-all)",
            &measure(runs.min(5), || ld.curl()),
        );
        add(
            &mut report,
            "`kill --yes` (whole process)",
            &measure(runs.min(5), || ld.kill()),
        );
        drop(ld);
    }

    // Issue 22: loads at scale, states from each vendor's bulk endpoint.
    if support::openbao::installed() {
        report.push_str("\n| load at scale (1 environment, OpenBao for credentials) | median | min | max | runs |\n|---|---|---|---|---|\n");
        let mut vendors = vec![Vendor::LaunchDarkly, Vendor::Flagsmith];
        if unleash_server::installed() {
            vendors.insert(0, Vendor::Unleash);
        }
        for vendor in vendors {
            for flags in [1_000, 5_000] {
                let setup = runtime.block_on(ScaleSetup::new(vendor, flags));
                for (name, delay) in [("0 ms", None), ("100 ms per call", Some(100))] {
                    setup.set_delay(delay);
                    let label = format!("{}, {flags} flags, {name}", vendor.name());
                    add(
                        &mut report,
                        &format!("{label}: curl, Vault read + the bulk call"),
                        &measure(runs.min(3), || setup.curl()),
                    );
                    add(
                        &mut report,
                        &format!("{label}: `status --output json`"),
                        &measure(runs.min(3), || setup.status()),
                    );
                    add(
                        &mut report,
                        &format!("{label}: dashboard cold start (launch → states shown)"),
                        &measure(runs.min(3), || setup.cold_start()),
                    );
                }
            }
        }
    }

    println!("{report}");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-e2e.md");
    if let Err(err) = std::fs::write(&out, &report) {
        eprintln!("cannot write {}: {err}", out.display());
    }
}

fn measure(runs: usize, mut one: impl FnMut() -> Duration) -> Vec<Duration> {
    let _warm_up = one();
    (0..runs).map(|_| one()).collect()
}

fn add(report: &mut String, name: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let row = format!(
        "| {name} | {} | {} | {} | {} |\n",
        ms(median),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len()
    );
    // Each row as it is measured, so a later failure does not lose the earlier ones.
    eprint!("{row}");
    report.push_str(&row);
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// A config with `envs` flagd environments of `flags` flags each (the sample set's shapes).
struct LocalSetup {
    home: Home,
    config: String,
}

impl LocalSetup {
    fn new(envs: usize, flags: usize) -> LocalSetup {
        let home = Home::new();
        let seed: Value = serde_json::from_str(include_str!("../assets/seed/prod.flagd.json"))
            .expect("seed file");
        let mut config = String::from("protected = [\"prod\"]\nrefresh_seconds = 3600\n");
        for env in 0..envs {
            let name = if env == 0 {
                "prod".to_string()
            } else {
                format!("env{env}")
            };
            let mut document = seed.clone();
            let originals = seed["flags"].as_object().cloned().unwrap_or_default();
            let mut all = serde_json::Map::new();
            for (key, value) in &originals {
                all.insert(key.clone(), value.clone());
            }
            let mut index = 0;
            while all.len() < flags {
                for (key, value) in &originals {
                    if all.len() >= flags {
                        break;
                    }
                    all.insert(format!("{key}_{index:05}"), value.clone());
                    index += 1;
                }
            }
            document["flags"] = Value::Object(all);
            let path = home.path().join(format!("{name}.flagd.json"));
            std::fs::write(&path, serde_json::to_vec_pretty(&document).expect("json"))
                .expect("write flag file");
            config.push_str(&format!(
                "\n[[environment]]\nname = \"{name}\"\nprovider = \"flagd\"\nfile = \"{}\"\n",
                path.display()
            ));
        }
        let config_path = home.path().join("config.toml");
        std::fs::write(&config_path, config).expect("write config");
        LocalSetup {
            config: config_path.display().to_string(),
            home,
        }
    }

    fn args<'a>(&'a self, rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec!["--config", self.config.as_str()];
        args.extend_from_slice(rest);
        args
    }

    /// Restores the switch between runs so every kill is a real one.
    fn restore(&self) {
        let status = self
            .home
            .command()
            .args(self.args(&[
                "restore",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "bench reset",
                "--yes",
            ]))
            .output()
            .expect("restore");
        assert!(matches!(status.status.code(), Some(0) | Some(3)));
    }

    fn time_to_kill_tui(&self) -> Duration {
        self.time_to_kill_phases()[3]
    }

    /// Launch → dashboard loaded, → dialog shown, → confirmation asked, → Confirmed.
    fn time_to_kill_phases(&self) -> [Duration; 4] {
        self.restore();
        let started = Instant::now();
        let mut tui = Pty::spawn(
            &self.home,
            &self.args(&["--env", "prod", "--flag", "kill_switch_checkout"]),
        );
        tui.wait_for("prod ok");
        let loaded = started.elapsed();
        tui.send("f");
        tui.wait_for("Audit note");
        let dialog = started.elapsed();
        tui.send("INC-1 bench\r");
        tui.wait_for("Type `prod`");
        let asked = started.elapsed();
        tui.confirm_like_a_person("prod");
        tui.wait_for("Confirmed by what services see");
        let elapsed = started.elapsed().saturating_sub(CONFIRM_PAUSE);
        tui.send("\rq");
        tui.wait_exit();
        [loaded, dialog, asked, elapsed]
    }

    fn kill_process(&self) -> Duration {
        self.restore();
        let started = Instant::now();
        let output = self
            .home
            .command()
            .args(self.args(&[
                "kill",
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "INC-1 bench",
                "--yes",
            ]))
            .output()
            .expect("kill");
        let elapsed = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        elapsed
    }

    /// Launch until every environment's column says it loaded.
    fn cold_start(&self, envs: usize) -> Duration {
        let started = Instant::now();
        let mut tui = Pty::spawn_sized(&self.home, &self.args(&[]), (240, 40));
        tui.wait_until(|screen| screen.matches(" ok ").count() >= envs);
        let elapsed = started.elapsed();
        tui.send("q");
        tui.wait_exit();
        elapsed
    }

    /// Launch until loaded, then the process's peak resident set.
    fn peak_memory(&self, envs: usize) -> (Duration, u64) {
        let started = Instant::now();
        let mut tui = Pty::spawn_sized(&self.home, &self.args(&[]), (240, 50));
        tui.wait_until(|screen| screen.matches(" ok ").count() >= envs);
        let elapsed = started.elapsed();
        tui.send("/kill\x1b");
        std::thread::sleep(Duration::from_millis(200));
        let rss = tui.peak_rss_kb();
        tui.send("q");
        tui.wait_exit();
        (elapsed, rss)
    }
}

/// How long the script waits after the confirmation question appears before typing the
/// environment name. The dashboard ignores keys that arrive within 10 ms of the Enter that
/// asked the question (text pasted on a terminal without bracketed paste must never confirm),
/// and no person types that fast; the pause is taken off every reported time to kill.
const CONFIRM_PAUSE: Duration = Duration::from_millis(20);

/// A pseudo-terminal driver that polls the screen every millisecond (the tests' driver paces
/// typing like a person; this one must not add latency of its own).
struct Pty {
    parser: Arc<Mutex<vt100::Parser>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Pty {
    fn spawn(home: &Home, args: &[&str]) -> Pty {
        Pty::spawn_sized(home, args, (120, 32))
    }

    fn spawn_sized(home: &Home, args: &[&str], size: (u16, u16)) -> Pty {
        Pty::spawn_with(home, args, size, &[])
    }

    fn spawn_with(
        home: &Home,
        args: &[&str],
        (cols, rows): (u16, u16),
        extra: &[(String, String)],
    ) -> Pty {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("pty");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_killswitch"));
        command.env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("TERM", "xterm-256color");
        command.env("USER", "bench");
        for (key, value) in home.envs().into_iter().chain(extra.iter().cloned()) {
            command.env(key, value);
        }
        for arg in args {
            command.arg(arg);
        }
        let child = pair.slave.spawn_command(command).expect("spawn");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("reader");
        let writer = pair.master.take_writer().expect("writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let sink = parser.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                if let Ok(mut parser) = sink.lock() {
                    parser.process(&buffer[..read]);
                }
            }
        });
        Pty {
            parser,
            writer,
            child,
            _master: pair.master,
        }
    }

    fn screen(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    fn wait_until(&self, done: impl Fn(&str) -> bool) {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return;
            }
            assert!(started.elapsed() < LIMIT, "timed out; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn wait_for(&self, text: &str) {
        self.wait_until(|screen| screen.contains(text));
    }

    /// Types the confirmation [`CONFIRM_PAUSE`] after the question appeared, then Enter.
    fn confirm_like_a_person(&mut self, name: &str) {
        std::thread::sleep(CONFIRM_PAUSE);
        self.send(&format!("{name}\r"));
    }

    fn send(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("write");
        self.writer.flush().expect("flush");
    }

    fn peak_rss_kb(&self) -> u64 {
        let pid = self.child.process_id().expect("pid");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    fn wait_exit(&mut self) {
        let started = Instant::now();
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if started.elapsed() > LIMIT {
                let _ = self.child.kill();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// OpenBao (dev server) holding the Unleash credentials; Unleash 8.2.0 on PostgreSQL.
struct VendorSetup {
    bao: OpenBao,
    unleash: &'static unleash_server::Unleash,
    home: Home,
}

impl VendorSetup {
    fn new() -> VendorSetup {
        let bao = OpenBao::start();
        let root = Some(ROOT_TOKEN);
        let (status, body) = bao.api(
            "POST",
            "/v1/sys/mounts/kv",
            root,
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        assert!((200..300).contains(&status), "{body}");
        let unleash = unleash_server::server().expect("Unleash");
        bao.put(
            "/v1/kv/data/feature-flags/unleash/prod",
            json!({"api_url": format!("{}/api", unleash.url),
                   "backend_token": unleash_server::BACKEND_TOKEN,
                   "read_token": unleash_server::ADMIN_TOKEN}),
        );
        bao.put(
            "/v1/kv/data/feature-flags/unleash/prod/admin",
            json!({"admin_token": unleash_server::ADMIN_TOKEN}),
        );
        let home = Home::new();
        let config_dir = home.path().join("config/killswitch");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::write(
            config_dir.join("config.toml"),
            "refresh_seconds = 3600\n[[environment]]\nname = \"prod\"\nprovider = \"unleash\"\n",
        )
        .expect("config");
        VendorSetup { bao, unleash, home }
    }

    fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".into(), self.bao.addr.clone()),
            ("VAULT_TOKEN".into(), ROOT_TOKEN.into()),
        ]
    }

    fn killswitch(&self, args: &[&str]) -> std::process::Output {
        self.home
            .command()
            .envs(self.envs())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("killswitch")
    }

    fn restore(&self) {
        let output = self.killswitch(&[
            "restore",
            "kill_switch_payments",
            "--env",
            "prod",
            "--note",
            "bench reset",
            "--yes",
        ]);
        assert!(
            matches!(output.status.code(), Some(0) | Some(3)),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The same chain by hand: both Vault reads, the flag's read, the toggle and one read of
    /// what services see, each a `curl`, in one shell process.
    fn curl_floor(&self) -> Duration {
        self.restore();
        let script = format!(
            "set -e\n\
             curl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/unleash/prod >/dev/null\n\
             curl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/unleash/prod/admin >/dev/null\n\
             curl -sf -H 'Authorization: {admin}' {unleash}/api/admin/projects/default/features/kill_switch_payments >/dev/null\n\
             curl -sf -X POST -H 'Authorization: {admin}' {unleash}/api/admin/projects/default/features/kill_switch_payments/environments/production/off >/dev/null\n\
             curl -sf -H 'Authorization: {backend}' {unleash}/api/client/features/kill_switch_payments >/dev/null\n",
            root = ROOT_TOKEN,
            vault = self.bao.addr,
            admin = unleash_server::ADMIN_TOKEN,
            backend = unleash_server::BACKEND_TOKEN,
            unleash = self.unleash.url,
        );
        let started = Instant::now();
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .status()
            .expect("bash");
        let elapsed = started.elapsed();
        assert!(status.success(), "the curl chain failed");
        elapsed
    }

    /// The chain above as an SDK meets it: the client list SDKs poll (`/api/client/features`)
    /// read before the toggle for its ETag, then polled with `If-None-Match` (304 while
    /// Unleash's ~1 s cache holds) until it shows the flag off, what the confirmation waits for.
    fn curl_floor_list(&self) -> Duration {
        self.restore();
        let script = format!(
            "set -e\n\
             curl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/unleash/prod >/dev/null\n\
             curl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/unleash/prod/admin >/dev/null\n\
             curl -sf -H 'Authorization: {admin}' {unleash}/api/admin/projects/default/features/kill_switch_payments >/dev/null\n\
             etag=$(curl -sf -D - -o /dev/null -H 'Authorization: {backend}' '{unleash}/api/client/features' | tr -d '\\r' | awk 'tolower($1) == \"etag:\" {{print $2}}')\n\
             curl -sf -X POST -H 'Authorization: {admin}' {unleash}/api/admin/projects/default/features/kill_switch_payments/environments/production/off >/dev/null\n\
             for i in $(seq 1 200); do\n\
               body=$(curl -sf -H \"If-None-Match: $etag\" -H 'Authorization: {backend}' '{unleash}/api/client/features')\n\
               if [ -n \"$body\" ] && printf '%s' \"$body\" | jq -e '.features[] | select(.name == \"kill_switch_payments\") | .enabled == false' >/dev/null; then exit 0; fi\n\
               sleep 0.02\n\
             done\n\
             exit 1\n",
            root = ROOT_TOKEN,
            vault = self.bao.addr,
            admin = unleash_server::ADMIN_TOKEN,
            backend = unleash_server::BACKEND_TOKEN,
            unleash = self.unleash.url,
        );
        timed_script(&script)
    }

    fn time_to_kill_tui(&self) -> Duration {
        self.restore();
        let started = Instant::now();
        let mut tui = Pty::spawn_with(
            &self.home,
            &["--env", "prod", "--flag", "kill_switch_payments"],
            (120, 32),
            &self.envs(),
        );
        tui.wait_for("prod ok");
        tui.send("f");
        tui.wait_for("Audit note");
        tui.send("INC-1 bench\r");
        tui.wait_for("Type `prod`");
        tui.confirm_like_a_person("prod");
        tui.wait_for("Confirmed by what services see");
        let elapsed = started.elapsed().saturating_sub(CONFIRM_PAUSE);
        tui.send("\rq");
        tui.wait_exit();
        elapsed
    }

    fn kill_process(&self) -> Duration {
        self.restore();
        let started = Instant::now();
        let output = self.killswitch(&[
            "kill",
            "kill_switch_payments",
            "--env",
            "prod",
            "--note",
            "INC-1 bench",
            "--yes",
        ]);
        let elapsed = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        elapsed
    }
}

/// Three environments on the LaunchDarkly fake (200 flags each), credentials in OpenBao, both
/// behind proxies that add latency to every call.
struct LatencySetup {
    _bao: OpenBao,
    _ld: launchdarkly_fake::FakeLd,
    vault_proxy: FaultProxy,
    ld_proxy: FaultProxy,
    home: Home,
}

impl LatencySetup {
    async fn new(flags: usize) -> LatencySetup {
        let bao = OpenBao::start();
        let ld = launchdarkly_fake::FakeLd::start().await;
        ld.with(|state| state.flags.extend(launchdarkly_fake::filler_flags(flags)));
        let ld_addr = ld.url.trim_start_matches("http://").parse().expect("addr");
        let bao_addr = bao
            .addr
            .trim_start_matches("http://")
            .parse()
            .expect("addr");
        let ld_proxy = FaultProxy::start(ld_addr);
        let vault_proxy = FaultProxy::start(bao_addr);
        let (status, body) = bao.api(
            "POST",
            "/v1/sys/mounts/kv",
            Some(ROOT_TOKEN),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
        assert!((200..300).contains(&status), "{body}");
        let home = Home::new();
        let mut config = String::from("refresh_seconds = 3600\n");
        for env in ["prod", "staging", "dev"] {
            bao.put(
                &format!("/v1/kv/data/feature-flags/launchdarkly/{env}"),
                json!({"api_url": ld_proxy.url(), "sdk_url": ld_proxy.url(),
                       "api_token": launchdarkly_fake::READER_TOKEN,
                       "writer_token": launchdarkly_fake::WRITER_TOKEN,
                       "project_key": launchdarkly_fake::PROJECT,
                       "environment_key": "production",
                       "sdk_key": launchdarkly_fake::SDK_KEY_PROD}),
            );
            config.push_str(&format!(
                "[[environment]]\nname = \"{env}\"\nprovider = \"launchdarkly\"\n"
            ));
        }
        let config_dir = home.path().join("config/killswitch");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::write(config_dir.join("config.toml"), config).expect("config");
        LatencySetup {
            _bao: bao,
            _ld: ld,
            vault_proxy,
            ld_proxy,
            home,
        }
    }

    fn set_delay(&self, delay: Option<u64>) {
        let fault = match delay {
            Some(ms) => Fault::Delay(Duration::from_millis(ms)),
            None => Fault::None,
        };
        self.vault_proxy.set(fault.clone());
        self.ld_proxy.set(fault);
    }

    fn cold_start(&self) -> Duration {
        let envs = vec![
            ("VAULT_ADDR".to_string(), self.vault_proxy.url()),
            ("VAULT_TOKEN".to_string(), ROOT_TOKEN.to_string()),
        ];
        let started = Instant::now();
        let mut tui = Pty::spawn_with(&self.home, &[], (240, 40), &envs);
        tui.wait_until(|screen| screen.matches(" ok ").count() >= 3);
        let elapsed = started.elapsed();
        tui.send("q");
        tui.wait_exit();
        elapsed
    }
}

/// The flag list requests per 10 s the LaunchDarkly scale fake allows (and says it allows).
const LD_LIST_ROUTE_BUDGET: u64 = 2_000;

/// Runs a bash script, returns its wall time; panics when it fails.
fn timed_script(script: &str) -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(script)
        .status()
        .expect("bash");
    let elapsed = started.elapsed();
    assert!(status.success(), "the curl chain failed:\n{script}");
    elapsed
}

fn mount_kv(bao: &OpenBao) {
    let (status, body) = bao.api(
        "POST",
        "/v1/sys/mounts/kv",
        Some(ROOT_TOKEN),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    assert!((200..300).contains(&status), "{body}");
}

/// The Flagsmith fake (open-source mode, prod classic) with an organisation API key in OpenBao.
struct FlagsmithSetup {
    bao: OpenBao,
    fake: flagsmith_fake::FakeFlagsmith,
    home: Home,
}

impl FlagsmithSetup {
    async fn new() -> FlagsmithSetup {
        let bao = OpenBao::start();
        mount_kv(&bao);
        let fake = flagsmith_fake::FakeFlagsmith::open_source().await;
        bao.put(
            "/v1/kv/data/feature-flags/flagsmith/prod",
            json!({"api_url": fake.url, "environment_key": fake.env("prod").server_key,
                   "admin_api_key": flagsmith_fake::ADMIN_API_KEY}),
        );
        let home = Home::new();
        let config_dir = home.path().join("config/killswitch");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::write(
            config_dir.join("config.toml"),
            "refresh_seconds = 3600\n[[environment]]\nname = \"prod\"\nprovider = \"flagsmith\"\n",
        )
        .expect("config");
        FlagsmithSetup { bao, fake, home }
    }

    /// `kill --yes` (`enabled` false) or `restore --yes`, from the opposite state.
    fn flip(&self, enabled: bool) -> Duration {
        self.fake
            .set_enabled("prod", "kill_switch_checkout", !enabled);
        let started = Instant::now();
        let output = self
            .home
            .command()
            .env("VAULT_ADDR", &self.bao.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .args([
                if enabled { "restore" } else { "kill" },
                "kill_switch_checkout",
                "--env",
                "prod",
                "--note",
                "INC-15 bench",
                "--yes",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("killswitch");
        let elapsed = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            self.fake.enabled("prod", "kill_switch_checkout"),
            enabled,
            "the flip took effect"
        );
        elapsed
    }

    /// The same write by hand: the Vault read, the classic PATCH, one read of what services see.
    fn curl(&self, enabled: bool) -> Duration {
        self.fake
            .set_enabled("prod", "kill_switch_checkout", !enabled);
        let prod = self.fake.env("prod");
        let script = format!(
            "set -e\n\
             curl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/flagsmith/prod >/dev/null\n\
             curl -sf -X PATCH -H 'Authorization: Api-Key {key}' -H 'Content-Type: application/json' -d '{{\"enabled\": {enabled}}}' {url}/api/v1/environments/{client}/featurestates/3/ >/dev/null\n\
             curl -sf -H 'X-Environment-Key: {server}' {url}/api/v1/flags/ >/dev/null\n",
            root = ROOT_TOKEN,
            vault = self.bao.addr,
            key = flagsmith_fake::ADMIN_API_KEY,
            url = self.fake.url,
            client = prod.client_key,
            server = prod.server_key,
        );
        let elapsed = timed_script(&script);
        assert_eq!(self.fake.enabled("prod", "kill_switch_checkout"), enabled);
        elapsed
    }

    /// The dashboard from a runbook link (`--env prod --flag kill_switch_checkout`) until the
    /// kill is confirmed by what services see; the script types as soon as each screen asks.
    fn time_to_kill_tui(&self) -> Duration {
        self.fake.set_enabled("prod", "kill_switch_checkout", true);
        let started = Instant::now();
        let mut tui = Pty::spawn_with(
            &self.home,
            &["--env", "prod", "--flag", "kill_switch_checkout"],
            (120, 32),
            &[
                ("VAULT_ADDR".to_string(), self.bao.addr.clone()),
                ("VAULT_TOKEN".to_string(), ROOT_TOKEN.to_string()),
            ],
        );
        tui.wait_for("prod ok");
        tui.send("f");
        tui.wait_for("Audit note");
        tui.send("INC-15 bench\r");
        tui.wait_for("Type `prod`");
        tui.confirm_like_a_person("prod");
        tui.wait_for("Confirmed by what services see");
        let elapsed = started.elapsed().saturating_sub(CONFIRM_PAUSE);
        tui.send("\rq");
        tui.wait_exit();
        assert!(!self.fake.enabled("prod", "kill_switch_checkout"), "killed");
        elapsed
    }

    /// The Admin API requests one whole `kill --yes` / `restore --yes` process makes.
    fn admin_calls(&self, enabled: bool) -> Vec<String> {
        let before = self.fake.admin_requests().len();
        self.flip(enabled);
        self.fake.admin_requests()[before..]
            .iter()
            .map(|(method, path)| {
                let what = if path.contains("/featurestates/") {
                    "featurestate"
                } else {
                    "settings"
                };
                format!("{method} {what}")
            })
            .collect()
    }
}

/// The LaunchDarkly fake (writer token, `kill_switch_payments` on in production) with its
/// credentials in OpenBao.
struct LdKillSetup {
    bao: OpenBao,
    fake: launchdarkly_fake::FakeLd,
    home: Home,
}

impl LdKillSetup {
    async fn new() -> LdKillSetup {
        let bao = OpenBao::start();
        mount_kv(&bao);
        let fake = launchdarkly_fake::FakeLd::start().await;
        bao.put(
            "/v1/kv/data/feature-flags/launchdarkly/prod",
            json!({"api_url": fake.url, "sdk_url": fake.url,
                   "api_token": launchdarkly_fake::READER_TOKEN,
                   "writer_token": launchdarkly_fake::WRITER_TOKEN,
                   "project_key": launchdarkly_fake::PROJECT,
                   "environment_key": "production",
                   "sdk_key": launchdarkly_fake::SDK_KEY_PROD}),
        );
        let home = Home::new();
        let config_dir = home.path().join("config/killswitch");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::write(
            config_dir.join("config.toml"),
            "refresh_seconds = 3600\n[[environment]]\nname = \"prod\"\nprovider = \"launchdarkly\"\n",
        )
        .expect("config");
        LdKillSetup { bao, fake, home }
    }

    fn killswitch(&self, verb: &str) -> (Duration, std::process::Output) {
        let started = Instant::now();
        let output = self
            .home
            .command()
            .env("VAULT_ADDR", &self.bao.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .args([
                verb,
                "kill_switch_payments",
                "--env",
                "prod",
                "--note",
                "INC-15 bench",
                "--yes",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("killswitch");
        (started.elapsed(), output)
    }

    fn restore(&self) {
        let (_, output) = self.killswitch("restore");
        assert!(
            matches!(output.status.code(), Some(0) | Some(3)),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn kill(&self) -> Duration {
        self.restore();
        let (elapsed, output) = self.killswitch("kill");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        elapsed
    }

    /// The same by hand: the Vault read, the flag's read (the guard), the semantic patch, one
    /// read of what server-side SDKs poll.
    fn curl(&self) -> Duration {
        self.restore();
        let script = format!(
            "set -e\n\
             curl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/launchdarkly/prod >/dev/null\n\
             curl -sf -H 'Authorization: {reader}' -H 'LD-API-Version: 20240415' '{url}/api/v2/flags/{project}/kill_switch_payments?env=production' >/dev/null\n\
             curl -sf -X PATCH -H 'Authorization: {writer}' -H 'LD-API-Version: 20240415' -H 'Content-Type: application/json; domain-model=launchdarkly.semanticpatch' -d '{{\"environmentKey\":\"production\",\"comment\":\"INC-15 bench\",\"instructions\":[{{\"kind\":\"turnFlagOff\"}}]}}' '{url}/api/v2/flags/{project}/kill_switch_payments' >/dev/null\n\
             curl -sf -H 'Authorization: {sdk}' '{url}/sdk/latest-all' >/dev/null\n",
            root = ROOT_TOKEN,
            vault = self.bao.addr,
            reader = launchdarkly_fake::READER_TOKEN,
            writer = launchdarkly_fake::WRITER_TOKEN,
            sdk = launchdarkly_fake::SDK_KEY_PROD,
            project = launchdarkly_fake::PROJECT,
            url = self.fake.url,
        );
        timed_script(&script)
    }
}

#[derive(Clone, Copy)]
enum Vendor {
    Unleash,
    LaunchDarkly,
    Flagsmith,
}

impl Vendor {
    fn name(self) -> &'static str {
        match self {
            Vendor::Unleash => "Unleash 8.2 (real)",
            Vendor::LaunchDarkly => "LaunchDarkly fake",
            Vendor::Flagsmith => "Flagsmith fake",
        }
    }
}

/// One environment of `flags` flags at a vendor, credentials in OpenBao, both behind proxies
/// that can add latency to every call.
struct ScaleSetup {
    _bao: OpenBao,
    _ld: Option<launchdarkly_fake::FakeLd>,
    _flagsmith: Option<flagsmith_fake::FakeFlagsmith>,
    vault_proxy: FaultProxy,
    vendor_proxy: FaultProxy,
    home: Home,
    /// The bulk call by hand, with `{vendor}` for the vendor's proxied URL.
    bulk: String,
    provider: &'static str,
}

impl ScaleSetup {
    async fn new(vendor: Vendor, flags: usize) -> ScaleSetup {
        let bao = OpenBao::start();
        mount_kv(&bao);
        let vault_proxy = FaultProxy::start(
            bao.addr
                .trim_start_matches("http://")
                .parse()
                .expect("addr"),
        );
        let (mut ld, mut flagsmith) = (None, None);
        let (upstream, provider, secret, bulk) = match vendor {
            Vendor::Unleash => {
                let server = unleash_server::server().expect("Unleash");
                seed_unleash(server, flags).await;
                (
                    server.url.clone(),
                    "unleash",
                    json!({"backend_token": unleash_server::BACKEND_TOKEN,
                           "read_token": unleash_server::ADMIN_TOKEN}),
                    format!(
                        "curl -sf -H 'Authorization: {}' -H 'Unleash-Client-Spec: 5.1.0' '{{vendor}}/api/client/features?project=default' >/dev/null",
                        unleash_server::BACKEND_TOKEN
                    ),
                )
            }
            Vendor::LaunchDarkly => {
                let fake = launchdarkly_fake::FakeLd::start().await;
                fake.with(|state| {
                    let have = state.flags.len();
                    state
                        .flags
                        .extend(launchdarkly_fake::filler_flags(flags.saturating_sub(have)));
                    // LaunchDarkly publishes no numbers; the fake states a route budget in
                    // `X-Ratelimit-Route-Remaining` large enough for every run of this bench.
                    state.list_route_budget = Some(LD_LIST_ROUTE_BUDGET);
                });
                let url = fake.url.clone();
                ld = Some(fake);
                (
                    url,
                    "launchdarkly",
                    json!({"api_token": launchdarkly_fake::READER_TOKEN,
                           "project_key": launchdarkly_fake::PROJECT,
                           "environment_key": "production",
                           "sdk_key": launchdarkly_fake::SDK_KEY_PROD}),
                    format!(
                        "curl -sf -H 'Authorization: {}' '{{vendor}}/sdk/latest-all' >/dev/null",
                        launchdarkly_fake::SDK_KEY_PROD
                    ),
                )
            }
            Vendor::Flagsmith => {
                let fake = flagsmith_fake::FakeFlagsmith::open_source().await;
                fake.add_features(flags.saturating_sub(6));
                let server_key = fake.env("prod").server_key;
                let url = fake.url.clone();
                flagsmith = Some(fake);
                (
                    url,
                    "flagsmith",
                    json!({"environment_key": server_key,
                           "admin_token": flagsmith_fake::ADMIN_TOKEN}),
                    format!(
                        "curl -sf -H 'X-Environment-Key: {server_key}' '{{vendor}}/api/v1/environment-document/' >/dev/null"
                    ),
                )
            }
        };
        let vendor_proxy = FaultProxy::start(
            upstream
                .trim_start_matches("http://")
                .parse()
                .expect("addr"),
        );
        let mut secret = secret;
        secret["api_url"] = json!(vendor_proxy.url());
        if provider == "launchdarkly" {
            secret["sdk_url"] = json!(vendor_proxy.url());
        }
        bao.put(
            &format!("/v1/kv/data/feature-flags/{provider}/prod"),
            secret,
        );
        let home = Home::new();
        let config_dir = home.path().join("config/killswitch");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::write(
            config_dir.join("config.toml"),
            format!(
                "refresh_seconds = 3600\n[[environment]]\nname = \"prod\"\nprovider = \"{provider}\"\n"
            ),
        )
        .expect("config");
        ScaleSetup {
            _bao: bao,
            _ld: ld,
            _flagsmith: flagsmith,
            vault_proxy,
            vendor_proxy,
            home,
            bulk,
            provider,
        }
    }

    fn set_delay(&self, delay: Option<u64>) {
        let fault = match delay {
            Some(ms) => Fault::Delay(Duration::from_millis(ms)),
            None => Fault::None,
        };
        self.vault_proxy.set(fault.clone());
        self.vendor_proxy.set(fault);
    }

    fn envs(&self) -> Vec<(String, String)> {
        vec![
            ("VAULT_ADDR".to_string(), self.vault_proxy.url()),
            ("VAULT_TOKEN".to_string(), ROOT_TOKEN.to_string()),
        ]
    }

    fn curl(&self) -> Duration {
        let script = format!(
            "set -e\ncurl -sf -H 'X-Vault-Token: {root}' {vault}/v1/kv/data/feature-flags/{provider}/prod >/dev/null\n{bulk}\n",
            root = ROOT_TOKEN,
            vault = self.vault_proxy.url(),
            provider = self.provider,
            bulk = self.bulk.replace("{vendor}", &self.vendor_proxy.url()),
        );
        timed_script(&script)
    }

    fn status(&self) -> Duration {
        let started = Instant::now();
        let output = self
            .home
            .command()
            .envs(self.envs())
            .args(["status", "--output", "json"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("killswitch");
        let elapsed = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        elapsed
    }

    fn cold_start(&self) -> Duration {
        let started = Instant::now();
        let mut tui = Pty::spawn_with(&self.home, &[], (200, 40), &self.envs());
        tui.wait_for("prod ok");
        let elapsed = started.elapsed();
        tui.send("q");
        tui.wait_exit();
        elapsed
    }
}

/// Creates flags `scale_00000`… in Unleash's default project until it holds `flags`.
async fn seed_unleash(server: &unleash_server::Unleash, flags: usize) {
    let existing = unleash_server::admin(
        server,
        "GET",
        "/api/admin/projects/default/features",
        None,
    )
    .await["features"]
        .as_array()
        .map_or(0, Vec::len);
    let client = reqwest::Client::new();
    let creates = (existing..flags).map(|index| {
        let client = client.clone();
        let url = format!("{}/api/admin/projects/default/features", server.url);
        async move {
            let response = client
                .post(url)
                .header("Authorization", unleash_server::ADMIN_TOKEN)
                .json(&json!({"name": format!("scale_{index:05}"), "type": "release"}))
                .send()
                .await
                .expect("create flag");
            assert!(
                response.status().is_success() || response.status().as_u16() == 409,
                "create scale_{index:05}: {}",
                response.status()
            );
        }
    });
    futures::StreamExt::collect::<Vec<()>>(futures::StreamExt::buffer_unordered(
        futures::stream::iter(creates),
        8,
    ))
    .await;
}
