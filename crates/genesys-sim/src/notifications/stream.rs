//! The streaming host: `GET /channels/{id}` upgrades to the channel's WebSocket. A
//! listener of its own, as Genesys serves sockets from another host than the API; no
//! bearer token is asked for (the connectUri is the capability), as there.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Out;
use crate::{Shared, lock};

/// Serves the streaming listener until `cancel` fires.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    let app = Router::new()
        .route("/channels/{id}", get(upgrade))
        .with_state(shared);
    let server = axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned());
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::warn!(error = %e, "sim: streaming server stopped with an error");
        }
    });
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let registered = lock(&shared.notifications).connect(&id, Instant::now());
    let Some((conn, rx)) = registered else {
        return (StatusCode::NOT_FOUND, "no such channel").into_response();
    };
    ws.on_upgrade(move |socket| run(socket, shared, id, conn, rx))
}

async fn run(
    mut socket: WebSocket,
    shared: Arc<Shared>,
    id: String,
    conn: u64,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Out>,
) {
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(t)) => {
                    if socket.send(Message::Text(t.into())).await.is_err() {
                        break;
                    }
                }
                Some(Out::Close(code, reason)) => {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame { code, reason: reason.into() })))
                        .await;
                    break;
                }
                // Dropping the socket without a close frame is the fault itself.
                Some(Out::Drop) | None => break,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let ping = serde_json::from_str::<Value>(t.as_str())
                        .ok()
                        .is_some_and(|v| v["message"] == "ping");
                    let live = lock(&shared.notifications).is_live(&id, conn);
                    if ping && live {
                        let pong = json!({"topicName": "channel.metadata", "eventBody": {"message": "pong"}});
                        if socket.send(Message::Text(pong.to_string().into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    lock(&shared.notifications).disconnected(&id, conn);
}
