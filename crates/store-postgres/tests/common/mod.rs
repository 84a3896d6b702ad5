//! Test databases: each test creates its own database on the server named by
//! `YUBIN_TEST_PG_URL` (see `scripts/pg-test-cluster`), so tests run in parallel and in any
//! order. Without the variable the tests are skipped, with a message saying so.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use store_postgres::{ConnectOptions, PgStore};

/// The variable naming the test server.
pub const URL_VAR: &str = "YUBIN_TEST_PG_URL";

/// A database of its own for one test; dropped (with `cleanup`) at the end of the test.
pub struct TestDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {URL_VAR}={url}: {e}"));
    tokio::spawn(conn);
    client
}

impl TestDb {
    /// A fresh, empty database, or `None` (after saying why) when no server is configured.
    pub async fn create(test: &str) -> Option<TestDb> {
        let Ok(admin_url) = std::env::var(URL_VAR) else {
            eprintln!("skipped: set {URL_VAR} (scripts/pg-test-cluster starts a server)");
            return None;
        };
        let name = format!(
            "yubin_t_{}_{}_{}",
            test.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(30)
                .collect::<String>(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
        .to_lowercase();
        let client = admin(&admin_url).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = with_database(&admin_url, &name);
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    /// A store on this database (one "node").
    pub async fn store(&self) -> Arc<PgStore> {
        store_postgres::connect(
            &self.url,
            &ConnectOptions {
                pool_size: 4,
                ..Default::default()
            },
        )
        .await
        .expect("connect")
    }

    /// A plain client on this database, to look at rows.
    pub async fn client(&self) -> tokio_postgres::Client {
        admin(&self.url).await
    }

    /// Drops the database (whoever is still connected).
    pub async fn cleanup(self) {
        let client = admin(&self.admin_url).await;
        let _ = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

#[test]
fn database_urls() {
    assert_eq!(
        with_database("postgres://u@h:5/x", "y"),
        "postgres://u@h:5/y"
    );
    assert_eq!(with_database("postgres://u@h:5", "y"), "postgres://u@h:5/y");
    assert_eq!(
        with_database("postgresql://u:p@h/x?sslmode=disable", "y"),
        "postgresql://u:p@h/y?sslmode=disable"
    );
}
