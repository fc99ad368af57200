//! Property tests: the parsers of untrusted input (config files, keymaps, flagd files) never
//! panic, whatever they are fed; they return an error instead. Crashes found here are kept as
//! named regression cases at the bottom.

use std::path::Path;

use killswitch::config;
use killswitch::provider::flagd;
use killswitch::tui::keymap::Keymap;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, nested a few levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z_$]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("on"),
            Just("off"),
            Just("fractional"),
            Just("if"),
            Just("$ref"),
            Just("DISABLED")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("state".to_string()),
                        Just("variants".to_string()),
                        Just("defaultVariant".to_string()),
                        Just("targeting".to_string()),
                        Just("metadata".to_string()),
                        Just("fractional".to_string()),
                        Just("if".to_string()),
                        Just("$ref".to_string()),
                        Just("or".to_string()),
                        "[a-z]{1,6}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// TOML-ish text built from the tokens the real files use.
fn tomlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("[[environment]]\n"),
        Just("[[keys]]\n"),
        Just("[network]\n"),
        Just("name = \"prod\"\n"),
        Just("provider = \"flagd\"\n"),
        Just("provider = 7\n"),
        Just("file = \"x.json\"\n"),
        Just("on = [\"j\", \"ctrl-\"]\n"),
        Just("on = \"\"\n"),
        Just("run = \"quit\"\n"),
        Just("run = \"\"\n"),
        Just("request_timeout_ms = -1\n"),
        Just("refresh_seconds = 18446744073709551615\n"),
        Just("options = { a = \"b\" }\n"),
        Just("\"\n"),
        Just("=\n"),
        Just("é\u{0}\n"),
        Just("[dashboard]\n"),
        Just("[dialog]\n"),
        Just("[filter]\n"),
        Just("keymap = [ { on = \"x\", run = \"yes\" }, { on = \"x\", run = \"no\" } ]\n"),
        Just("keymap = [ { on = [], run = \"accept\", desc = 3 } ]\n"),
        Just("keymap = [ { on = \"q\", run = \"cancel\" } ]\n"),
    ];
    prop::collection::vec(token, 0..12).prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn config_parser_never_panics(text in "\\PC{0,200}") {
        let _ = config::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn config_parser_never_panics_on_near_valid_files(text in tomlish()) {
        let _ = config::parse(&text, Path::new("fuzz.toml"));
    }

    #[test]
    fn keymap_parser_never_panics(text in tomlish()) {
        let _ = Keymap::parse(&text, "fuzz.toml");
    }

    #[test]
    fn keymap_parser_never_panics_on_any_text(text in "\\PC{0,200}") {
        let _ = Keymap::parse(&text, "fuzz.toml");
    }

    #[test]
    fn flagd_parser_never_panics_on_any_text(text in "\\PC{0,300}") {
        let _ = flagd::parse_document(&text);
    }

    #[test]
    fn flagd_summary_never_panics_on_any_definition(definition in json()) {
        let flag = flagd::summarise("kill_switch_fuzz", &definition);
        // A summary is always displayable.
        let _ = killswitch::model::cell_text(flag.meta.kind, &flag.state);
        let _ = flag.state.rollout.summary();
    }

    #[test]
    fn flagd_documents_round_trip_through_the_parser(definition in json()) {
        let document = serde_json::json!({ "flags": { "x": definition } });
        let text = serde_json::to_string(&document).unwrap_or_default();
        let parsed = flagd::parse_document(&text);
        prop_assert!(parsed.is_ok());
    }
}

// Regression cases found by the properties above.

#[test]
fn fractional_with_garbage_entries_summarises() {
    let definition = serde_json::json!({
        "variants": {"on": true, "off": false},
        "defaultVariant": "on",
        "targeting": {"fractional": [["on"], 5, ["off", "x"], [], ["on", -3]]}
    });
    let flag = flagd::summarise("f", &definition);
    assert!(flag.state.enabled);
}

#[test]
fn out_of_range_numbers_are_errors_with_a_line() {
    let text = "refresh_seconds = -1\n";
    let err = config::parse(text, Path::new("x.toml"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("x.toml:1:"), "{err}");
}

#[test]
fn the_largest_refresh_interval_does_not_overflow_staleness() {
    // Beyond its range (a day) the number is a usage error naming the line, not an interval.
    let text = "refresh_seconds = 18446744073709551615\n[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"x\"\n";
    let err = config::parse(text, Path::new("x.toml")).expect_err("out of range");
    assert!(err.is_out_of_range(), "{err}");
    assert!(err.to_string().starts_with("x.toml:1:"), "{err}");
    let text = "refresh_seconds = 86400\n[[environment]]\nname = \"dev\"\nprovider = \"flagd\"\nfile = \"x\"\n";
    let config = config::parse(text, Path::new("x.toml")).expect("valid config");
    let column = killswitch::tui::app::EnvColumn {
        name: "dev".into(),
        protected: false,
        load: killswitch::tui::app::LoadState::Loaded,
        snapshot: Some(killswitch::model::EnvSnapshot {
            env: "dev".into(),
            flags: Vec::new(),
            fetched_at: chrono::Utc::now(),
        }),
        read_only_reason: None,
    };
    assert!(!column.is_stale(chrono::Utc::now(), config.refresh_interval));
    assert!(!column.is_stale(chrono::Utc::now(), std::time::Duration::MAX));
}
