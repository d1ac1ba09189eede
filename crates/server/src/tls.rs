//! RTSPS and HTTPS: RTSP (RFC 2326 over TLS, the `rtsps://` scheme) and the HTTP port's
//! services behind TLS (rustls with the `ring` provider; TLS 1.2 and 1.3), each on its own
//! port, when a certificate is configured. After the handshake a connection is served by
//! exactly the code of its plain twin ([`crate::rtsp::Conn`], [`crate::http`]), which is
//! told that it runs over TLS (Basic authentication is offered only there).
//!
//! Left out: client certificates, SNI-based certificate choice, certificate reloading.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::delivery::new_writer;
use crate::rtsp::Conn;
use crate::state::ServerState;

/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Accepts RTSPS connections.
pub async fn rtsps_accept_loop(state: Arc<ServerState>, listener: TcpListener, tls: TlsAcceptor) {
    accept_loop(
        state,
        listener,
        tls,
        "RTSPS",
        |state, stream, peer, local| async move {
            state.counters.connections.fetch_add(1, Ordering::Relaxed);
            let (rd, wr) = tokio::io::split(stream);
            let conn_id = state.next_conn_id();
            let mut conn = Conn::new(state.clone(), peer, local, new_writer(wr), conn_id);
            conn.set_tls(true);
            tracing::debug!(%peer, conn_id, "RTSPS connection");
            conn.run(rd, None).await;
            state.sessions.teardown_connection(conn_id);
            tracing::debug!(%peer, conn_id, "RTSPS connection closed");
        },
    )
    .await
}

/// Accepts HTTPS connections.
pub async fn https_accept_loop(state: Arc<ServerState>, listener: TcpListener, tls: TlsAcceptor) {
    accept_loop(
        state,
        listener,
        tls,
        "HTTPS",
        |state, stream, peer, local| crate::http::serve_stream(state, stream, peer, local, true),
    )
    .await
}

/// The TLS listeners' loop: the connection limits of `[limits]` (a refused connection is
/// closed before the handshake), the handshake with a time limit, then `serve` in its own
/// task, whose panic closes that connection only.
async fn accept_loop<F, Fut>(
    state: Arc<ServerState>,
    listener: TcpListener,
    tls: TlsAcceptor,
    what: &'static str,
    serve: F,
) where
    F: Fn(Arc<ServerState>, TlsStream<TcpStream>, SocketAddr, SocketAddr) -> Fut
        + Clone
        + Send
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let guard = match crate::limits::admit(&state, peer) {
                    Ok(g) => g,
                    Err(reason) => {
                        tracing::warn!(%peer, %reason, "{what} connection refused");
                        continue;
                    }
                };
                let (state, tls, serve) = (state.clone(), tls.clone(), serve.clone());
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let local = stream
                        .local_addr()
                        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let fut = serve(state.clone(), s, peer, local);
                            crate::limits::run_isolated(&state.limit_counters, peer, what, fut)
                                .await;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "{what}: TLS handshake failed")
                        }
                        Err(_) => tracing::info!(%peer, "{what}: TLS handshake timed out"),
                    }
                    drop(guard);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
