//! Console sessions with no session store, so any replica behind a load balancer accepts them:
//! signed, expiring tokens (HMAC-SHA256 under a key derived from the admin token, so rotating
//! the token ends every session), the CSRF token each one implies, signed flash messages, and
//! the cookies that carry them.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The signed-in operator's session.
pub const SESSION_COOKIE: &str = "freshtap_console";
/// The sign-in form's own token: its POST is CSRF-checked like every other.
pub const SIGN_IN_COOKIE: &str = "freshtap_console_sign_in";
/// The result message of the last action, shown once by the page it redirects to.
pub const FLASH_COOKIE: &str = "freshtap_console_flash";
/// Every console cookie is sent only to the console.
pub const COOKIE_PATH: &str = "/console";

pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
pub const SIGN_IN_TTL: Duration = Duration::from_secs(3600);
pub const FLASH_TTL: Duration = Duration::from_secs(60);

type HmacSha256 = Hmac<Sha256>;

/// What a signed token is for; a token signed for one purpose never verifies as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Session,
    SignIn,
    Flash,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Session => b"session",
            Self::SignIn => b"sign-in",
            Self::Flash => b"flash",
        }
    }
}

/// The console's signing key, derived from the admin token.
#[derive(Clone)]
pub struct Keys {
    key: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([REDACTED])")
    }
}

fn hmac(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        // RFC 2104: a longer key is hashed, a shorter one padded; no length is refused.
        Err(_) => unreachable!("HMAC takes a key of any length"),
    }
}

impl Keys {
    /// The key for `admin_token`: HMAC-SHA256(admin token, a fixed label), so the token itself
    /// never signs anything and a new token makes every earlier signature worthless.
    pub fn derive(admin_token: &SecretString) -> Self {
        let mut mac = hmac(admin_token.expose_secret().as_bytes());
        mac.update(b"freshtap console signing key v1");
        Self {
            key: mac.finalize().into_bytes().into(),
        }
    }

    fn mac(&self, purpose: Purpose, signed: &str) -> HmacSha256 {
        let mut mac = hmac(&self.key);
        mac.update(purpose.label());
        mac.update(b"\0");
        mac.update(signed.as_bytes());
        mac
    }

    /// `payload` signed for `purpose` until `now_ms + ttl`: `<expiry ms>.<payload>.<mac>`, in
    /// characters a cookie may carry as they are.
    pub fn sign(&self, purpose: Purpose, payload: &[u8], now_ms: i64, ttl: Duration) -> String {
        let expires = now_ms.saturating_add(crate::clock::duration_ms(ttl));
        let signed = format!("{expires}.{}", URL_SAFE_NO_PAD.encode(payload));
        let tag = URL_SAFE_NO_PAD.encode(self.mac(purpose, &signed).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// The payload of a token signed by `sign` for `purpose` and not expired at `now_ms`;
    /// `None` for anything else (tampered, expired, another purpose, another key).
    pub fn verify(&self, purpose: Purpose, token: &str, now_ms: i64) -> Option<Vec<u8>> {
        let (signed, tag) = token.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Compared in constant time by the MAC itself.
        self.mac(purpose, signed).verify_slice(&tag).ok()?;
        let (expires, payload) = signed.split_once('.')?;
        if expires.parse::<i64>().ok()? <= now_ms {
            return None;
        }
        URL_SAFE_NO_PAD.decode(payload).ok()
    }

    /// A new session token (a random nonce, signed).
    pub fn new_session(&self, purpose: Purpose, now_ms: i64, ttl: Duration) -> String {
        let nonce: [u8; 16] = rand::random();
        self.sign(purpose, &nonce, now_ms, ttl)
    }

    /// The CSRF token of a session (or sign-in) token: its forms carry it in a hidden field.
    /// It follows from the token and the key, so nothing is stored and every replica agrees.
    pub fn csrf(&self, token: &str) -> String {
        let mut mac = hmac(&self.key);
        mac.update(b"csrf\0");
        mac.update(token.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `presented` is the CSRF token of `token`, compared in constant time.
    pub fn csrf_ok(&self, token: &str, presented: &str) -> bool {
        self.csrf(token)
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }
}

/// A result message for the next page: good news or a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
        }
    }

    pub fn problem(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }

    pub fn seal(&self, keys: &Keys, now_ms: i64) -> String {
        let payload = format!("{}{}", if self.ok { 'o' } else { 'p' }, self.message);
        keys.sign(Purpose::Flash, payload.as_bytes(), now_ms, FLASH_TTL)
    }

    pub fn open(keys: &Keys, sealed: &str, now_ms: i64) -> Option<Self> {
        let payload = String::from_utf8(keys.verify(Purpose::Flash, sealed, now_ms)?).ok()?;
        let (kind, message) = payload.split_at_checked(1)?;
        Some(Self {
            ok: kind == "o",
            message: message.to_owned(),
        })
    }
}

/// The value of the cookie `name` the request carries (the first, when several do).
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// True when a proxy in front says the browser came over HTTPS (`X-Forwarded-Proto: https`,
/// or `Forwarded: proto=https`): the cookies are then marked `Secure`.
pub fn came_over_https(headers: &HeaderMap) -> bool {
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get("forwarded")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|pair| {
                pair.trim().split_once('=').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("proto")
                        && v.trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, the console's path, `Secure` over HTTPS.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={COOKIE_PATH}; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        max_age.as_secs()
    )
}

/// A `Set-Cookie` value that removes the cookie `name`.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", Duration::ZERO, secure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const NOW: i64 = 1_800_000_000_000;

    fn keys(token: &str) -> Keys {
        Keys::derive(&SecretString::from(token.to_owned()))
    }

    #[test]
    fn a_signed_session_verifies_until_it_expires() {
        let k = keys("admin");
        let token = k.sign(Purpose::Session, b"nonce", NOW, SESSION_TTL);
        assert_eq!(
            k.verify(Purpose::Session, &token, NOW + 1),
            Some(b"nonce".to_vec())
        );
        let last_ms = NOW + crate::clock::duration_ms(SESSION_TTL) - 1;
        assert!(k.verify(Purpose::Session, &token, last_ms).is_some());
        assert_eq!(
            k.verify(Purpose::Session, &token, last_ms + 1),
            None,
            "expired"
        );
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let k = keys("admin");
        let token = k.sign(Purpose::Session, b"nonce", NOW, SESSION_TTL);
        let (expires, rest) = token.split_once('.').expect("expiry");
        let later = format!("{}.{rest}", expires.parse::<i64>().expect("ms") + 3_600_000);
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        let other_payload = token.replacen(".bm9uY2U.", ".bm9uY2F.", 1);
        let cases = [
            ("expiry pushed back", later.as_str()),
            ("mac changed", flipped.as_str()),
            ("payload changed", other_payload.as_str()),
            ("mac cut off", token.rsplit_once('.').expect("mac").0),
            ("empty", ""),
            ("garbage", "a.b.c"),
        ];
        for (what, tampered) in cases {
            assert_eq!(k.verify(Purpose::Session, tampered, NOW), None, "{what}");
        }
    }

    #[test]
    fn a_new_admin_token_ends_every_session() {
        let token = keys("old").new_session(Purpose::Session, NOW, SESSION_TTL);
        assert!(keys("old").verify(Purpose::Session, &token, NOW).is_some());
        assert_eq!(keys("new").verify(Purpose::Session, &token, NOW), None);
    }

    #[test]
    fn a_token_signed_for_one_purpose_is_refused_for_another() {
        let k = keys("admin");
        let sign_in = k.new_session(Purpose::SignIn, NOW, SIGN_IN_TTL);
        assert_eq!(k.verify(Purpose::Session, &sign_in, NOW), None);
        let flash = Flash::ok("done").seal(&k, NOW);
        assert_eq!(k.verify(Purpose::Session, &flash, NOW), None);
    }

    #[test]
    fn sessions_are_distinct_and_so_are_their_csrf_tokens() {
        let k = keys("admin");
        let a = k.new_session(Purpose::Session, NOW, SESSION_TTL);
        let b = k.new_session(Purpose::Session, NOW, SESSION_TTL);
        assert_ne!(a, b);
        assert!(k.csrf_ok(&a, &k.csrf(&a)));
        assert!(!k.csrf_ok(&a, &k.csrf(&b)), "another session's token");
        assert!(!k.csrf_ok(&a, ""), "no token");
        assert!(!k.csrf_ok(&a, &k.csrf(&a)[1..]), "a truncated token");
        assert!(
            !keys("other").csrf_ok(&a, &k.csrf(&a)),
            "a token of another key"
        );
    }

    #[test]
    fn a_flash_message_reads_back_only_unchanged() {
        let k = keys("admin");
        let sealed = Flash::problem("Dead letter 7: body still unreadable").seal(&k, NOW);
        assert_eq!(
            Flash::open(&k, &sealed, NOW),
            Some(Flash::problem("Dead letter 7: body still unreadable"))
        );
        assert_eq!(
            Flash::open(&k, &sealed, NOW + 61_000),
            None,
            "shown within a minute or not at all"
        );
        let forged = sealed.replacen('.', "0.", 1);
        assert_eq!(Flash::open(&k, &forged, NOW), None);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("freshtap_console_flash=f; freshtap_console=s; other=x"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("s"));
        assert_eq!(cookie(&headers, FLASH_COOKIE), Some("f"));
        assert_eq!(cookie(&headers, SIGN_IN_COOKIE), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let plain = set_cookie(SESSION_COOKIE, "v", SESSION_TTL, false);
        assert_eq!(
            plain,
            "freshtap_console=v; Path=/console; Max-Age=43200; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie(SESSION_COOKIE, "v", SESSION_TTL, true).ends_with("; Secure"));
        let mut headers = HeaderMap::new();
        assert!(!came_over_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(came_over_https(&headers));
        let mut headers = HeaderMap::new();
        headers.insert(
            "forwarded",
            HeaderValue::from_static("for=192.0.2.60;proto=https;by=203.0.113.43"),
        );
        assert!(came_over_https(&headers));
        headers.insert("forwarded", HeaderValue::from_static("proto=http"));
        assert!(!came_over_https(&headers));
    }
}
