//! Values that must never be printed: API keys, tokens, SDK keys.
//!
//! `Secret` wraps `secrecy::SecretString`, so the value is zeroized on drop and both `Debug` and
//! `Display` print a fixed redaction marker. The only way to the text is [`Secret::expose`],
//! which is meant to be called at the one place the value goes on the wire.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};

pub const REDACTED: &str = "[redacted]";

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The secret text, for building a request header. Never format it into a message.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

/// The fields of one environment's credentials, as read from a Vault secret (or from a config
/// file for local setups). Every value is a [`Secret`]; field names are not secret and are used
/// in error messages.
#[derive(Clone, Default, Debug)]
pub struct SecretFields {
    /// Where the fields came from, for error messages: "vault kv/feature-flags/flagsmith/prod".
    pub source: String,
    fields: BTreeMap<String, Secret>,
}

impl SecretFields {
    pub fn new(source: impl Into<String>) -> SecretFields {
        SecretFields {
            source: source.into(),
            fields: BTreeMap::new(),
        }
    }

    pub fn insert(&mut self, field: impl Into<String>, value: Secret) {
        self.fields.insert(field.into(), value);
    }

    pub fn get(&self, field: &str) -> Option<&Secret> {
        self.fields.get(field).filter(|value| !value.is_empty())
    }

    /// A field the provider cannot work without.
    pub fn require(&self, field: &str) -> Result<&Secret, MissingField> {
        self.get(field).ok_or_else(|| MissingField {
            location: self.source.clone(),
            field: field.to_string(),
        })
    }

    /// Every field with its value, for the redactor.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.fields
            .iter()
            .map(|(name, value)| (name.as_str(), value))
    }

    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Every secret value, for tests and redaction filters.
    pub fn values(&self) -> impl Iterator<Item = &Secret> {
        self.fields.values()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{location}: field `{field}` is missing or empty")]
pub struct MissingField {
    pub location: String,
    pub field: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("ser.s3cr3t-value");
        assert_eq!(format!("{secret}"), REDACTED);
        assert_eq!(format!("{secret:?}"), REDACTED);
        let mut fields = SecretFields::new("vault kv/feature-flags/flagsmith/prod");
        fields.insert("environment_key", secret);
        let debug = format!("{fields:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("environment_key"));
    }

    #[test]
    fn missing_field_names_source_and_field() {
        let fields = SecretFields::new("vault kv/feature-flags/flagsmith/prod");
        let err = fields.require("admin_token").err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("vault kv/feature-flags/flagsmith/prod: field `admin_token` is missing or empty")
        );
    }
}
