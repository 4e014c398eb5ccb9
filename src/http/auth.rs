//! Route, drop-in and admin credentials, compared in constant time on hashes of the raw values.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;

use crate::credential::Credential;

/// True when any allowed credential matches any token the request carries: the configured
/// header, `Authorization: Bearer <t>` / `Token <t>` / `Token token=<t>`, or a basic password.
/// Every pair is compared; no early exit reveals which one matched.
pub fn route_token_ok(headers: &HeaderMap, header_name: &str, allowed: &[Credential]) -> bool {
    let candidates = presented_tokens(headers, header_name);
    let mut ok = false;
    for candidate in &candidates {
        for credential in allowed {
            ok |= credential.matches(candidate);
        }
    }
    ok
}

fn presented_tokens(headers: &HeaderMap, header_name: &str) -> Vec<Vec<u8>> {
    let mut tokens = Vec::new();
    for value in headers.get_all(header_name) {
        tokens.push(value.as_bytes().trim_ascii().to_vec());
    }
    for value in headers.get_all(AUTHORIZATION) {
        let Ok(text) = value.to_str() else { continue };
        let text = text.trim();
        let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            tokens.push(rest.as_bytes().to_vec());
        } else if scheme.eq_ignore_ascii_case("token") {
            let token = rest
                .strip_prefix("token=")
                .unwrap_or(rest)
                .trim_matches('"');
            tokens.push(token.as_bytes().to_vec());
        } else if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest)
            && let Some(colon) = decoded.iter().position(|b| *b == b':')
        {
            tokens.push(decoded[colon + 1..].to_vec());
        }
    }
    tokens
}

/// `Authorization: Bearer <admin_token>`.
pub fn admin_ok(headers: &HeaderMap, admin: &Credential) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .is_some_and(|token| admin.matches(token.trim().as_bytes()))
}

/// The names (never the values) of the headers a refused request carried, for the 401 log.
pub fn header_names(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().map(axum::http::HeaderName::as_str).collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// The drop-in passcode check for one account.
pub fn passcode_ok(headers: &HeaderMap, passcode: &Credential) -> bool {
    headers
        .get("x-clevertap-passcode")
        .is_some_and(|value| passcode.matches(value.as_bytes().trim_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use secrecy::SecretString;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    #[test]
    fn every_documented_token_form_is_accepted() {
        let allowed = [Credential::new(&SecretString::from("s3cret"))];
        let basic = base64::engine::general_purpose::STANDARD.encode("freshsales:s3cret");
        let cases = [
            (
                "custom header",
                headers(&[("x-freshtap-token", "s3cret")]),
                true,
            ),
            (
                "bearer",
                headers(&[("authorization", "Bearer s3cret")]),
                true,
            ),
            ("token", headers(&[("authorization", "Token s3cret")]), true),
            (
                "token token=",
                headers(&[("authorization", "Token token=s3cret")]),
                true,
            ),
            (
                "basic password",
                headers(&[("authorization", &format!("Basic {basic}"))]),
                true,
            ),
            ("wrong", headers(&[("x-freshtap-token", "nope")]), false),
            (
                "prefix of the token",
                headers(&[("x-freshtap-token", "s3cre")]),
                false,
            ),
            ("missing", headers(&[]), false),
        ];
        for (name, map, expected) in cases {
            assert_eq!(
                route_token_ok(&map, "x-freshtap-token", &allowed),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn rotated_tokens_are_both_accepted() {
        let allowed = [
            Credential::new(&SecretString::from("old")),
            Credential::new(&SecretString::from("new")),
        ];
        assert!(route_token_ok(
            &headers(&[("x-freshtap-token", "old")]),
            "x-freshtap-token",
            &allowed
        ));
        assert!(route_token_ok(
            &headers(&[("x-freshtap-token", "new")]),
            "x-freshtap-token",
            &allowed
        ));
    }
}
