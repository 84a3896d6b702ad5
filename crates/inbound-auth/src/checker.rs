//! Running the checks: SPF and iprev start as soon as the envelope sender is known (they need
//! only the client's address, HELO name and MAIL FROM), in a task of their own, so their DNS
//! queries overlap the transfer of the message; DKIM and ARC run when the message is complete,
//! side by side; DMARC last, from their results (RFC 7489 §4.2).
//!
//! Every check is bounded by `check_timeout`; a check that runs out of time is a `temperror`
//! (RFC 8601 §2.7), never a pass.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::Spf;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    ArcOutput, AuthenticatedMessage, DkimOutput, DkimResult, DmarcOutput, IprevOutput, IprevResult,
    MX, MessageAuthenticator, Parameters, RecordSet, SpfOutput, SpfResult, Txt,
};
use tokio::task::JoinHandle;

use crate::cache::TtlCache;
use crate::policy::{Disposition, InboundAuthConfig, Results, decide};
use crate::render::{arc_result, dkim_results, dmarc_result, iprev_result, spf_result};
use crate::results::render;

/// Static answers for names (the `[dns.override]` table), consulted before DNS.
#[derive(Debug, Clone, Default)]
pub struct StaticName {
    pub name: String,
    pub txt: Vec<String>,
    pub mx: Vec<String>,
    pub addrs: Vec<IpAddr>,
}

struct Caches {
    txt: TtlCache<Box<str>, Txt>,
    mx: TtlCache<Box<str>, RecordSet<MX>>,
    v4: TtlCache<Box<str>, RecordSet<Ipv4Addr>>,
    v6: TtlCache<Box<str>, RecordSet<Ipv6Addr>>,
    ptr: TtlCache<IpAddr, RecordSet<Box<str>>>,
}

struct Inner {
    resolver: MessageAuthenticator,
    caches: Caches,
    config: InboundAuthConfig,
    /// Our authserv-id (RFC 8601 §2.5) and the SPF `%{r}` macro (RFC 7208 §7.3).
    hostname: String,
}

/// The checks of one server; cheap to clone.
#[derive(Clone)]
pub struct Checker {
    inner: Arc<Inner>,
}

/// The outcome for one message.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The whole `Authentication-Results:` field, CRLF-terminated, to prepend.
    pub header: String,
    pub disposition: Disposition,
    pub results: Results,
    /// The client's host name when iprev passed (its PTR name, forward-confirmed: RFC 8601
    /// §3), for the `Received:` field's TCP-info (RFC 5321 §4.4).
    pub client_name: Option<String>,
}

/// The envelope checks of one transaction: done at once when every answer they needed was
/// cached, else running in a task of their own while the message arrives.
// The session keeps `Pending` boxed, so the larger variant costs no copying.
#[allow(clippy::large_enum_variant)]
enum EnvelopeState {
    Done(Envelope),
    Running(AbortOnDrop),
}

/// The task of running envelope checks; an abandoned transaction (RSET, QUIT, a refused
/// message, a dropped connection) stops its lookups.
struct AbortOnDrop(JoinHandle<Envelope>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The envelope checks of one transaction, running.
pub struct Pending {
    checker: Checker,
    ip: IpAddr,
    helo: String,
    /// The MAIL FROM address, or `postmaster@<helo>` for the null sender (RFC 7208 §2.4).
    sender: String,
    state: EnvelopeState,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("ip", &self.ip)
            .field("helo", &self.helo)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

/// What the envelope checks found.
struct Envelope {
    spf_helo: Option<SpfOutput>,
    spf_mailfrom: SpfOutput,
    iprev: IprevOutput,
}

fn fqdn(name: &str) -> String {
    let mut n = name.trim_end_matches('.').to_ascii_lowercase();
    n.push('.');
    n
}

/// Whether a name can be SPF-checked: a multi-label domain, not an address literal
/// (RFC 7208 §2.3, §4.3).
fn is_domain(name: &str) -> bool {
    !name.starts_with('[')
        && name.parse::<IpAddr>().is_err()
        && name.trim_end_matches('.').contains('.')
        && name
            .trim_end_matches('.')
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63)
}

/// A TXT record parsed as what its name says it holds.
fn parse_txt(name: &str, records: &[String]) -> Txt {
    fn first<T: TxtRecordParser + Into<Txt>>(records: &[String]) -> Txt {
        let mut result = Err(mail_auth::Error::Dns(
            mail_auth::DnsError::InvalidRecordType,
        ));
        for r in records {
            result = T::parse(r.as_bytes());
            if result.is_ok() {
                break;
            }
        }
        Txt::from(result)
    }
    if name.starts_with("_dmarc.") {
        first::<Dmarc>(records)
    } else if name.contains("._domainkey.") {
        first::<DomainKey>(records)
    } else {
        first::<Spf>(records)
    }
}

impl Checker {
    /// A checker asking the resolvers of `resolver` (yubin builds it from `[dns] nameservers`
    /// with `queue::dns::resolver_config`), with this checker's timeouts and cache size set
    /// on its options; `statics` answer first.
    pub fn new(
        config: InboundAuthConfig,
        hostname: &str,
        resolver: (ResolverConfig, ResolverOpts),
        statics: &[StaticName],
    ) -> Result<Checker, String> {
        let (resolver_config, mut opts) = resolver;
        opts.timeout = config.dns_timeout;
        opts.attempts = 2;
        // The resolver's own cache keeps raw answers (and negative ones) for their TTL.
        opts.cache_size = config.cache_entries as u64;
        let resolver =
            TokioResolver::builder_with_config(resolver_config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| format!("cannot build the DNS resolver: {e}"))?;

        let mut txt = HashMap::new();
        let mut mx = HashMap::new();
        let mut v4 = HashMap::new();
        let mut v6 = HashMap::new();
        for s in statics {
            let name = fqdn(&s.name);
            if !s.txt.is_empty() {
                txt.insert(name.clone().into_boxed_str(), parse_txt(&name, &s.txt));
            }
            if !s.mx.is_empty() {
                let rrset: Arc<[MX]> =
                    s.mx.iter()
                        .enumerate()
                        .map(|(i, host)| MX {
                            exchanges: vec![fqdn(host).into_boxed_str()].into_boxed_slice(),
                            preference: i as u16 * 10,
                        })
                        .collect();
                mx.insert(name.clone().into_boxed_str(), record_set(rrset));
            }
            let a: Vec<Ipv4Addr> = s
                .addrs
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V4(v) => Some(*v),
                    IpAddr::V6(_) => None,
                })
                .collect();
            let aaaa: Vec<Ipv6Addr> = s
                .addrs
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(v) => Some(*v),
                    IpAddr::V4(_) => None,
                })
                .collect();
            if !a.is_empty() || !aaaa.is_empty() {
                v4.insert(name.clone().into_boxed_str(), record_set(a.into()));
                v6.insert(name.into_boxed_str(), record_set(aaaa.into()));
            }
        }
        // The DMARC tree walk (mail-auth follows DMARCbis) asks `_dmarc.` at every parent of a
        // From: domain up to the top-level domain: above a policy in the table, the table says
        // "no record", so a table-only setup (tests, benchmarks) is not a DNS failure.
        let parents: Vec<String> = txt
            .keys()
            .filter_map(|k| k.strip_prefix("_dmarc."))
            .flat_map(|domain| {
                let labels: Vec<&str> = domain.split('.').filter(|l| !l.is_empty()).collect();
                (1..labels.len())
                    .map(|i| format!("_dmarc.{}.", labels[i..].join(".")))
                    .collect::<Vec<_>>()
            })
            .collect();
        for name in parents {
            txt.entry(name.into_boxed_str()).or_insert_with(|| {
                Txt::Error(mail_auth::Error::Dns(
                    mail_auth::DnsError::InvalidRecordType,
                ))
            });
        }
        let n = config.cache_entries;
        Ok(Checker {
            inner: Arc::new(Inner {
                resolver: MessageAuthenticator(resolver),
                caches: Caches {
                    txt: TtlCache::new(n, txt),
                    mx: TtlCache::new(n, mx),
                    v4: TtlCache::new(n, v4),
                    v6: TtlCache::new(n, v6),
                    ptr: TtlCache::new(n, HashMap::new()),
                },
                config,
                hostname: hostname.to_string(),
            }),
        })
    }

    pub fn config(&self) -> &InboundAuthConfig {
        &self.inner.config
    }

    /// Starts SPF (HELO and MAIL FROM) and iprev for a transaction; `mail_from` is empty for
    /// the null sender.
    pub fn begin(&self, ip: IpAddr, helo: &str, mail_from: &str) -> Pending {
        // An IPv4 client seen through an IPv6 socket is an IPv4 client (RFC 4291 §2.5.5.2).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        // RFC 7208 §2.4: with a null reverse-path, MAIL FROM is checked as postmaster@HELO.
        let sender = if mail_from.is_empty() {
            format!("postmaster@{helo}")
        } else {
            mail_from.to_string()
        };
        let inner = Arc::clone(&self.inner);
        let (h, s) = (helo.to_string(), sender.clone());
        let mut checks = Box::pin(async move { inner.envelope(ip, &h, &s).await });
        // With every answer in the caches (a sender seen before) the checks finish on their
        // first poll: no task, no wake-up of another worker. Otherwise the same future runs
        // on in a task (it is polled again there, with that task's waker).
        let mut cx = Context::from_waker(Waker::noop());
        let state = match checks.as_mut().poll(&mut cx) {
            Poll::Ready(envelope) => EnvelopeState::Done(envelope),
            Poll::Pending => EnvelopeState::Running(AbortOnDrop(tokio::spawn(checks))),
        };
        Pending {
            checker: self.clone(),
            ip,
            helo: helo.to_string(),
            sender,
            state,
        }
    }
}

fn record_set<T>(rrset: Arc<[T]>) -> RecordSet<T> {
    RecordSet {
        rrset,
        dnssec_status: mail_auth::DnssecStatus::Indeterminate,
    }
}

/// The parameters with our caches.
macro_rules! cached {
    ($caches:expr, $params:expr) => {
        Parameters::new($params)
            .with_txt_cache(&$caches.txt)
            .with_mx_cache(&$caches.mx)
            .with_ipv4_cache(&$caches.v4)
            .with_ipv6_cache(&$caches.v6)
            .with_ptr_cache(&$caches.ptr)
    };
}

impl Inner {
    async fn bounded<T>(&self, f: impl Future<Output = T>, timed_out: impl FnOnce() -> T) -> T {
        match tokio::time::timeout(self.config.check_timeout, f).await {
            Ok(v) => v,
            Err(_) => timed_out(),
        }
    }

    async fn envelope(&self, ip: IpAddr, helo: &str, sender: &str) -> Envelope {
        let c = &self.caches;
        let host = self.hostname.as_str();
        let temp_spf =
            |domain: &str| SpfOutput::new(domain.to_string()).with_result(SpfResult::TempError);
        let helo_check = async {
            if !is_domain(helo) {
                return None;
            }
            let params = SpfParameters::verify_ehlo(ip, helo, host);
            Some(
                self.bounded(self.resolver.verify_spf(cached!(c, params)), || {
                    temp_spf(helo)
                })
                .await,
            )
        };
        let domain = sender.rsplit_once('@').map_or(helo, |(_, d)| d);
        let mailfrom_check = async {
            // RFC 7208 §4.3: a malformed or single-label domain gives "none" at once (the
            // null sender's stand-in after an address-literal HELO, for one).
            if !is_domain(domain) {
                return SpfOutput::new(domain.to_string()).with_result(SpfResult::None);
            }
            let params = SpfParameters::verify_mail_from(ip, helo, host, sender);
            self.bounded(self.resolver.verify_spf(cached!(c, params)), || {
                temp_spf(domain)
            })
            .await
        };
        let iprev_check =
            self.bounded(self.resolver.verify_iprev(cached!(c, ip)), || IprevOutput {
                result: IprevResult::TempError(mail_auth::Error::Dns(
                    mail_auth::DnsError::Resolver("timed out".into()),
                )),
                ptr: None,
            });
        let (spf_helo, spf_mailfrom, iprev) = tokio::join!(helo_check, mailfrom_check, iprev_check);
        Envelope {
            spf_helo,
            spf_mailfrom,
            iprev,
        }
    }
}

impl Pending {
    /// Completes the checks on the whole message (as received, before any header of ours) and
    /// decides what happens to it.
    pub async fn finish(self, message: &[u8]) -> Verdict {
        let inner = Arc::clone(&self.checker.inner);
        let envelope = match self.state {
            EnvelopeState::Done(e) => Ok(e),
            EnvelopeState::Running(mut task) => (&mut task.0).await,
        };
        let envelope = match envelope {
            Ok(e) => e,
            // The task cannot panic short of a bug in a dependency; never a silent pass.
            Err(e) => {
                tracing::warn!(error = %e, "inbound-auth: envelope checks failed");
                let temp = |d: &str| SpfOutput::new(d.into()).with_result(SpfResult::TempError);
                Envelope {
                    spf_helo: None,
                    spf_mailfrom: temp(&self.sender),
                    iprev: IprevOutput {
                        result: IprevResult::TempError(mail_auth::Error::Io(e.to_string())),
                        ptr: None,
                    },
                }
            }
        };
        let c = &inner.caches;
        // Parsing hashes the body for each signature: a large message's parse must not stall
        // the worker's other sessions.
        let parsed = cpu_heavy(message.len(), || AuthenticatedMessage::parse(message));
        let temp_dkim = || {
            vec![DkimOutput::temp_err(mail_auth::Error::Dns(
                mail_auth::DnsError::Resolver("timed out".into()),
            ))]
        };
        let (dkim, arc): (Vec<DkimOutput<'_>>, ArcOutput<'_>) = match &parsed {
            Some(m) => {
                tokio::join!(
                    inner.bounded(inner.resolver.verify_dkim(cached!(c, m)), temp_dkim),
                    inner.bounded(inner.resolver.verify_arc(cached!(c, m)), || {
                        ArcOutput::default().with_result(DkimResult::TempError(
                            mail_auth::Error::Dns(mail_auth::DnsError::Resolver(
                                "timed out".into(),
                            )),
                        ))
                    })
                )
            }
            None => (Vec::new(), ArcOutput::default()),
        };
        // RFC 7489 §4.1 / RFC 7208 §2.4: for the null sender, SPF's domain is the HELO's.
        let mailfrom_domain = self
            .sender
            .rsplit_once('@')
            .map_or(self.helo.as_str(), |(_, d)| d);
        let dmarc = match &parsed {
            Some(m) => {
                let params =
                    DmarcParameters::new(m, &dkim, mailfrom_domain, &envelope.spf_mailfrom);
                inner
                    .bounded(inner.resolver.verify_dmarc(cached!(c, params)), || {
                        DmarcOutput::new(String::new()).with_spf_result(
                            mail_auth::DmarcResult::TempError(mail_auth::Error::Dns(
                                mail_auth::DnsError::Resolver("timed out".into()),
                            )),
                        )
                    })
                    .await
            }
            None => DmarcOutput::default(),
        };
        let (dmarc, dmarc_policy) = dmarc_result(&dmarc);
        let results = Results {
            iprev: iprev_result(&envelope.iprev, self.ip),
            spf_helo: envelope
                .spf_helo
                .as_ref()
                .map(|o| spf_result(o, "smtp.helo", &self.helo)),
            // RFC 8601 §2.7.2: the identity checked (postmaster@HELO for the null sender).
            spf_mailfrom: spf_result(&envelope.spf_mailfrom, "smtp.mailfrom", &self.sender),
            dkim: dkim_results(&dkim),
            arc: arc_result(&arc, self.ip),
            dmarc,
            dmarc_policy,
        };
        let disposition = decide(&inner.config.actions, &results);
        let client_name = match envelope.iprev.result() {
            IprevResult::Pass => envelope
                .iprev
                .ptr
                .as_ref()
                .and_then(|names| names.first())
                .map(|n| n.trim_end_matches('.').to_string()),
            _ => None,
        };
        Verdict {
            header: render(&inner.hostname, &results.all()),
            disposition,
            results,
            client_name,
        }
    }
}

/// Runs `f` on `size` bytes in `block_in_place` when the input is large and the runtime has
/// other workers (as `server_kit::cpu_heavy`; this crate does not depend on server-kit).
fn cpu_heavy<R>(size: usize, f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    // The size first: a small message costs one comparison.
    let multi =
        || Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if size >= 256 * 1024 && multi() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}
