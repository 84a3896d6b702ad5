//! The SMTP client connection (RFC 5321 §3, §4): greeting, EHLO, STARTTLS (RFC 3207),
//! AUTH PLAIN to a smarthost (RFC 4954), and mail transactions with DSN (RFC 3461), SMTPUTF8
//! (RFC 6531) and 8BITMIME (RFC 6152) parameters where the server offers them.
//!
//! PIPELINING (RFC 2920): when the server's EHLO lists it, MAIL FROM, every RCPT TO and DATA
//! go as one group (one write; split every `MAX_GROUP` commands) and the replies are then
//! read in order and matched to their commands (§3.1: every reply is checked; DATA is the last command of a group). Without it,
//! commands are sent one at a time. EHLO, STARTTLS and AUTH are never pipelined (§3.1: the
//! client waits for their replies), nor is the RSET after a failed transaction.
//!
//! Invariant: a reply is only ever matched to the command it answers. When that can no longer
//! be guaranteed (a reply did not come, the server said 421), the client is marked broken and
//! every further transaction fails at once with a connection error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::reply::{Capabilities, Parsed, ServerReply, parse_reply};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A failure that is not a reply: connection refused, timeout, TLS, garbage.
#[derive(Debug, Clone)]
pub struct ConnError(pub String);

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most commands in one pipelined group. Each reply is well under 100 bytes, so a group's
/// replies always fit in the socket buffers: the server can never block writing replies while
/// the client blocks writing commands (the pipelining deadlock).
const MAX_GROUP: usize = 100;

pub struct Client {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    pub caps: Capabilities,
    pub tls: bool,
    timeout: Duration,
    /// Replies may no longer match commands (see the module invariant).
    broken: bool,
}

/// One recipient of a transaction, with its DSN parameters.
pub struct TxRecipient<'a> {
    pub address: &'a str,
    /// `NOTIFY=` value, e.g. `FAILURE,DELAY`.
    pub notify: Option<String>,
    pub orcpt: Option<&'a str>,
}

pub struct TxEnvelope<'a> {
    pub sender: &'a str,
    pub recipients: Vec<TxRecipient<'a>>,
    pub envid: Option<&'a str>,
    /// `FULL` or `HDRS`.
    pub ret: Option<&'static str>,
    pub smtputf8: bool,
    pub eight_bit: bool,
}

/// The fate of a transaction: either a reply that applies to every recipient (MAIL refused,
/// or the DATA reply), with per-recipient RCPT replies for the refused ones.
pub struct TxOutcome {
    /// Per recipient (same order): the RCPT reply if it was refused, else the final reply.
    pub per_recipient: Vec<ServerReply>,
}

impl Client {
    /// Connects and reads the greeting; a non-220 greeting is returned as an error reply.
    pub async fn connect(
        addr: SocketAddr,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<(Client, ServerReply), ConnError> {
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnError(format!("connection to {addr} timed out")))?
            .map_err(|e| ConnError(format!("cannot connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let mut c = Client {
            io: Box::new(tcp),
            buf: Vec::new(),
            caps: Capabilities::default(),
            tls: false,
            timeout,
            broken: false,
        };
        let greeting = c.read_reply().await?;
        Ok((c, greeting))
    }

    /// Wraps the connection in TLS from the first byte (RFC 8314 implicit TLS).
    pub async fn connect_tls(
        addr: SocketAddr,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<(Client, ServerReply), ConnError> {
        let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ConnError(format!("connection to {addr} timed out")))?
            .map_err(|e| ConnError(format!("cannot connect to {addr}: {e}")))?;
        let tls = tokio::time::timeout(timeout, connector.connect(server_name, tcp))
            .await
            .map_err(|_| ConnError("TLS handshake timed out".into()))?
            .map_err(|e| ConnError(format!("TLS handshake failed: {e}")))?;
        let mut c = Client {
            io: Box::new(tls),
            buf: Vec::new(),
            caps: Capabilities::default(),
            tls: true,
            timeout,
            broken: false,
        };
        let greeting = c.read_reply().await?;
        Ok((c, greeting))
    }

    async fn read_reply_within(&mut self, limit: Duration) -> Result<ServerReply, ConnError> {
        loop {
            match parse_reply(&self.buf) {
                Parsed::Complete(reply, used) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Parsed::Invalid(why) => return Err(ConnError(format!("bad reply: {why}"))),
                Parsed::Incomplete => {}
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(limit, self.io.read(&mut chunk))
                .await
                .map_err(|_| ConnError("timed out waiting for a reply".into()))?
                .map_err(|e| ConnError(format!("read error: {e}")))?;
            if n == 0 {
                return Err(ConnError("connection closed by the server".into()));
            }
            self.buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
    }

    async fn read_reply(&mut self) -> Result<ServerReply, ConnError> {
        self.read_reply_within(self.timeout).await
    }

    async fn send(&mut self, data: &[u8]) -> Result<(), ConnError> {
        tokio::time::timeout(self.timeout, async {
            self.io.write_all(data).await?;
            self.io.flush().await
        })
        .await
        .map_err(|_| ConnError("timed out sending".into()))?
        .map_err(|e| ConnError(format!("write error: {e}")))
    }

    pub async fn command(&mut self, line: &str) -> Result<ServerReply, ConnError> {
        self.send(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply().await
    }

    /// EHLO, falling back to HELO when EHLO is refused (RFC 5321 §4.1.1.1, §3.2).
    pub async fn ehlo(&mut self, hostname: &str) -> Result<ServerReply, ConnError> {
        let reply = self.command(&format!("EHLO {hostname}")).await?;
        if reply.is_positive() {
            self.caps = Capabilities::from_ehlo(&reply);
            return Ok(reply);
        }
        self.caps = Capabilities::default();
        self.command(&format!("HELO {hostname}")).await
    }

    /// STARTTLS and a new EHLO (RFC 3207 §4.2: forget what was learnt before TLS).
    pub async fn starttls(
        mut self,
        connector: &TlsConnector,
        server_name: ServerName<'static>,
        hostname: &str,
    ) -> Result<Client, ConnError> {
        let reply = self.command("STARTTLS").await?;
        if reply.code != 220 {
            return Err(ConnError(format!("STARTTLS refused: {}", reply.summary())));
        }
        // RFC 3207 §5: anything the server sent after its 220 is not trusted.
        self.buf.clear();
        let io = tokio::time::timeout(self.timeout, connector.connect(server_name, self.io))
            .await
            .map_err(|_| ConnError("TLS handshake timed out".into()))?
            .map_err(|e| ConnError(format!("TLS handshake failed: {e}")))?;
        let mut c = Client {
            io: Box::new(io),
            buf: Vec::new(),
            caps: Capabilities::default(),
            tls: true,
            timeout: self.timeout,
            broken: false,
        };
        let reply = c.ehlo(hostname).await?;
        if !reply.is_positive() {
            return Err(ConnError(format!(
                "EHLO after STARTTLS: {}",
                reply.summary()
            )));
        }
        Ok(c)
    }

    /// AUTH PLAIN (RFC 4954 §4, RFC 4616) with an initial response.
    pub async fn auth_plain(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<ServerReply, ConnError> {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{user}\0{password}").as_bytes());
        self.command(&format!("AUTH PLAIN {token}")).await
    }

    /// One mail transaction. `Err` means the connection broke: the outcome for every
    /// recipient is unknown (RFC 5321 §6.1 — they will be retried).
    ///
    /// The outcome is the same whether or not the server pipelines: per recipient, the MAIL
    /// reply when MAIL was refused, else its RCPT reply when that was refused, else the DATA
    /// reply when DATA was refused, else the reply to the final dot.
    pub async fn transaction(
        &mut self,
        env: &TxEnvelope<'_>,
        body: &[u8],
        data_timeout: Duration,
    ) -> Result<TxOutcome, ConnError> {
        if self.broken {
            return Err(ConnError(
                "connection unusable after an earlier error".into(),
            ));
        }
        let mail = self.mail_command(env, body.len());
        let rcpts: Vec<String> = env
            .recipients
            .iter()
            .map(|r| self.rcpt_command(r))
            .collect();
        if self.caps.pipelining {
            self.pipelined_transaction(mail, rcpts, body, data_timeout)
                .await
        } else {
            self.serial_transaction(&mail, &rcpts, body, data_timeout)
                .await
        }
    }

    fn mail_command(&self, env: &TxEnvelope<'_>, size: usize) -> String {
        let mut mail = format!("MAIL FROM:<{}>", env.sender);
        if self.caps.size.is_some() {
            mail.push_str(&format!(" SIZE={size}"));
        }
        if env.eight_bit && self.caps.eightbitmime {
            mail.push_str(" BODY=8BITMIME");
        }
        if env.smtputf8 && self.caps.smtputf8 {
            mail.push_str(" SMTPUTF8");
        }
        if self.caps.dsn {
            if let Some(ret) = env.ret {
                mail.push_str(&format!(" RET={ret}"));
            }
            if let Some(id) = env.envid {
                mail.push_str(&format!(
                    " ENVID={}",
                    smtp_proto::xtext_encode(id.as_bytes())
                ));
            }
        }
        mail
    }

    fn rcpt_command(&self, r: &TxRecipient<'_>) -> String {
        let mut cmd = format!("RCPT TO:<{}>", r.address);
        if self.caps.dsn {
            if let Some(n) = &r.notify {
                cmd.push_str(&format!(" NOTIFY={n}"));
            }
            // RFC 3461 §4.2: ORCPT=addr-type ";" xtext; kept decoded in the queue.
            if let Some((kind, addr)) = r.orcpt.and_then(|o| o.split_once(';')) {
                let addr = smtp_proto::xtext_encode(addr.as_bytes());
                cmd.push_str(&format!(" ORCPT={kind};{addr}"));
            }
        }
        cmd
    }

    /// Without PIPELINING: each command waits for the previous reply, and the transaction
    /// stops at the first step that leaves nothing to send.
    async fn serial_transaction(
        &mut self,
        mail: &str,
        rcpts: &[String],
        body: &[u8],
        data_timeout: Duration,
    ) -> Result<TxOutcome, ConnError> {
        let reply = self.command(mail).await?;
        if !reply.is_positive() {
            self.reset().await;
            return Ok(TxOutcome {
                per_recipient: vec![reply; rcpts.len()],
            });
        }
        let mut rcpt_replies = Vec::with_capacity(rcpts.len());
        for cmd in rcpts {
            rcpt_replies.push(self.command(cmd).await?);
        }
        if !rcpt_replies.iter().any(ServerReply::is_positive) {
            self.reset().await;
            return Ok(TxOutcome {
                per_recipient: rcpt_replies,
            });
        }
        let reply = self.command("DATA").await?;
        let reply = self.check_data_reply(reply);
        if !reply.is_intermediate() {
            self.reset().await;
            return Ok(accepted_get(rcpt_replies, &reply));
        }
        self.send_body(body, data_timeout, rcpt_replies).await
    }

    /// RFC 2920 §3.1: MAIL, every RCPT and DATA as one group (DATA must end a group), then
    /// every reply checked in order.
    async fn pipelined_transaction(
        &mut self,
        mail: String,
        rcpts: Vec<String>,
        body: &[u8],
        data_timeout: Duration,
    ) -> Result<TxOutcome, ConnError> {
        let n = rcpts.len();
        let mut cmds = Vec::with_capacity(n + 2);
        cmds.push(mail);
        cmds.extend(rcpts);
        cmds.push("DATA".to_string());
        let mut replies = self.pipeline(&cmds).await?.into_iter();
        let (Some(mail_reply), Some(data_reply)) = (replies.next(), replies.next_back()) else {
            return Err(ConnError("missing replies to a pipelined group".into()));
        };
        let rcpt_replies: Vec<ServerReply> = replies.collect();
        let data_reply = self.check_data_reply(data_reply);
        if !mail_reply.is_positive() {
            // Whatever the RCPTs got (503 "need MAIL" from a correct server), MAIL decides.
            let refused = TxOutcome {
                per_recipient: vec![mail_reply; n],
            };
            return Ok(self.end_refused(refused, &data_reply, data_timeout).await);
        }
        if !data_reply.is_intermediate() || !rcpt_replies.iter().any(ServerReply::is_positive) {
            let outcome = accepted_get(rcpt_replies, &data_reply);
            return Ok(self.end_refused(outcome, &data_reply, data_timeout).await);
        }
        self.send_body(body, data_timeout, rcpt_replies).await
    }

    /// A 2xx reply to DATA is a protocol error (RFC 5321 §4.3.2: 354 or a failure): nothing was
    /// sent, so it must not count as delivery. It becomes a temporary failure, and the
    /// connection, whose state is unknown now, is not used again.
    fn check_data_reply(&mut self, reply: ServerReply) -> ServerReply {
        if !reply.is_positive() {
            return reply;
        }
        tracing::warn!(reply = %reply.summary(), "server answered DATA without 354");
        self.broken = true;
        ServerReply {
            code: 451,
            lines: vec![format!(
                "4.5.0 the server answered DATA with {} instead of 354",
                reply.code
            )],
        }
    }

    /// Ends a pipelined transaction in which no message is sent (MAIL, every RCPT or DATA
    /// refused), leaving the connection ready for the next one.
    async fn end_refused(
        &mut self,
        outcome: TxOutcome,
        data_reply: &ServerReply,
        data_timeout: Duration,
    ) -> TxOutcome {
        if data_reply.is_intermediate() {
            // RFC 2920 §3.1: "If the DATA command was properly rejected the client SMTP can
            // just issue RSET, but if the DATA command was accepted the client SMTP should
            // send a single dot." Nothing was accepted for anyone, so the message is not sent;
            // the reply to the dot changes no recipient's outcome.
            tracing::info!(
                reply = %data_reply.summary(),
                "DATA accepted although no recipient was: sending an empty message"
            );
            let ended = match self.send(b".\r\n").await {
                Ok(()) => self.read_reply_within(data_timeout).await.map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "ending the empty DATA failed");
                self.broken = true;
            }
        }
        self.reset().await;
        outcome
    }

    /// Sends `cmds` as groups of at most `MAX_GROUP` commands, one write each, and returns
    /// their replies in order (RFC 2920 §3.1). A 421 reply (RFC 5321 §3.8: the server is
    /// closing the connection) stands for every command not answered yet.
    async fn pipeline(&mut self, cmds: &[String]) -> Result<Vec<ServerReply>, ConnError> {
        let mut replies = Vec::with_capacity(cmds.len());
        for group in cmds.chunks(MAX_GROUP) {
            let mut out = String::new();
            for c in group {
                out.push_str(c);
                out.push_str("\r\n");
            }
            self.send(out.as_bytes()).await?;
            for _ in group {
                let reply = self.read_reply().await?;
                if reply.code == 421 {
                    self.broken = true;
                    replies.resize(cmds.len(), reply);
                    return Ok(replies);
                }
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    /// After a 354: the dot-stuffed message and the reply to the final dot, which is the
    /// outcome of every recipient whose RCPT was accepted.
    async fn send_body(
        &mut self,
        body: &[u8],
        data_timeout: Duration,
        rcpt_replies: Vec<ServerReply>,
    ) -> Result<TxOutcome, ConnError> {
        // RFC 5321 §2.3.8: no bare CR or LF on the wire, so a message stored with one cannot
        // end the data early at the receiver (SMTP smuggling through us).
        self.send(&smtp_proto::dot_stuff(&smtp_proto::to_crlf(body)))
            .await?;
        // RFC 5321 §4.5.3.2.6: wait 10 minutes for the reply to the final dot.
        let fin = self.read_reply_within(data_timeout).await?;
        Ok(accepted_get(rcpt_replies, &fin))
    }

    /// RSET after a transaction that ended early (RFC 5321 §4.1.1.5), so the connection can
    /// carry the next message. Its reply is read before anything else is sent; if it does not
    /// come, the connection is not used again.
    async fn reset(&mut self) {
        if self.broken {
            return;
        }
        if let Err(e) = self.command("RSET").await {
            tracing::debug!(error = %e, "RSET failed");
            self.broken = true;
        }
    }

    /// QUIT, ignoring errors: the work is done.
    pub async fn quit(mut self) {
        if !self.broken {
            let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT")).await;
        }
        let _ = self.io.shutdown().await;
    }
}

/// Each accepted recipient (positive RCPT reply) gets `reply`; the refused ones keep their
/// RCPT reply.
fn accepted_get(rcpt_replies: Vec<ServerReply>, reply: &ServerReply) -> TxOutcome {
    TxOutcome {
        per_recipient: rcpt_replies
            .into_iter()
            .map(|r| if r.is_positive() { reply.clone() } else { r })
            .collect(),
    }
}

/// The rustls verifier used for opportunistic STARTTLS: any certificate is accepted (RFC 7435
/// opportunistic security: encryption without authentication beats plain text; MTA-STS and
/// DANE are not implemented).
#[derive(Debug)]
pub struct AcceptAnyCert(pub Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// TLS connectors: opportunistic (no verification) and verified against the system roots.
#[derive(Clone)]
pub struct Connectors {
    pub opportunistic: TlsConnector,
    pub verified: TlsConnector,
}

impl Connectors {
    pub fn new() -> Result<Connectors, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let opportunistic = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(Arc::clone(&provider))))
            .with_no_client_auth();
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::warn!("no system CA certificates found: TLS-required deliveries will fail");
        }
        let verified = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Connectors {
            opportunistic: TlsConnector::from(Arc::new(opportunistic)),
            verified: TlsConnector::from(Arc::new(verified)),
        })
    }
}
