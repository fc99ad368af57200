//! The dashboard: terminal setup and restore, and the event loop.
//!
//! One way through: key -> `Action` -> `app::update` changes `State` and returns effects ->
//! effects run as tokio tasks -> their results come back as `Action`s on a channel ->
//! `view::render(&State)`. Nothing draws from inside I/O; nothing does I/O from inside drawing.

pub mod action;
pub mod app;
pub mod columns;
pub mod keymap;
pub mod layout;
pub mod rollout;
pub mod undo;
pub mod view;

use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream, KeyCode, KeyEventKind, MouseEventKind,
};
use crossterm::terminal::{self, EnterAlternateScreen, LeaveAlternateScreen};
use crossterm::{cursor, execute};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use self::action::Action;
use self::app::{Effect, Setup, State};
use self::keymap::Keymap;
use crate::flip;
use crate::provider::Access;
use crate::session::Session;

pub struct TuiOptions {
    pub keymap: Keymap,
    /// `--env E --flag F`.
    pub focus: Option<(String, String)>,
    /// When killswitch started, for "N s since launch" after a kill.
    pub launched: Instant,
}

/// Signals whose default action ends the process and that arrive from outside (a `kill`, a
/// closed terminal, a timer, a resource limit): each ends the dashboard through the normal
/// path, which restores the terminal. The exit code is 128 + the signal number.
const ENDING_SIGNALS: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGPWR,
    libc::SIGIO,
];

/// Signals the program itself causes (a crash, `abort`): no normal path is left, so a handler
/// restores the terminal with async-signal-safe calls, then lets the signal do what it did.
const FATAL_SIGNALS: &[libc::c_int] = &[
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
    libc::SIGSYS,
    libc::SIGTRAP,
];

/// Key events closer together than this came from one read of the terminal: a paste (from a
/// terminal without bracketed paste) or typed-ahead text, not separate key presses.
const BURST_GAP: Duration = Duration::from_millis(10);

/// The longest the loop applies queued input before it draws again, so a flood of keys never
/// freezes the screen.
const FRAME_BUDGET: Duration = Duration::from_millis(50);

/// Set by the panic hook: a task panicked after the terminal was restored, so the dashboard
/// must end instead of drawing on a terminal that is no longer in its mode.
static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Owns the terminal; restores it when dropped (normal exit, error, or unwinding panic).
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard> {
        install_panic_hook();
        fatal::install();
        terminal::enable_raw_mode()
            .context("cannot switch the terminal to raw mode (is this a terminal?)")?;
        let mut stdout = io::stdout();
        if let Err(err) = execute!(
            stdout,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        ) {
            restore_terminal();
            return Err(err).context("cannot set up the terminal");
        }
        match Terminal::new(CrosstermBackend::new(stdout)) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(err) => {
                restore_terminal();
                Err(err).context("cannot set up the terminal")
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Leaves the alternate screen, disables raw mode, mouse capture and bracketed paste, shows
/// the cursor. Safe to call more than once.
pub fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

/// Restores the terminal before the panic message is printed, so the message lands on the
/// normal screen where it can be read (and is not wiped by leaving the alternate screen).
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
        previous(info);
    }));
}

/// The handler for [`FATAL_SIGNALS`]: only async-signal-safe calls (`write`, `tcsetattr`,
/// `sigaction`, `raise`).
mod fatal {
    use std::sync::atomic::{AtomicBool, Ordering};

    /// The escape sequences of `restore_terminal`, as bytes.
    const RESTORE: &[u8] =
        b"\x1b[?2004l\x1b[?1006l\x1b[?1015l\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1049l\x1b[?25h";

    static INSTALLED: AtomicBool = AtomicBool::new(false);
    static HAVE_TERMIOS: AtomicBool = AtomicBool::new(false);
    // Written once, before the handlers are installed; only read afterwards.
    static mut TERMIOS: std::mem::MaybeUninit<libc::termios> = std::mem::MaybeUninit::uninit();
    static mut PREVIOUS: [std::mem::MaybeUninit<libc::sigaction>; 32] =
        [const { std::mem::MaybeUninit::uninit() }; 32];

    pub fn install() {
        if INSTALLED.swap(true, Ordering::SeqCst) {
            return;
        }
        // SAFETY: runs once (INSTALLED), before any handler that reads these statics exists;
        // the pointers are to statics and valid for the calls.
        unsafe {
            let termios = &raw mut TERMIOS;
            if libc::isatty(libc::STDIN_FILENO) == 1
                && libc::tcgetattr(libc::STDIN_FILENO, (*termios).as_mut_ptr()) == 0
            {
                HAVE_TERMIOS.store(true, Ordering::SeqCst);
            }
            for &signal in super::FATAL_SIGNALS {
                let Ok(slot) = usize::try_from(signal) else {
                    continue;
                };
                if slot >= 32 {
                    continue;
                }
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_ONSTACK | libc::SA_SIGINFO;
                libc::sigemptyset(&mut action.sa_mask);
                let previous = &raw mut PREVIOUS;
                libc::sigaction(signal, &action, (*previous)[slot].as_mut_ptr());
            }
        }
    }

    extern "C" fn handler(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        _context: *mut libc::c_void,
    ) {
        // SAFETY: async-signal-safe calls only; TERMIOS and PREVIOUS were written before this
        // handler was installed and are never written again; `info` is the kernel's.
        unsafe {
            libc::write(libc::STDOUT_FILENO, RESTORE.as_ptr().cast(), RESTORE.len());
            if HAVE_TERMIOS.load(Ordering::SeqCst) {
                let termios = &raw const TERMIOS;
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, (*termios).as_ptr());
            }
            // A real fault goes back to whoever had it (the runtime's stack-overflow report,
            // else the default action) and re-runs its instruction. A signal that was sent
            // (`kill`, `abort`) gets the default action, so it ends the process as it would
            // have without this handler.
            let sent = info.is_null() || (*info).si_code <= 0;
            let previous = &raw const PREVIOUS;
            match usize::try_from(signal) {
                Ok(slot) if !sent => {
                    libc::sigaction(signal, (*previous)[slot].as_ptr(), std::ptr::null_mut());
                }
                _ => {
                    libc::signal(signal, libc::SIG_DFL);
                    libc::raise(signal);
                }
            }
        }
    }
}

/// Runs the dashboard until the operator quits. Returns the exit code: 0, or 128 + the number
/// of the signal that ended it.
pub async fn run(session: Arc<Session>, options: TuiOptions) -> Result<i32> {
    let mut guard = TerminalGuard::enter()?;
    let size = guard
        .terminal
        .size()
        .context("cannot read the terminal size")?;
    let mut state = State::new(Setup {
        envs: session
            .config
            .environments
            .iter()
            .map(|env| (env.name.clone(), env.protected))
            .collect(),
        keymap: options.keymap,
        read_only: session.access == Access::ReadOnly,
        local_workspace: session.config.local_workspace,
        operator: crate::session::local_operator(),
        refresh_interval: session.config.refresh_interval,
        focus: options.focus,
        now: session.clock.now(),
        size: (size.width, size.height),
    });
    state.set_groups(&session.config.groups);
    state.rollout_steps = session.config.rollout.clone();
    state.warnings = session.credentials.warnings();
    if let Some(first) = state.warnings.first() {
        state.message = Some((app::Level::Error, first.clone()));
    }
    if let (None, Some(note)) = (&state.message, &session.config.source_note) {
        state.message = Some((app::Level::Info, note.clone()));
    }
    let (sender, mut receiver) = unbounded_channel::<Action>();
    let runner = Runner {
        session: session.clone(),
        sender: sender.clone(),
        launched: options.launched,
    };
    runner.start_background(&mut state);
    for effect in state.initial_effects() {
        runner.run(effect);
    }

    // Terminal input is read by its own task into a channel, so the loop can take every event
    // that is already waiting before it draws again: a pasted note or fast typing costs one
    // frame, not one per key. (Polling the EventStream itself without waiting is not safe: a
    // poll that finds nothing parks crossterm's wake-up on a waker nobody listens to.)
    let (input_sender, mut input) = unbounded_channel::<(Instant, std::io::Result<Event>)>();
    let input_task = tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(event) = events.next().await {
            if input_sender.send((Instant::now(), event)).is_err() {
                break;
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Every signal that would end the process ends the loop instead, so the terminal is
    // restored on the way out (SIGKILL and SIGSTOP cannot be caught).
    let (signal_sender, mut signals) = unbounded_channel::<libc::c_int>();
    for &number in ENDING_SIGNALS {
        let mut stream = signal(SignalKind::from_raw(number))
            .with_context(|| format!("cannot watch signal {number}"))?;
        let sender = signal_sender.clone();
        tokio::spawn(async move {
            while stream.recv().await.is_some() {
                if sender.send(number).is_err() {
                    break;
                }
            }
        });
    }
    // A file-size limit makes a write fail (EFBIG: "no audit, no change") instead of killing
    // the dashboard mid-flip.
    let _file_size = signal(SignalKind::from_raw(libc::SIGXFSZ)).context("cannot watch SIGXFSZ")?;
    #[cfg(debug_assertions)]
    if std::env::var_os("KILLSWITCH_DEBUG_PANIC").is_some() {
        // For the tests of the panic hook: a panic with the dashboard on screen.
        let _ = tokio::spawn(async { panic!("KILLSWITCH_DEBUG_PANIC is set") }).await;
    }

    let mut bursts = Bursts::default();
    let mut ended_by: Option<libc::c_int> = None;
    'run: loop {
        if PANICKED.load(std::sync::atomic::Ordering::SeqCst) {
            break 'run;
        }
        if ended_by.is_some() && !applying(&state) {
            break 'run;
        }
        guard
            .terminal
            .draw(|frame| view::render(frame, &state))
            .context("cannot draw")?;
        let mut next = tokio::select! {
            event = input.recv() => match event {
                Some((at, Ok(event))) => bursts.action(&state, at, event),
                Some((_, Err(err))) => return Err(err).context("cannot read terminal input"),
                None => break 'run,
            },
            Some(action) = receiver.recv() => Some(action),
            _ = tick.tick() => Some(Action::Tick(session.clock.now())),
            Some(number) = signals.recv() => {
                if end_on_signal(&mut state, &mut ended_by, number) {
                    break 'run;
                }
                None
            }
        };
        // Apply it, then everything else already waiting (within one frame's budget), then
        // draw once.
        let frame_started = Instant::now();
        loop {
            if let Some(action) = next.take() {
                let from_input = matches!(action, Action::Input(_));
                let was_confirming = app::confirming(&state);
                for effect in app::update(&mut state, action) {
                    runner.run(effect);
                }
                if state.quitting {
                    break 'run;
                }
                if from_input && !was_confirming && app::confirming(&state) {
                    // The question was asked by this key: keys that came with it were typed
                    // (or pasted) before the question was on screen, so none may answer it.
                    bursts.guard_confirmation();
                }
            }
            if frame_started.elapsed() > FRAME_BUDGET {
                break;
            }
            if let Ok(number) = signals.try_recv()
                && end_on_signal(&mut state, &mut ended_by, number)
            {
                break 'run;
            }
            next = match input.try_recv() {
                Ok((at, Ok(event))) => bursts.action(&state, at, event),
                Ok((_, Err(err))) => return Err(err).context("cannot read terminal input"),
                Err(_) => match receiver.try_recv() {
                    Ok(action) => Some(action),
                    Err(_) => break,
                },
            };
        }
    }
    input_task.abort();
    drop(guard);
    if PANICKED.load(std::sync::atomic::Ordering::SeqCst) {
        anyhow::bail!("the dashboard stopped after an internal error (the panic message is above)");
    }
    Ok(ended_by.map_or(0, |number| 128 + number))
}

fn applying(state: &State) -> bool {
    matches!(&state.mode, app::Mode::Flip(dialog) if dialog.stage == app::DialogStage::Applying)
}

/// A signal that ends the process: end now, unless a flip is being applied. That one is let
/// finish (its own timeouts bound it) so its outcome is recorded; a second signal ends at once.
fn end_on_signal(
    state: &mut State,
    ended_by: &mut Option<libc::c_int>,
    number: libc::c_int,
) -> bool {
    if ended_by.is_some() || !applying(state) {
        *ended_by = Some(number);
        return true;
    }
    *ended_by = Some(number);
    state.message = Some((
        app::Level::Error,
        format!(
            "signal {number}: finishing the flip in flight so its outcome is audited, then exiting \
             (send it again to exit now)"
        ),
    ));
    false
}

/// Tells key presses from keys that arrive together (a paste without bracketed paste, or
/// typed-ahead text), so nothing that came with the key that asked for the confirmation can
/// answer it.
#[derive(Default)]
struct Bursts {
    last_input: Option<Instant>,
    /// Set when a key opened the confirmation; cleared by the first key after a pause.
    guarding: bool,
}

impl Bursts {
    fn guard_confirmation(&mut self) {
        self.guarding = true;
    }

    fn action(&mut self, state: &State, at: Instant, event: Event) -> Option<Action> {
        let burst = self
            .last_input
            .is_some_and(|last| at.saturating_duration_since(last) < BURST_GAP);
        self.last_input = Some(at);
        if !burst {
            self.guarding = false;
        }
        if let Event::Key(key) = &event {
            let leaves = key.code == KeyCode::Esc || app::is_ctrl_c(key);
            if self.guarding && key.kind != KeyEventKind::Release && !leaves {
                return app::confirming(state).then_some(Action::TypedAhead);
            }
        }
        event_action(state, event)
    }
}

fn event_action(state: &State, event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => app::key_action(state, key),
        Event::Paste(text) => Some(Action::Paste(text)),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollDown => Some(Action::Scroll(1)),
            MouseEventKind::ScrollUp => Some(Action::Scroll(-1)),
            _ => None,
        },
        Event::Resize(width, height) => Some(Action::Resize(width, height)),
        _ => None,
    }
}

/// Runs effects as tasks; every result comes back as an action.
struct Runner {
    session: Arc<Session>,
    sender: UnboundedSender<Action>,
    launched: Instant,
}

impl Runner {
    /// Work that starts with the dashboard: who the operator is, and reconciling flips that an
    /// earlier run left without an outcome.
    fn start_background(&self, _state: &mut State) {
        let session = self.session.clone();
        let sender = self.sender.clone();
        tokio::spawn(async move {
            let _ = sender.send(Action::Operator(session.operator().await));
            if session.access == Access::ReadOnly {
                // Read-only writes nothing, not even a reconcile record: say what is pending;
                // the next writable start records how it ended.
                let lines = flip::describe_pending(&session).await;
                let _ = sender.send(Action::Pending(lines));
            } else {
                let lines = flip::reconcile_pending(&session, None).await;
                let _ = sender.send(Action::Reconciled(lines));
            }
        });
    }

    fn run(&self, effect: Effect) {
        let session = self.session.clone();
        let sender = self.sender.clone();
        match effect {
            Effect::Quit => {}
            Effect::RolloutShared {
                env,
                flag,
                target,
                seen,
            } => {
                tokio::spawn(async move {
                    let answer = match session.connection(&env).await {
                        Ok(connection) => match &connection.writer {
                            Some(writer) => {
                                rollout::ask(writer.as_ref(), &flag, &target, &seen).await
                            }
                            None => rollout::Answer::Failed(
                                connection
                                    .read_only_reason
                                    .clone()
                                    .unwrap_or_else(|| format!("{env} is read-only")),
                            ),
                        },
                        Err(err) => rollout::Answer::Failed(err.to_string()),
                    };
                    let _ = sender.send(Action::RolloutShared {
                        env,
                        flag,
                        target,
                        answer,
                    });
                });
            }
            Effect::FindLastChange { env, flag } => {
                tokio::spawn(async move {
                    let audit = session.audit.clone();
                    let (wanted_env, wanted_flag) = (env.clone(), flag.clone());
                    let result = tokio::task::spawn_blocking(move || {
                        audit.last_change(&wanted_env, &wanted_flag)
                    })
                    .await
                    .map_err(|err| err.to_string())
                    .and_then(|found| {
                        found
                            .map(|record| record.map(Box::new))
                            .map_err(|err| err.to_string())
                    });
                    let _ = sender.send(Action::LastChangeFound { env, flag, result });
                });
            }
            Effect::LoadVendorHistory { flag, envs } => {
                tokio::spawn(async move {
                    let reads = envs.iter().map(|env| {
                        let session = session.clone();
                        let flag = flag.clone();
                        async move {
                            match session.connection(env).await {
                                Ok(connection) => connection
                                    .source
                                    .history(&flag)
                                    .await
                                    .map_err(|err| err.message),
                                Err(err) => Err(err.to_string()),
                            }
                        }
                    });
                    let results = futures::future::join_all(reads).await;
                    let history = envs.into_iter().zip(results).collect();
                    let _ = sender.send(Action::VendorHistory { flag, history });
                });
            }
            Effect::LoadLastChanges => {
                tokio::spawn(async move {
                    let audit = session.audit.clone();
                    let records = tokio::task::spawn_blocking(move || audit.records())
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default();
                    let _ = sender.send(Action::LastChanges(records));
                });
            }
            Effect::Load(env) => {
                // Metadata beside the states, once per session: a slow admin API never
                // delays a cell.
                if session.known_metadata(&env).is_none() {
                    let session = session.clone();
                    let sender = sender.clone();
                    let env = env.clone();
                    tokio::spawn(async move {
                        if let Ok(metadata) = session.metadata(&env).await {
                            let _ = sender.send(Action::MetadataLoaded { env, metadata });
                        }
                    });
                }
                tokio::spawn(async move {
                    let result = session.load_states(&env).await;
                    // Not for a failed load: asking again would repeat a slow credential read.
                    let read_only_reason = match result.is_ok() {
                        true => match session.connection(&env).await {
                            Ok(connection) if session.access == Access::ReadWrite => {
                                connection.read_only_reason
                            }
                            _ => None,
                        },
                        false => None,
                    };
                    let _ = sender.send(Action::EnvLoaded {
                        env,
                        result,
                        read_only_reason,
                    });
                });
            }
            Effect::Flip(request) => {
                let mut request = *request;
                let launched = self.launched;
                tokio::spawn(async move {
                    // The identity that goes into the audit record is resolved now, not taken
                    // from what the screen last showed.
                    request.operator = session.operator().await;
                    let (result, notified) = match session.connection(&request.env).await {
                        Ok(connection) => {
                            let announced = flip::execute_announced(
                                &request,
                                &connection,
                                &session.audit,
                                session.clock.as_ref(),
                                session.config.network.verify_timeout,
                                None,
                            )
                            .await;
                            (announced.result, announced.notified)
                        }
                        Err(err) => (Err(flip::FlipError::Connect(err)), Vec::new()),
                    };
                    let _ = sender.send(Action::flip_finished(request, result, launched.elapsed()));
                    if let Some(line) = crate::notify::summary(&notified) {
                        let ok = notified.iter().all(|delivery| delivery.ok);
                        let _ = sender.send(Action::Notified { line, ok });
                    }
                });
            }
            Effect::FlipSet(requests) => {
                tokio::spawn(async move {
                    let operator = session.operator().await;
                    let batch = format!("batch-{}", crate::audit::new_id(session.clock.now()));
                    let runs = requests.into_iter().map(|mut request| {
                        request.operator = operator.clone();
                        let session = session.clone();
                        let batch = batch.clone();
                        async move {
                            let (result, notified) = match session.connection(&request.env).await {
                                Ok(connection) => {
                                    let announced = flip::execute_announced(
                                        &request,
                                        &connection,
                                        &session.audit,
                                        session.clock.as_ref(),
                                        session.config.network.verify_timeout,
                                        Some(&batch),
                                    )
                                    .await;
                                    (announced.result, announced.notified)
                                }
                                Err(err) => (Err(flip::FlipError::Connect(err)), Vec::new()),
                            };
                            (request, result, notified)
                        }
                    });
                    let done = futures::future::join_all(runs).await;
                    let notified: Vec<crate::notify::Delivery> =
                        done.iter().flat_map(|(_, _, n)| n.clone()).collect();
                    let results = done.into_iter().map(|(r, result, _)| (r, result)).collect();
                    let _ = sender.send(Action::FlipSetFinished(results));
                    if let Some(line) = crate::notify::summary(&notified) {
                        let ok = notified.iter().all(|delivery| delivery.ok);
                        let _ = sender.send(Action::Notified { line, ok });
                    }
                });
            }
            Effect::LoadAudit { envs, flag } => {
                tokio::spawn(async move {
                    let audit = session.audit.clone();
                    let filter_flag = flag.clone();
                    let records = tokio::task::spawn_blocking(move || audit.records())
                        .await
                        .map_err(|err| err.to_string())
                        .and_then(|result| result.map_err(|err| err.to_string()))
                        .map(|records| {
                            records
                                .into_iter()
                                .filter(|r| filter_flag.as_deref().is_none_or(|f| f == r.flag))
                                .collect::<Vec<_>>()
                        });
                    let history = match flag {
                        Some(flag) => {
                            let reads = envs.iter().map(|env| {
                                let session = session.clone();
                                let flag = flag.clone();
                                async move {
                                    match session.connection(env).await {
                                        Ok(connection) => connection
                                            .source
                                            .history(&flag)
                                            .await
                                            .map_err(|err| err.message),
                                        Err(err) => Err(err.to_string()),
                                    }
                                }
                            });
                            let results = futures::future::join_all(reads).await;
                            envs.iter().cloned().zip(results).collect()
                        }
                        None => Vec::new(),
                    };
                    let _ = sender.send(Action::AuditLoaded { records, history });
                });
            }
        }
    }
}
