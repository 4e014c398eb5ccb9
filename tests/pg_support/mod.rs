//! A fresh PostgreSQL schema per test, from FRESHTAP_TEST_DATABASE_URL; dropped afterwards.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helper"
)]

/// Tests that use this are `#[ignore]`d at build time without the variable (build.rs), so reaching
/// here without it means the test was run on purpose (`--ignored`): say what is missing.
const MISSING: &str = "FRESHTAP_TEST_DATABASE_URL is not set: this test needs PostgreSQL";

/// A schema of its own for one test, dropped afterwards. Every pooled connection of the queue
/// gets `search_path` through the URL's `options`, the same way an operator would.
pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// A new schema in the test database; panics when none is configured.
    pub async fn create() -> Self {
        let base = std::env::var("FRESHTAP_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .expect(MISSING);
        let name = format!("freshtap_test_{}", uuid::Uuid::now_v7().simple());
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        Self { base, name }
    }

    /// The queue URL of this schema: every connection gets `search_path` through `options`.
    pub fn url(&self) -> String {
        self.url_on(&self.base)
    }

    /// The same schema reached through `base` (the test database, or a proxy in front of it).
    pub fn url_on(&self, base: &str) -> String {
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}options=-csearch_path%3D{}", self.name)
    }

    /// The test database URL, without the schema.
    pub fn base(&self) -> &str {
        &self.base
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}
