//! Environment credentials from Vault KV v2 (through the `vaultrs` crate), found the way the
//! `vault` CLI finds its server and token.
//!
//! - Address and token: `VAULT_ADDR`; `VAULT_TOKEN`, else `~/.vault-token` (what `vault login`
//!   writes); `VAULT_NAMESPACE`; `VAULT_CACERT` / `VAULT_CAPATH`; `VAULT_SKIP_VERIFY` (allowed,
//!   with a loud warning). vaultrs reads some of these itself and not others; here every one is
//!   read once into a [`VaultEnv`] and handed to vaultrs explicitly, so tests can build their
//!   own without touching the process environment.
//! - Layout: one secret per environment at `<mount>/<path>` (default
//!   `kv/feature-flags/{provider}/{env}`) holding the fields the provider needs to read
//!   (`provider::credential_fields(kind).required`); the write fields (admin credentials) come
//!   from the same secret when present there, else from the sibling `<path>/admin`. A policy
//!   that cannot read the sibling gives a read-only environment with the reason, not an error.
//! - The operator's identity comes from `auth/token/lookup-self`, once per session.
//!
//! Nothing here formats a secret value: field values go straight into [`Secret`]s, the token
//! lives in a [`Secret`] until vaultrs builds its header, and every error names the address,
//! path, field and status but never a value. vaultrs error `Debug` output is never shown.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use crate::config::{EnvironmentConfig, NetworkConfig};
use crate::provider;
use crate::secret::{Secret, SecretFields};
use crate::session::{
    ConnectError, CredentialError, CredentialKind, CredentialSource, Credentials,
};

/// The `vault` CLI's environment variables, read once. Build one by hand in tests.
#[derive(Debug, Clone, Default)]
pub struct VaultEnv {
    /// `VAULT_ADDR`.
    pub addr: Option<String>,
    /// `VAULT_TOKEN`.
    pub token: Option<Secret>,
    /// `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
    /// `VAULT_CACERT`: a PEM file.
    pub cacert: Option<PathBuf>,
    /// `VAULT_CAPATH`: a directory of PEM files.
    pub capath: Option<PathBuf>,
    /// `VAULT_SKIP_VERIFY`, as written.
    pub skip_verify: Option<String>,
    /// `HOME`, for `~/.vault-token`.
    pub home: Option<PathBuf>,
}

impl VaultEnv {
    /// Reads the process environment (empty values count as unset, like the `vault` CLI).
    pub fn from_process() -> VaultEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        VaultEnv {
            addr: var("VAULT_ADDR"),
            token: var("VAULT_TOKEN").map(Secret::new),
            namespace: var("VAULT_NAMESPACE"),
            cacert: var("VAULT_CACERT").map(PathBuf::from),
            capath: var("VAULT_CAPATH").map(PathBuf::from),
            skip_verify: var("VAULT_SKIP_VERIFY"),
            home: var("HOME").map(PathBuf::from),
        }
    }

    /// Whether killswitch should read credentials from Vault at all.
    pub fn configured(&self) -> bool {
        self.addr
            .as_deref()
            .is_some_and(|addr| !addr.trim().is_empty())
    }
}

/// Who the token belongs to, from `auth/token/lookup-self`. The token itself is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// "token-alice", "userpass-carol".
    pub display_name: String,
    /// `meta.username` when the auth method sets one.
    pub username: Option<String>,
    /// The identity entity, when the token has one (plain `token create` tokens do not).
    pub entity_id: Option<String>,
}

impl Identity {
    /// The operator name for audit records: the display name, plus the username when the
    /// display name does not already say it, plus the entity when there is one.
    pub fn operator(&self) -> String {
        let mut name = if self.display_name.is_empty() {
            self.username
                .clone()
                .unwrap_or_else(|| "vault-token".into())
        } else {
            self.display_name.clone()
        };
        if let Some(user) = &self.username
            && !name.contains(user.as_str())
        {
            name.push_str(&format!(" ({user})"));
        }
        if let Some(entity) = &self.entity_id {
            name.push_str(&format!(" [entity {entity}]"));
        }
        name
    }
}

/// A failed Vault call, in words. Never holds a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    /// The HTTP status when the server answered.
    status: Option<u16>,
    /// What the server or transport said, in words.
    cause: String,
}

/// Credentials for every environment from one Vault server.
pub struct VaultCredentials {
    /// `VAULT_ADDR` without user info or query, for messages.
    address: String,
    namespace: Option<String>,
    /// The client, or why it could not be built (no token, bad URL, bad CA file): the error
    /// then shows in each environment that needs Vault, and the others still load.
    client: Result<Arc<VaultClient>, String>,
    /// Every Vault call is cut off after this, even if the transport timeouts misbehave.
    limit: Duration,
    /// The HTTP client's own timeout (`request_timeout`), for messages.
    request_timeout: Duration,
    warnings: Vec<String>,
    identity: OnceCell<Result<Identity, String>>,
}

impl std::fmt::Debug for VaultCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultCredentials")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("ready", &self.client.is_ok())
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl VaultCredentials {
    /// Sets up the client from the `vault` CLI's variables. Never fails: a setup problem is
    /// reported by every environment that needs Vault, so the rest of the dashboard works.
    pub fn new(env: &VaultEnv, network: &NetworkConfig) -> VaultCredentials {
        let raw_addr = env.addr.clone().unwrap_or_default().trim().to_string();
        let address = shown_address(&raw_addr);
        let limit = network.connect_timeout + network.request_timeout;
        let mut warnings = Vec::new();
        let skip_verify = match env.skip_verify.as_deref().map(parse_bool) {
            None => Ok(false),
            Some(Some(value)) => Ok(value),
            Some(None) => Err(format!(
                "VAULT_SKIP_VERIFY={:?} is not a boolean (use true or false)",
                env.skip_verify.as_deref().unwrap_or_default()
            )),
        };
        if matches!(skip_verify, Ok(true)) {
            warnings.push(format!(
                "WARNING: VAULT_SKIP_VERIFY is set: the TLS certificate of Vault at {address} is NOT verified; anyone on the path can read the credentials"
            ));
        }
        let client = skip_verify
            .and_then(|skip| build_client(env, &raw_addr, &address, skip, network.request_timeout));
        VaultCredentials {
            address,
            namespace: env.namespace.clone(),
            client: client.map(Arc::new),
            limit,
            request_timeout: network.request_timeout,
            warnings,
            identity: OnceCell::new(),
        }
    }

    /// The Vault address as shown in messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The token's identity, looked up once per session (concurrent callers share the one
    /// lookup). An error says what to do (`vault login`).
    pub async fn identity(&self) -> Result<Identity, String> {
        self.identity
            .get_or_init(|| async { self.lookup_self().await })
            .await
            .clone()
    }

    async fn lookup_self(&self) -> Result<Identity, String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let looked = self
            .call(vaultrs::token::lookup_self(client.as_ref()))
            .await;
        match looked {
            Ok(response) => {
                let meta = response.meta.unwrap_or_default();
                Ok(Identity {
                    display_name: response.display_name,
                    username: meta.get("username").filter(|u| !u.is_empty()).cloned(),
                    entity_id: Some(response.entity_id).filter(|id| !id.is_empty()),
                })
            }
            Err(failure) => Err(self.token_message("auth/token/lookup-self", &failure)),
        }
    }

    /// Reads one environment's fields: `required` from `<mount>/<path>`, `write` from there or
    /// from `<mount>/<path>/admin`. Generic over the field lists so any provider can use it.
    pub async fn read_fields(
        &self,
        env_name: &str,
        mount: &str,
        path: &str,
        required: &[&str],
        write: &[&str],
    ) -> Result<Credentials, String> {
        self.read_fields_typed(env_name, mount, path, required, write)
            .await
            .map_err(|error| error.message)
    }

    /// [`VaultCredentials::read_fields`], the failure with its kind (token refused, policy,
    /// missing secret or field, Vault unavailable).
    async fn read_fields_typed(
        &self,
        env_name: &str,
        mount: &str,
        path: &str,
        required: &[&str],
        write: &[&str],
    ) -> Result<Credentials, CredentialError> {
        let location = format!("{mount}/{path}");
        let admin_path = format!("{path}/admin");
        // The admin sibling is read in the same round trip, in case the secret lacks the write
        // fields (a read-only policy's 403 on it is an answer, not an error).
        let (secret, admin) = tokio::join!(self.read_secret(mount, path), async {
            if write.is_empty() {
                None
            } else {
                Some(self.read_secret(mount, &admin_path).await)
            }
        });
        let secret = match secret {
            Ok(secret) => secret,
            // A 403 is a policy or a dead token: ask Vault which, so the message says what to do.
            Err(failure) if failure.status == Some(403) => {
                return Err(if self.token_refused().await {
                    CredentialError::new(
                        CredentialKind::Auth,
                        format!("{env_name}: {}", self.token_message(&location, &failure)),
                    )
                } else {
                    CredentialError::new(
                        CredentialKind::Denied,
                        self.read_message(env_name, &location, &failure),
                    )
                });
            }
            Err(failure) => {
                return Err(CredentialError::new(
                    failure_kind(&failure),
                    self.read_message(env_name, &location, &failure),
                ));
            }
        };
        let missing = |message: String| CredentialError::new(CredentialKind::Missing, message);
        let at = |location: &str| format!("{env_name}: Vault {} {location}", self.address);
        let mut fields = SecretFields::new(format!("vault {location}"));
        for field in required {
            match secret.get(*field) {
                None => {
                    return Err(missing(format!(
                        "{}: field `{field}` is missing (the secret has: {})",
                        at(&location),
                        field_list(&secret)
                    )));
                }
                Some(value) => {
                    fields.insert(
                        *field,
                        string_field(value, &at(&location), field).map_err(missing)?,
                    );
                }
            }
        }
        // Other string fields (optional settings) come along; only the listed ones are checked.
        for (name, value) in &secret {
            if let serde_json::Value::String(text) = value
                && !text.is_empty()
                && fields.get(name).is_none()
            {
                fields.insert(name.clone(), Secret::new(text.clone()));
            }
        }
        // `write` lists alternatives (Flagsmith: an organisation API key *or* a user token):
        // any one of them is enough to write.
        let mut has_write = write.is_empty();
        for field in write {
            if let Some(value) = secret.get(*field) {
                fields.insert(
                    *field,
                    string_field(value, &at(&location), field).map_err(missing)?,
                );
                has_write = true;
            }
        }
        if has_write {
            return Ok(Credentials {
                fields,
                write_denied: None,
            });
        }
        let admin_location = format!("{mount}/{admin_path}");
        // (`admin` is None only when there are no write fields, handled above.)
        let admin = match admin.unwrap_or(Err(Failure {
            status: Some(404),
            cause: String::new(),
        })) {
            Ok(admin) => admin,
            Err(Failure {
                status: Some(403), ..
            }) => {
                return Ok(Credentials {
                    fields,
                    write_denied: Some(format!(
                        "your Vault policy cannot read {admin_location} (403): read-only"
                    )),
                });
            }
            Err(Failure {
                status: Some(404), ..
            }) => {
                return Ok(Credentials {
                    fields,
                    write_denied: Some(format!(
                        "no admin credential stored at {admin_location} (404): read-only"
                    )),
                });
            }
            Err(failure) => {
                return Err(CredentialError::new(
                    failure_kind(&failure),
                    self.read_message(env_name, &admin_location, &failure),
                ));
            }
        };
        for field in write {
            if let Some(value) = admin.get(*field) {
                fields.insert(
                    *field,
                    string_field(value, &at(&admin_location), field).map_err(missing)?,
                );
                has_write = true;
            }
        }
        if !has_write {
            let names: Vec<String> = write.iter().map(|field| format!("`{field}`")).collect();
            return Ok(Credentials {
                fields,
                write_denied: Some(format!(
                    "{admin_location} has no field {}: read-only",
                    names.join(" or ")
                )),
            });
        }
        Ok(Credentials {
            fields,
            write_denied: None,
        })
    }

    /// The names under `<mount>/metadata/<path>/` (KV v2 list): folders end in `/`. An empty
    /// or missing folder is an empty list; a policy without `list` is an error saying so.
    pub async fn list(&self, mount: &str, path: &str) -> Result<Vec<String>, String> {
        let location = format!("{mount}/metadata/{}/", path.trim_matches('/'));
        let client = self.client.as_ref().map_err(Clone::clone)?;
        match self
            .call(vaultrs::kv2::list(client.as_ref(), mount, path))
            .await
        {
            Ok(names) => Ok(names),
            Err(Failure {
                status: Some(404), ..
            }) => Ok(Vec::new()),
            Err(failure) if failure.status == Some(403) => Err(crate::redact::text(&format!(
                "Vault {} {location}: 403 permission denied: the token's policies do not allow `list` there{}",
                self.address,
                server_said(&failure.cause)
            ))),
            Err(failure) => Err(crate::redact::text(
                &self.read_message("listing", &location, &failure),
            )),
        }
    }

    /// The data of a KV v2 secret, values untouched (types are checked per field).
    async fn read_secret(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Failure> {
        let client = self.client.as_ref().map_err(|setup| Failure {
            status: None,
            cause: setup.clone(),
        })?;
        self.call(vaultrs::kv2::read::<
            serde_json::Map<String, serde_json::Value>,
        >(client.as_ref(), mount, path))
            .await
    }

    /// Runs one vaultrs call under the session's time limit and turns its error into words.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.limit, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                let mut failure = describe(&err);
                if failure.status.is_none() && failure.cause.starts_with("timed out") {
                    failure.cause = format!(
                        "no answer within {} ms (timed out)",
                        self.request_timeout.as_millis()
                    );
                }
                Err(failure)
            }
            Err(_) => Err(Failure {
                status: None,
                cause: format!("no answer within {} ms (timed out)", self.limit.as_millis()),
            }),
        }
    }

    /// A failed secret read in words. A 403 may mean a bad token rather than a policy, so the
    /// token is checked again (fresh, not the cached identity) to say which.
    fn read_message(&self, env_name: &str, location: &str, failure: &Failure) -> String {
        let at = format!("{env_name}: Vault {} {location}", self.address);
        match failure.status {
            Some(403) => format!(
                "{at}: 403 permission denied: the token's policies do not allow reading it{}",
                server_said(&failure.cause)
            ),
            Some(404) => format!(
                "{at}: 404 no secret at this path (check `vault kv get {location}`, or vault_mount / vault_path in the config){}",
                server_said(&failure.cause)
            ),
            Some(503) => format!("{at}: 503 {}", sealed(&failure.cause)),
            Some(code) => format!(
                "{at}: {code} {}{}",
                status_meaning(code),
                server_said(&failure.cause)
            ),
            None => format!("{at}: {}", failure.cause),
        }
    }

    /// The token was refused (or there is none): tell the operator to log in again.
    fn token_message(&self, what: &str, failure: &Failure) -> String {
        match failure.status {
            Some(401) | Some(403) => format!(
                "Vault {} {what}: {} the token was refused (expired, revoked or invalid; auth/token/lookup-self fails too): run `vault login` (VAULT_ADDR={}) and start killswitch again",
                self.address,
                failure.status.unwrap_or_default(),
                self.address
            ),
            Some(503) => format!(
                "Vault {} {what}: 503 {}",
                self.address,
                sealed(&failure.cause)
            ),
            Some(code) => format!(
                "Vault {} {what}: {code} {}{}",
                self.address,
                status_meaning(code),
                server_said(&failure.cause)
            ),
            None => format!("Vault {} {what}: {}", self.address, failure.cause),
        }
    }

    /// After a 403 on a secret: is the token itself still good? (Not cached: the point is to
    /// notice a token that expired since the session started.)
    async fn token_refused(&self) -> bool {
        let Ok(client) = self.client.as_ref() else {
            return false;
        };
        matches!(
            self.call(vaultrs::token::lookup_self(client.as_ref()))
                .await,
            Err(Failure {
                status: Some(401 | 403),
                ..
            })
        )
    }
}

#[async_trait]
impl CredentialSource for VaultCredentials {
    async fn credentials(&self, env: &EnvironmentConfig) -> Result<Credentials, ConnectError> {
        let wanted = provider::credential_fields(env.provider);
        if wanted.required.is_empty() && wanted.write.is_empty() {
            return Ok(Credentials::default());
        }
        let read = self
            .read_fields_typed(
                &env.name,
                &env.vault_mount,
                &env.vault_path,
                wanted.required,
                wanted.write,
            )
            .await;
        // The one way out of this module for Vault's text: redacted here, so an error body
        // that echoes the request (with `X-Vault-Token`) or a field value shows neither.
        read.map(|mut credentials| {
            for (name, value) in credentials.fields.entries() {
                if !wanted.public.contains(&name) {
                    crate::redact::register(value.expose());
                }
            }
            credentials.write_denied = credentials
                .write_denied
                .map(|reason| crate::redact::text(&reason));
            credentials
        })
        .map_err(|error| {
            ConnectError::Credentials(CredentialError::new(
                error.kind,
                crate::redact::text(&error.message),
            ))
        })
    }

    async fn operator(&self) -> Option<String> {
        self.identity()
            .await
            .ok()
            .map(|identity| identity.operator())
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    async fn secret_fields(
        &self,
        owner: &str,
        mount: &str,
        path: &str,
        fields: &[&str],
    ) -> Result<SecretFields, String> {
        let read = self.read_fields(owner, mount, path, fields, &[]).await;
        read.map(|credentials| {
            for (_, value) in credentials.fields.entries() {
                crate::redact::register(value.expose());
            }
            credentials.fields
        })
        .map_err(|message| crate::redact::text(&message))
    }
}

fn build_client(
    env: &VaultEnv,
    raw_addr: &str,
    address: &str,
    skip_verify: bool,
    timeout: Duration,
) -> Result<VaultClient, String> {
    // vaultrs panics on a bad URL in `.address()`: check it first.
    let parsed = url::Url::parse(raw_addr)
        .map_err(|err| format!("VAULT_ADDR={address:?} is not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "VAULT_ADDR={address:?} must be an http:// or https:// URL with a host"
        ));
    }
    let token = find_token(env)?;
    crate::redact::register(token.expose());
    let mut ca_certs = Vec::new();
    if let Some(file) = &env.cacert {
        ca_certs.push(path_text(file, "VAULT_CACERT")?);
    }
    if let Some(dir) = &env.capath {
        let entries = std::fs::read_dir(dir).map_err(|err| {
            format!(
                "VAULT_CAPATH={}: cannot read the directory: {err}",
                dir.display()
            )
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.is_file())
            .collect();
        found.sort();
        for file in found {
            ca_certs.push(path_text(&file, "VAULT_CAPATH")?);
        }
    }
    let mut builder = VaultClientSettingsBuilder::default();
    builder
        .address(parsed.as_str())
        .token(token.expose())
        .ca_certs(ca_certs)
        .identity(None)
        .verify(!skip_verify)
        .timeout(Some(timeout))
        .namespace(env.namespace.clone());
    let settings = builder
        .build()
        .map_err(|err| format!("Vault {address}: bad client settings: {err}"))?;
    let mut client = VaultClient::new(settings).map_err(|err| {
        // FileReadError / ParseCertificateError name the CA file; the cause is in source().
        format!(
            "Vault {address}: cannot set up the client: {}",
            provider::http::error_chain(&err)
        )
    })?;
    // vaultrs takes no HTTP client and no redirect policy, and its own client follows
    // redirects to any origin with `X-Vault-Token` attached. Its HTTP client is a public field:
    // replaced here by one built the same way (timeout, TLS verification, CA certificates)
    // that follows redirects only within the same origin.
    client.http.http = vault_http_client(&client.settings)
        .map_err(|err| format!("Vault {address}: cannot set up the client: {err}"))?;
    Ok(client)
}

/// The HTTP client vaultrs would build from `settings`, with [`vault_redirect_policy`].
fn vault_http_client(
    settings: &vaultrs::client::VaultClientSettings,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .redirect(vault_redirect_policy())
        .tls_danger_accept_invalid_certs(!settings.verify);
    if let Some(timeout) = settings.timeout {
        builder = builder.timeout(timeout);
    }
    if settings.address.scheme() == "http" {
        builder = builder.tls_certs_only(Vec::new());
    } else {
        for path in &settings.ca_certs {
            let content =
                std::fs::read(path).map_err(|err| format!("cannot read CA file {path}: {err}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&content)
                .map_err(|err| format!("CA file {path}: not PEM certificates: {err}"))?;
            builder = builder.tls_certs_merge(certs);
        }
    }
    builder
        .build()
        .map_err(|err| provider::http::error_chain(&err))
}

/// Redirects are followed within Vault's own origin (scheme, host, port) only: a redirect
/// elsewhere (an HA standby pointing at the active node, or anything else) is not followed,
/// so the token never leaves for another origin. The 3xx then shows as the error.
fn vault_redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    })
}

/// `VAULT_TOKEN`, else `~/.vault-token`, else an error saying how to log in.
fn find_token(env: &VaultEnv) -> Result<Secret, String> {
    if let Some(token) = env.token.as_ref().filter(|token| !token.is_empty()) {
        return Ok(token.clone());
    }
    let Some(home) = &env.home else {
        return Err(
            "no Vault token: VAULT_TOKEN is not set and HOME is unknown (no ~/.vault-token): run `vault login`"
                .to_string(),
        );
    };
    let file = home.join(".vault-token");
    match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => Ok(Secret::new(text.trim().to_string())),
        Ok(_) => Err(format!(
            "no Vault token: VAULT_TOKEN is not set and {} is empty: run `vault login`",
            file.display()
        )),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "no Vault token: VAULT_TOKEN is not set and there is no {}: run `vault login`",
            file.display()
        )),
        Err(err) => Err(format!(
            "no Vault token: cannot read {}: {err}",
            file.display()
        )),
    }
}

fn path_text(path: &Path, variable: &str) -> Result<String, String> {
    path.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{variable}={}: not a UTF-8 path", path.display()))
}

/// Like Go's `strconv.ParseBool`, which the `vault` CLI uses for VAULT_SKIP_VERIFY.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn shown_address(raw: &str) -> String {
    if raw.is_empty() {
        return "<VAULT_ADDR not set>".to_string();
    }
    match url::Url::parse(raw) {
        Ok(_) => provider::http::display_url(raw)
            .trim_end_matches('/')
            .to_string(),
        Err(_) => "<VAULT_ADDR is not a URL>".to_string(),
    }
}

/// A field's value as a secret, or an error naming the field and the JSON type found (never
/// the value).
fn string_field(value: &serde_json::Value, at: &str, field: &str) -> Result<Secret, String> {
    match value {
        serde_json::Value::String(text) if !text.trim().is_empty() => Ok(Secret::new(text.clone())),
        serde_json::Value::String(_) => Err(format!("{at}: field `{field}` is empty")),
        other => Err(format!(
            "{at}: field `{field}` must be a string, found {}",
            json_type(other)
        )),
    }
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn field_list(secret: &serde_json::Map<String, serde_json::Value>) -> String {
    if secret.is_empty() {
        return "no fields".to_string();
    }
    secret.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// An error body that is not `{"errors":[…]}`: KV v2's answer for a deleted or destroyed
/// version (its metadata) in words; a non-JSON body (a proxy's page) by its size only.
fn unusual_body(body: &str) -> String {
    let Ok(json) = serde_json::from_str::<serde_json::Value>(body) else {
        return provider::http::body_message(body);
    };
    let metadata = &json["data"]["metadata"];
    if metadata["destroyed"] == serde_json::Value::Bool(true) {
        return "the latest version was destroyed".to_string();
    }
    match metadata["deletion_time"].as_str() {
        Some(when) if !when.is_empty() => {
            format!("the latest version was deleted at {when}; `vault kv undelete` restores it")
        }
        _ => String::new(),
    }
}

/// A 503 in words: Vault says "Vault is sealed" (or a standby has no active node).
/// What a failed secret read (other than a 403, which asks Vault which it is) says about the
/// credentials: no secret there, or Vault not answering usefully.
fn failure_kind(failure: &Failure) -> CredentialKind {
    match failure.status {
        Some(404) => CredentialKind::Missing,
        Some(401) => CredentialKind::Auth,
        _ => CredentialKind::Unavailable,
    }
}

fn sealed(cause: &str) -> String {
    let said = if cause.is_empty() {
        "Vault is sealed or unavailable"
    } else {
        cause
    };
    format!("{said}: ask a Vault operator to unseal it")
}

/// An HTTP status Vault (or something in front of it) answered, in words.
fn status_meaning(code: u16) -> &'static str {
    match code {
        400 => "bad request",
        401 => "unauthorized",
        409 => "conflict",
        412 => "precondition failed (the server is catching up; retry)",
        429 => "rate limited",
        300..=399 => {
            "a redirect to another origin, not followed (the Vault token is never sent to another \
             scheme, host or port: point VAULT_ADDR at the active node or its load balancer)"
        }
        500..=599 => "server error",
        _ => "unexpected answer",
    }
}

fn server_said(cause: &str) -> String {
    if cause.is_empty() {
        String::new()
    } else {
        format!(" ({cause})")
    }
}

/// A vaultrs error in words: the status and the server's `errors` when it answered, else the
/// transport cause (refused, timed out, TLS) from the source chain. Never `{:?}`.
fn describe(err: &ClientError) -> Failure {
    match err {
        ClientError::APIError { code, errors } => Failure {
            status: Some(*code),
            cause: errors
                .iter()
                .flat_map(|error| server_errors(error))
                .collect::<Vec<_>>()
                .join("; "),
        },
        ClientError::RestClientError {
            source: rustify::errors::ClientError::ServerResponseError { code, content },
        } => Failure {
            status: Some(*code),
            // A body that is not Vault's `{"errors":[…]}` (a proxy page, a soft-deleted
            // secret's metadata): summarised, never echoed whole.
            cause: content.as_deref().map(unusual_body).unwrap_or_default(),
        },
        ClientError::ResponseDataEmptyError | ClientError::ResponseEmptyError => Failure {
            status: None,
            cause: "Vault answered without data".to_string(),
        },
        ClientError::JsonParseError { .. } => Failure {
            status: None,
            cause: "the secret's data is not a JSON object".to_string(),
        },
        other => {
            let detail = provider::http::error_chain(other);
            let lower = detail.to_ascii_lowercase();
            let cause = if lower.contains("timed out") || lower.contains("timeout") {
                format!("timed out: {detail}")
            } else if lower.contains("certificate") || lower.contains("tls") {
                format!("TLS failure: {detail}")
            } else if lower.contains("connect") || lower.contains("refused") {
                format!("unreachable: {detail}")
            } else {
                detail
            };
            Failure {
                status: None,
                cause,
            }
        }
    }
}

/// Vault's error strings, one line each: its multi-error format ("1 error occurred:\n\t*
/// permission denied\n\n") becomes "permission denied".
fn server_errors(error: &str) -> Vec<String> {
    let items: Vec<String> = error
        .lines()
        .filter_map(|line| line.trim().strip_prefix("* "))
        .map(|item| item.trim().to_string())
        .collect();
    if items.is_empty() {
        vec![error.split_whitespace().collect::<Vec<_>>().join(" ")]
    } else {
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_bool_is_go_strconv() {
        assert_eq!(parse_bool("1"), Some(true));
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("F"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }

    #[test]
    fn operator_names_display_name_username_and_entity() {
        let plain = Identity {
            display_name: "token-alice".into(),
            username: None,
            entity_id: None,
        };
        assert_eq!(plain.operator(), "token-alice");
        let full = Identity {
            display_name: "oidc-c".into(),
            username: Some("carol".into()),
            entity_id: Some("e-1".into()),
        };
        assert_eq!(full.operator(), "oidc-c (carol) [entity e-1]");
        let same = Identity {
            display_name: "userpass-carol".into(),
            username: Some("carol".into()),
            entity_id: None,
        };
        assert_eq!(same.operator(), "userpass-carol");
    }

    #[test]
    fn field_types_are_named_never_the_value() {
        let err = string_field(&serde_json::json!(12345), "prod: Vault x kv/p", "api_key")
            .err()
            .unwrap_or_default();
        assert_eq!(
            err,
            "prod: Vault x kv/p: field `api_key` must be a string, found a number"
        );
        assert!(!err.contains("12345"));
        let empty = string_field(&serde_json::json!(" "), "at", "k").err();
        assert_eq!(empty.as_deref(), Some("at: field `k` is empty"));
    }

    #[test]
    fn bad_address_is_an_error_not_a_panic() {
        let env = VaultEnv {
            addr: Some("not a url".into()),
            token: Some(Secret::new("s.tok")),
            ..VaultEnv::default()
        };
        let vault = VaultCredentials::new(&env, &NetworkConfig::default());
        let err = vault.client.as_ref().err().cloned().unwrap_or_default();
        assert!(err.contains("is not a URL"), "{err}");
        let ftp = VaultEnv {
            addr: Some("ftp://vault.example".into()),
            ..env
        };
        let vault = VaultCredentials::new(&ftp, &NetworkConfig::default());
        let err = vault.client.as_ref().err().cloned().unwrap_or_default();
        assert!(err.contains("http:// or https://"), "{err}");
    }

    #[test]
    fn vault_multi_errors_become_one_line() {
        assert_eq!(
            server_errors("1 error occurred:\n\t* permission denied\n\n"),
            vec!["permission denied"]
        );
        assert_eq!(
            server_errors("no handler\n for route"),
            vec!["no handler for route"]
        );
    }

    #[test]
    fn address_is_shown_without_credentials() {
        assert_eq!(
            shown_address("https://user:pw@vault.example:8200/?token=x"),
            "https://vault.example:8200"
        );
    }
}
