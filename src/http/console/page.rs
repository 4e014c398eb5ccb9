//! Rendering console pages: the compiled-in templates, the layout every page shares, result
//! messages carried across a redirect, and errors shown as a page (never a stack trace).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::value::Value;
use minijinja::{Environment, context};

use super::Session;
use super::session::{self, FLASH_COOKIE, FLASH_TTL, Flash, Keys};
use crate::clock::{iso, now_ms};
use crate::http::error::current_request_id;
use crate::queue::QueueError;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("overview.html", include_str!("templates/overview.html")),
    (
        "dead_letters.html",
        include_str!("templates/dead_letters.html"),
    ),
    (
        "dead_letter.html",
        include_str!("templates/dead_letter.html"),
    ),
    ("lookup.html", include_str!("templates/lookup.html")),
    ("audit.html", include_str!("templates/audit.html")),
    ("erasures.html", include_str!("templates/erasures.html")),
    ("error.html", include_str!("templates/error.html")),
];
const STYLESHEET: &str = include_str!("templates/console.css");

/// Every template, compiled; HTML templates escape every value they print.
fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

fn render_html(template: &str, ctx: Value) -> Result<String, minijinja::Error> {
    environment()?.get_template(template)?.render(ctx)
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A signed-in page: `template` with `ctx`, in the layout with the navigation (`nav` names
/// the current entry), the session's CSRF token and the pending result message, which is
/// then cleared.
pub fn render(session: &Session, template: &str, nav: &str, ctx: Value) -> Response {
    render_status(session, StatusCode::OK, template, nav, ctx)
}

pub fn render_status(
    session: &Session,
    status: StatusCode,
    template: &str,
    nav: &str,
    ctx: Value,
) -> Response {
    let flash = session
        .flash
        .as_ref()
        .map(|f| context! { ok => f.ok, message => f.message.clone() });
    let base = context! {
        signed_in => true,
        csrf => session.csrf(),
        nav => nav,
        flash => flash,
        request_id => current_request_id(),
    };
    let mut response = match render_html(template, context! { ..ctx, ..base }) {
        Ok(body) => html(status, body),
        Err(error) => return PageError::template(&error).into_response(),
    };
    if session.flash.is_some() {
        set_cookie(
            &mut response,
            &session::clear_cookie(FLASH_COOKIE, session.secure),
        );
    }
    response
}

/// A page of a signed-out visitor (the sign-in form).
pub fn render_public(status: StatusCode, template: &str, ctx: Value) -> Response {
    let base = context! { signed_in => false, request_id => current_request_id() };
    match render_html(template, context! { ..ctx, ..base }) {
        Ok(body) => html(status, body),
        Err(error) => PageError::template(&error).into_response(),
    }
}

pub fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// `303 See Other` to `location` (a console path the handler built), with a result message
/// for the page there when given.
pub fn see_other(location: &str, flash: Option<(&Keys, bool, Flash)>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some((keys, secure, flash)) = flash {
        let sealed = flash.seal(keys, now_ms());
        set_cookie(
            &mut response,
            &session::set_cookie(FLASH_COOKIE, &sealed, FLASH_TTL, secure),
        );
    }
    response
}

/// The answer to an action: back to `location` with its result.
pub fn done(session: &Session, location: &str, flash: Flash) -> Response {
    see_other(location, Some((&session.keys, session.secure, flash)))
}

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

/// `text` as one URL path segment: unreserved characters as they are, the rest %-encoded.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The fields of a query string (the last of a repeated name wins); never fails.
pub fn query_fields(query: Option<&str>) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// A console path with a query built from `pairs` (empty values left out).
pub fn with_query(path: &str, pairs: &[(&str, Option<&str>)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            query.append_pair(key, value);
        }
    }
    let query = query.finish();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// A time as the console shows it: UTC, to the second.
pub fn when(ms: i64) -> String {
    let text = iso(ms);
    match (text.get(..10), text.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => text,
    }
}

/// How long ago `ms` was, roughly: "42 s", "5 min", "3 h", "2 d".
pub fn ago(ms: i64) -> String {
    let secs = (now_ms() - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        3600..86_400 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

/// A failure shown as a page with its status and a plain sentence.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The form is larger than the {limit} bytes the console reads."),
        )
    }

    fn template(error: &minijinja::Error) -> Self {
        tracing::error!(error = %error, "console page could not be rendered");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "This page could not be drawn; the error is in the relay's log.",
        )
    }
}

impl From<QueueError> for PageError {
    fn from(error: QueueError) -> Self {
        tracing::error!(error = %error, "queue unavailable; console page not served");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The queue is unavailable right now; try again in a moment.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ctx = context! {
            status => self.status.as_u16(),
            reason => self.status.canonical_reason().unwrap_or("Error"),
            message => self.message.clone(),
            signed_in => false,
            request_id => current_request_id(),
        };
        match render_html("error.html", ctx) {
            Ok(body) => html(self.status, body),
            // The error page itself failed: plain text, still no internals.
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}
