//! The response sink: the connection plus a stall timeout on every write, so a client that
//! stops reading cannot hold a session (and its maildrop lock) forever.

use std::io;
use std::time::Duration;

use pop3_proto::Reply;
use server_kit::Conn;

pub(crate) struct Wire {
    pub conn: Conn,
    write_timeout: Duration,
}

impl Wire {
    pub fn new(conn: Conn, write_timeout: Duration) -> Wire {
        Wire {
            conn,
            write_timeout,
        }
    }

    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match tokio::time::timeout(self.write_timeout, self.conn.write(data)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        match tokio::time::timeout(self.write_timeout, self.conn.flush()).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "flush timed out")),
        }
    }

    pub async fn reply(&mut self, reply: &Reply) -> io::Result<()> {
        self.write(&reply.to_bytes()).await
    }

    /// Flushes and closes, bounded by the write timeout (shortened to
    /// [`server_kit::CLOSING_TIMEOUT`] once the connection's slot was given back).
    pub async fn close(&mut self, slot: &server_kit::ConnSlot) {
        let timeout = slot.closing_timeout(self.write_timeout);
        let _ = tokio::time::timeout(timeout, self.conn.close()).await;
    }
}
