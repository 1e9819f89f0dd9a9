//! Who may call what: bearer tokens mapped to roles, and each RPC's roles.
//!
//! - [`Role`]: operator (runs the system: organisation, awards, everything),
//!   staff (district and community staff, grid workers: the daily work and
//!   personal data), service (another shequ service calling), resident_app (the
//!   residents' mini-program: submits complaints, finds nearby services).
//! - [`Tokens`]: the token file (`SHEQU_AUTH_TOKENS_FILE`). Only SHA-256 hashes
//!   of the tokens are stored; tokens are long random strings, so a fast hash is
//!   enough (no password stretching), and a leaked file lets nobody in.
//! - [`Access`]: each service's table of full gRPC method paths to the roles
//!   allowed; a method missing from it is refused to everyone (deny by default).
//!   Health checks are open (probes carry no token).
//! - [`AuthLayer`]: the tower layer in front of every RPC: no or an unknown token
//!   is `Unauthenticated`, a role not allowed is `PermissionDenied`; the handler
//!   finds the [`Caller`] in the request's extensions.
//!
//! The file:
//! ```json
//! { "tokens": [ { "name": "ops-console", "role": "operator",
//!                 "sha256": "<64 hex digits: sha256 of the token>" } ] }
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::Status;
use tonic::codegen::http;

use crate::Error;

shequ_proto::named_enum! {
    /// What a caller is allowed to be.
    Role {
        Operator = "operator" / "运维",
        Staff = "staff" / "工作人员",
        Service = "service" / "服务间调用",
        ResidentApp = "resident_app" / "居民端",
    }
}

/// Every role: for RPCs anyone with a token may call.
pub const ANY_ROLE: &[Role] = &[
    Role::Operator,
    Role::Staff,
    Role::Service,
    Role::ResidentApp,
];
/// Staff and operators: the daily work, and whatever shows personal data.
pub const STAFF: &[Role] = &[Role::Operator, Role::Staff];
/// Staff, operators and the other shequ services.
pub const STAFF_AND_SERVICES: &[Role] = &[Role::Operator, Role::Staff, Role::Service];
/// Operators only: what changes how the system works.
pub const OPERATOR: &[Role] = &[Role::Operator];

/// The authenticated caller of an RPC, in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name in the token file (who holds it).
    pub name: String,
    pub role: Role,
}

/// The SHA-256 of `token`, as the token file stores it (lowercase hex).
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The tokens a service accepts, by hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<String, Caller>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: String,
    sha256: String,
}

impl Tokens {
    /// Reads the token file's JSON; every entry needs a name, a known role and
    /// a 64-hex-digit hash, and no hash may appear twice.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let file: TokenFile = serde_json::from_str(json).map_err(|error| error.to_string())?;
        let mut by_hash = HashMap::new();
        for (n, entry) in file.tokens.into_iter().enumerate() {
            let role = Role::parse(&entry.role).ok_or_else(|| {
                format!(
                    "tokens[{n}].role: unknown role {:?} (operator, staff, service, resident_app)",
                    entry.role
                )
            })?;
            if entry.name.trim().is_empty() {
                return Err(format!("tokens[{n}].name is empty"));
            }
            let hash = entry.sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("tokens[{n}].sha256 must be 64 hex digits"));
            }
            let caller = Caller {
                name: entry.name,
                role,
            };
            if by_hash.insert(hash, caller).is_some() {
                return Err(format!("tokens[{n}].sha256 appears twice"));
            }
        }
        Ok(Self { by_hash })
    }

    /// Who holds `token`, if anyone.
    pub fn caller(&self, token: &str) -> Option<&Caller> {
        self.by_hash.get(&token_hash(token))
    }
}

/// One service's table: full method path (`/package.Service/Method`) → roles.
#[derive(Debug, Clone, Default)]
pub struct Access {
    rules: HashMap<String, &'static [Role]>,
}

impl Access {
    /// A table with what every service serves besides its own RPCs:
    /// reflection in both versions, v1 and v1alpha (for staff and operators'
    /// tools); health checks are always open.
    pub fn new() -> Self {
        Self::default()
            .service(
                "grpc.reflection.v1.ServerReflection",
                &[("ServerReflectionInfo", STAFF)],
            )
            .service(
                "grpc.reflection.v1alpha.ServerReflection",
                &[("ServerReflectionInfo", STAFF)],
            )
    }

    /// `service` is the full service name (`shequ.complaints.v1.ComplaintService`);
    /// `methods` its RPC names with the roles allowed.
    pub fn service(mut self, service: &str, methods: &[(&str, &'static [Role])]) -> Self {
        for (method, roles) in methods {
            self.rules.insert(format!("/{service}/{method}"), roles);
        }
        self
    }

    /// The roles allowed on `path`; `None` when the table does not name it.
    pub fn roles(&self, path: &str) -> Option<&'static [Role]> {
        self.rules.get(path).copied()
    }

    /// The methods of `service` in the descriptor set that the table does not
    /// name (each service's tests require none).
    pub fn unlisted(&self, descriptor_set: &[u8], service: &str) -> Vec<String> {
        use prost::Message as _;
        let Ok(set) = prost_types::FileDescriptorSet::decode(descriptor_set) else {
            return vec![format!("undecodable descriptor set for {service}")];
        };
        let mut unlisted = Vec::new();
        let mut found = false;
        for file in &set.file {
            for declared in &file.service {
                let full = format!("{}.{}", file.package(), declared.name());
                if full != service {
                    continue;
                }
                found = true;
                for method in &declared.method {
                    let path = format!("/{full}/{}", method.name());
                    if !self.rules.contains_key(&path) {
                        unlisted.push(path);
                    }
                }
            }
        }
        if !found {
            unlisted.push(format!("no service {service} in the descriptor set"));
        }
        unlisted
    }

    /// Decides a call to `path` with the `authorization` header `authorization`.
    pub fn check(
        &self,
        tokens: &Tokens,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Option<Caller>, Status> {
        if path.starts_with("/grpc.health.v1.Health/") {
            return Ok(None);
        }
        let token = authorization
            .and_then(bearer_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("a bearer token is required (authorization: Bearer …)")
            })?;
        let caller = tokens
            .caller(token)
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        let roles = self.roles(path).unwrap_or(&[]);
        if !roles.contains(&caller.role) {
            return Err(Status::permission_denied(format!(
                "role {} may not call {path}",
                caller.role.as_str()
            )));
        }
        Ok(Some(caller.clone()))
    }
}

/// The token of an `authorization` value: the `Bearer` scheme is
/// case-insensitive (RFC 7235), the token is what follows it.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// What the chassis checks calls against: the tokens and the service's table,
/// or nothing when authentication is disabled (`SHEQU_AUTH_DISABLED=true`).
#[derive(Debug, Clone, Default)]
pub struct Guard(Option<Arc<(Tokens, Access)>>);

impl Guard {
    pub fn disabled() -> Self {
        Self(None)
    }

    pub fn new(tokens: Tokens, access: Access) -> Self {
        Self(Some(Arc::new((tokens, access))))
    }

    /// Reads the token file named by `SHEQU_AUTH_TOKENS_FILE`.
    pub fn from_file(path: &Path, access: Access) -> Result<Self, Error> {
        let json = std::fs::read_to_string(path).map_err(|source| Error::Io {
            context: format!("reading SHEQU_AUTH_TOKENS_FILE {}", path.display()),
            source,
        })?;
        let tokens = Tokens::from_json(&json).map_err(|error| {
            Error::Config(format!(
                "SHEQU_AUTH_TOKENS_FILE {}: {error}",
                path.display()
            ))
        })?;
        Ok(Self::new(tokens, access))
    }
}

/// Reads a bearer token from a file (trailing whitespace dropped), for a
/// service calling another or the operator command line.
pub fn read_token_file(setting: &str, path: &Path) -> Result<String, Error> {
    let token = std::fs::read_to_string(path).map_err(|source| Error::Io {
        context: format!("reading {setting} {}", path.display()),
        source,
    })?;
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(Error::Config(format!(
            "{setting} {} is empty",
            path.display()
        )));
    }
    Ok(token)
}

/// The tower layer checking every call against a [`Guard`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    guard: Guard,
}

impl AuthLayer {
    pub fn new(guard: Guard) -> Self {
        Self { guard }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            guard: self.guard.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    guard: Guard,
}

impl<S, B, R> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    R: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Who made a write call, for its log line: the token's name, or `-`
        // with authentication disabled (nothing is kept for a read).
        let write = is_write(request.uri().path());
        let mut caller_name = None;
        if let Some(guarded) = &self.guard.0 {
            let (tokens, access) = guarded.as_ref();
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok());
            match access.check(tokens, request.uri().path(), authorization) {
                Ok(Some(caller)) => {
                    if write {
                        caller_name = Some(caller.name.clone());
                    }
                    request.extensions_mut().insert(caller);
                }
                Ok(None) => {}
                Err(status) => {
                    tracing::info!(path = %request.uri().path(), code = ?status.code(), "call refused");
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        }
        if !write {
            return Box::pin(self.inner.call(request));
        }
        let method = request.uri().path().to_owned();
        let called = self.inner.call(request);
        Box::pin(async move {
            let response = called.await?;
            let code = crate::metrics::grpc_code(&response);
            let caller = caller_name.as_deref().unwrap_or("-");
            tracing::info!(%method, %caller, %code, "write call");
            Ok(response)
        })
    }
}

/// Whether the RPC at `path` (`/package.Service/Method`) may change
/// something: every method but those that only read (Get…, List…, Find…,
/// health checks and reflection), so that an audit of the log misses none.
fn is_write(path: &str) -> bool {
    let (service, method) = path
        .trim_start_matches('/')
        .rsplit_once('/')
        .unwrap_or(("", path));
    let reads = ["Get", "List", "Find", "Check", "Watch"];
    !(service.starts_with("grpc.") || reads.iter().any(|verb| method.starts_with(verb)))
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    const TOKEN: &str = "s3cr3t-token-of-the-ops-console";

    fn tokens() -> Tokens {
        let json = format!(
            r#"{{"tokens": [{{"name": "ops", "role": "operator", "sha256": "{}"}},
                            {{"name": "app", "role": "resident_app", "sha256": "{}"}}]}}"#,
            token_hash(TOKEN),
            token_hash("app-token")
        );
        Tokens::from_json(&json).unwrap()
    }

    fn access() -> Access {
        Access::default().service("x.v1.S", &[("Read", STAFF), ("Submit", ANY_ROLE)])
    }

    fn check(path: &str, authorization: Option<&str>) -> Result<Option<Caller>, Code> {
        access()
            .check(&tokens(), path, authorization)
            .map_err(|status| status.code())
    }

    #[test]
    fn writes_are_every_method_that_does_not_only_read() {
        for write in [
            "/shequ.complaints.v1.ComplaintService/SubmitComplaint",
            "/shequ.alliance.v1.MerchantService/EvaluateAwards",
            "/shequ.chassis.v1.ParkedEvents/ReplayParkedEvent",
        ] {
            assert!(is_write(write), "{write}");
        }
        for read in [
            "/shequ.complaints.v1.ComplaintService/GetFigures",
            "/shequ.care.v1.CareService/ListOverdueVisits",
            "/shequ.alliance.v1.MerchantService/FindNearby",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(!is_write(read), "{read}");
        }
    }

    #[test]
    fn the_hash_is_sha256_in_hex() {
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_known_token_with_an_allowed_role_passes_and_names_the_caller() {
        let caller = check("/x.v1.S/Read", Some(&format!("Bearer {TOKEN}")));
        assert_eq!(
            caller,
            Ok(Some(Caller {
                name: "ops".into(),
                role: Role::Operator
            }))
        );
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            let caller = check("/x.v1.S/Read", Some(&format!("{scheme} {TOKEN}")));
            assert_eq!(
                caller.map(|c| c.map(|c| c.name)),
                Ok(Some("ops".into())),
                "{scheme}"
            );
        }
    }

    #[test]
    fn no_token_a_wrong_token_or_another_scheme_is_unauthenticated() {
        for authorization in [
            None,
            Some("Bearer "),
            Some("Bearer wrong"),
            Some(TOKEN),
            Some("Basic b3BzOnB3"),
        ] {
            assert_eq!(
                check("/x.v1.S/Read", authorization),
                Err(Code::Unauthenticated),
                "{authorization:?}"
            );
        }
    }

    #[test]
    fn a_role_not_in_the_table_is_denied_and_unlisted_methods_are_denied_to_all() {
        assert_eq!(
            check("/x.v1.S/Read", Some("Bearer app-token")),
            Err(Code::PermissionDenied)
        );
        assert!(check("/x.v1.S/Submit", Some("Bearer app-token")).is_ok());
        assert_eq!(
            check("/x.v1.S/Unlisted", Some(&format!("Bearer {TOKEN}"))),
            Err(Code::PermissionDenied)
        );
    }

    #[test]
    fn health_checks_need_no_token() {
        assert_eq!(check("/grpc.health.v1.Health/Check", None), Ok(None));
    }

    #[test]
    fn a_bad_token_file_is_refused_naming_the_entry() {
        for (json, wanted) in [
            (
                r#"{"tokens": [{"name": "a", "role": "admin", "sha256": ""}]}"#,
                "tokens[0].role",
            ),
            (
                r#"{"tokens": [{"name": "a", "role": "staff", "sha256": "12"}]}"#,
                "tokens[0].sha256",
            ),
            (
                r#"{"tokens": [{"name": " ", "role": "staff", "sha256": "12"}]}"#,
                "tokens[0].name",
            ),
            (r#"{"tokens": [], "extra": 1}"#, "unknown field"),
        ] {
            let error = Tokens::from_json(json).err().unwrap_or_default();
            assert!(error.contains(wanted), "{json}: {error}");
        }
        let hash = token_hash("x");
        let twice = format!(
            r#"{{"tokens": [{{"name": "a", "role": "staff", "sha256": "{hash}"}},
                            {{"name": "b", "role": "staff", "sha256": "{hash}"}}]}}"#
        );
        assert!(Tokens::from_json(&twice).is_err());
    }
}
