//! PostgreSQL only: opening the queue — concurrent migrations, a bad URL that keeps its password
//! out of the error, and TLS verified and used.

use freshtap::queue::Queue;

use super::postgres_replicas::Schema;

#[cfg_attr(
    not(freshtap_postgres),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL (PostgreSQL)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_once() {
    let schema = Schema::create().await;
    let url = schema.url();
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let settings = freshtap::config::Settings::from_toml(&format!(
                    "[queue]\nurl = \"{url}\"\npool_size = 2\n"
                ))
                .expect("settings");
                Queue::connect(&settings.queue).await.map(|_| ())
            })
        })
        .collect();
    for start in starts {
        start
            .await
            .expect("task")
            .expect("concurrent migration succeeds");
    }
    let q = schema.connect().await;
    q.ping().await.expect("ping");
}

#[tokio::test]
async fn a_bad_url_error_hides_the_password() {
    let settings = freshtap::config::Settings::from_toml(
        "[queue]\nurl = \"postgres://app:s3cret@127.0.0.1:1/x?sslmode=nonsense\"\n",
    )
    .expect("settings");
    let error = Queue::connect(&settings.queue)
        .await
        .err()
        .expect("a bad url fails")
        .to_string();
    assert!(!error.contains("s3cret"), "{error}");
}

/// TLS: with `sslmode=require` the server's certificate is verified (here Debian's self-signed
/// "snakeoil" cert for `localhost`, trusted through `queue.tls_ca_file`) and the session is
/// encrypted; a certificate that does not match the host is refused, never used unverified.
#[cfg_attr(
    not(all(freshtap_postgres, freshtap_snakeoil)),
    ignore = "needs FRESHTAP_TEST_DATABASE_URL and the server certificate /etc/ssl/certs/ssl-cert-snakeoil.pem"
)]
#[tokio::test]
async fn postgres_tls_is_verified_and_used() {
    let snakeoil = std::path::Path::new("/etc/ssl/certs/ssl-cert-snakeoil.pem");
    let schema = Schema::create().await;
    let app_name = format!("freshtap_tls_{}", uuid::Uuid::now_v7().simple());
    let with_tls = |base: &str| {
        let separator = if base.contains('?') { '&' } else { '?' };
        schema.url_on(&format!(
            "{base}{separator}sslmode=require&application_name={app_name}"
        ))
    };
    let open = |url: String, ca: Option<&std::path::Path>| {
        let ca_line = ca
            .map(|p| format!("tls_ca_file = \"{}\"\n", p.display()))
            .unwrap_or_default();
        freshtap::config::Settings::from_toml(&format!(
            "[queue]\nurl = \"{url}\"\npool_size = 2\n{ca_line}"
        ))
        .expect("settings")
    };
    // The certificate names `localhost`; reached as 127.0.0.1 it must not be accepted.
    let by_ip = with_tls(&schema.base().replace("localhost", "127.0.0.1"));
    let mismatched = Queue::connect(&open(by_ip, Some(snakeoil)).queue).await;
    assert!(
        mismatched.is_err(),
        "a server whose certificate does not match must be refused"
    );

    let by_name = with_tls(&schema.base().replace("127.0.0.1", "localhost"));
    let queue = Queue::connect(&open(by_name, Some(snakeoil)).queue)
        .await
        .expect("TLS connection with the CA");
    queue.ping().await.expect("ping over TLS");
    let (client, connection) = tokio_postgres::connect(schema.base(), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let encrypted: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = $1 AND s.ssl",
            &[&app_name],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted > 0, "the queue's sessions are encrypted");
}
