//! A fresh PostgreSQL schema per test, from FRESHTAP_TEST_DATABASE_URL; dropped afterwards.

const SKIPPED: &str = "skipped: FRESHTAP_TEST_DATABASE_URL is not set";

/// A schema of its own for one test, dropped afterwards. Every pooled connection of the queue
/// gets `search_path` through the URL's `options`, the same way an operator would.
pub struct Schema {
    base: String,
    name: String,
}

impl Schema {
    /// `None` (after saying so) when no test database is configured.
    pub async fn create() -> Option<Self> {
        let Some(base) = std::env::var("FRESHTAP_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("{SKIPPED}");
            return None;
        };
        let name = format!("freshtap_test_{}", uuid::Uuid::now_v7().simple());
        let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create schema");
        Some(Self { base, name })
    }

    pub fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-csearch_path%3D{}",
            self.base, self.name
        )
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
