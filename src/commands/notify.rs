//! `killswitch notify test [--name NAME]`: a test message to each `[[notify]]` receiver, one
//! line per receiver. Nothing is changed and nothing is written to the audit log.

use std::io::Write;

use anyhow::Result;

use super::{exit, print_error};
use crate::audit::{AuditRecord, Phase};
use crate::session::Session;

pub async fn test(session: &Session, name: Option<&str>, out: &mut dyn Write) -> Result<i32> {
    let Some(notifier) = session.audit.notifier() else {
        print_error(format!(
            "no [[notify]] receivers in {}: nothing to test",
            session.config.origin
        ));
        return Ok(exit::NOT_FOUND);
    };
    let names = notifier.names();
    if let Some(name) = name.filter(|name| !names.iter().any(|known| known == name)) {
        print_error(format!(
            "no [[notify]] receiver `{name}` in {} (known: {}){}",
            session.config.origin,
            names.join(", "),
            crate::text::did_you_mean(name, names.iter().map(String::as_str))
        ));
        return Ok(exit::NOT_FOUND);
    }
    let now = session.clock.now();
    let record = AuditRecord {
        v: crate::audit::RECORD_VERSION,
        id: format!("test-{}", crate::audit::new_id(now)),
        phase: Phase::Notified,
        at: now,
        operator: session.operator().await,
        env: "-".into(),
        provider: "-".into(),
        flag: "(killswitch notify test)".into(),
        action: "test".into(),
        from: "-".into(),
        to: "-".into(),
        enabled: true,
        rollout: None,
        previous: None,
        note: "a test message from `killswitch notify test`".into(),
        result: None,
        error: None,
        duration_ms: None,
        confirmed_ms: None,
        reference: None,
        batch: None,
        receiver: None,
    };
    let deliveries = notifier.send(&record, true, name).await;
    let mut code = exit::OK;
    for delivery in &deliveries {
        let line = if delivery.ok {
            format!("{}: ok, {}", delivery.receiver, delivery.detail)
        } else {
            code = exit::PROVIDER;
            format!("{}: FAILED, {}", delivery.receiver, delivery.detail)
        };
        writeln!(out, "{}", crate::redact::line(&line))?;
    }
    Ok(code)
}
