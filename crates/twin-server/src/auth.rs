//! Who may call what: the four roles, **the** role table of every RPC ([`RPCS`]), and the
//! credentials that prove a role (static tokens from a RON file, JWT bearer tokens).
//!
//! The table is enforced in one place, [`crate::gate`], for every call; this module only
//! answers questions: who is this ([`Authenticator::authenticate`]) and may they call
//! that ([`authorize`]). A method missing from the table is denied to everyone, so an
//! RPC added to the proto stays closed until someone gives it a row (a unit test fails
//! until then, too).

use std::fmt;
use std::path::{Path, PathBuf};

use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;
use twin_proto::v1;

/// Shortest static token accepted, characters: shorter ones can be guessed.
pub const MIN_TOKEN_CHARS: usize = 16;
/// Shortest HS256 secret accepted, bytes (RFC 7518 asks for at least the hash size).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// Clock skew tolerated when checking a JWT's `exp`, seconds.
pub const JWT_LEEWAY_S: u64 = 30;
/// Longest subject accepted in the token file, characters.
const MAX_SUBJECT_CHARS: usize = 64;

/// What a caller may do. Ordered: each role may do everything the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Watches (students): layout, live state, reports, the scene list.
    Viewer,
    /// Also controls the live twin: clock, reset, breakdowns, repairs, orders, parameters.
    Operator,
    /// Also runs experiments.
    Planner,
    /// Also loads scenes and reads the audit log.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Planner, Role::Admin];

    /// Lower-case name, as in a JWT's `role` claim and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Planner => "planner",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name, ignoring case.
    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name().eq_ignore_ascii_case(text))
    }

    /// The wire form.
    pub fn to_proto(self) -> v1::Role {
        match self {
            Role::Viewer => v1::Role::Viewer,
            Role::Operator => v1::Role::Operator,
            Role::Planner => v1::Role::Planner,
            Role::Admin => v1::Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the audit log treats an RPC.
#[derive(Clone, Copy)]
pub enum Audit {
    /// It only reads: recorded only when rejected for its credentials or role.
    Rejections,
    /// It changes something: every call is recorded, with the request rendered by this
    /// function from the encoded protobuf message.
    EveryCall(fn(&[u8]) -> String),
    /// It changes something through a long request stream (Ingest): every call is
    /// recorded when it opens, without reading the stream (its content goes to the
    /// telemetry log, which is the durable record of what it changed).
    StreamOpened,
}

/// One row of the role table.
pub struct Rpc {
    /// Method name in `twin.v1.TwinService` (the last segment of the request path).
    pub name: &'static str,
    /// Least role allowed to call it.
    pub role: Role,
    /// Whether every call is audited.
    pub audit: Audit,
}

impl fmt::Debug for Rpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let audited = matches!(self.audit, Audit::EveryCall(_) | Audit::StreamOpened);
        f.debug_struct("Rpc")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("audited", &audited)
            .finish()
    }
}

/// Path prefix of the twin's own service.
pub const SERVICE_PREFIX: &str = "/twin.v1.TwinService/";

/// Request paths that need no credentials: health checks and reflection. Nothing else.
pub const OPEN_PATHS: [&str; 4] = [
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

const fn row(name: &'static str, role: Role, audit: Audit) -> Rpc {
    Rpc { name, role, audit }
}

use Audit::{EveryCall, Rejections, StreamOpened};
use Role::{Admin, Operator, Planner, Viewer};

/// THE role table: every RPC of `twin.v1.TwinService`, in the order of the service
/// definition, with the least role that may call it and whether each call is audited.
/// Future RPCs (ingest, seek, forecast) get a row here or stay denied to everyone.
pub static RPCS: &[Rpc] = &[
    row("GetLayout", Viewer, Rejections),
    row("StreamState", Viewer, Rejections),
    row("Pause", Operator, EveryCall(render::<v1::PauseRequest>)),
    row("Resume", Operator, EveryCall(render::<v1::ResumeRequest>)),
    row("SetSpeed", Operator, EveryCall(render::<v1::SetSpeedRequest>)),
    row("RunTo", Operator, EveryCall(render::<v1::RunToRequest>)),
    row("Reset", Operator, EveryCall(render::<v1::ResetRequest>)),
    row("BreakDown", Operator, EveryCall(render::<v1::BreakDownRequest>)),
    row("Repair", Operator, EveryCall(render::<v1::RepairRequest>)),
    row("AddRushOrder", Operator, EveryCall(render::<v1::AddRushOrderRequest>)),
    row("SetParameter", Operator, EveryCall(render::<v1::SetParameterRequest>)),
    row("GetReport", Viewer, Rejections),
    row("ListAlarms", Viewer, Rejections),
    row("StreamAlarms", Viewer, Rejections),
    row("ListScenes", Viewer, Rejections),
    row("LoadScene", Admin, EveryCall(render::<v1::LoadSceneRequest>)),
    row("StartExperiment", Planner, EveryCall(render_experiment)),
    row("CancelExperiment", Planner, EveryCall(render::<v1::CancelExperimentRequest>)),
    row("WhoAmI", Viewer, Rejections),
    row("ListAudit", Admin, Rejections),
    // Costs whole cores for a while: operators forecast their shift; viewers see the
    // periodic forecast in the state stream.
    row("Forecast", Operator, Rejections),
    // Time travel (issue 13): the view is shared by every client, so moving it is an
    // operator's decision and audited; reading the checkpoints is harmless.
    row("Seek", Operator, EveryCall(render::<v1::SeekRequest>)),
    row("GoLive", Operator, EveryCall(render::<v1::GoLiveRequest>)),
    row("ListCheckpoints", Viewer, Rejections),
    row("Ingest", Operator, StreamOpened),
    row("GetIngestStatus", Viewer, Rejections),
    // Programme (issue 15): the complexes on the programme's NATS.
    row("ListComplexes", Viewer, Rejections),
];

/// Longest rendering of a request in the audit log, characters.
pub const MAX_RENDERED_CHARS: usize = 300;

/// Renders an encoded request for the audit log (its `Debug` form, cut short).
fn render<M: prost::Message + Default + fmt::Debug>(bytes: &[u8]) -> String {
    match M::decode(bytes) {
        Ok(message) => truncate(format!("{message:?}")),
        Err(_) => format!("<undecodable request, {} bytes>", bytes.len()),
    }
}

/// StartExperiment carries a whole experiment file: log its name, size and jobs only.
fn render_experiment(bytes: &[u8]) -> String {
    match <v1::StartExperimentRequest as prost::Message>::decode(bytes) {
        Ok(r) => truncate(format!(
            "StartExperimentRequest {{ file_name: {:?}, jobs: {}, experiment: <{} bytes> }}",
            r.file_name,
            r.jobs,
            r.experiment.len()
        )),
        Err(_) => format!("<undecodable request, {} bytes>", bytes.len()),
    }
}

/// Cuts `text` to [`MAX_RENDERED_CHARS`] characters, marking the cut.
pub fn truncate(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_RENDERED_CHARS - 1) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The table row of a request path, if it names a TwinService method in the table.
pub fn lookup(path: &str) -> Option<&'static Rpc> {
    let name = path.strip_prefix(SERVICE_PREFIX)?;
    RPCS.iter().find(|r| r.name == name)
}

/// Whether a request path is one of the [`OPEN_PATHS`] (health, reflection).
pub fn is_open(path: &str) -> bool {
    OPEN_PATHS.contains(&path)
}

/// Who is calling, as established by the gate; handlers find it in the request's
/// extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Token subject, or "anonymous" without authentication.
    pub subject: String,
    /// The role the credential grants.
    pub role: Role,
    /// False when the server runs without authentication.
    pub authenticated: bool,
    /// Expiry of the credential (a JWT's `exp`), seconds since the Unix epoch.
    pub expires_at_unix_s: Option<u64>,
}

impl Caller {
    /// The caller of a server without authentication (loopback only): may do anything.
    pub fn anonymous() -> Caller {
        Caller {
            subject: "anonymous".into(),
            role: Role::Admin,
            authenticated: false,
            expires_at_unix_s: None,
        }
    }
}

/// Checks that `caller` may call `path`; the row of the table on success.
pub fn authorize(caller: &Caller, path: &str) -> Result<&'static Rpc, Status> {
    let rpc = lookup(path).ok_or_else(|| {
        Status::permission_denied(format!("`{path}` is not in the server's role table: denied by default"))
    })?;
    if caller.role < rpc.role {
        return Err(Status::permission_denied(format!(
            "{} needs the {} role; `{}` is {} {}",
            rpc.name,
            rpc.role,
            caller.subject,
            if caller.role == Role::Operator || caller.role == Role::Admin { "an" } else { "a" },
            caller.role
        )));
    }
    Ok(rpc)
}

/// The answer to WhoAmI for `caller`.
pub fn who_am_i(caller: &Caller) -> v1::WhoAmIResponse {
    v1::WhoAmIResponse {
        subject: caller.subject.clone(),
        role: caller.role.to_proto().into(),
        auth_enabled: caller.authenticated,
        allowed_rpcs: RPCS.iter().filter(|r| r.role <= caller.role).map(|r| r.name.to_owned()).collect(),
        expires_at_unix_s: caller.expires_at_unix_s,
    }
}

/// Where the server finds its credentials (`twin serve --auth`, `--jwt-*`).
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// RON file of static tokens: `Auth(tokens: [(subject: "..", role: Viewer, token: ".."), ..])`.
    pub token_file: Option<PathBuf>,
    /// File holding the HS256 secret for JWTs (trailing whitespace ignored).
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM file of the Ed25519 public key that verifies EdDSA-signed JWTs.
    pub jwt_ed25519_public_key: Option<PathBuf>,
}

impl AuthConfig {
    /// Whether any credential source is configured (authentication is on).
    pub fn is_enabled(&self) -> bool {
        self.token_file.is_some() || self.jwt_secret_file.is_some() || self.jwt_ed25519_public_key.is_some()
    }
}

/// Why the credentials could not be loaded. Each names the file, and the line where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}:{col}: {message}", path.display())]
    Syntax { path: PathBuf, line: usize, col: usize, message: String },
    #[error("{}:{line}: {message}", path.display())]
    Invalid { path: PathBuf, line: usize, message: String },
    #[error("{}: {message}", path.display())]
    Key { path: PathBuf, message: String },
}

/// The token file as written.
#[derive(Deserialize)]
#[serde(rename = "Auth", deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    subject: String,
    role: Role,
    token: String,
}

/// A static token as kept in memory: only its SHA-256, compared in constant time.
struct StaticToken {
    subject: String,
    role: Role,
    digest: [u8; 32],
}

/// Claims a JWT must carry.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    role: String,
    exp: u64,
}

/// Checks credentials against the loaded tokens and keys.
pub struct Authenticator {
    tokens: Vec<StaticToken>,
    hs256: Option<DecodingKey>,
    ed25519: Option<DecodingKey>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("static_tokens", &self.tokens.len())
            .field("jwt_hs256", &self.hs256.is_some())
            .field("jwt_ed25519", &self.ed25519.is_some())
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::Read { path: path.to_owned(), source })
}

/// 1-based line of the `nth` occurrence (0-based) of `needle` in `text`; 1 if absent.
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.match_indices(needle).nth(nth).map_or(1, |(at, _)| text[..at].lines().count().max(1))
}

impl Authenticator {
    /// Loads every configured credential source; None when authentication is off.
    pub fn load(config: &AuthConfig) -> Result<Option<Authenticator>, AuthError> {
        if !config.is_enabled() {
            return Ok(None);
        }
        let tokens = match &config.token_file {
            Some(path) => {
                let bytes = read(path)?;
                let text = String::from_utf8(bytes).map_err(|_| AuthError::Invalid {
                    path: path.clone(),
                    line: 1,
                    message: "the token file is not UTF-8 text".into(),
                })?;
                parse_tokens(path, &text)?
            }
            None => Vec::new(),
        };
        let hs256 = match &config.jwt_secret_file {
            Some(path) => {
                let bytes = read(path)?;
                let secret = bytes.trim_ascii_end();
                if secret.len() < MIN_JWT_SECRET_BYTES {
                    return Err(AuthError::Key {
                        path: path.clone(),
                        message: format!(
                            "the HS256 secret has {} bytes; at least {MIN_JWT_SECRET_BYTES} are needed",
                            secret.len()
                        ),
                    });
                }
                Some(DecodingKey::from_secret(secret))
            }
            None => None,
        };
        let ed25519 = match &config.jwt_ed25519_public_key {
            Some(path) => {
                let pem = read(path)?;
                Some(DecodingKey::from_ed_pem(&pem).map_err(|e| AuthError::Key {
                    path: path.clone(),
                    message: format!("not an Ed25519 public key in PEM form: {e}"),
                })?)
            }
            None => None,
        };
        Ok(Some(Authenticator { tokens, hs256, ed25519 }))
    }

    /// Establishes who sent a request from its `authorization: Bearer <token>` metadata.
    /// Every failure is UNAUTHENTICATED; the message says what was wrong without
    /// echoing the token.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, Status> {
        let value = headers.get(http::header::AUTHORIZATION).ok_or_else(|| {
            Status::unauthenticated("missing credentials: send `authorization: Bearer <token>` metadata")
        })?;
        let text = value
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization metadata is not ASCII text"))?;
        let token = bearer(text)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Every stored token is compared, in constant time, whatever matches: the time
        // taken says nothing about which token (or how much of one) was right.
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.digest.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        if let Some(t) = found {
            return Ok(Caller {
                subject: t.subject.clone(),
                role: t.role,
                authenticated: true,
                expires_at_unix_s: None,
            });
        }
        if self.hs256.is_none() && self.ed25519.is_none() {
            return Err(Status::unauthenticated("unknown token"));
        }
        self.verify_jwt(token)
    }

    fn verify_jwt(&self, token: &str) -> Result<Caller, Status> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Status::unauthenticated("unknown token (neither a known static token nor a JWT)"))?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.as_ref(),
            Algorithm::EdDSA => self.ed25519.as_ref(),
            _ => None,
        }
        .ok_or_else(|| {
            Status::unauthenticated(format!("JWTs signed with {:?} are not accepted here", header.alg))
        })?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = JWT_LEEWAY_S;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            Status::unauthenticated(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature is not valid".to_owned(),
                ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
                _ => format!("invalid token: {e}"),
            })
        })?;
        let claims = data.claims;
        let role = Role::parse(&claims.role).ok_or_else(|| {
            Status::unauthenticated(format!(
                "the token's role `{}` is not one of viewer, operator, planner, admin",
                claims.role.chars().take(32).collect::<String>()
            ))
        })?;
        if claims.sub.is_empty() {
            return Err(Status::unauthenticated("the token's `sub` claim is empty"));
        }
        Ok(Caller {
            // The subject lands in logs and the audit log: keep it short and on one line.
            subject: claims
                .sub
                .chars()
                .take(MAX_SUBJECT_CHARS)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
            role,
            authenticated: true,
            expires_at_unix_s: Some(claims.exp),
        })
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive, RFC 6750).
fn bearer(text: &str) -> Result<&str, Status> {
    let malformed = || Status::unauthenticated("authorization metadata must be `Bearer <token>`");
    let (scheme, token) = text.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(malformed());
    }
    Ok(token)
}

/// Parses and checks the token file; errors name the file and line.
fn parse_tokens(path: &Path, text: &str) -> Result<Vec<StaticToken>, AuthError> {
    let file: TokenFile = ron::from_str(text).map_err(|e| AuthError::Syntax {
        path: path.to_owned(),
        line: e.span.start.line,
        col: e.span.start.col,
        message: e.code.to_string(),
    })?;
    let mut tokens: Vec<StaticToken> = Vec::with_capacity(file.tokens.len());
    let mut seen_tokens: Vec<&str> = Vec::new();
    for entry in &file.tokens {
        let subject_line = || line_of(text, &format!("{:?}", entry.subject), 0);
        let invalid =
            |line: usize, message: String| AuthError::Invalid { path: path.to_owned(), line, message };
        if entry.subject.is_empty() || entry.subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(invalid(
                subject_line(),
                format!("subject `{}` must have 1 to {MAX_SUBJECT_CHARS} characters", entry.subject),
            ));
        }
        if entry.subject.chars().any(char::is_control) {
            return Err(invalid(subject_line(), "a subject must not contain control characters".into()));
        }
        let nth = seen_tokens.iter().filter(|t| **t == entry.token).count();
        let token_line = line_of(text, &format!("{:?}", entry.token), nth);
        if entry.token.chars().count() < MIN_TOKEN_CHARS {
            return Err(invalid(
                token_line,
                format!(
                    "the token of `{}` is too short (at least {MIN_TOKEN_CHARS} characters)",
                    entry.subject
                ),
            ));
        }
        if !entry.token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                token_line,
                format!(
                    "the token of `{}` must be printable ASCII without spaces (it travels in metadata)",
                    entry.subject
                ),
            ));
        }
        if nth > 0 {
            return Err(invalid(token_line, format!("the token of `{}` is used twice", entry.subject)));
        }
        seen_tokens.push(&entry.token);
        tokens.push(StaticToken {
            subject: entry.subject.clone(),
            role: entry.role,
            digest: Sha256::digest(entry.token.as_bytes()).into(),
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().expect("header value"));
        h
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens.ron");
        std::fs::write(&path, text).expect("write");
        (dir, path)
    }

    const TOKENS: &str = r#"Auth(tokens: [
    (subject: "student", role: Viewer, token: "viewer-token-0123456789"),
    (subject: "olga", role: Operator, token: "operator-token-0123456789"),
])"#;

    #[test]
    fn static_tokens_authenticate_with_their_role() {
        let (_dir, path) = file(TOKENS);
        let auth = Authenticator::load(&AuthConfig { token_file: Some(path), ..Default::default() })
            .expect("loads")
            .expect("enabled");
        let caller = auth.authenticate(&headers("Bearer viewer-token-0123456789")).expect("known");
        assert_eq!((caller.subject.as_str(), caller.role), ("student", Role::Viewer));
        let caller = auth.authenticate(&headers("bearer   operator-token-0123456789 ")).expect("known");
        assert_eq!(caller.role, Role::Operator);
        for bad in ["Bearer nope-nope-nope-nope", "Basic abc", "Bearer", "viewer-token-0123456789"] {
            let status = auth.authenticate(&headers(bad)).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad}");
            assert!(!status.message().contains("0123456789"), "never echo tokens: {}", status.message());
        }
        let status = auth.authenticate(&HeaderMap::new()).expect_err("no header");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);
        let mut odd = HeaderMap::new();
        odd.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque"),
        );
        assert_eq!(auth.authenticate(&odd).expect_err("not ascii").code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn bad_token_files_name_file_and_line() {
        let cases = [
            ("Auth(tokens: [\n  (subject: \"a\", role: Viewer, token: \"short\"),\n])", 2, "too short"),
            (
                "Auth(tokens: [\n  (subject: \"a\", role: Viewer, token: \"same-token-0123456789\"),\n  (subject: \"b\", role: Admin, token: \"same-token-0123456789\"),\n])",
                3,
                "used twice",
            ),
            (
                "Auth(tokens: [\n  (subject: \"a\", role: Boss, token: \"x123456789012345678\"),\n])",
                2,
                "Boss",
            ),
            (
                "Auth(tokens: [\n  (subject: \"\", role: Viewer, token: \"x123456789012345678\"),\n])",
                2,
                "subject",
            ),
            (
                "Auth(tokens: [\n  (subject: \"a\", role: Viewer, token: \"has space 0123456789\"),\n])",
                2,
                "ASCII",
            ),
            ("Auth(tokens: [\n  (subject: \"a\", role: Viewer),\n])", 2, "token"),
        ];
        for (text, line, needle) in cases {
            let (_dir, path) = file(text);
            let err =
                Authenticator::load(&AuthConfig { token_file: Some(path.clone()), ..Default::default() })
                    .expect_err(text)
                    .to_string();
            assert!(err.starts_with(&format!("{}:{line}:", path.display())), "{err}");
            assert!(err.contains(needle), "{err}");
        }
        let missing = PathBuf::from("/nonexistent/tokens.ron");
        let err = Authenticator::load(&AuthConfig { token_file: Some(missing), ..Default::default() })
            .expect_err("missing")
            .to_string();
        assert!(err.contains("/nonexistent/tokens.ron"), "{err}");
    }

    #[test]
    fn short_jwt_secrets_and_bad_keys_are_refused() {
        let (_dir, path) = file("too-short\n");
        let err = Authenticator::load(&AuthConfig { jwt_secret_file: Some(path), ..Default::default() })
            .expect_err("short")
            .to_string();
        assert!(err.contains("at least 32"), "{err}");
        let (_dir, path) = file("-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n");
        let err = Authenticator::load(&AuthConfig {
            jwt_ed25519_public_key: Some(path.clone()),
            ..Default::default()
        })
        .expect_err("bad key")
        .to_string();
        assert!(err.contains(&path.display().to_string()) && err.contains("Ed25519"), "{err}");
    }

    #[test]
    fn roles_are_ordered_and_checked() {
        let viewer = Caller { role: Role::Viewer, ..Caller::anonymous() };
        assert!(authorize(&viewer, "/twin.v1.TwinService/GetLayout").is_ok());
        let denied = authorize(&viewer, "/twin.v1.TwinService/BreakDown").expect_err("viewer may not");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("operator"), "{}", denied.message());
        let admin = Caller::anonymous();
        for rpc in RPCS {
            assert!(authorize(&admin, &format!("{SERVICE_PREFIX}{}", rpc.name)).is_ok());
        }
    }

    /// Fail closed: a method the table does not list is denied even to an admin.
    #[test]
    fn methods_missing_from_the_table_are_denied() {
        let admin = Caller::anonymous();
        for path in [
            "/twin.v1.TwinService/Seek",
            "/twin.v1.TwinService/StartIngest",
            "/twin.v2.TwinService/GetLayout",
            "/x",
        ] {
            let status = authorize(&admin, path).expect_err(path);
            assert_eq!(status.code(), tonic::Code::PermissionDenied, "{path}");
            assert!(status.message().contains("denied by default"));
        }
    }

    /// The table lists every RPC of the service definition, in its order, and nothing
    /// else: adding an RPC to the proto fails here until it gets a row.
    #[test]
    fn table_covers_the_service_definition() {
        use prost::Message;
        let set =
            prost_types::FileDescriptorSet::decode(twin_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let service = set
            .file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(package, s)| *package == "twin.v1" && s.name() == "TwinService")
            .map(|(_, s)| s)
            .expect("twin.v1.TwinService");
        let defined: Vec<&str> = service.method.iter().map(|m| m.name()).collect();
        let table: Vec<&str> = RPCS.iter().map(|r| r.name).collect();
        assert_eq!(table, defined, "auth::RPCS must list every TwinService RPC in proto order");
    }

    #[test]
    fn renderings_are_short() {
        let long = v1::LoadSceneRequest { name: "x".repeat(1000), seed: None };
        let text = render::<v1::LoadSceneRequest>(&prost::Message::encode_to_vec(&long));
        assert_eq!(text.chars().count(), MAX_RENDERED_CHARS);
        assert!(text.starts_with("LoadSceneRequest"));
        assert!(render::<v1::BreakDownRequest>(&[0xff, 0xff]).starts_with("<undecodable"));
    }
}
