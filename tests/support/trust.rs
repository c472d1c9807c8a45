//! Support for the trust tests: a token of every role, signed JWTs, a small PKI made with
//! rcgen (CA, server and client certificates), and clients that send a bearer token,
//! over plain HTTP/2 or TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::auth::Role;

/// The static token of each role in [`write_token_file`]'s file, with its subject.
pub const TOKENS: [(Role, &str, &str); 4] = [
    (Role::Viewer, "student", "viewer-token-5d1c0b7e2a"),
    (Role::Operator, "olga", "operator-token-8f3e21c4d9"),
    (Role::Planner, "pat", "planner-token-0a9b8c7d6e"),
    (Role::Admin, "root", "admin-token-77e6d5c4b3a2"),
];

/// HS256 secret of [`write_jwt_secret`].
pub const JWT_SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

/// The static token of `role`.
pub fn token(role: Role) -> &'static str {
    TOKENS.iter().find(|(r, _, _)| *r == role).map(|(_, _, t)| *t).expect("a token per role")
}

/// The subject of `role`'s static token.
pub fn subject(role: Role) -> &'static str {
    TOKENS.iter().find(|(r, _, _)| *r == role).map(|(_, s, _)| *s).expect("a token per role")
}

/// Writes the token file (RON) with one token per role into `dir`.
pub fn write_token_file(dir: &Path) -> PathBuf {
    let mut text = String::from("// Test tokens, one per role.\nAuth(tokens: [\n");
    for (role, subject, token) in TOKENS {
        text.push_str(&format!("    (subject: {subject:?}, role: {role:?}, token: {token:?}),\n"));
    }
    text.push_str("])\n");
    let path = dir.join("tokens.ron");
    std::fs::write(&path, text).expect("write token file");
    path
}

/// Writes [`JWT_SECRET`] into `dir` (with a trailing newline, as editors leave it).
pub fn write_jwt_secret(dir: &Path) -> PathBuf {
    let path = dir.join("jwt-secret");
    std::fs::write(&path, format!("{JWT_SECRET}\n")).expect("write secret");
    path
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    exp: u64,
}

/// An HS256 JWT with `sub`, `role` and `exp` signed with `secret`.
pub fn hs256_jwt(secret: &[u8], sub: &str, role: &str, exp: u64) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &Claims { sub, role, exp },
        &EncodingKey::from_secret(secret),
    )
    .expect("sign HS256")
}

/// A fresh Ed25519 key pair: (private key PKCS#8 PEM, public key PEM).
pub fn ed25519_keys() -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
    (key.serialize_pem(), key.public_key_pem())
}

/// An EdDSA JWT signed with the private key PEM.
pub fn eddsa_jwt(private_pem: &str, sub: &str, role: &str, exp: u64) -> String {
    let key = EncodingKey::from_ed_pem(private_pem.as_bytes()).expect("Ed25519 private key");
    jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &Claims { sub, role, exp }, &key)
        .expect("sign EdDSA")
}

/// A test PKI: one CA that signs a server certificate (localhost, 127.0.0.1) and a client
/// certificate. All PEM.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// The PEM files of a [`Pki`] on disk.
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    /// Generates a CA named `ca_name` and its two leaf certificates.
    pub fn new(ca_name: &str) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose, cn: &str| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, &issuer).expect("leaf certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "twin server",
        );
        let (client_cert, client_key) =
            leaf(vec!["client.twin.test".into()], ExtendedKeyUsagePurpose::ClientAuth, "twin client");
        Pki { ca: ca_cert.pem(), server_cert, server_key, client_cert, client_key }
    }

    /// Writes the PEM files into `dir`.
    pub fn write(&self, dir: &Path) -> PkiFiles {
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        PkiFiles {
            ca: write("ca.pem", &self.ca),
            server_cert: write("server.pem", &self.server_cert),
            server_key: write("server.key", &self.server_key),
            client_cert: write("client.pem", &self.client_cert),
            client_key: write("client.key", &self.client_key),
        }
    }
}

/// Adds `authorization: Bearer <token>` to every call (nothing when None).
#[derive(Clone)]
pub struct Bearer(pub Option<MetadataValue<Ascii>>);

impl Bearer {
    /// A bearer for `token`.
    pub fn new(token: Option<&str>) -> Bearer {
        Bearer(token.map(|t| format!("Bearer {t}").parse().expect("ASCII token")))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A TwinService client whose calls carry a token.
pub type AuthedClient = TwinServiceClient<InterceptedService<Channel, Bearer>>;

/// A client on `channel` that sends `token` (none when None).
pub fn authed(channel: Channel, token: Option<&str>) -> AuthedClient {
    TwinServiceClient::with_interceptor(channel, Bearer::new(token))
}

/// A TLS channel to `addr` trusting `ca_pem`, presenting `identity` (cert, key) if given.
pub async fn tls_channel(
    addr: SocketAddr,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Endpoint::from_shared(format!("https://{addr}")).expect("valid uri").tls_config(tls)?.connect().await
}
