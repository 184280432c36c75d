//! The floor: the least work a server on this machine can do for the fanout
//! scenario, so benchmark numbers can be read as a fraction of it.
//!
//! It speaks just enough Engine.IO 4 / Socket.IO v5 over WebSocket for the
//! load generator (open packet, namespace CONNECT, pong handling) and relays
//! every received `message` event frame, unchanged and encoded once, to
//! every other connection through a broadcast channel: one shared buffer,
//! one WebSocket frame per socket, frames waiting for the same socket
//! written together (as engineioxide does). No rooms, no Redis, no parsing
//! beyond the packet type.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use crate::client::lean_ws_config;

/// Messages buffered per lagging connection before it starts losing them.
const BROADCAST_CAPACITY: usize = 4096;

/// Counters the floor logs on shutdown.
#[derive(Debug, Default)]
pub struct FloorStats {
    pub connections: AtomicU64,
    pub relayed: AtomicU64,
    pub lagged: AtomicU64,
}

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<Arc<FloorStats>> {
    let (relay, _) = broadcast::channel::<(u64, Message)>(BROADCAST_CAPACITY);
    let stats = Arc::new(FloorStats::default());
    let mut next_id: u64 = 0;
    info!(addr = %listener.local_addr()?, "floor listening");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of descriptors and the like: keep serving the others.
                        warn!(%err, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                next_id += 1;
                let id = next_id;
                let relay = relay.clone();
                let stats = stats.clone();
                tokio::spawn(async move {
                    if let Err(err) = connection(id, stream, peer, relay, &stats).await {
                        debug!(%err, %peer, "floor connection ended");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    Ok(stats)
}

async fn connection(
    id: u64,
    stream: TcpStream,
    peer: SocketAddr,
    relay: broadcast::Sender<(u64, Message)>,
    stats: &FloorStats,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    stream.set_nodelay(true)?;
    let mut ws =
        tokio_tungstenite::accept_async_with_config(stream, Some(lean_ws_config())).await?;
    let sid = format!("floor{id:011}");
    ws.send(Message::text(format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    )))
    .await?;
    let mut incoming = relay.subscribe();
    stats.connections.fetch_add(1, Relaxed);
    debug!(%peer, id, "floor connection");
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => return Err(err),
                };
                match text.as_bytes() {
                    // Socket.IO CONNECT to a namespace: accept it.
                    [b'4', b'0', rest @ ..] => {
                        let nsp = std::str::from_utf8(rest).unwrap_or("").split(',').next().unwrap_or("");
                        let prefix = if nsp.starts_with('/') { format!("{nsp},") } else { String::new() };
                        ws.send(Message::text(format!(r#"40{prefix}{{"sid":"{sid}"}}"#))).await?;
                    }
                    [b'4', b'2', ..] => {
                        // No receivers is not an error: nothing to relay to.
                        let _ = relay.send((id, Message::Text(text)));
                    }
                    [b'1', ..] | [b'4', b'1', ..] => break,
                    _ => {}
                }
            }
            relayed = incoming.recv() => {
                // Queue this frame and every one already waiting, then write
                // them with one flush, as engineioxide does: under load
                // that is one syscall for many frames.
                let mut next = relayed;
                loop {
                    match next {
                        Ok((from, message)) => {
                            if from != id {
                                ws.feed(message).await?;
                                stats.relayed.fetch_add(1, Relaxed);
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            stats.lagged.fetch_add(missed, Relaxed);
                        }
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                    next = match incoming.try_recv() {
                        Ok(item) => Ok(item),
                        Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                            Err(broadcast::error::RecvError::Lagged(missed))
                        }
                        Err(broadcast::error::TryRecvError::Closed) => {
                            Err(broadcast::error::RecvError::Closed)
                        }
                        Err(broadcast::error::TryRecvError::Empty) => break,
                    };
                }
                ws.flush().await?;
            }
        }
    }
    Ok(())
}
