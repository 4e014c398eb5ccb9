//! Erasure on request: the keyed hash an erasure record keeps instead of the identity, and the
//! one erase step the admin API and the command line share (erase, record, audit, log).

use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::queue::{Actor, Erasure, ErasureRecord, NewAudit, QueueError, identity_key};
use crate::state::AppState;

/// Hex HMAC-SHA256 of the lowercased identity, keyed by `auth.erasure_key`, else by a key
/// derived from the admin token, else by a fixed label (no secret configured at all).
pub fn identity_hash(app: &AppState, identity: &str) -> String {
    let auth = &app.settings.auth;
    let key: Vec<u8> = match (&auth.erasure_key, &auth.admin_token) {
        (Some(key), _) => key.expose_secret().as_bytes().to_vec(),
        (None, Some(admin)) => {
            let mut mac = mac(admin.expose_secret().as_bytes());
            mac.update(b"freshtap erasure identity key v1");
            mac.finalize().into_bytes().to_vec()
        }
        (None, None) => b"freshtap erasure identity key v1".to_vec(),
    };
    let mut mac = mac(&key);
    mac.update(identity_key(identity).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes a key of any length"),
    }
}

/// Erases what is held for `identity`, records it (erasure and audit entry) and logs it —
/// counts and the hash only, never the identity.
pub async fn erase(
    app: &AppState,
    identity: &str,
    keep_pending: bool,
    actor: Actor,
) -> Result<ErasureRecord, QueueError> {
    let record = app
        .queue
        .erase(Erasure {
            identity: identity.to_owned(),
            identity_hash: identity_hash(app, identity),
            keep_pending,
            propagate: false,
            scan_limit: app.settings.queue.erasure_scan_rows,
            actor: actor.clone(),
        })
        .await?;
    let r = record.removed;
    let detail = format!(
        "removed {} rows (pending {}, leased {}, delivered {}, dead {}), {} dead letters",
        r.rows(),
        r.pending,
        r.leased,
        r.delivered,
        r.dead,
        r.dead_letters
    );
    tracing::info!(
        erasure = record.id,
        rows = r.rows(),
        dead_letters = r.dead_letters,
        scanned = r.scanned,
        scan_truncated = r.scan_truncated,
        "erasure carried out"
    );
    app.queue
        .audit(NewAudit {
            actor,
            action: "erase".into(),
            target: format!("erasure {}", record.id),
            detail,
        })
        .await?;
    Ok(record)
}
