//! `twin serve`'s trust flags (authentication, TLS, audit log, metrics) and the client
//! side every networked subcommand shares: `--token` / `TWIN_TOKEN`, `https://` with
//! `--ca`, and a client certificate for mutual TLS.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use twin_proto::v1::twin_service_client::TwinServiceClient;
use twin_server::TrustConfig;
use twin_server::audit::{AuditConfig, FILE_NAME, Retention};
use twin_server::auth::AuthConfig;
use twin_server::tls::TlsFiles;

/// Who may call the server, over what, with what record.
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// Static token file (RON): `Auth(tokens: [(subject: "student", role: Viewer, token:
    /// "..."), ...])`. Roles: Viewer, Operator, Planner, Admin.
    #[arg(long, value_name = "FILE")]
    auth: Option<PathBuf>,
    /// Accept HS256 JWTs signed with the secret in FILE (claims: sub, role, exp).
    #[arg(long, value_name = "FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Accept EdDSA JWTs verified with this Ed25519 public key (PEM).
    #[arg(long, value_name = "FILE")]
    jwt_ed25519_public_key: Option<PathBuf>,
    /// Serve without authentication on a non-loopback address (everyone may do
    /// everything). Without credentials the server otherwise binds loopback only.
    #[arg(long)]
    insecure_no_auth: bool,
    /// TLS certificate chain (PEM); with --tls-key the server speaks TLS only.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Demand client certificates signed by this CA (PEM): mutual TLS.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
    /// The server's data folder; the audit log is DIR/audit.redb. Required with
    /// authentication (or --audit).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// The audit log file, instead of DIR/audit.redb.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    audit: Option<PathBuf>,
    /// Audit retention: most entries kept (the oldest go first).
    #[arg(long, value_name = "N", default_value_t = Retention::default().max_entries)]
    audit_keep_entries: u64,
    /// Audit retention: entries older than this many days go.
    #[arg(long, value_name = "DAYS", default_value_t = Retention::default().max_age.as_secs() / 86_400)]
    audit_keep_days: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (port 0 picks one; printed).
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<SocketAddr>,
}

/// Where the audit log of `--data DIR` / `--audit FILE` lives.
pub fn audit_path(data: Option<&PathBuf>, audit: Option<&PathBuf>) -> Option<PathBuf> {
    audit.cloned().or_else(|| data.map(|d| d.join(FILE_NAME)))
}

impl TrustArgs {
    /// The data folder (`--data DIR`), when given.
    pub fn data_dir(&self) -> Option<&PathBuf> {
        self.data.as_ref()
    }

    /// The server's trust settings; refuses authentication without an audit log.
    pub fn config(&self) -> Result<TrustConfig> {
        let auth = AuthConfig {
            token_file: self.auth.clone(),
            jwt_secret_file: self.jwt_secret_file.clone(),
            jwt_ed25519_public_key: self.jwt_ed25519_public_key.clone(),
        };
        let path = audit_path(self.data.as_ref(), self.audit.as_ref());
        anyhow::ensure!(
            !(auth.is_enabled() && path.is_none()),
            "an authenticated twin keeps an audit log: add --data DIR (or --audit FILE)"
        );
        anyhow::ensure!(self.audit_keep_entries > 0, "--audit-keep-entries must be at least 1");
        anyhow::ensure!(self.audit_keep_days > 0, "--audit-keep-days must be at least 1");
        let retention = Retention {
            max_entries: self.audit_keep_entries,
            max_age: Duration::from_secs(self.audit_keep_days.saturating_mul(86_400)),
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: self.client_ca.clone() })
            }
            _ => None,
        };
        Ok(TrustConfig {
            auth,
            tls,
            audit: path.map(|path| AuditConfig { path, retention }),
            metrics_addr: self.metrics_addr,
            insecure_no_auth: self.insecure_no_auth,
        })
    }
}

/// How a subcommand reaches a running server.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Bearer token (static token or JWT).
    #[arg(long, env = "TWIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate, for https:// URLs
    /// (default: the system's roots).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for servers that demand one (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Private key of --client-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client whose calls carry the token.
pub type Client = TwinServiceClient<InterceptedService<Channel, Bearer>>;

fn read(path: &PathBuf) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

impl ClientArgs {
    /// Connects to `url` (`http://` or `https://`).
    pub async fn connect(&self, url: &str) -> Result<Client> {
        let bearer = match self.token.as_deref().map(str::trim) {
            Some(token) => {
                anyhow::ensure!(
                    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()),
                    "the token must be printable ASCII without spaces"
                );
                Some(format!("Bearer {token}").parse::<MetadataValue<Ascii>>().context("the token")?)
            }
            None => None,
        };
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .with_context(|| format!("invalid server URL `{url}`"))?
            .connect_timeout(Duration::from_secs(5));
        if url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new();
            tls = match &self.ca {
                Some(ca) => tls.ca_certificate(Certificate::from_pem(read(ca)?)),
                None => tls.with_native_roots(),
            };
            if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
                tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
            }
            endpoint = endpoint.tls_config(tls).context("TLS settings")?;
        } else {
            anyhow::ensure!(
                self.ca.is_none() && self.client_cert.is_none(),
                "--ca and --client-cert need an https:// server URL"
            );
        }
        let channel = endpoint.connect().await.with_context(|| format!("connecting to {url}"))?;
        Ok(TwinServiceClient::with_interceptor(channel, Bearer(bearer)))
    }
}
