//! Opening TCP connections to a server (the RTSP connection, and both halves of an HTTP
//! tunnel), with a time limit and without Nagle delay.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::error::ClientError;

/// How long opening a TCP connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a TCP connection with [`CONNECT_TIMEOUT`].
pub(crate) async fn connect_tcp(addr: &str, what: &'static str) -> Result<TcpStream, ClientError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            return Err(ClientError::Connect {
                addr: addr.to_owned(),
                what,
                source,
            })
        }
        Err(_) => {
            return Err(ClientError::Timeout {
                what: format!("the TCP connection to {addr} ({what})"),
                seconds: CONNECT_TIMEOUT.as_secs(),
            })
        }
    };
    // Small requests and audio packets: no Nagle delay. Failure to set it is harmless.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
