//! One ACME issuance (RFC 8555 §7.4): account, order, one challenge per authorization,
//! finalize with a CSR, download the chain.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier, NewAccount, NewOrder,
    OrderStatus, RetryPolicy,
};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::files::{self, StoredAccount};
use super::{AcmeConfig, Challenge};
use crate::cert_resolver::{AlpnChallenges, alpn_challenge_cert};

/// Where challenge answers go while an authorization is in progress.
#[derive(Clone)]
pub struct Responders {
    pub http: Option<Arc<web::acme::AcmeTokens>>,
    pub alpn: Arc<AlpnChallenges>,
}

/// A new certificate chain (PEM, leaf first) and its private key (PEM).
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
}

/// What the CA said about names it would not validate, when others passed.
#[derive(Debug)]
pub struct PartlyInvalid {
    pub valid: Vec<String>,
    pub failed: Vec<(String, String)>,
}

impl std::fmt::Display for PartlyInvalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the CA could not validate ")?;
        for (i, (name, why)) in self.failed.iter().enumerate() {
            if i > 0 {
                write!(f, "; ")?;
            }
            write!(f, "{name} ({why})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PartlyInvalid {}

/// Runs one order for `names` and returns the certificate.
pub async fn obtain(
    cfg: &AcmeConfig,
    challenge: Challenge,
    names: &[String],
    data_dir: &Path,
    responders: &Responders,
) -> anyhow::Result<Issued> {
    let account = account(cfg, data_dir).await?;
    let identifiers: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
        Ok(o) => o,
        // RFC 8555 §7.3.1: the CA forgot the account (a test CA restarted): make a new one.
        Err(e) if e.to_string().contains("accountDoesNotExist") => {
            tracing::warn!("ACME: the CA does not know our account; creating a new one");
            let account = new_account(cfg, data_dir).await?;
            account
                .new_order(&NewOrder::new(&identifiers))
                .await
                .context("cannot create the order")?
        }
        Err(e) => return Err(e).context("cannot create the order"),
    };

    // Answers stay published until this guard is dropped, whatever happens below.
    let mut published = Published {
        responders: responders.clone(),
        tokens: Vec::new(),
        names: Vec::new(),
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.context("cannot read an authorization")?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            // Validated recently for this account (RFC 8555 §7.1.4): nothing to prove.
            AuthorizationStatus::Valid => continue,
            s => bail!("an authorization is {s:?}"),
        }
        let kind = match challenge {
            Challenge::Http01 => ChallengeType::Http01,
            Challenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        };
        let mut ch = authz
            .challenge(kind.clone())
            .ok_or_else(|| anyhow!("the CA offers no {kind:?} challenge"))?;
        let name = match ch.identifier().identifier {
            Identifier::Dns(n) => n.clone(),
            other => bail!("unexpected identifier {other:?}"),
        };
        let key_auth = ch.key_authorization();
        match challenge {
            Challenge::Http01 => {
                let Some(tokens) = &responders.http else {
                    bail!("HTTP-01 needs the [listen] http listener");
                };
                tokens.insert(&ch.token, key_auth.as_str());
                published.tokens.push(ch.token.clone());
            }
            Challenge::TlsAlpn01 => {
                // RFC 8737 §3: the SHA-256 digest of the key authorization.
                let cert = alpn_challenge_cert(&name, key_auth.digest().as_ref())?;
                responders.alpn.insert(&name, cert);
                published.names.push(name.clone());
            }
        }
        tracing::info!(name, challenge = ?kind, "ACME: challenge ready");
        ch.set_ready()
            .await
            .with_context(|| format!("cannot tell the CA the challenge for {name} is ready"))?;
    }

    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(500))
        .timeout(Duration::from_secs(cfg.attempt_timeout_secs.max(10)));
    let status = order.poll_ready(&retry).await;
    drop(published);
    match status {
        Ok(OrderStatus::Ready) => {}
        // An invalid order comes back as the order's problem (RFC 8555 §7.1.3 `error`), or as
        // the status: say which names failed and why.
        Ok(OrderStatus::Invalid) | Err(instant_acme::Error::Api(_)) => {
            let partly = invalid_names(&mut order).await;
            if partly.failed.is_empty() {
                return Err(match status {
                    Err(e) => anyhow!(e).context("waiting for validation"),
                    Ok(_) => anyhow!("the order is invalid"),
                });
            }
            return Err(partly.into());
        }
        Ok(s) => bail!("the order is {s:?}, not ready"),
        Err(e) => return Err(e).context("waiting for validation"),
    }

    let key = rcgen::KeyPair::generate().context("cannot generate the certificate key")?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("cannot make the certificate request")?;
    // The names are in subjectAltName; RFC 8555 §7.4 puts no constraint on the subject.
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .context("cannot sign the certificate request")?;
    order
        .finalize_csr(csr.der())
        .await
        .context("cannot finalize the order")?;
    let chain_pem = order
        .poll_certificate(&retry)
        .await
        .context("cannot download the certificate")?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

/// The names whose authorization failed, with the CA's reason, and those that passed.
async fn invalid_names(order: &mut instant_acme::Order) -> PartlyInvalid {
    let mut out = PartlyInvalid {
        valid: Vec::new(),
        failed: Vec::new(),
    };
    let mut authorizations = order.authorizations();
    while let Some(Ok(authz)) = authorizations.next().await {
        let name = authz.identifier().to_string();
        if authz.status == AuthorizationStatus::Valid {
            out.valid.push(name);
        } else {
            let why = authz
                .challenges
                .iter()
                .find_map(|c| c.error.as_ref())
                .map_or_else(|| format!("{:?}", authz.status), |p| p.to_string());
            out.failed.push((name, why));
        }
    }
    out
}

/// Removes the published answers when dropped.
struct Published {
    responders: Responders,
    tokens: Vec<String>,
    names: Vec<String>,
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Some(t) = &self.responders.http {
            for token in &self.tokens {
                t.remove(token);
            }
        }
        for name in &self.names {
            self.responders.alpn.remove(name);
        }
    }
}

/// The stored account for this directory, or a new one.
async fn account(cfg: &AcmeConfig, data_dir: &Path) -> anyhow::Result<Account> {
    if let Some(stored) = files::load_account(data_dir)?
        && stored.directory == cfg.directory
    {
        let creds = serde_json::from_value(stored.credentials)
            .context("cannot read the stored ACME account")?;
        return Account::builder_with_http(http_client(cfg)?)
            .from_credentials(creds)
            .await
            .with_context(|| format!("cannot reach the ACME directory {}", cfg.directory));
    }
    new_account(cfg, data_dir).await
}

/// RFC 8555 §7.3: a new account (a new P-256 key), stored before it is used.
async fn new_account(cfg: &AcmeConfig, data_dir: &Path) -> anyhow::Result<Account> {
    let contact: Vec<&str> = cfg.contact.iter().map(String::as_str).collect();
    let (account, creds) = Account::builder_with_http(http_client(cfg)?)
        .create(
            &NewAccount {
                contact: &contact,
                // The CA's terms are agreed to by configuring it; Let's Encrypt requires this.
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            cfg.directory.clone(),
            None,
        )
        .await
        .with_context(|| format!("cannot create an account at {}", cfg.directory))?;
    files::save_account(
        data_dir,
        &StoredAccount {
            directory: cfg.directory.clone(),
            credentials: serde_json::to_value(&creds)?,
        },
    )?;
    tracing::info!(
        directory = cfg.directory,
        id = account.id(),
        "ACME: account created"
    );
    Ok(account)
}

/// HTTPS to the CA, trusting the system's roots and `ca_certificates`.
fn http_client(cfg: &AcmeConfig) -> anyhow::Result<Box<dyn instant_acme::HttpClient>> {
    crate::tls::install_provider();
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for c in native.certs {
        let _ = roots.add(c);
    }
    if let Some(path) = &cfg.ca_certificates {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                anyhow!(
                    "cannot read [tls] acme ca_certificates {}: {e}",
                    path.display()
                )
            })?;
        if certs.is_empty() {
            bail!(
                "no certificate in [tls] acme ca_certificates {}",
                path.display()
            );
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| anyhow!("bad certificate in {}: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        bail!("no trust roots: install ca-certificates, or set [tls] acme ca_certificates");
    }
    let tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, BodyWrapper<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    Ok(Box::new(client))
}
