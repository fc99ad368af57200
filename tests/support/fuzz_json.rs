//! Test-only: structure-aware fuzzing of vendor JSON. A recorded (or realistic) document is
//! mutated at random places (values replaced by any JSON, keys dropped, arrays emptied), so the
//! parser is driven deep into its structure instead of failing at the top level every time.
//!
//! Compiled only into the library's unit tests, as `crate::fuzz_support` (see `src/lib.rs`):
//! the vendor files' tests fuzz their private parsers with it. Not a module of `support/`.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, nested a few levels, biased towards the vendors' field names and numbers
/// at the edges (negative weights, huge percentages, NaN-free floats).
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(100),
            Just(1000),
            Just(100_000),
            Just(u32::MAX as i64)
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9_.:-]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every path (object keys and array indexes) inside `value`.
fn paths(value: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(PathStep::Key(key.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(PathStep::Index(index));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at<'a>(value: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
    let mut current = value;
    for step in path {
        current = match (step, current) {
            (PathStep::Key(key), Value::Object(map)) => map.get_mut(key)?,
            (PathStep::Index(index), Value::Array(items)) => items.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(current)
}

/// A mutation applied at one path.
#[derive(Debug, Clone)]
pub enum Mutation {
    Replace(Value),
    Remove,
    Empty,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => any_json().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        1 => Just(Mutation::Empty),
    ]
}

/// `base` with one to four random mutations.
pub fn mutated(base: Value) -> impl Strategy<Value = Value> {
    let mut all = Vec::new();
    paths(&base, &mut Vec::new(), &mut all);
    let count = all.len().max(1);
    prop::collection::vec((0..count, mutation()), 1..5).prop_map(move |mutations| {
        let mut value = base.clone();
        for (index, mutation) in mutations {
            let Some(path) = all.get(index) else { continue };
            match mutation {
                Mutation::Replace(new) => {
                    if let Some(slot) = at(&mut value, path) {
                        *slot = new;
                    }
                }
                Mutation::Empty => {
                    if let Some(slot) = at(&mut value, path) {
                        match slot {
                            Value::Array(items) => items.clear(),
                            Value::Object(map) => map.clear(),
                            other => *other = Value::Null,
                        }
                    }
                }
                Mutation::Remove => {
                    let Some((last, parent)) = path.split_last() else {
                        continue;
                    };
                    if let Some(slot) = at(&mut value, parent) {
                        match (last, slot) {
                            (PathStep::Key(key), Value::Object(map)) => {
                                map.remove(key);
                            }
                            (PathStep::Index(index), Value::Array(items))
                                if *index < items.len() =>
                            {
                                items.remove(*index);
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        value
    })
}
