//! Quota warnings: the store queues a warning each time an account's usage crosses a
//! threshold of `[quota] warn_at` upward (once per crossing, see `store::quota`); this task
//! takes them every `warning_interval_secs` and puts one message in the user's INBOX, in
//! English or Japanese (`[quota] language`, per domain `[quota.domain."…"] language`), and
//! logs `event=quota_warning`. On several nodes each warning is taken by one of them.
//!
//! The warning is delivered like any message, so it counts against the quota; when even it
//! does not fit, the log line says so and the warning is dropped (the user's client shows
//! `NO [OVERQUOTA]` then anyway).

use std::sync::Arc;
use std::time::Duration;

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;
use server_kit::Shutdown;
use store::{QuotaResource, QuotaWarning, Store};

use crate::quota_config::{Language, Quota};

/// Warnings taken per round.
const BATCH: usize = 100;

/// Runs until `shutdown`.
pub async fn run(store: Arc<dyn Store>, config: Quota, hostname: String, shutdown: Shutdown) {
    if config.warn_at.is_empty() {
        return;
    }
    let interval = Duration::from_secs(config.warning_interval_secs);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        loop {
            let warnings = match store.take_quota_warnings(BATCH).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "quota warnings: cannot read the queue");
                    break;
                }
            };
            let n = warnings.len();
            for w in warnings {
                send(store.as_ref(), &config, &hostname, &w).await;
            }
            if n < BATCH {
                break;
            }
        }
    }
}

/// Delivers one warning and logs it.
pub async fn send(store: &dyn Store, config: &Quota, hostname: &str, w: &QuotaWarning) {
    let lang = config.language(w.address.domain().as_str());
    let result = match message(hostname, w, lang) {
        Ok(bytes) => store
            .deliver(
                Arc::new(bytes),
                chrono::Utc::now().timestamp(),
                &[w.account],
            )
            .await
            .map(drop),
        Err(e) => Err(store::StoreError::Temporary(e.to_string())),
    };
    tracing::info!(
        event = %"quota_warning",
        account = %w.address,
        resource = w.resource.name(),
        percent = w.percent,
        used = w.used,
        limit = w.limit,
        delivered = result.is_ok(),
        error = result.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
        "quota warning"
    );
}

/// A size for people: `8.0 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// The warning message (RFC 5322, UTF-8 text; RFC 3834 `Auto-Submitted`).
pub fn message(hostname: &str, w: &QuotaWarning, lang: Language) -> std::io::Result<Vec<u8>> {
    let (used, limit) = match w.resource {
        QuotaResource::Storage => (human(w.used), human(w.limit)),
        QuotaResource::Messages => (w.used.to_string(), w.limit.to_string()),
    };
    let p = w.percent;
    let (subject, body) = match (lang, w.resource) {
        (Language::En, QuotaResource::Storage) => (
            format!("Your mailbox is {p}% full"),
            format!(
                "Your mailbox {addr} has reached {p}% of its storage limit:\r\n\
                 {used} of {limit} are used.\r\n\r\n\
                 When it is full, new mail to you is refused. Please delete messages you no\r\n\
                 longer need (and empty the Trash) or ask your administrator for more space.\r\n",
                addr = w.address
            ),
        ),
        (Language::En, QuotaResource::Messages) => (
            format!("Your mailbox is {p}% full"),
            format!(
                "Your mailbox {addr} has reached {p}% of its limit on the number of messages:\r\n\
                 {used} of {limit} messages.\r\n\r\n\
                 When it is full, new mail to you is refused. Please delete messages you no\r\n\
                 longer need (and empty the Trash) or ask your administrator for a higher limit.\r\n",
                addr = w.address
            ),
        ),
        (Language::Ja, QuotaResource::Storage) => (
            format!("メールボックスの容量が{p}%に達しました"),
            format!(
                "メールボックス {addr} の使用量が容量制限の{p}%に達しました。\r\n\
                 使用量: {used} / {limit}\r\n\r\n\
                 容量がいっぱいになると、新しいメールを受け取れなくなります。\r\n\
                 不要なメールを削除し（ごみ箱も空にしてください）、\r\n\
                 または管理者に容量の追加を依頼してください。\r\n",
                addr = w.address
            ),
        ),
        (Language::Ja, QuotaResource::Messages) => (
            format!("メールボックスのメール数が上限の{p}%に達しました"),
            format!(
                "メールボックス {addr} のメール数が上限の{p}%に達しました。\r\n\
                 メール数: {used} / {limit}\r\n\r\n\
                 上限に達すると、新しいメールを受け取れなくなります。\r\n\
                 不要なメールを削除し（ごみ箱も空にしてください）、\r\n\
                 または管理者に上限の引き上げを依頼してください。\r\n",
                addr = w.address
            ),
        ),
    };
    MessageBuilder::new()
        .from(("Postmaster".to_string(), format!("postmaster@{hostname}")))
        .to(w.address.to_string())
        .subject(subject)
        // RFC 3834 §5: generated by the system; clients and vacation responders leave it be.
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .header(
            "X-Yubin-Quota-Warning",
            Raw::new(format!("{} {p}", w.resource.name())),
        )
        .text_body(body)
        .write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(resource: QuotaResource) -> QuotaWarning {
        QuotaWarning {
            account: store::AccountId(1),
            address: mail_types::Address::parse("u@a.test").unwrap(),
            resource,
            percent: 80,
            used: 8 << 20,
            limit: 10 << 20,
        }
    }

    #[test]
    fn english_and_japanese() {
        let en = message("mx.a.test", &warning(QuotaResource::Storage), Language::En).unwrap();
        let en = String::from_utf8(en).unwrap();
        assert!(en.contains("Subject: Your mailbox is 80% full"), "{en}");
        assert!(en.contains("X-Yubin-Quota-Warning: STORAGE 80"));
        assert!(en.contains("8.0 MiB of 10.0 MiB"));
        let ja = message("mx.a.test", &warning(QuotaResource::Messages), Language::Ja).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&ja).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("メールボックスのメール数が上限の80%に達しました")
        );
        assert!(parsed.body_text(0).unwrap().contains("8388608 / 10485760"));
    }
}
