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

#[path = "../tests/support/mod.rs"]
#[allow(unused_imports)]
mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::Value;
use support::Home;

const LIMIT: Duration = Duration::from_secs(30);

fn main() {
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
    report.push_str(&format!(
        "| {name} | {} | {} | {} | {} |\n",
        ms(median),
        ms(sorted[0]),
        ms(sorted[sorted.len() - 1]),
        sorted.len()
    ));
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
        self.restore();
        let started = Instant::now();
        let mut tui = Pty::spawn(
            &self.home,
            &self.args(&["--env", "prod", "--flag", "kill_switch_checkout"]),
        );
        tui.wait_for("prod ok");
        tui.send("f");
        tui.wait_for("Audit note");
        tui.send("INC-1 bench\r");
        tui.wait_for("Type `prod`");
        tui.send("prod\r");
        tui.wait_for("Confirmed by what services see");
        let elapsed = started.elapsed();
        tui.send("\rq");
        tui.wait_exit();
        elapsed
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

    fn spawn_sized(home: &Home, args: &[&str], (cols, rows): (u16, u16)) -> Pty {
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
        for (key, value) in home.envs() {
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
