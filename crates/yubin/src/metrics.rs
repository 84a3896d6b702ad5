//! Prometheus metrics (`[metrics]`): the recorder every crate records into (through the
//! `metrics` facade, names in the `telemetry` crate), and the source the web listener renders
//! at `GET /metrics`. The exporter's own HTTP listener is not used: the endpoint is served by
//! the web service, with its TLS, limits and access control.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;
use server_kit::{Shutdown, TrustedNetworks};

/// How often recorded histogram samples are folded into the registry when nobody scrapes
/// (the exporter keeps samples until then; this bounds that memory).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The `[metrics]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Record metrics and answer `/metrics` on the web listeners.
    pub enabled: bool,
    /// Client networks that may read `/metrics` without a token. Unset: `[limits]
    /// trusted_networks` (loopback by default); `[]`: only with the token.
    pub allow: Option<Vec<String>>,
    /// A bearer token (`Authorization: Bearer …`) that lets any client read `/metrics`.
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            allow: None,
            token: None,
        }
    }
}

impl MetricsConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(allow) = &self.allow
            && let Err(e) = TrustedNetworks::parse(allow)
        {
            anyhow::bail!("[metrics] allow: {e}");
        }
        if self.token.as_deref().is_some_and(|t| t.trim().len() < 16) {
            anyhow::bail!(
                "[metrics] token must be at least 16 characters (e.g. `openssl rand -hex 24`)"
            );
        }
        Ok(())
    }

    /// The networks allowed without a token.
    fn allow(&self, trusted: TrustedNetworks) -> TrustedNetworks {
        match &self.allow {
            Some(list) => TrustedNetworks::parse(list).unwrap_or_else(|_| TrustedNetworks::none()),
            None => trusted,
        }
    }
}

/// Installs the Prometheus recorder as the process's recorder, before anything is recorded
/// (handles registered earlier would be no-ops). `None` when metrics are off.
pub fn install(config: &MetricsConfig) -> anyhow::Result<Option<PrometheusHandle>> {
    if !config.enabled {
        return Ok(None);
    }
    // Histograms (not summaries) so that Grafana can aggregate quantiles across nodes.
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            telemetry::SECONDS_BUCKETS,
        )?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow::anyhow!("cannot install the metrics recorder: {e}"))?;
    describe();
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!(telemetry::START_TIME).set(started);
    Ok(Some(handle))
}

/// The HELP lines of the exposition.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    use telemetry as t;
    describe_counter!(
        t::CONNECTIONS_ACCEPTED,
        "Connections accepted, by protocol and listener"
    );
    describe_gauge!(
        t::CONNECTIONS_OPEN,
        "Connections open now, by protocol and listener"
    );
    describe_counter!(
        t::CONNECTIONS_REFUSED,
        "Connections refused at accept (limit, rate, banned), by protocol and listener"
    );
    describe_histogram!(
        t::COMMAND_DURATION,
        Unit::Seconds,
        "Time from reading a command to its answer, by protocol and command"
    );
    describe_counter!(
        t::AUTH_ATTEMPTS,
        "Authentication attempts by protocol, mechanism and result"
    );
    describe_counter!(
        t::SMTP_MESSAGES_ACCEPTED,
        "Messages accepted by SMTP (250 after DATA/BDAT)"
    );
    describe_counter!(t::SMTP_REJECTIONS, "SMTP refusals by reason");
    describe_gauge!(
        t::QUEUE_MESSAGES,
        "Messages in the outbound queue with recipients still pending"
    );
    describe_gauge!(
        t::QUEUE_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest message in the outbound queue"
    );
    describe_counter!(
        t::QUEUE_DELIVERY_ATTEMPTS,
        "Outbound delivery attempts per recipient, by result"
    );
    describe_histogram!(
        t::STORE_DURATION,
        Unit::Seconds,
        "Store latency by operation (deliver, append, enqueue)"
    );
    describe_gauge!(t::BANS_ACTIVE, "Client addresses banned now");
    describe_counter!(t::BANS_ISSUED, "Bans issued by the login guard, by reason");
    describe_gauge!(
        t::TOKIO_TASKS_ALIVE,
        "Tokio tasks alive now (connections, sessions, background loops)"
    );
    describe_gauge!(
        t::START_TIME,
        Unit::Seconds,
        "Start time of the process since the Unix epoch"
    );
}

/// Folds histogram samples into the registry every few seconds, until shutdown.
pub fn spawn_upkeep(handle: PrometheusHandle, shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => handle.run_upkeep(),
            }
        }
    });
}

/// What `/metrics` renders: the registry, after reading the gauges that come from the store
/// (queue size and age, bans) and the runtime (alive tasks), so they are as fresh as the scrape.
struct Source {
    handle: PrometheusHandle,
    queue: Arc<dyn store::QueueStore>,
    bans: Arc<dyn store::LoginGuardStore>,
}

#[async_trait]
impl web::metrics::MetricsSource for Source {
    async fn render(&self) -> String {
        let now = chrono::Utc::now().timestamp();
        match self.queue.list_queue().await {
            Ok(messages) => {
                let waiting = messages.iter().filter(|m| {
                    m.recipients
                        .iter()
                        .any(|r| r.status == store::RecipientStatus::Pending)
                });
                let (count, oldest) = waiting.fold((0u64, None::<i64>), |(n, o), m| {
                    (n + 1, Some(o.map_or(m.created, |o| o.min(m.created))))
                });
                metrics::gauge!(telemetry::QUEUE_MESSAGES).set(count as f64);
                let age = oldest.map_or(0, |t| now.saturating_sub(t).max(0));
                metrics::gauge!(telemetry::QUEUE_OLDEST_AGE).set(age as f64);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the queue"),
        }
        match self.bans.active_bans(now).await {
            Ok(bans) => metrics::gauge!(telemetry::BANS_ACTIVE).set(bans.len() as f64),
            Err(e) => tracing::warn!(error = %e, "metrics: cannot read the bans"),
        }
        // Counts every task of the runtime, this scrape's own connection task included.
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        metrics::gauge!(telemetry::TOKIO_TASKS_ALIVE).set(tasks as f64);
        self.handle.render()
    }
}

/// The `/metrics` endpoint of the web service, `None` when metrics are off.
pub fn endpoint(
    config: &MetricsConfig,
    trusted: TrustedNetworks,
    handle: Option<PrometheusHandle>,
    queue: Arc<dyn store::QueueStore>,
    bans: Arc<dyn store::LoginGuardStore>,
) -> Option<web::metrics::MetricsEndpoint> {
    let handle = handle?;
    Some(web::metrics::MetricsEndpoint {
        allow: config.allow(trusted),
        token: config.token.as_ref().map(|t| t.trim().to_string()),
        source: Arc::new(Source {
            handle,
            queue,
            bans,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks_networks_and_token_length() {
        let ok: MetricsConfig =
            toml::from_str("allow = [\"10.0.0.0/8\"]\ntoken = \"0123456789abcdef\"").unwrap();
        ok.validate().unwrap();
        let bad: MetricsConfig = toml::from_str("allow = [\"10.0.0.0/99\"]").unwrap();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("[metrics] allow")
        );
        let short: MetricsConfig = toml::from_str("token = \"abc\"").unwrap();
        assert!(short.validate().is_err());
        let d = MetricsConfig::default();
        assert!(d.enabled);
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            d.allow(TrustedNetworks::parse(&["127.0.0.0/8"]).unwrap())
                .contains(lo)
        );
        let none: MetricsConfig = toml::from_str("allow = []").unwrap();
        assert!(
            !none
                .allow(TrustedNetworks::parse(&["127.0.0.0/8"]).unwrap())
                .contains(lo)
        );
    }
}
