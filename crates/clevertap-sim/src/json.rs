//! JSON output helpers: CleverTap's space-padded style, answer bodies, and masking of ids and secrets.

use std::io;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter, Serializer};

/// Formats like real CleverTap answers: `{ "status" : "success" , "processed" : 1}`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PaddedFormatter;

impl Formatter for PaddedFormatter {
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b"{ ")
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b" , ") }
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b" : ")
    }
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b"[ ")
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b" , ") }
    }
}

/// Serialises `value`, padded or compact. Serialising plain data into a Vec cannot fail;
/// should it ever, the answer is an empty object rather than a panic.
pub fn to_bytes<T: Serialize>(value: &T, padded: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let result = if padded {
        value.serialize(&mut Serializer::with_formatter(&mut out, PaddedFormatter))
    } else {
        value.serialize(&mut Serializer::with_formatter(&mut out, CompactFormatter))
    };
    if result.is_err() {
        out = b"{}".to_vec();
    }
    out
}

/// A JSON answer with CleverTap's content type.
pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

#[derive(Serialize)]
struct FailBody<'a> {
    status: &'static str,
    error: &'a str,
    code: u16,
}

/// The text CleverTap (or our best guess) puts in a non-200 answer.
pub fn error_text(status: u16) -> &'static str {
    match status {
        400 => "Malformed request",
        401 => "Invalid Credentials",
        403 => "Operation not allowed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too many concurrent requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        other => StatusCode::from_u16(other)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error"),
    }
}

/// `{"status":"fail","error":…,"code":status}`; 502 and 504 answer a proxy-style HTML page.
pub fn error_response(
    status: u16,
    error: &str,
    padded: bool,
    retry_after: Option<u64>,
) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if status == 502 || status == 504 {
        let reason = code.canonical_reason().unwrap_or("Error");
        let html = format!(
            "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
        );
        let mut resp = (code, html).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        resp
    } else {
        let body = FailBody {
            status: "fail",
            error,
            code: status,
        };
        json_response(code, to_bytes(&body, padded))
    };
    if status == 429
        && let Some(secs) = retry_after
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Masks an identity for logs: `amelia@example.com` → `am***@example.com`, `+14155550143` → `+1***43`.
pub fn mask_identity(id: &str) -> String {
    if let Some((local, domain)) = id.split_once('@') {
        let head: String = local.chars().take(2).collect();
        return format!("{head}***@{domain}");
    }
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 4 {
        return "***".to_owned();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}***{tail}")
}

/// Masks a secret: only its first two characters of eight or more survive (`si***`).
pub fn mask_secret(secret: &str) -> String {
    if secret.chars().count() >= 8 {
        let head: String = secret.chars().take(2).collect();
        format!("{head}***")
    } else {
        "***".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn padded_output_matches_clevertap_style() {
        let v = json!({"status":"success","processed":2,"unprocessed":[1,2]});
        let text = String::from_utf8(to_bytes(&v, true)).unwrap_or_default();
        assert_eq!(
            text,
            r#"{ "processed" : 2 , "status" : "success" , "unprocessed" : [ 1 , 2]}"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, v);
    }

    #[test]
    fn masking() {
        assert_eq!(mask_identity("amelia@example.com"), "am***@example.com");
        assert_eq!(mask_identity("+14155550143"), "+1***43");
        assert_eq!(mask_identity("abc"), "***");
        assert_eq!(mask_secret("sim-passcode"), "si***");
        assert_eq!(mask_secret("short"), "***");
    }
}
