//! A TCP proxy to the test database that the test can cut: Up, Reset (connections closed, new
//! ones dropped) or Blackhole (nothing forwarded, nothing closed: a network partition).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the proxy treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    /// Connections are closed and new ones dropped at once (database restart, refused).
    Reset,
    /// Nothing is forwarded any more and nothing is closed (a network partition).
    Blackhole,
}

/// A TCP proxy to the test database that the test can cut.
pub struct DbProxy {
    pub port: u16,
    link: watch::Sender<Link>,
}

impl DbProxy {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (link, _) = watch::channel(Link::Up);
        let links = link.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mut state = links.subscribe();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let now = *state.borrow_and_update();
                    match now {
                        Link::Reset => return,
                        Link::Blackhole => {
                            // Hold the connection, say nothing, until the link changes.
                            let _ = state.changed().await;
                            return;
                        }
                        Link::Up => {}
                    }
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = inbound.into_split();
                    let (server_read, server_write) = outbound.into_split();
                    tokio::join!(
                        pump(client_read, server_write, state.clone()),
                        pump(server_read, client_write, state),
                    );
                });
            }
        });
        Self { port, link }
    }

    pub fn set(&self, link: Link) {
        self.link.send_replace(link);
    }
}

/// Copies one direction: stops (closing it) on `Reset`; while `Blackhole`, holds what it read
/// and forwards it once the link is `Up` again, so a healed partition loses no byte.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut link: watch::Receiver<Link>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = link.wait_for(|l| *l == Link::Reset) => return,
        };
        let now = link.wait_for(|l| *l != Link::Blackhole).await.map(|l| *l);
        if !matches!(now, Ok(Link::Up)) {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `base` with its host and port replaced by `127.0.0.1:port`, and the host:port it named.
pub fn through_proxy(base: &str, port: u16) -> (String, String) {
    let (scheme, rest) = base.split_once("://").expect("a URL with a scheme");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (
        format!("{scheme}://{userinfo}127.0.0.1:{port}{tail}"),
        upstream,
    )
}
