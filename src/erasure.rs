//! Erasure on request: the keyed hash an erasure record keeps instead of the identity, the
//! CleverTap profile deletions it queues (`propagate`), and the one erase step the admin API
//! and the command line share (erase, queue, record, audit, log).

use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::body::BodyKind;
use crate::clock::{hours_ms, now_ms};
use crate::queue::{Actor, Erasure, ErasureRecord, NewAudit, NewWebhook, QueueError, identity_key};
use crate::state::AppState;

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub identity: String,
    pub keep_pending: bool,
    /// The accounts whose CleverTap profile is deleted too (empty: none). See [`accounts`].
    pub propagate_to: Vec<String>,
}

/// The accounts a propagating erasure deletes the profile from: those named, else every
/// configured account (a profile freshtap's rows no longer show may still be in any of them;
/// deleting one CleverTap does not hold is harmless). An unknown name is an error.
pub fn accounts(app: &AppState, named: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let known: Vec<&str> = app.accounts.names().collect();
    match named {
        None => Ok(known.iter().map(|n| (*n).to_owned()).collect()),
        Some(list) if list.is_empty() => Err("accounts is empty".into()),
        Some(list) => {
            for name in &list {
                if !known.iter().any(|k| *k == name) {
                    return Err(format!(
                        "accounts: {name:?} is not a configured CleverTap account"
                    ));
                }
            }
            Ok(list)
        }
    }
}

/// The deletion row for one account: CleverTap's own delete body naming the identity as given
/// (trimmed) and, when it differs, lowercased as freshtap's templates send it, keyed for
/// per-identity order behind anything still pending for that person.
fn deletion_row(
    app: &AppState,
    account: &str,
    identity: &str,
    request_id: &str,
) -> Option<NewWebhook> {
    let route = app.routes.deletion(account)?;
    let given = identity.trim();
    let key = identity_key(identity);
    let mut values = vec![given];
    if key != given {
        values.push(&key);
    }
    let body = serde_json::to_vec(&serde_json::json!({ crate::mapping::IDENTITY: values })).ok()?;
    let received_at_ms = now_ms();
    Some(NewWebhook {
        route: route.name.clone(),
        account: account.to_owned(),
        kind: BodyKind::Json,
        body_hash: crate::webhook::body_hash(&body),
        body,
        dedup: false,
        request_id: request_id.to_owned(),
        received_at_ms,
        deadline_ms: received_at_ms + hours_ms(app.settings.delivery.max_age_hours),
        order_keys: vec![key],
        refused: Vec::new(),
        finished: false,
    })
}

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
    request: Request,
    actor: Actor,
) -> Result<ErasureRecord, QueueError> {
    let identity = request.identity.as_str();
    let deletions = request
        .propagate_to
        .iter()
        .filter_map(|account| deletion_row(app, account, identity, &actor.request_id))
        .collect();
    let record = app
        .queue
        .erase(Erasure {
            identity: identity.to_owned(),
            identity_hash: identity_hash(app, identity),
            keep_pending: request.keep_pending,
            propagate: !request.propagate_to.is_empty(),
            deletions,
            scan_limit: app.settings.queue.erasure_scan_rows,
            actor: actor.clone(),
        })
        .await?;
    let r = record.removed;
    let mut detail = format!(
        "removed {} rows (pending {}, leased {}, delivered {}, dead {}), {} dead letters",
        r.rows(),
        r.pending,
        r.leased,
        r.delivered,
        r.dead,
        r.dead_letters
    );
    if !record.deletions.is_empty() {
        let accounts: Vec<&str> = record
            .deletions
            .iter()
            .map(|d| d.account.as_str())
            .collect();
        detail.push_str(&format!(
            "; CleverTap deletion queued for {}",
            accounts.join(", ")
        ));
    }
    tracing::info!(
        erasure = record.id,
        rows = r.rows(),
        dead_letters = r.dead_letters,
        scanned = r.scanned,
        scan_truncated = r.scan_truncated,
        deletions_queued = record.deletions.len(),
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
