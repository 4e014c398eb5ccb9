//! Signing in with the admin token (a CSRF-checked form of its own) and signing out.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::page::{self, PageError};
use super::session::{
    self, FLASH_COOKIE, Flash, Keys, Purpose, SESSION_COOKIE, SESSION_TTL, SIGN_IN_COOKIE,
    SIGN_IN_TTL,
};
use super::{Posted, keys, read_form};
use crate::clock::now_ms;
use crate::state::AppState;

/// The form, with a fresh sign-in token (cookie) and its CSRF token (hidden field).
fn form_page(
    keys: &Keys,
    secure: bool,
    status: StatusCode,
    problem: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let token = keys.new_session(Purpose::SignIn, now_ms(), SIGN_IN_TTL);
    let ctx = context! { csrf => keys.csrf(&token), problem => problem, notice => notice };
    let mut response = page::render_public(status, "sign_in.html", ctx);
    page::set_cookie(
        &mut response,
        &session::set_cookie(SIGN_IN_COOKIE, &token, SIGN_IN_TTL, secure),
    );
    response
}

pub async fn form(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let keys = keys(&app)?;
    let now = now_ms();
    let secure = session::came_over_https(&headers);
    if session::cookie(&headers, SESSION_COOKIE)
        .is_some_and(|token| keys.verify(Purpose::Session, token, now).is_some())
    {
        return Ok(page::see_other("/console", None));
    }
    let flash = session::cookie(&headers, FLASH_COOKIE).and_then(|f| Flash::open(&keys, f, now));
    let notice = flash.as_ref().filter(|f| f.ok).map(|f| f.message.as_str());
    let mut response = form_page(&keys, secure, StatusCode::OK, None, notice);
    if flash.is_some() {
        page::set_cookie(&mut response, &session::clear_cookie(FLASH_COOKIE, secure));
    }
    Ok(response)
}

pub async fn sign_in(State(app): State<AppState>, request: Request) -> Result<Response, PageError> {
    let keys = keys(&app)?;
    let headers = request.headers().clone();
    let secure = session::came_over_https(&headers);
    let fields = read_form(request, &app).await?;
    let form_token = session::cookie(&headers, SIGN_IN_COOKIE)
        .filter(|token| keys.verify(Purpose::SignIn, token, now_ms()).is_some());
    let csrf = fields.get("csrf").map_or("", String::as_str);
    if !form_token.is_some_and(|token| keys.csrf_ok(token, csrf)) {
        tracing::warn!(
            "console sign-in refused: the form's CSRF token is missing, expired or wrong"
        );
        let problem = "This sign-in form expired or did not come from this console. Try again.";
        return Ok(form_page(
            &keys,
            secure,
            StatusCode::FORBIDDEN,
            Some(problem),
            None,
        ));
    }
    let presented = fields.get("token").map_or("", String::as_str).trim();
    let Some(admin) = &app.admin else {
        return Err(PageError::not_found(
            "the console is disabled (set auth.admin_token)",
        ));
    };
    if !admin.matches(presented.as_bytes()) {
        tracing::warn!(
            presented = !presented.is_empty(),
            "console sign-in refused: wrong admin token"
        );
        let problem = "That is not the admin token.";
        return Ok(form_page(
            &keys,
            secure,
            StatusCode::UNAUTHORIZED,
            Some(problem),
            None,
        ));
    }
    tracing::info!("console sign-in");
    let token = keys.new_session(Purpose::Session, now_ms(), SESSION_TTL);
    let mut response = page::see_other("/console", Some((&keys, secure, Flash::ok("Signed in."))));
    page::set_cookie(
        &mut response,
        &session::set_cookie(SESSION_COOKIE, &token, SESSION_TTL, secure),
    );
    page::set_cookie(
        &mut response,
        &session::clear_cookie(SIGN_IN_COOKIE, secure),
    );
    Ok(response)
}

/// Removes the session cookie from this browser. A copy taken elsewhere stays valid until it
/// expires; rotating the admin token ends every session at once.
pub async fn sign_out(posted: Posted) -> Response {
    let session = &posted.session;
    tracing::info!("console sign-out");
    let mut response = page::done(session, "/console/sign-in", Flash::ok("Signed out."));
    page::set_cookie(
        &mut response,
        &session::clear_cookie(SESSION_COOKIE, session.secure),
    );
    response.into_response()
}
