//! The console's actions in the audit log, on the real app: pause, resume, replay, delete and a
//! saved body are recorded as the admin API records its own, with the credential `console`, the
//! client address and the request id; a failed action is not. The audit and erasures pages list
//! them, escaped and paged.

use std::time::Duration;

use reqwest::{Method, StatusCode, header, redirect};
use serde_json::{Value, json};

use super::harness::{cookie_pair, csrf_field};
use crate::test_app::{ADMIN, TOKEN, TestApp, contact, spawn_app};

/// A browser on the real app's console: signed in through the form, redirects not followed.
struct Browser {
    client: reqwest::Client,
    base: String,
    session: String,
    csrf: String,
}

impl Browser {
    async fn sign_in(app: &TestApp) -> Self {
        let client = reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .expect("client");
        let form = client
            .get(format!("{}/console/sign-in", app.address))
            .send()
            .await
            .expect("form");
        let sign_in_cookie = cookie_pair(&set_cookies(&form), "freshtap_console_sign_in");
        let csrf = csrf_field(&form.text().await.expect("form page"));
        let signed_in = client
            .post(format!("{}/console/sign-in", app.address))
            .header(header::COOKIE, sign_in_cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(&[("token", ADMIN), ("csrf", &csrf)]))
            .send()
            .await
            .expect("sign-in");
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let session = cookie_pair(&set_cookies(&signed_in), "freshtap_console");
        let mut browser = Self {
            client,
            base: app.address.clone(),
            session,
            csrf: String::new(),
        };
        browser.csrf = csrf_field(&browser.page("/console").await);
        browser
    }

    async fn page(&self, path: &str) -> String {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.session)
            .send()
            .await
            .expect("page");
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        answer.text().await.expect("html")
    }

    /// Posts a console form with the session's CSRF token, as request `request_id`.
    async fn post(&self, path: &str, fields: &[(&str, &str)], request_id: &str) -> StatusCode {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        self.client
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.session)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-request-id", request_id)
            .body(encode(&fields))
            .send()
            .await
            .expect("post")
            .status()
    }
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect()
}

fn encode(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// A webhook whose body does not read: refused, kept as an `invalid_body` dead letter.
async fn invalid_body(app: &TestApp) -> i64 {
    let refused = app
        .client
        .post(format!("{}/webhooks/contacts", app.address))
        .header("x-freshtap-token", TOKEN)
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"contact_email":"nora.quinn@example.net","#)
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let answer: Value = refused.json().await.expect("json");
    answer["dead_letter_id"].as_i64().expect("a dead letter id")
}

async fn audit_log(app: &TestApp) -> Vec<Value> {
    app.admin_json("/admin/audit").await["items"]
        .as_array()
        .cloned()
        .expect("items")
}

/// The row of entry `id` on a list page (`audit` or `erasure`).
fn row<'a>(html: &'a str, kind: &str, id: &Value) -> &'a str {
    let start = html
        .find(&format!(r#"<tr id="{kind}-{id}""#))
        .unwrap_or_else(|| panic!("no row {kind}-{id} in {html}"));
    let end = html[start..].find("</tr>").expect("row end");
    &html[start..start + end]
}

#[tokio::test]
async fn every_console_action_is_audited_as_done_by_the_console_and_shown_on_its_page() {
    let app = spawn_app().await;
    let (fixed, deleted, saved_and_replayed, still_broken) = (
        invalid_body(&app).await,
        invalid_body(&app).await,
        invalid_body(&app).await,
        invalid_body(&app).await,
    );
    let browser = Browser::sign_in(&app).await;
    let done = StatusCode::SEE_OTHER;
    let body = r#"{"contact_email":"nora.quinn@example.net"}"#;
    let actions = [
        ("/console/accounts/main/pause".to_owned(), vec![], "c-pause"),
        (
            "/console/accounts/main/resume".to_owned(),
            vec![],
            "c-resume",
        ),
        (
            format!("/console/dead-letters/{fixed}/body"),
            vec![("body", body), ("then", "stay")],
            "c-save",
        ),
        (
            format!("/console/dead-letters/{fixed}/replay"),
            vec![],
            "c-replay",
        ),
        (
            format!("/console/dead-letters/{deleted}/delete"),
            vec![],
            "c-delete",
        ),
        (
            format!("/console/dead-letters/{saved_and_replayed}/body"),
            vec![("body", body), ("then", "replay")],
            "c-save-replay",
        ),
    ];
    for (path, fields, request_id) in &actions {
        assert_eq!(browser.post(path, fields, request_id).await, done, "{path}");
    }
    // Failed actions: nothing was done, so nothing is recorded as done.
    let missing = browser
        .post("/console/dead-letters/999999/delete", &[], "c-missing")
        .await;
    assert_eq!(missing, StatusCode::NOT_FOUND);
    let nobody = browser
        .post("/console/accounts/nobody/pause", &[], "c-nobody")
        .await;
    assert_eq!(nobody, done, "back to the overview with the problem");
    let refused = browser
        .post(
            &format!("/console/dead-letters/{still_broken}/body"),
            &[("body", "{\"contact_email\": ")],
            "c-refused",
        )
        .await;
    assert_eq!(refused, StatusCode::BAD_REQUEST);
    // Replay by filter is recorded even when it replays nothing (the letter left still does
    // not read), as the admin API's is.
    let every = browser
        .post(
            "/console/dead-letters/replay",
            &[("code", "invalid_body")],
            "c-replay-all",
        )
        .await;
    assert_eq!(every, done);

    let log = audit_log(&app).await;
    let seen: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().expect("text");
            (
                text("request_id"),
                text("action"),
                text("target"),
                text("detail"),
            )
        })
        .collect();
    let (fixed_target, deleted_target, both_target) = (
        format!("dead letter {fixed}"),
        format!("dead letter {deleted}"),
        format!("dead letter {saved_and_replayed}"),
    );
    assert_eq!(
        seen,
        [
            (
                "c-replay-all",
                "replay",
                "dead letters route=* code=invalid_body",
                "replayed 0",
            ),
            (
                "c-save-replay",
                "replay",
                both_target.as_str(),
                "replayed 1"
            ),
            (
                "c-save-replay",
                "set_body",
                both_target.as_str(),
                "replaced"
            ),
            ("c-delete", "delete", deleted_target.as_str(), "deleted"),
            ("c-replay", "replay", fixed_target.as_str(), "replayed 1"),
            ("c-save", "set_body", fixed_target.as_str(), "replaced"),
            ("c-resume", "resume", "account main", "done"),
            ("c-pause", "pause", "account main", "done"),
        ],
        "newest first, the admin API's names and shapes, no failed action"
    );
    for entry in &log {
        assert_eq!(entry["credential"], "console", "{entry}");
        assert_eq!(entry["client"], "127.0.0.1", "{entry}");
    }

    let page = browser.page("/console/audit").await;
    assert!(
        page.contains(r#"<a href="/console/audit" aria-current="page">Audit log</a>"#),
        "linked from the navigation"
    );
    for entry in &log {
        let shown = row(&page, "audit", &entry["id"]);
        for field in ["credential", "client", "request_id", "action", "detail"] {
            let value = entry[field].as_str().expect("text");
            assert!(shown.contains(value), "{field} {value} not in {shown}");
        }
        let target = entry["target"].as_str().expect("text");
        assert!(shown.contains(target), "{target} not in {shown}");
    }
}

#[tokio::test]
async fn the_audit_page_escapes_what_it_shows_and_pages_with_before() {
    let app = spawn_app().await;
    let replay = app
        .admin(
            Method::POST,
            "/admin/dead-letters/replay?route=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        )
        .await;
    assert_eq!(replay.status(), StatusCode::OK);
    for i in 0..25 {
        let action = if i % 2 == 0 { "pause" } else { "resume" };
        let answer = app
            .admin(Method::POST, &format!("/admin/accounts/main/{action}"))
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let newest = app.admin_json("/admin/audit?limit=25").await;
    let last_shown = newest["items"][24]["id"].as_i64().expect("25 entries");
    let browser = Browser::sign_in(&app).await;

    // Attribute values are escaped too (`/` as `&#x2f;`); a browser reads them back.
    let first = browser.page("/console/audit").await.replace("&#x2f;", "/");
    assert_eq!(first.matches(r#"<tr id="audit-"#).count(), 25);
    assert!(!first.contains("First page"));
    let next = format!(r#"href="/console/audit?before={last_shown}""#);
    assert!(first.contains(&next), "a next page after the 25th entry");

    let second = browser
        .page(&format!("/console/audit?before={last_shown}"))
        .await
        .replace("&#x2f;", "/");
    assert_eq!(second.matches(r#"<tr id="audit-"#).count(), 1);
    assert!(second.contains(r#"href="/console/audit">First page"#));
    assert!(!second.contains("Next page"));
    assert!(
        second.contains("route=&lt;script&gt;alert(1)&lt;"),
        "{second}"
    );
    assert!(!second.contains("<script>"), "never HTML from an entry");
}

#[tokio::test]
async fn the_erasures_page_shows_an_erasure_by_its_hash_never_the_identity() {
    let app = spawn_app().await;
    let person = "amelia.hart@example.com";
    assert_eq!(
        app.post_webhook("contacts", &contact(person))
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let erased = app
        .client
        .post(format!("{}/admin/erasures", app.address))
        .bearer_auth(ADMIN)
        .json(&json!({"identity": person}))
        .send()
        .await
        .expect("sent");
    assert_eq!(erased.status(), StatusCode::OK);
    let record: Value = erased.json().await.expect("json");
    let hash = record["identity_hash"].as_str().expect("hash");
    let browser = Browser::sign_in(&app).await;

    let page = browser.page("/console/erasures").await;
    let shown = row(&page, "erasure", &record["id"]);
    assert!(shown.contains(&hash[..12]), "{shown}");
    assert!(shown.contains("admin_token") && shown.contains("127.0.0.1"));
    let removed = &record["removed"];
    let rows: u64 = ["pending", "leased", "delivered", "dead"]
        .iter()
        .map(|state| removed[*state].as_u64().expect("a count"))
        .sum();
    let plural = if rows == 1 { "" } else { "s" };
    let removed_rows = format!(r#"<td class="removed">{rows} row{plural}"#);
    assert!(shown.contains(&removed_rows), "{shown}");
    assert!(!page.contains("amelia"), "the identity is never shown");
    assert!(
        shown.contains(r#"<td class="propagated">no</td>"#),
        "{shown}"
    );

    // A propagating erasure shows its CleverTap deletion's state, delivered once confirmed.
    let propagated: Value = app
        .erase(json!({"identity": person, "propagate": true}))
        .await
        .json()
        .await
        .expect("json");
    let delivered = crate::test_app::eventually(
        "the deletion shown delivered",
        Duration::from_secs(10),
        || async {
            let page = browser.page("/console/erasures").await;
            let shown = row(&page, "erasure", &propagated["id"]);
            shown
                .contains(r#"<td class="propagated">main: delivered</td>"#)
                .then_some(page)
        },
    )
    .await;
    assert!(!delivered.contains("amelia"), "the identity is never shown");
    let audit = browser.page("/console/audit").await;
    assert!(
        audit.contains(r#"<td class="action">erase</td>"#),
        "{audit}"
    );
}
