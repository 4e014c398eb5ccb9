//! The console test harness: the real router over a fresh queue, requests through `oneshot`,
//! signing in through the form as a browser would.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use freshtap::http::console::session::SESSION_COOKIE;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::test_app::{ADMIN, base_settings};

pub struct Console {
    router: Router,
    _dir: tempfile::TempDir,
}

pub async fn console_with(admin_token: Option<&str>) -> Console {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = base_settings(dir.path(), "http://127.0.0.1:9", "");
    settings.auth.admin_token = admin_token.map(|t| SecretString::from(t.to_owned()));
    let queue = freshtap::queue::Queue::connect(&settings.queue)
        .await
        .expect("queue");
    let state =
        freshtap::state::AppState::new(settings, queue, CancellationToken::new()).expect("state");
    Console {
        router: freshtap::http::router(state, true),
        _dir: dir,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub cookies: Vec<String>,
    pub body: String,
}

impl Console {
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.router.clone().oneshot(request).await.expect("answer");
        let header = |name| {
            response
                .headers()
                .get_all(name)
                .iter()
                .map(|v| v.to_str().expect("ascii").to_owned())
                .collect::<Vec<_>>()
        };
        let location = header(header::LOCATION).into_iter().next();
        let cookies = header(header::SET_COOKIE);
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 22).await.expect("body");
        Answer {
            status,
            location,
            cookies,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut request = Request::get(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::empty()).expect("request"))
            .await
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: Option<&str>,
        fields: &[(&str, &str)],
    ) -> Answer {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut request =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        self.send(request.body(Body::from(body)).expect("request"))
            .await
    }

    /// Signs in through the form; the session cookie and the CSRF token its pages carry.
    pub async fn sign_in(&self) -> (String, String) {
        let form = self.get("/console/sign-in", None).await;
        let sign_in_cookie = cookie_pair(&form.cookies, "freshtap_console_sign_in");
        let answer = self
            .post_form(
                "/console/sign-in",
                Some(&sign_in_cookie),
                &[("token", ADMIN), ("csrf", &csrf_field(&form.body))],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let session = cookie_pair(&answer.cookies, SESSION_COOKIE);
        let page = self.get("/console", Some(&session)).await;
        assert_eq!(page.status, StatusCode::OK);
        (session, csrf_field(&page.body))
    }
}

/// `name=value` of the cookie `name` an answer sets.
pub fn cookie_pair(set_cookies: &[String], name: &str) -> String {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().expect("pair").to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no cookie {name} in {set_cookies:?}"))
}

pub fn csrf_field(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}
