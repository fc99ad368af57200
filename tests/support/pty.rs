//! Runs the real binary in a pseudo-terminal and reads its screen through a terminal emulator
//! (vt100), the way an operator would see it.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{Child, CommandBuilder, MasterPty, PtySize, native_pty_system};

pub struct PtySession {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// Set when the reader has seen the end of the program's output (every writer closed).
    drained: Arc<AtomicBool>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn Child + Send + Sync>,
    _master: Box<dyn MasterPty + Send>,
}

impl PtySession {
    pub fn spawn(home: &super::Home, args: &[&str], size: (u16, u16)) -> PtySession {
        PtySession::spawn_with_env(home, args, size, &[])
    }

    /// Like [`PtySession::spawn`], with extra environment variables (VAULT_ADDR, ...).
    pub fn spawn_with_env(
        home: &super::Home,
        args: &[&str],
        size: (u16, u16),
        extra_env: &[(&str, &str)],
    ) -> PtySession {
        let (cols, rows) = size;
        let pair = native_pty_system()
            .openpty(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_killswitch"));
        command.env_clear();
        command.env("PATH", std::env::var("PATH").unwrap_or_default());
        command.env("TERM", "xterm-256color");
        command.env("USER", "tester");
        for (key, value) in home.envs() {
            command.env(key, value);
        }
        for (key, value) in extra_env {
            command.env(key, value);
        }
        for arg in args {
            command.arg(arg);
        }
        command.cwd(home.path());
        let child = pair
            .slave
            .spawn_command(command)
            .expect("spawn killswitch in the pty");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let parser = Arc::new(Mutex::new(vt100::Parser::new(rows, cols, 0)));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let drained = Arc::new(AtomicBool::new(false));
        let (parser_in, raw_in, drained_in) = (parser.clone(), raw.clone(), drained.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read) = reader.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                if let Ok(mut parser) = parser_in.lock() {
                    parser.process(&buffer[..read]);
                }
                if let Ok(mut raw) = raw_in.lock() {
                    raw.extend_from_slice(&buffer[..read]);
                }
            }
            drained_in.store(true, Ordering::SeqCst);
        });
        PtySession {
            parser,
            raw,
            drained,
            writer,
            child,
            _master: pair.master,
        }
    }

    pub fn screen(&self) -> String {
        self.parser
            .lock()
            .map(|p| p.screen().contents())
            .unwrap_or_default()
    }

    /// Everything the program wrote, escape sequences included.
    pub fn raw_output(&self) -> Vec<u8> {
        self.raw.lock().map(|raw| raw.clone()).unwrap_or_default()
    }

    /// Waits (at most `limit`, a hang guard, not a performance check) for `text` on screen.
    pub fn wait_for(&self, text: &str, limit: Duration) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            if started.elapsed() > limit {
                panic!("`{text}` did not appear within {limit:?}; the screen was:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    pub fn send(&mut self, text: &str) {
        self.writer
            .write_all(text.as_bytes())
            .expect("write to the pty");
        self.writer.flush().expect("flush the pty");
        // Keys typed by a person arrive one read at a time; give the loop a moment.
        std::thread::sleep(Duration::from_millis(30));
    }

    /// Sends `signal` to the process, as `kill -SIG` from another terminal would.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.child.process_id() {
            // SAFETY: sending a signal to the child this session spawned.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    /// Waits for the process to end and returns its exit status as portable-pty reports it.
    pub fn wait_status(&mut self, limit: Duration) -> portable_pty::ExitStatus {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.wait_drained();
                return status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "killswitch did not exit within {limit:?}; screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Writes `bytes` as one write, the way a terminal delivers a paste.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the pty");
        self.writer.flush().expect("flush the pty");
    }

    /// Resizes the terminal (the program gets SIGWINCH, as when a pane is split or shrunk).
    pub fn resize(&mut self, cols: u16, rows: u16) {
        self._master
            .resize(PtySize {
                rows,
                cols,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("resize the pty");
        if let Ok(mut parser) = self.parser.lock() {
            parser.screen_mut().set_size(rows, cols);
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    /// The process's peak resident set (VmHWM) in kB, read from /proc.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let pid = self.child.process_id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// SIGKILL: no destructor, no terminal restore, no outcome record.
    pub fn kill_hard(&mut self) {
        if let Some(pid) = self.child.process_id() {
            // SAFETY: sending a signal to the child this session spawned.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.child.wait();
    }

    /// After the program ended: lets the reader take the last bytes it wrote (the terminal
    /// restore comes last), so `raw_output` is complete. Bounded: a pty whose end never comes
    /// leaves what was read.
    fn wait_drained(&self) {
        let started = Instant::now();
        while !self.drained.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> u32 {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.wait_drained();
                return status.exit_code();
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "killswitch did not exit within {limit:?}; screen:\n{}",
                    self.screen()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}
