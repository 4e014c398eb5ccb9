//! The operator console (`/console`): server-rendered pages behind the admin token — sign-in,
//! overview with account holds, dead letters (replay, reveal, fix, delete), webhook lookup, and
//! the audit log and erasures.
//!
//! Without `auth.admin_token` none of it exists (404, like the admin API). Every page needs a
//! signed session cookie (else it redirects to the sign-in form) and every POST a CSRF token
//! in a hidden field (else 403); sessions are signed tokens, so replicas share no store. Every
//! action that changes something is recorded in the audit log as done by [`CONSOLE_CREDENTIAL`].

mod audit;
mod dead_letter;
mod dead_letters;
mod lookup;
mod mask;
mod overview;
mod page;
pub mod session;
mod sign_in;

use std::collections::HashMap;

use axum::Router;
use axum::body::to_bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::admin::privacy::Who;
use super::error::ApiError;
use crate::clock::now_ms;
use crate::queue::Actor;
use crate::state::AppState;
use page::PageError;
use session::{Flash, Keys, Purpose};

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/console.css", get(page::stylesheet))
        .route(
            "/console/sign-in",
            get(sign_in::form).post(sign_in::sign_in),
        )
        .route("/console/sign-out", post(sign_in::sign_out))
        .route("/console/accounts/{name}/pause", post(overview::pause))
        .route("/console/accounts/{name}/resume", post(overview::resume))
        .route("/console/dead-letters", get(dead_letters::page))
        .route(
            "/console/dead-letters/replay",
            post(dead_letters::replay_matching),
        )
        .route("/console/dead-letters/{id}", get(dead_letter::page))
        .route(
            "/console/dead-letters/{id}/reveal",
            post(dead_letter::reveal),
        )
        .route(
            "/console/dead-letters/{id}/replay",
            post(dead_letter::replay_one),
        )
        .route(
            "/console/dead-letters/{id}/delete",
            post(dead_letter::delete),
        )
        .route(
            "/console/dead-letters/{id}/body",
            post(dead_letter::save_body),
        )
        .route("/console/webhooks", get(lookup::page))
        .route("/console/audit", get(audit::audit_page))
        .route("/console/erasures", get(audit::erasures_page))
        .route_layer(middleware::from_fn_with_state(state, guard))
}

/// The console exists only with an admin token; its answers are never cached or framed, and
/// load nothing from elsewhere.
async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if app.admin.is_none() {
        return ApiError::NotFound("the console is disabled (set auth.admin_token)".into())
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The console's signing key, from the admin token (the guard has made sure there is one).
fn keys(app: &AppState) -> Result<Keys, PageError> {
    app.settings
        .auth
        .admin_token
        .as_ref()
        .map(Keys::derive)
        .ok_or_else(|| PageError::not_found("the console is disabled (set auth.admin_token)"))
}

/// A signed-in operator: a valid, unexpired session cookie. Anything else is sent to the
/// sign-in form.
pub struct Session {
    pub keys: Keys,
    token: String,
    /// Whether the browser came over HTTPS (cookies set in answers are then `Secure`).
    pub secure: bool,
    /// The result message of the action that led here, shown once.
    pub flash: Option<Flash>,
}

impl Session {
    /// The CSRF token this session's forms carry.
    pub fn csrf(&self) -> String {
        self.keys.csrf(&self.token)
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let keys = keys(app).map_err(IntoResponse::into_response)?;
        let now = now_ms();
        let secure = session::came_over_https(&parts.headers);
        let token = session::cookie(&parts.headers, session::SESSION_COOKIE)
            .filter(|token| keys.verify(Purpose::Session, token, now).is_some())
            .map(str::to_owned)
            .ok_or_else(|| page::see_other("/console/sign-in", None))?;
        let flash = session::cookie(&parts.headers, session::FLASH_COOKIE)
            .and_then(|sealed| Flash::open(&keys, sealed, now));
        Ok(Self {
            keys,
            token,
            secure,
            flash,
        })
    }
}

/// The credential the audit log names for what is done in the console. A console session is
/// opened with the admin token (the sign-in form takes nothing else), but it is named apart from
/// the API's `admin_token` so an auditor can tell a click in the console from an API call.
pub const CONSOLE_CREDENTIAL: &str = "console";

/// A form POSTed by a signed-in operator with the session's CSRF token; a POST without it (or
/// with another session's) is refused with 403 before anything is done.
pub struct Posted {
    pub session: Session,
    pub fields: HashMap<String, String>,
    /// Who posted it, for the audit log: [`CONSOLE_CREDENTIAL`], the client address, the request id.
    pub actor: Actor,
}

impl Posted {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Reads a bounded url-encoded form body: the largest body an operator may save, encoded.
pub(super) async fn read_form(
    request: Request,
    app: &AppState,
) -> Result<HashMap<String, String>, PageError> {
    let limit = app
        .settings
        .server
        .max_body_bytes
        .saturating_mul(3)
        .saturating_add(16 * 1024);
    let body = to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| PageError::too_large(limit))?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, app).await?;
        let Ok(Who(actor)) = Who::from_request_parts(&mut parts, app).await;
        let actor = Actor {
            credential: CONSOLE_CREDENTIAL.into(),
            ..actor
        };
        let request = Request::from_parts(parts, body);
        let fields = read_form(request, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let presented = fields.get("csrf").map_or("", String::as_str);
        if !session.keys.csrf_ok(&session.token, presented) {
            tracing::warn!(
                csrf_present = !presented.is_empty(),
                "console form refused: CSRF token missing or wrong"
            );
            return Err(PageError::forbidden(
                "This form did not come from your console session (or the session changed). \
                 Reload the page and try again.",
            )
            .into_response());
        }
        Ok(Self {
            session,
            fields,
            actor,
        })
    }
}
