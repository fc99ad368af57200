//! The dashboard: terminal setup and restore, and the event loop.
//!
//! One way through: key -> `Action` -> `app::update` changes `State` and returns effects ->
//! effects run as tokio tasks -> their results come back as `Action`s on a channel ->
//! `view::render(&State)`. Nothing draws from inside I/O; nothing does I/O from inside drawing.

pub mod action;
pub mod app;
pub mod keymap;
pub mod layout;
pub mod view;

use std::io::{self, Stdout};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseEventKind,
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

/// Owns the terminal; restores it when dropped (normal exit, error, or unwinding panic).
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> Result<TerminalGuard> {
        install_panic_hook();
        terminal::enable_raw_mode()
            .context("cannot switch the terminal to raw mode (is this a terminal?)")?;
        let mut stdout = io::stdout();
        if let Err(err) = execute!(stdout, EnterAlternateScreen, EnableMouseCapture) {
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

/// Leaves the alternate screen, disables raw mode and mouse capture, shows the cursor.
/// Safe to call more than once.
pub fn restore_terminal() {
    let _ = terminal::disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}

/// Runs the dashboard until the operator quits.
pub async fn run(session: Arc<Session>, options: TuiOptions) -> Result<()> {
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
    state.warnings = session.credentials.warnings();
    if let Some(first) = state.warnings.first() {
        state.message = Some((app::Level::Error, first.clone()));
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
    let (input_sender, mut input) = unbounded_channel::<std::io::Result<Event>>();
    let input_task = tokio::spawn(async move {
        let mut events = EventStream::new();
        while let Some(event) = events.next().await {
            if input_sender.send(event).is_err() {
                break;
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;

    'run: loop {
        guard
            .terminal
            .draw(|frame| view::render(frame, &state))
            .context("cannot draw")?;
        let mut next = tokio::select! {
            event = input.recv() => match event {
                Some(Ok(event)) => event_action(&state, event),
                Some(Err(err)) => return Err(err).context("cannot read terminal input"),
                None => break 'run,
            },
            Some(action) = receiver.recv() => Some(action),
            _ = tick.tick() => Some(Action::Tick(session.clock.now())),
            _ = terminate.recv() => break 'run,
            _ = hangup.recv() => break 'run,
        };
        // Apply it, then everything else already waiting, then draw once.
        loop {
            if let Some(action) = next.take() {
                for effect in app::update(&mut state, action) {
                    runner.run(effect);
                }
                if state.quitting {
                    break 'run;
                }
            }
            next = match input.try_recv() {
                Ok(Ok(event)) => event_action(&state, event),
                Ok(Err(err)) => return Err(err).context("cannot read terminal input"),
                Err(_) => match receiver.try_recv() {
                    Ok(action) => Some(action),
                    Err(_) => break,
                },
            };
        }
    }
    input_task.abort();
    drop(guard);
    Ok(())
}

fn event_action(state: &State, event: Event) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => app::key_action(state, key),
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
            let lines = flip::reconcile_pending(&session, None).await;
            let _ = sender.send(Action::Reconciled(lines));
        });
    }

    fn run(&self, effect: Effect) {
        let session = self.session.clone();
        let sender = self.sender.clone();
        match effect {
            Effect::Quit => {}
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
                    let result = match session.connection(&request.env).await {
                        Ok(connection) => {
                            flip::execute(
                                &request,
                                &connection,
                                &session.audit,
                                session.clock.as_ref(),
                                session.config.network.verify_timeout,
                            )
                            .await
                        }
                        Err(err) => Err(flip::FlipError::ReadOnly {
                            env: request.env.clone(),
                            reason: err.to_string(),
                        }),
                    };
                    let _ = sender.send(Action::flip_finished(request, result, launched.elapsed()));
                });
            }
            Effect::LoadAudit { env, flag } => {
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
                    let history = match (env, flag) {
                        (Some(env), Some(flag)) => Some(match session.connection(&env).await {
                            Ok(connection) => connection
                                .source
                                .history(&flag)
                                .await
                                .map_err(|err| err.message),
                            Err(err) => Err(err.to_string()),
                        }),
                        _ => None,
                    };
                    let _ = sender.send(Action::AuditLoaded { records, history });
                });
            }
        }
    }
}
