//! Room joins that cannot outlive the socket.
//!
//! socketioxide's `join` adds the socket's id to the room even when the
//! socket has already disconnected, and nothing removes it afterwards: the
//! disconnect removed the socket from its rooms before the join ran. When
//! socketioxide ran the `join` handler in a task of its own, a client that
//! sent `join` and closed at once (on long-polling both arrive in one POST)
//! lost that race often, and each loss kept about 230 bytes for the life
//! of the process. The handler now runs in arrival order
//! ([`crate::relay_order`]), but a close can still come from elsewhere
//! while it runs (a heartbeat timeout, the other polling request), so the
//! join checks. Node's socket.io refuses such joins since 4.5.2
//! (socket.io #4380).

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

/// Joins `room` if the socket is still connected; whether it is in the room.
///
/// `close` clears the socket's connected flag before it removes the socket
/// from its rooms, and both this check and that flag are sequentially
/// consistent. So either the check sees the socket connected, and the
/// removal comes after this join and undoes it, or the check sees it closed,
/// and the removal is redone here. `leave_all`, not `leave`: `leave` keeps
/// the socket's (now empty) entry in the adapter's socket-to-rooms map.
pub fn join_if_connected<A: Adapter>(socket: &SocketRef<A>, room: String) -> bool {
    socket.join(room);
    if socket.connected() {
        return true;
    }
    socket.leave_all();
    false
}
