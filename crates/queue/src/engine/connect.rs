//! Connecting: which hosts to try for a destination (the smarthost, or the MX hosts in
//! preference order — RFC 5321 §5.1), and opening a session with one (greeting, EHLO,
//! STARTTLS, AUTH).

use std::net::SocketAddr;

use rustls_pki_types::ServerName;

use super::Engine;
use crate::client::{Client, ConnError};
use crate::config::SmarthostTls;
use crate::dns::DnsError;

impl Engine {
    /// The hosts (name, port) to try, best first.
    pub(super) async fn hosts(&self, dest: &str) -> Result<Vec<(String, u16)>, DnsError> {
        if let Some(s) = &self.config.smarthost {
            return Ok(vec![(s.host.clone(), s.port)]);
        }
        let port = self.config.remote_port;
        Ok(self
            .dns
            .mail_hosts(dest)
            .await?
            .into_iter()
            .map(|h| (h, port))
            .collect())
    }

    /// Connects, reads the greeting, EHLO, STARTTLS (opportunistic unless required), AUTH.
    pub(super) async fn open(
        &self,
        dest: &str,
        host: &str,
        addr: SocketAddr,
    ) -> Result<Client, ConnError> {
        let c = &self.config;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ConnError(format!("bad host name {host}")))?;
        let smarthost = c.smarthost.as_ref();
        let implicit = smarthost.is_some_and(|s| s.tls == SmarthostTls::Implicit);
        let required = c.tls_required.iter().any(|d| d.eq_ignore_ascii_case(dest))
            || smarthost.is_some_and(|s| s.tls == SmarthostTls::StartTls);
        let verify = c.tls_required.iter().any(|d| d.eq_ignore_ascii_case(dest));
        let connector = if verify {
            &self.tls.verified
        } else {
            &self.tls.opportunistic
        };
        let (mut client, greeting) = if implicit {
            Client::connect_tls(
                addr,
                connector,
                name.clone(),
                c.connect_timeout,
                c.command_timeout,
            )
            .await?
        } else {
            Client::connect(addr, c.connect_timeout, c.command_timeout).await?
        };
        if greeting.code != 220 {
            client.quit().await;
            return Err(ConnError(format!("greeting: {}", greeting.summary())));
        }
        let reply = client.ehlo(&c.hostname).await?;
        if !reply.is_positive() {
            return Err(ConnError(format!("EHLO: {}", reply.summary())));
        }
        let plain_ok = smarthost.is_none_or(|s| s.tls == SmarthostTls::None);
        if !client.tls && client.caps.starttls && !(smarthost.is_some() && plain_ok) {
            // RFC 3207 / RFC 7435: use TLS whenever offered.
            client = client.starttls(connector, name, &c.hostname).await?;
        } else if !client.tls && required {
            client.quit().await;
            return Err(ConnError("TLS required but STARTTLS not offered".into()));
        }
        if let Some(s) = smarthost
            && let (Some(user), Some(pass)) = (&s.username, &s.password)
        {
            if !client.tls && !addr.ip().is_loopback() {
                return Err(ConnError(
                    "refusing to send the smarthost password without TLS".into(),
                ));
            }
            let reply = client.auth_plain(user, pass).await?;
            if !reply.is_positive() {
                return Err(ConnError(format!("AUTH: {}", reply.summary())));
            }
        }
        Ok(client)
    }
}
