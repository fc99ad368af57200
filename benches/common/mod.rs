//! Synthetic flag sets for the scale benchmarks: the sample set's shapes repeated.
#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use killswitch::model::{EnvSnapshot, Flag, FlagKind, FlagMeta, FlagState, Override, Rollout};
use serde_json::json;

pub fn flag(index: usize, env: usize) -> Flag {
    let (kind, key) = match index % 6 {
        0 => (
            FlagKind::KillSwitch,
            format!("kill_switch_service_{index:05}"),
        ),
        1 => (
            FlagKind::Release,
            format!("release_checkout_step_{index:05}"),
        ),
        2 => (
            FlagKind::Experiment,
            format!("experiment_recommendations_{index:05}"),
        ),
        3 => (
            FlagKind::Config,
            format!("config_page_size_tenant_{index:05}"),
        ),
        4 => (FlagKind::Release, format!("dark_launch_search_{index:05}")),
        _ => (FlagKind::Other, format!("ops_toggle_{index:05}")),
    };
    let state = match index % 6 {
        0 => FlagState {
            enabled: !(index + env).is_multiple_of(17),
            value: Some(json!(true)),
            ..Default::default()
        },
        1 => FlagState {
            enabled: true,
            value: Some(json!(false)),
            rollout: Rollout::Percentage {
                percent: (index % 100) as f64,
            },
            ..Default::default()
        },
        2 => FlagState {
            enabled: true,
            value: Some(json!("control")),
            rollout: Rollout::from_weights(&[
                ("control".into(), 33.0),
                ("a".into(), 33.0),
                ("b".into(), 33.0),
            ]),
            ..Default::default()
        },
        3 => FlagState {
            enabled: true,
            value: Some(json!(20)),
            overrides: vec![Override {
                target: "enterprise_tenants".into(),
                kind: killswitch::model::OverrideKind::Segment,
                enabled: true,
                value: Some(json!(100)),
                rollout: Rollout::Everyone,
            }],
            ..Default::default()
        },
        4 => FlagState {
            enabled: true,
            value: Some(json!(false)),
            overrides: vec![Override {
                target: "internal_staff".into(),
                kind: killswitch::model::OverrideKind::Segment,
                enabled: true,
                value: None,
                rollout: Rollout::Everyone,
            }],
            ..Default::default()
        },
        _ => FlagState {
            enabled: index.is_multiple_of(2),
            value: Some(json!(true)),
            ..Default::default()
        },
    };
    Flag {
        meta: std::sync::Arc::new(FlagMeta {
            key,
            kind,
            owner: Some(format!("team-{}", index % 40)),
            expected_removal: chrono::NaiveDate::from_ymd_opt(2027, 1 + (index % 12) as u32, 1),
            description: Some(format!("Synthetic flag {index} for the scale benchmark.")),
            tags: vec!["bench".into()],
            runbook: None,
        }),
        state,
    }
}

pub fn snapshot(env: &str, env_index: usize, flags: usize) -> EnvSnapshot {
    EnvSnapshot {
        env: env.to_string(),
        flags: (0..flags).map(|index| flag(index, env_index)).collect(),
        fetched_at: Utc
            .with_ymd_and_hms(2026, 11, 24, 3, 0, 0)
            .single()
            .unwrap_or_default(),
    }
}

pub const ENVS: [&str; 6] = ["dev", "qa", "staging", "canary", "prod-eu", "prod-us"];

/// A flagd file with `flags` synthetic flags (kill switches, 10% rollouts, 33/33/34 splits,
/// segment overrides, config values), for the end-to-end scale runs.
pub fn flagd_file(flags: usize) -> String {
    let mut definitions = serde_json::Map::new();
    for index in 0..flags {
        let definition = match index % 5 {
            0 => {
                json!({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on","metadata":{"owner":"team-a","expected_removal_date":"2027-06-30"}})
            }
            1 => {
                json!({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"fractional":[["on",10],["off",90]]},"metadata":{"owner":"team-b","expected_removal_date":"2026-10-01"}})
            }
            2 => {
                json!({"state":"ENABLED","variants":{"c":"v2","a":"v3a","b":"v3b"},"defaultVariant":"c","targeting":{"fractional":[["c",33],["a",33],["b",33]]},"metadata":{"kind":"experiment","owner":"team-c"}})
            }
            3 => {
                json!({"state":"ENABLED","variants":{"s":20,"m":50,"l":100},"defaultVariant":"s","targeting":{"if":[{"$ref":"enterprise"},"l",{"$ref":"eu"},"m","s"]},"metadata":{"kind":"config","owner":"team-d"}})
            }
            _ => {
                json!({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off","targeting":{"if":[{"$ref":"staff"},"on","off"]},"metadata":{"kind":"release","owner":"team-e"}})
            }
        };
        let key = if index % 5 == 0 {
            format!("kill_switch_service_{index:05}")
        } else {
            format!("flag_{index:05}")
        };
        definitions.insert(key, definition);
    }
    serde_json::to_string_pretty(&json!({
        "flags": definitions,
        "$evaluators": {
            "enterprise": {"in": [{"var": "tenant"}, ["acme"]]},
            "eu": {"in": [{"var": "region"}, ["eu-west-1"]]},
            "staff": {"ends_with": [{"var": "email"}, "@example.com"]}
        }
    }))
    .unwrap_or_default()
}
