//! What every protocol session shares: a [`Conn`] (plain or TLS, with STARTTLS upgrade and
//! bounded line reading), [`ConnInfo`] about the peer, the [`Shutdown`] signal, and the
//! [`MemoryBudget`] for message data in flight.
//!
//! Sessions are generic over the byte stream (`BoxStream`), so tests can drive them over
//! `tokio::io::duplex` as well as TCP.

mod budget;
mod conn;
mod cpu;
mod info;
pub mod tls_gate;
mod trusted;

pub mod lean_tls;

pub use budget::{Charge, MemoryBudget};
pub use conn::{Conn, LineError};
pub use cpu::{HEAVY_BYTES, cpu_heavy};
pub use info::{CLOSING_TIMEOUT, ConnInfo, ConnSlot, PlaintextAuth};
pub use tokio_rustls::TlsAcceptor;
pub use tokio_util::sync::CancellationToken as Shutdown;
pub use trusted::{DEFAULT_TRUSTED_NETWORKS, Network, NetworkError, TrustedNetworks};

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional byte stream a session can run over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

pub type BoxStream = Box<dyn AsyncStream>;
