//! RTSPS and HTTPS: RTSP (RFC 2326 over TLS, the `rtsps://` scheme) and the HTTP port's
//! services behind TLS (rustls with the `ring` provider; TLS 1.2 and 1.3), each on its own
//! port, when a certificate is configured. After the handshake a connection is served by
//! exactly the code of its plain twin (the accept loop in [`super::accept`] hands both the
//! same stream type), which is told that it runs over TLS (Basic authentication is offered
//! only there).
//!
//! Left out: client certificates, SNI-based certificate choice, certificate reloading.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the certificate is and which ports speak TLS.
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM certificate chain (the server's certificate first).
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// RTSPS listen address (`None`: no RTSPS).
    pub rtsps_listen: Option<SocketAddr>,
    /// HTTPS listen address (`None`: no HTTPS).
    pub https_listen: Option<SocketAddr>,
}

/// Builds the acceptor. Errors name the file and what is wrong with it.
pub fn acceptor(opts: &TlsOptions) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&opts.cert)
        .map_err(|e| {
            format!(
                "{}: cannot read the TLS certificate: {e}",
                opts.cert.display()
            )
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate: {e}", opts.cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: holds no PEM certificate (-----BEGIN CERTIFICATE-----); make one with `ipcamd cert --self-signed`",
            opts.cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&opts.key)
        .map_err(|e| format!("{}: cannot read a PEM private key: {e}", opts.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} / {}: the certificate and key do not go together or are unusable: {e}",
                opts.cert.display(),
                opts.key.display()
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
