//! The WebSocket of one channel, opened as an HTTP/1.1 upgrade by the daemon's own
//! reqwest client (same proxy settings, rustls roots, user agent and connect timeout as
//! every API call), then spoken by tokio-tungstenite.
//!
//! Errors never carry the URL: it is the channel's capability (see the parent module).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{StatusCode, header};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use url::Url;

/// No message the daemon reads is anywhere near this; a larger one is refused by the
/// protocol layer instead of being buffered.
pub const MAX_MESSAGE: usize = 1024 * 1024;

/// Why a socket could not be opened or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("the channel's connectUri is not a usable wss URL")]
    BadUrl,
    #[error("WebSocket handshake answered {0}")]
    Refused(u16),
    #[error("WebSocket handshake failed: {0}")]
    Handshake(String),
    #[error("WebSocket handshake timed out")]
    Timeout,
    #[error("WebSocket closed{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    #[error("WebSocket error: {0}")]
    Protocol(String),
}

/// The http(s) URL the upgrade request goes to: `wss` (or `ws` on loopback only, for the
/// simulator) becomes `https` (`http`).
pub fn ws_url(connect_uri: &str) -> Result<Url, SocketError> {
    let mut url = Url::parse(connect_uri).map_err(|_| SocketError::BadUrl)?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let scheme = match url.scheme() {
        "wss" => "https",
        "ws" if loopback => "http",
        _ => return Err(SocketError::BadUrl),
    };
    url.set_scheme(scheme).map_err(|()| SocketError::BadUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SocketError::BadUrl);
    }
    Ok(url)
}

/// An open socket.
pub struct Socket {
    ws: WebSocketStream<reqwest::Upgraded>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket").finish_non_exhaustive()
    }
}

impl Socket {
    /// Opens the socket; the whole handshake is bounded by `timeout`.
    pub async fn connect(
        http: &reqwest::Client,
        connect_uri: &str,
        timeout: Duration,
    ) -> Result<Self, SocketError> {
        let url = ws_url(connect_uri)?;
        let key = generate_key();
        let handshake = async {
            let resp = http
                .get(url)
                .header(header::CONNECTION, "Upgrade")
                .header(header::UPGRADE, "websocket")
                .header(header::SEC_WEBSOCKET_VERSION, "13")
                .header(header::SEC_WEBSOCKET_KEY, &key)
                .send()
                .await
                .map_err(|e| SocketError::Handshake(super::super::describe_transport(&e)))?;
            if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                return Err(SocketError::Refused(resp.status().as_u16()));
            }
            let accept = resp
                .headers()
                .get(header::SEC_WEBSOCKET_ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if accept.as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
                return Err(SocketError::Handshake(
                    "the server's Sec-WebSocket-Accept does not match".into(),
                ));
            }
            let upgraded = resp
                .upgrade()
                .await
                .map_err(|e| SocketError::Handshake(super::super::describe_transport(&e)))?;
            let config = WebSocketConfig::default()
                .max_message_size(Some(MAX_MESSAGE))
                .max_frame_size(Some(MAX_MESSAGE));
            Ok(WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await)
        };
        let ws = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| SocketError::Timeout)??;
        Ok(Self { ws })
    }

    /// The next text message. Pings are answered by the protocol layer; binary frames are
    /// not part of the API and are skipped. `Err(Closed)` once the socket is gone.
    pub async fn next_text(&mut self) -> Result<String, SocketError> {
        loop {
            match self.ws.next().await {
                None => return Err(SocketError::Closed(None)),
                Some(Err(tungstenite::Error::ConnectionClosed)) => {
                    return Err(SocketError::Closed(None));
                }
                Some(Err(e)) => return Err(SocketError::Protocol(e.to_string())),
                Some(Ok(Frame::Text(t))) => return Ok(t.as_str().to_owned()),
                Some(Ok(Frame::Close(frame))) => {
                    return Err(SocketError::Closed(
                        frame.map(|f| format!("{} {}", u16::from(f.code), f.reason)),
                    ));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends Genesys' application-level ping (`{"message":"ping"}`); the answer comes back
    /// on `channel.metadata`.
    pub async fn ping(&mut self) -> Result<(), SocketError> {
        self.ws
            .send(Frame::text(r#"{"message":"ping"}"#))
            .await
            .map_err(|e| SocketError::Protocol(e.to_string()))
    }

    /// Closes politely; errors are irrelevant at that point.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_wss_or_loopback_ws() {
        assert_eq!(
            ws_url("wss://streaming.mypurecloud.com/channels/x")
                .map(|u| u.to_string())
                .ok(),
            Some("https://streaming.mypurecloud.com/channels/x".to_owned())
        );
        assert!(ws_url("ws://127.0.0.1:9/channels/x").is_ok());
        assert!(ws_url("ws://[::1]:9/channels/x").is_ok());
        assert!(ws_url("ws://streaming.mypurecloud.com/channels/x").is_err());
        assert!(ws_url("https://streaming.mypurecloud.com/channels/x").is_err());
        assert!(ws_url("wss://user:pw@streaming.mypurecloud.com/x").is_err());
        assert!(ws_url("not a url").is_err());
    }

    #[test]
    fn errors_carry_no_url() {
        let e = ws_url("ws://10.0.0.1/channels/streaming-secret").unwrap_err();
        assert!(!e.to_string().contains("secret"));
    }
}
