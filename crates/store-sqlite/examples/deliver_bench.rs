//! Delivery throughput: 5,000 deliveries of 10 KB (distinct bodies, one recipient each) with 1,
//! 10 and 50 concurrent tasks, each on a fresh store in a temporary directory.
//!
//! `cargo run --release -p store-sqlite --example deliver_bench [deliveries] [size] [1,10,50]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use mail_types::{Address, Domain};
use store::{Directory, MailStore};

async fn run(concurrency: usize, total: usize, size: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_sqlite::open(dir.path()).expect("open");
    store
        .add_domain(&Domain::parse("bench.test").unwrap())
        .await
        .unwrap();
    let mut accounts = Vec::new();
    for i in 0..10 {
        let a = Address::parse(&format!("user{i}@bench.test")).unwrap();
        accounts.push(store.add_user(&a, "$argon2id$x").await.unwrap());
    }
    let accounts = Arc::new(accounts);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (store, next, accounts) = (store.clone(), next.clone(), accounts.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    let mut body = format!("Message-ID: <{n}@bench.test>\r\n\r\n").into_bytes();
                    body.resize(size, b'x');
                    let rcpt = accounts[n % accounts.len()];
                    store
                        .deliver(Arc::new(body), 0, &[rcpt])
                        .await
                        .expect("deliver");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let size: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10 * 1024);
    let levels: Vec<usize> = args
        .next()
        .map(|a| a.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 10, 50]);
    println!("{total} deliveries of {size} bytes, each fully durable (blob + metadata fsync'd)");
    for concurrency in levels {
        let rate = run(concurrency, total, size).await;
        println!("{concurrency:>3} concurrent tasks: {rate:>8.0} deliveries/s");
    }
}
