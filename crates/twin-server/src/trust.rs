//! Trust settings of a server (authentication, TLS, audit log, metrics) and the rule
//! that keeps an unauthenticated server on loopback.

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tonic::transport::ServerTlsConfig;

use crate::audit::{AuditConfig, AuditError, AuditLog};
use crate::auth::{AuthConfig, AuthError, Authenticator};
use crate::tls::{TlsError, TlsFiles};

/// Who may call, over what, with what record.
#[derive(Clone, Debug, Default)]
pub struct TrustConfig {
    /// Credential sources; none configured means no authentication (loopback only).
    pub auth: AuthConfig,
    /// TLS identity (and client CA for mutual TLS); None serves plain HTTP/2.
    pub tls: Option<TlsFiles>,
    /// The audit log; None keeps none.
    pub audit: Option<AuditConfig>,
    /// Where to serve Prometheus `/metrics`; None serves no metrics. Port 0 picks one
    /// ([`crate::TwinServer::metrics_addr`] tells which).
    pub metrics_addr: Option<SocketAddr>,
    /// Allows serving without authentication on a non-loopback address.
    pub insecure_no_auth: bool,
}

/// Why the trust settings could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("loading credentials: {0}")]
    Auth(#[from] AuthError),
    #[error("loading TLS files: {0}")]
    Tls(#[from] TlsError),
    #[error("opening the audit log: {0}")]
    Audit(#[from] AuditError),
    #[error("binding the metrics endpoint {addr}: {source}")]
    Metrics { addr: SocketAddr, source: std::io::Error },
    #[error(
        "refusing to serve without authentication on {addr}, which is not a loopback address: \
         anyone who reaches it could control the twin. Give credentials (--auth FILE, \
         --jwt-secret-file FILE or --jwt-ed25519-public-key FILE), bind 127.0.0.1, or pass \
         --insecure-no-auth to accept the risk"
    )]
    InsecureBind { addr: SocketAddr },
}

/// The loopback rule alone, without the warnings: for a binary that checks before it
/// binds (the server checks again, with warnings, when it starts serving).
pub fn refuse_insecure_bind(config: &TrustConfig, addr: SocketAddr) -> Result<(), TrustError> {
    if !config.auth.is_enabled() && !addr.ip().is_loopback() && !config.insecure_no_auth {
        return Err(TrustError::InsecureBind { addr });
    }
    Ok(())
}

/// The loopback rule: without authentication only loopback addresses, unless the
/// operator explicitly accepted the risk (then a warning is logged). Also warns when
/// tokens would cross the network in clear text.
pub fn check_bind(config: &TrustConfig, addr: SocketAddr) -> Result<(), TrustError> {
    refuse_insecure_bind(config, addr)?;
    let loopback = addr.ip().is_loopback();
    if !config.auth.is_enabled() && !loopback {
        tracing::warn!(%addr, "serving WITHOUT authentication on a non-loopback address (--insecure-no-auth): anyone who reaches it can control the twin");
    }
    if config.auth.is_enabled() && config.tls.is_none() && !loopback {
        tracing::warn!(%addr, "authentication without TLS on a non-loopback address: tokens cross the network in clear text (use --tls-cert and --tls-key)");
    }
    Ok(())
}

/// The loaded trust settings of a server that has not started serving yet.
pub(crate) struct Trust {
    pub config: TrustConfig,
    pub auth: Option<Authenticator>,
    pub tls: Option<ServerTlsConfig>,
    pub audit: Option<Arc<AuditLog>>,
    /// The bound metrics endpoint.
    pub metrics: Option<MetricsEndpoint>,
}

/// The `/metrics` listener, bound at load so that its port is known before serving.
pub(crate) struct MetricsEndpoint {
    pub listener: std::net::TcpListener,
    pub addr: SocketAddr,
    pub handle: PrometheusHandle,
}

impl Trust {
    /// Reads every file, opens the audit log and binds the metrics port.
    pub fn load(config: TrustConfig) -> Result<Trust, TrustError> {
        let auth = Authenticator::load(&config.auth)?;
        let tls = config.tls.as_ref().map(TlsFiles::server_config).transpose()?;
        let audit = config.audit.as_ref().map(AuditLog::open).transpose()?.map(Arc::new);
        let metrics = match config.metrics_addr {
            Some(addr) => {
                let bind = || {
                    let listener = std::net::TcpListener::bind(addr)?;
                    listener.set_nonblocking(true)?;
                    let bound = listener.local_addr()?;
                    Ok::<_, std::io::Error>((listener, bound))
                };
                let (listener, bound) = bind().map_err(|source| TrustError::Metrics { addr, source })?;
                Some(MetricsEndpoint { listener, addr: bound, handle: crate::metrics::install() })
            }
            None => None,
        };
        if let Some(a) = &auth {
            tracing::info!(credentials = ?a, "authentication on");
        }
        if let Some(log) = &audit {
            tracing::info!(path = %log.path().display(), "audit log open");
        }
        Ok(Trust { config, auth, tls, audit, metrics })
    }

    /// Where `/metrics` is served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthenticated_servers_stay_on_loopback() {
        let open = TrustConfig::default();
        assert!(check_bind(&open, "127.0.0.1:0".parse().expect("addr")).is_ok());
        assert!(check_bind(&open, "[::1]:0".parse().expect("addr")).is_ok());
        let err = check_bind(&open, "0.0.0.0:50051".parse().expect("addr")).expect_err("refused");
        assert!(err.to_string().contains("--insecure-no-auth"), "{err}");
        let accepted = TrustConfig { insecure_no_auth: true, ..TrustConfig::default() };
        assert!(check_bind(&accepted, "0.0.0.0:50051".parse().expect("addr")).is_ok());
        let secured = TrustConfig {
            auth: AuthConfig { token_file: Some("tokens.ron".into()), ..AuthConfig::default() },
            ..TrustConfig::default()
        };
        assert!(check_bind(&secured, "0.0.0.0:50051".parse().expect("addr")).is_ok());
    }
}
