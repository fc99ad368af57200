//! What a trigger's caller sent: Prometheus Alertmanager's webhook, Grafana alerting's webhook
//! (unified alerting, which follows Alertmanager's shape, and the legacy `state`/`ruleName`
//! one), or any other JSON or empty body (a generic trigger). Pure parsing, no I/O.

use serde_json::Value;

use crate::text;

/// Whether an alert is firing. Only `Firing` acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
    /// Anything else the sender says (`no_data`, `pending`, `paused`): recorded, never acts.
    Other(String),
}

impl AlertStatus {
    fn from_word(word: &str) -> AlertStatus {
        match word.to_ascii_lowercase().as_str() {
            "firing" | "alerting" => AlertStatus::Firing,
            "resolved" | "ok" | "normal" => AlertStatus::Resolved,
            other => AlertStatus::Other(text::line_max(other, 40)),
        }
    }

    pub fn word(&self) -> &str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Other(word) => word,
        }
    }
}

/// Which shape the body had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Alertmanager,
    Grafana,
    GrafanaLegacy,
    Generic,
}

impl Sender {
    pub fn name(self) -> &'static str {
        match self {
            Sender::Alertmanager => "alertmanager",
            Sender::Grafana => "grafana",
            Sender::GrafanaLegacy => "grafana-legacy",
            Sender::Generic => "generic",
        }
    }
}

/// One alert, its texts as the sender gave them (sanitised when the note is built).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alert {
    pub firing: bool,
    pub name: Option<String>,
    pub summary: Option<String>,
    pub link: Option<String>,
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub sender: Sender,
    /// Firing when any alert fires.
    pub status: AlertStatus,
    pub alerts: Vec<Alert>,
}

impl Payload {
    /// The alerts that fire (or, for a body without alerts, none).
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|alert| alert.firing)
    }

    /// The alert the note is about: the first firing one, else the first one.
    pub fn headline(&self) -> Option<&Alert> {
        self.firing().next().or(self.alerts.first())
    }

    /// The fingerprints of the alerts that act now (firing) or that ended (resolved).
    pub fn fingerprints(&self, firing: bool) -> Vec<String> {
        self.alerts
            .iter()
            .filter(|alert| alert.firing == firing)
            .filter_map(|alert| alert.fingerprint.clone())
            .collect()
    }
}

/// Parses a request body. An empty body is a generic firing call; a body that is not JSON is
/// refused with the reason.
pub fn parse(body: &[u8]) -> Result<Payload, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Payload {
            sender: Sender::Generic,
            status: AlertStatus::Firing,
            alerts: Vec::new(),
        });
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| format!("the body is not JSON ({err}); send JSON or nothing"))?;
    let Some(object) = value.as_object() else {
        return Ok(Payload {
            sender: Sender::Generic,
            status: AlertStatus::Firing,
            alerts: Vec::new(),
        });
    };
    let top_status = object
        .get("status")
        .and_then(Value::as_str)
        .map(AlertStatus::from_word);
    if let Some(alerts) = object.get("alerts").and_then(Value::as_array) {
        let grafana = object.contains_key("orgId") || object.contains_key("title");
        let sender = if grafana {
            Sender::Grafana
        } else {
            Sender::Alertmanager
        };
        let alerts: Vec<Alert> = alerts
            .iter()
            .map(|alert| {
                let status = alert
                    .get("status")
                    .and_then(Value::as_str)
                    .map(AlertStatus::from_word)
                    .or_else(|| top_status.clone())
                    .unwrap_or(AlertStatus::Firing);
                let link = string_at(alert, &["generatorURL"])
                    .or_else(|| string_at(alert, &["panelURL"]))
                    .or_else(|| string_at(alert, &["dashboardURL"]));
                Alert {
                    firing: status == AlertStatus::Firing,
                    name: string_at(alert, &["labels", "alertname"]),
                    summary: string_at(alert, &["annotations", "summary"])
                        .or_else(|| string_at(alert, &["annotations", "description"])),
                    link,
                    fingerprint: string_at(alert, &["fingerprint"]),
                }
            })
            .collect();
        let status = if alerts.iter().any(|alert| alert.firing) {
            AlertStatus::Firing
        } else if alerts.is_empty() {
            top_status.unwrap_or(AlertStatus::Firing)
        } else {
            match top_status {
                Some(AlertStatus::Firing) | None => AlertStatus::Resolved,
                Some(other) => other,
            }
        };
        return Ok(Payload {
            sender,
            status,
            alerts,
        });
    }
    if let Some(state) = object.get("state").and_then(Value::as_str) {
        // Legacy Grafana alerting: {title, ruleId, ruleName, state, message, ruleUrl}.
        let status = AlertStatus::from_word(state);
        let alert = Alert {
            firing: status == AlertStatus::Firing,
            name: string_at(&value, &["ruleName"]).or_else(|| string_at(&value, &["title"])),
            summary: string_at(&value, &["message"]),
            link: string_at(&value, &["ruleUrl"]),
            fingerprint: string_at(&value, &["ruleId"])
                .or_else(|| value.get("ruleId").map(|id| id.to_string()))
                .map(|id| format!("grafana-rule-{id}")),
        };
        return Ok(Payload {
            sender: Sender::GrafanaLegacy,
            status,
            alerts: vec![alert],
        });
    }
    // Generic: `status` if given (else firing); a name, summary, link and fingerprint if given.
    let status = top_status.unwrap_or(AlertStatus::Firing);
    let alert = Alert {
        firing: status == AlertStatus::Firing,
        name: first_string(&value, &["alertname", "name", "title"]),
        summary: first_string(&value, &["summary", "message", "text", "description"]),
        link: first_string(&value, &["url", "link", "generatorURL"]),
        fingerprint: first_string(&value, &["fingerprint", "id"]),
    };
    let alerts = if alert
        == (Alert {
            firing: alert.firing,
            ..Alert::default()
        }) {
        Vec::new()
    } else {
        vec![alert]
    };
    Ok(Payload {
        sender: Sender::Generic,
        status,
        alerts,
    })
}

fn string_at(value: &Value, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    at.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn first_string(value: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| string_at(value, &[key]))
}

/// The audit note for a call: the alert's name, summary and link, the trigger's name. Every
/// part is redacted and made one inert line; the whole fits [`text::NOTE_MAX_CHARS`].
pub fn note(trigger: &str, payload: &Payload) -> String {
    let clean = |s: &str, max: usize| text::line_max(&crate::redact::text(s), max);
    let mut parts = Vec::new();
    match payload.headline() {
        Some(alert) => {
            let name = alert
                .name
                .as_deref()
                .map(|name| clean(name, 120))
                .unwrap_or_else(|| "(unnamed)".to_string());
            let mut head = format!("alert {name} {}", payload.status.word());
            let others = payload.firing().count().saturating_sub(1);
            if others > 0 && alert.firing {
                head.push_str(&format!(" (+{others} more)"));
            }
            parts.push(head);
            if let Some(summary) = &alert.summary {
                parts.push(clean(summary, 400));
            }
            if let Some(link) = &alert.link {
                parts.push(clean(link, 300));
            }
        }
        None => parts.push(format!("{} call, no alert details", payload.sender.name())),
    }
    parts.push(format!(
        "(killswitch trigger {trigger}, {})",
        payload.sender.name()
    ));
    text::line_max(&parts.join(" — "), text::NOTE_MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALERTMANAGER: &str = r#"{
      "version": "4", "groupKey": "{}:{alertname=\"CheckoutLatencyHigh\"}", "truncatedAlerts": 0,
      "status": "firing", "receiver": "killswitch", "groupLabels": {"alertname": "CheckoutLatencyHigh"},
      "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "CheckoutLatencyHigh", "severity": "page"},
        "annotations": {"summary": "checkout p99 above 2s\u001b[2J"},
        "startsAt": "2026-12-02T07:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom:9090/graph?g0.expr=x", "fingerprint": "a1b2c3"
      }]
    }"#;

    #[test]
    fn alertmanager_firing_names_alert_summary_and_link_in_one_inert_note() {
        let payload = parse(ALERTMANAGER.as_bytes()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(payload.sender, Sender::Alertmanager);
        assert_eq!(payload.status, AlertStatus::Firing);
        assert_eq!(payload.fingerprints(true), vec!["a1b2c3".to_string()]);
        let note = note("checkout-latency", &payload);
        assert_eq!(
            note,
            "alert CheckoutLatencyHigh firing — checkout p99 above 2s\\e[2J — \
             http://prom:9090/graph?g0.expr=x — (killswitch trigger checkout-latency, alertmanager)"
        );
        assert!(text::validate_note(&note).is_ok());
    }

    #[test]
    fn resolved_grafana_and_generic_bodies() {
        let resolved = ALERTMANAGER.replace("\"firing\"", "\"resolved\"");
        let payload = parse(resolved.as_bytes()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(payload.status, AlertStatus::Resolved);
        assert!(payload.fingerprints(true).is_empty());
        assert_eq!(payload.fingerprints(false), vec!["a1b2c3".to_string()]);

        let grafana = r#"{"receiver":"ks","status":"firing","orgId":1,"title":"[FIRING:1] Latency",
          "state":"alerting","message":"…","alerts":[{"status":"firing","labels":{"alertname":"Latency"},
          "annotations":{},"panelURL":"http://grafana/d/x?viewPanel=2","fingerprint":"ff01"}]}"#;
        let payload = parse(grafana.as_bytes()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(payload.sender, Sender::Grafana);
        assert_eq!(payload.status, AlertStatus::Firing);
        assert_eq!(
            payload.headline().and_then(|a| a.link.clone()).as_deref(),
            Some("http://grafana/d/x?viewPanel=2")
        );

        let legacy = r#"{"title":"[Alerting] Latency","ruleId":7,"ruleName":"Latency","state":"ok","ruleUrl":"http://g/r"}"#;
        let payload = parse(legacy.as_bytes()).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(payload.sender, Sender::GrafanaLegacy);
        assert_eq!(payload.status, AlertStatus::Resolved);
        assert_eq!(
            payload.fingerprints(false),
            vec!["grafana-rule-7".to_string()]
        );

        let empty = parse(b"").unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(empty.status, AlertStatus::Firing);
        assert_eq!(
            note("t", &empty),
            "generic call, no alert details — (killswitch trigger t, generic)"
        );
        let generic =
            parse(br#"{"status":"no_data","summary":"x"}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(generic.status, AlertStatus::Other("no_data".into()));
        assert!(parse(b"kill it").is_err());
    }

    proptest::proptest! {
        /// Any body, and any JSON with any text in the fields the note uses: no panic, and
        /// every note passes the note rule (one inert line, at most 1,000 characters).
        #[test]
        fn any_body_parses_or_is_refused_and_every_note_is_valid(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            name in "\\PC{0,80}|[\u{0}-\u{1f}\u{7f}\u{202e}\u{2028}]{0,20}",
            summary in proptest::prelude::any::<String>(),
            status in "firing|resolved|alerting|ok|\\PC{0,8}",
        ) {
            if let Ok(payload) = parse(&bytes) {
                proptest::prop_assert!(text::validate_note(&note("t", &payload)).is_ok());
            }
            let body = serde_json::json!({"status": status, "alerts": [{
                "status": status, "labels": {"alertname": name},
                "annotations": {"summary": summary}, "generatorURL": name, "fingerprint": name
            }]});
            let payload = parse(body.to_string().as_bytes());
            proptest::prop_assert!(payload.is_ok());
            if let Ok(payload) = payload {
                let note = note("t", &payload);
                proptest::prop_assert!(text::validate_note(&note).is_ok(), "{:?}", note);
            }
        }
    }

    #[test]
    fn a_huge_summary_still_makes_a_valid_note() {
        let body = serde_json::json!({"summary": "x\n".repeat(5000), "alertname": "A"});
        let payload = parse(body.to_string().as_bytes()).unwrap_or_else(|err| panic!("{err}"));
        let note = note("t", &payload);
        assert!(note.chars().count() <= text::NOTE_MAX_CHARS);
        assert!(text::validate_note(&note).is_ok(), "{note}");
    }
}
