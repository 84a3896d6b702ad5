//! `yubin dns-records DOMAIN`: looks up what the records depend on (the domain, its DKIM keys,
//! the host name and listeners) and prints [`crate::dns_records::zone_snippet`].

use std::io::Write;

use anyhow::{anyhow, bail};

use crate::config::Config;

pub async fn run(
    config: &Config,
    store: &dyn store::Store,
    domain: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (domain, keys) = local_domain_keys(store, domain).await?;
    let text = crate::dns_records::zone_snippet(&domain, &config.hostname(), &config.listen, &keys);
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `domain` lower-cased, refused unless it is one of this server's domains, with its DKIM keys
/// and each key's public TXT record (unreadable keys are skipped, logged). What both
/// `dns-records` and `check-dns` start from.
pub async fn local_domain_keys(
    store: &dyn store::Store,
    domain: &str,
) -> anyhow::Result<(String, Vec<(store::DkimKey, String)>)> {
    let d = mail_types::Domain::parse(domain)
        .map_err(|e| anyhow!("{domain:?} is not a valid domain: {e}"))?;
    if !store.is_local_domain(&d).await? {
        bail!("{domain} is not a domain of this server (add it with `yubin domain add {domain}`)");
    }
    let domain = d.as_str().to_ascii_lowercase();
    let mut keys = Vec::new();
    for key in store.dkim_keys(Some(&domain)).await? {
        match queue::dkim::public_record(&key.private_key_pem) {
            Ok(txt) => keys.push((key, txt)),
            Err(e) => {
                tracing::warn!(domain = %key.domain, selector = %key.selector, error = %e, "unreadable DKIM key skipped")
            }
        }
    }
    Ok((domain, keys))
}
