//! The network layer: a manual accept loop whose listener can be closed and re-bound on the same
//! port (outages), and per-connection tasks that can be aborted or dropped. Knows no routes.

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::locks::lock;

/// Per-connection control, put in every request's extensions: cancelling `drop` closes the
/// connection without an answer.
#[derive(Clone, Debug)]
pub struct ConnCtl {
    pub drop: CancellationToken,
}

#[derive(Default)]
struct Slot {
    listener: Option<TcpListener>,
    waker: Option<Waker>,
}

/// Listener slot, live connections and the outage switch.
pub struct Net {
    addr: SocketAddr,
    slot: Mutex<Slot>,
    conns: Mutex<HashMap<u64, AbortHandle>>,
    next_conn: AtomicU64,
    outage: AtomicBool,
    closed: AtomicBool,
    runtime: tokio::runtime::Handle,
}

impl Net {
    /// Binds `bind` (port 0 allowed); must run inside a Tokio runtime.
    pub async fn bind(bind: SocketAddr) -> std::io::Result<Arc<Net>> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        Ok(Arc::new(Net {
            addr,
            slot: Mutex::new(Slot {
                listener: Some(listener),
                waker: None,
            }),
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(0),
            outage: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            runtime: tokio::runtime::Handle::current(),
        }))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn in_outage(&self) -> bool {
        self.outage.load(Ordering::SeqCst)
    }

    /// On: drop the listener (new connections refused at once) and abort every live connection.
    /// Off: bind the same address again (retried in the background if the port is busy).
    pub fn set_outage(self: &Arc<Self>, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
        if on {
            drop(lock(&self.slot).listener.take());
            self.abort_connections();
        } else if !self.closed.load(Ordering::SeqCst) && !self.try_rebind() {
            let net = Arc::clone(self);
            self.runtime.spawn(async move {
                for _ in 0..200 {
                    tokio::time::sleep(Duration::from_millis(25)).await;
                    if net.in_outage() || net.closed.load(Ordering::SeqCst) || net.try_rebind() {
                        return;
                    }
                }
                tracing::error!(addr = %net.addr, "simulator could not listen again after the outage");
            });
        }
    }

    /// Re-binds when no listener is open; true when listening afterwards.
    fn try_rebind(&self) -> bool {
        let mut slot = lock(&self.slot);
        if slot.listener.is_some() {
            return true;
        }
        let bound = std::net::TcpListener::bind(self.addr).and_then(|l| {
            l.set_nonblocking(true)?;
            let _guard = self.runtime.enter();
            TcpListener::from_std(l)
        });
        match bound {
            Ok(listener) => {
                slot.listener = Some(listener);
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
                true
            }
            Err(err) => {
                tracing::warn!(addr = %self.addr, %err, "simulator re-bind failed, retrying");
                false
            }
        }
    }

    fn abort_connections(&self) {
        let handles: Vec<AbortHandle> = lock(&self.conns).drain().map(|(_, h)| h).collect();
        for handle in handles {
            handle.abort();
        }
    }

    /// Stops for good: listener closed, connections aborted.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        drop(lock(&self.slot).listener.take());
        self.abort_connections();
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<TcpStream>> {
        let mut slot = lock(&self.slot);
        if let Some(listener) = &slot.listener
            && let Poll::Ready(result) = listener.poll_accept(cx)
        {
            return Poll::Ready(result.map(|(stream, _)| stream));
        }
        if !slot.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            slot.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Removes a connection's abort handle when its task ends (normally or aborted).
struct ConnGuard {
    net: Arc<Net>,
    id: u64,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        lock(&self.net.conns).remove(&self.id);
    }
}

/// Serves `router` on every accepted connection until `shutdown`, then closes everything.
pub async fn accept_loop(net: Arc<Net>, router: Router, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = poll_fn(|cx| net.poll_accept(cx)) => r,
        };
        match accepted {
            Ok(stream) if !net.in_outage() => serve_connection(&net, router.clone(), stream),
            Ok(stream) => drop(stream),
            Err(err) => {
                tracing::warn!(%err, "simulator accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    net.close();
}

fn serve_connection(net: &Arc<Net>, router: Router, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let id = net.next_conn.fetch_add(1, Ordering::Relaxed);
    let ctl = ConnCtl {
        drop: CancellationToken::new(),
    };
    let dropped = ctl.drop.clone();
    let tower = TowerToHyperService::new(router);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ctl.clone());
        tower.call(req)
    });
    let guard = ConnGuard {
        net: Arc::clone(net),
        id,
    };
    // The map lock is held across the spawn so the task's guard cannot remove the entry first.
    let mut conns = lock(&net.conns);
    let handle = tokio::spawn(async move {
        let _guard = guard;
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = conn => {}
            () = dropped.cancelled() => {}
        }
    });
    conns.insert(id, handle.abort_handle());
}
