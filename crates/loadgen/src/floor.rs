//! The floor: the least work a server on this machine can do for the fanout
//! scenario, so benchmark numbers can be read as a fraction of it.
//!
//! It speaks just enough Engine.IO 4 / Socket.IO v5 over WebSocket for the
//! load generator (open packet, namespace CONNECT, pings ignored) and relays
//! every received `message` event to every other connection. The outgoing
//! WebSocket frame is encoded once (server frames are unmasked, so the bytes
//! are the same for every socket) and appended to each socket's output
//! buffer; one flusher task then writes every dirty socket with a single
//! non-blocking `write`, so frames that arrive in the same scheduler round
//! share a syscall (engineioxide batches the same way). Only a socket whose
//! kernel buffer is full waits for writability, in its own task. No rooms,
//! no Redis, no JSON.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tracing::{debug, info, warn};

/// Largest HTTP upgrade request accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// Largest incoming WebSocket frame payload accepted.
const MAX_FRAME: u64 = 1 << 20;
/// A socket whose backlog grows past this is too slow: further frames are
/// dropped (and counted) rather than buffered without bound.
const MAX_BACKLOG: usize = 16 << 20;

/// Counters the floor logs on shutdown.
#[derive(Debug, Default)]
pub struct FloorStats {
    pub connections: AtomicU64,
    pub relayed: AtomicU64,
    pub backlogged: AtomicU64,
    pub dropped: AtomicU64,
}

/// One connected socket, as seen by whoever relays to it.
#[derive(Debug)]
struct Peer {
    stream: Arc<TcpStream>,
    /// Bytes not written yet, oldest first.
    backlog: Mutex<BytesMut>,
    /// Queued for the flusher.
    dirty: AtomicBool,
    /// Wakes this socket's writer when the kernel buffer was full.
    wake: Notify,
}

impl Peer {
    /// Queues `frame` and registers the socket with the flusher.
    fn send(self: &Arc<Self>, frame: &[u8], hub: &Hub, stats: &FloorStats) {
        {
            let Ok(mut backlog) = self.backlog.lock() else {
                return;
            };
            if backlog.len() + frame.len() > MAX_BACKLOG {
                stats.dropped.fetch_add(1, Relaxed);
                return;
            }
            backlog.extend_from_slice(frame);
        }
        if !self.dirty.swap(true, Relaxed) {
            if let Ok(mut dirty) = hub.dirty.lock() {
                dirty.push(self.clone());
            }
            hub.flush.notify_one();
        }
    }

    /// Writes as much of the backlog as the kernel takes now; true when
    /// something is left (the socket is not writable).
    fn write_now(&self) -> bool {
        let Ok(mut backlog) = self.backlog.lock() else {
            return false;
        };
        while !backlog.is_empty() {
            match self.stream.try_write(&backlog) {
                Ok(written) => backlog.advance(written),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return true,
                // A dead socket: its reader notices and removes it.
                Err(_) => {
                    backlog.clear();
                    return false;
                }
            }
        }
        false
    }

    /// The slow path: waits for writability while a backlog remains.
    async fn write_when_writable(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            while self.write_now() {
                if self.stream.writable().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Every connected socket by id, and the sockets with output to write.
#[derive(Debug, Default)]
struct Hub {
    peers: Mutex<HashMap<u64, Arc<Peer>>>,
    dirty: Mutex<Vec<Arc<Peer>>>,
    flush: Notify,
}

impl Hub {
    fn relay(&self, from: u64, frame: &[u8], stats: &FloorStats) {
        let Ok(peers) = self.peers.lock() else {
            return;
        };
        for (id, peer) in peers.iter() {
            if *id != from {
                peer.send(frame, self, stats);
                stats.relayed.fetch_add(1, Relaxed);
            }
        }
    }

    /// Writes every dirty socket once per round.
    async fn flusher(self: Arc<Self>, stats: Arc<FloorStats>) {
        loop {
            self.flush.notified().await;
            // Let the readers that are ready queue their frames first, so
            // they leave in the same write.
            tokio::task::yield_now().await;
            let dirty = match self.dirty.lock() {
                Ok(mut dirty) => std::mem::take(&mut *dirty),
                Err(_) => return,
            };
            for peer in dirty {
                peer.dirty.store(false, Relaxed);
                if peer.write_now() {
                    stats.backlogged.fetch_add(1, Relaxed);
                    peer.wake.notify_one();
                }
            }
        }
    }
}

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<Arc<FloorStats>> {
    let hub = Arc::new(Hub::default());
    let stats = Arc::new(FloorStats::default());
    let flusher = tokio::spawn(hub.clone().flusher(stats.clone()));
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
                let hub = hub.clone();
                let stats = stats.clone();
                tokio::spawn(async move {
                    if let Err(err) = connection(id, stream, &hub, &stats).await {
                        debug!(%err, %peer, "floor connection ended");
                    }
                    if let Ok(mut peers) = hub.peers.lock() {
                        peers.remove(&id);
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    flusher.abort();
    Ok(stats)
}

async fn connection(
    id: u64,
    mut stream: TcpStream,
    hub: &Hub,
    stats: &FloorStats,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let key = read_upgrade_request(&mut stream).await?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await?;
    let sid = format!("floor{id:011}");
    stream
        .write_all(&text_frame(&format!(
            r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
        )))
        .await?;

    let stream = Arc::new(stream);
    let peer = Arc::new(Peer {
        stream: stream.clone(),
        backlog: Mutex::new(BytesMut::new()),
        dirty: AtomicBool::new(false),
        wake: Notify::new(),
    });
    let writer = tokio::spawn(peer.clone().write_when_writable());
    if let Ok(mut peers) = hub.peers.lock() {
        peers.insert(id, peer.clone());
    }
    stats.connections.fetch_add(1, Relaxed);
    let result = read_frames(id, &stream, &peer, &sid, hub, stats).await;
    writer.abort();
    result
}

/// Reads and answers client frames until the connection ends.
async fn read_frames(
    id: u64,
    stream: &TcpStream,
    peer: &Arc<Peer>,
    sid: &str,
    hub: &Hub,
    stats: &FloorStats,
) -> io::Result<()> {
    let mut buffer = BytesMut::with_capacity(4096);
    loop {
        while let Some((opcode, payload)) = parse_frame(&mut buffer)? {
            match (opcode, payload.as_slice()) {
                // Close.
                (0x8, _) => return Ok(()),
                // WebSocket ping: pong with the same payload.
                (0x9, data) => peer.send(&frame(0xA, data), hub, stats),
                // Socket.IO CONNECT to a namespace: accept it.
                (0x1, [b'4', b'0', rest @ ..]) => {
                    let nsp = std::str::from_utf8(rest)
                        .unwrap_or("")
                        .split(',')
                        .next()
                        .unwrap_or("");
                    let prefix = if nsp.starts_with('/') {
                        format!("{nsp},")
                    } else {
                        String::new()
                    };
                    peer.send(
                        &text_frame(&format!(r#"40{prefix}{{"sid":"{sid}"}}"#)),
                        hub,
                        stats,
                    );
                }
                // An event: the same text, encoded once, to everybody else.
                (0x1, [b'4', b'2', ..]) => hub.relay(id, &frame(0x1, &payload), stats),
                // Engine.IO close or Socket.IO DISCONNECT.
                (0x1, [b'1', ..]) | (0x1, [b'4', b'1', ..]) => return Ok(()),
                _ => {}
            }
        }
        stream.readable().await?;
        match stream.try_read_buf(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
        }
    }
}

/// Reads the HTTP upgrade request and returns its `Sec-WebSocket-Key`.
async fn read_upgrade_request(stream: &mut TcpStream) -> io::Result<String> {
    let mut request = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        if request.len() > MAX_REQUEST {
            return Err(invalid("upgrade request too large"));
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(invalid("closed during the upgrade"));
        }
        request.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&request);
    text.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim().to_owned())
        })
        .ok_or_else(|| invalid("no Sec-WebSocket-Key"))
}

/// Parses one complete client frame off the front of `buffer`: (opcode,
/// unmasked payload); `None` until a whole frame is there.
fn parse_frame(buffer: &mut BytesMut) -> io::Result<Option<(u8, Vec<u8>)>> {
    let [first, second, ..] = buffer[..] else {
        return Ok(None);
    };
    if first & 0x80 == 0 {
        return Err(invalid("fragmented frames are not supported by the floor"));
    }
    let opcode = first & 0x0F;
    let masked = second & 0x80 != 0;
    let (length, mut offset) = match second & 0x7F {
        126 if buffer.len() >= 4 => (u64::from(u16::from_be_bytes([buffer[2], buffer[3]])), 4),
        127 if buffer.len() >= 10 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&buffer[2..10]);
            (u64::from_be_bytes(bytes), 10)
        }
        126 | 127 => return Ok(None),
        short => (u64::from(short), 2),
    };
    if length > MAX_FRAME {
        return Err(invalid("frame too large"));
    }
    let mut mask = [0u8; 4];
    if masked {
        if buffer.len() < offset + 4 {
            return Ok(None);
        }
        mask.copy_from_slice(&buffer[offset..offset + 4]);
        offset += 4;
    }
    // Bounded by MAX_FRAME above.
    let length = length as usize;
    if buffer.len() < offset + length {
        return Ok(None);
    }
    buffer.advance(offset);
    let mut payload = buffer.split_to(length).to_vec();
    if masked {
        for (index, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[index % 4];
        }
    }
    Ok(Some((opcode, payload)))
}

/// An unmasked server frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        len if len < 126 => out.push(len as u8),
        len if len <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn text_frame(text: &str) -> Vec<u8> {
    frame(0x1, text.as_bytes())
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = frame(opcode, payload);
        let header = out.len() - payload.len();
        out[1] |= 0x80;
        let masked: Vec<u8> = payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        out.truncate(header);
        out.extend_from_slice(&mask);
        out.extend_from_slice(&masked);
        out
    }

    #[test]
    fn frames_parse_across_lengths_and_partial_reads() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let bytes = masked(0x1, &payload, [1, 2, 3, 4]);
            let mut buffer = BytesMut::from(&bytes[..bytes.len() - 1]);
            assert!(parse_frame(&mut buffer).unwrap().is_none(), "len {len}");
            buffer.extend_from_slice(&bytes[bytes.len() - 1..]);
            assert_eq!(
                parse_frame(&mut buffer).unwrap(),
                Some((0x1, payload)),
                "len {len}"
            );
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn oversized_and_fragmented_frames_are_refused() {
        let mut huge = BytesMut::from(&[0x81u8, 127, 0, 0, 0, 0, 1, 0, 0, 0][..]);
        assert!(parse_frame(&mut huge).is_err());
        let mut fragment = BytesMut::from(&[0x01u8, 0x00][..]);
        assert!(parse_frame(&mut fragment).is_err());
    }
}
