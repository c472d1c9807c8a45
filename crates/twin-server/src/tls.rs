//! TLS for the gRPC port (`twin serve --tls-cert --tls-key [--client-ca]`): rustls through
//! tonic. With a client CA the server demands a client certificate signed by it (mutual
//! TLS) and refuses the handshake without one.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The PEM files of the server's TLS identity.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain, PEM (leaf first).
    pub cert: PathBuf,
    /// Private key of the leaf certificate, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) that client certificates must chain to; None accepts
    /// clients without certificates.
    pub client_ca: Option<PathBuf>,
}

/// Why the TLS files could not be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    #[error("TLS identity {} + {}: {message}", cert.display(), key.display())]
    Identity { cert: PathBuf, key: PathBuf, message: String },
}

fn read_pem(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            message: format!("no PEM block found (expected {what})"),
        });
    }
    Ok(bytes)
}

impl TlsFiles {
    /// Reads the files and checks that rustls accepts them.
    pub fn server_config(&self) -> Result<ServerTlsConfig, TlsError> {
        let cert = read_pem(&self.cert, "a certificate")?;
        let key = read_pem(&self.key, "a private key")?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_pem(ca, "a CA certificate")?));
        }
        // tonic checks the identity only when building the acceptor: do it now, so that
        // a bad key fails at start naming the files, not at the first connection.
        tonic::transport::Server::builder().tls_config(config.clone()).map_err(|e| TlsError::Identity {
            cert: self.cert.clone(),
            key: self.key.clone(),
            message: error_chain(&e),
        })?;
        Ok(config)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
