//! The OpenAPI document against the real router, both ways: every documented operation is
//! routed, and every route is documented.

use std::collections::BTreeSet;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use super::DOCUMENT;
use crate::http::ROUTES;

/// Documented operations whose endpoints are still being built: the document is ahead of
/// the router for these. Remove an entry when its route lands (the test says so).
const DOCUMENTED_NOT_YET_ROUTED: &[(&str, &str)] = &[];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

type Operations = BTreeSet<(String, String)>;

fn owned(list: &[(&str, &str)]) -> Operations {
    list.iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

fn documented() -> Operations {
    let document: serde_json::Value = serde_json::from_str(DOCUMENT).expect("the document is JSON");
    let paths = document["paths"].as_object().expect("paths");
    let mut operations = Operations::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method.to_ascii_lowercase()).is_some() {
                operations.insert((method.to_owned(), path.clone()));
            }
        }
    }
    operations
}

async fn app() -> (crate::state::AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = crate::config::Settings::from_toml(&format!(
        "[queue]\nurl = \"sqlite://{}\"\n[auth]\ntoken = \"t\"\nadmin_token = \"a\"\n\
         [clevertap.accounts.main]\naccount_id = \"ACC\"\npasscode = \"p\"\n",
        dir.path().join("q.db").display()
    ))
    .expect("settings");
    let queue = crate::queue::Queue::connect(&settings.queue)
        .await
        .expect("queue");
    let state =
        crate::state::AppState::new(settings, queue, Default::default()).expect("state builds");
    (state, dir)
}

/// What the real router answers `method path` (path parameters filled in), without
/// credentials, so nothing is changed.
async fn answer(state: &crate::state::AppState, method: &str, path: &str) -> (StatusCode, String) {
    let concrete: String = path
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(concrete)
        .body(Body::empty())
        .expect("request");
    let response = crate::http::router(state.clone(), true)
        .oneshot(request)
        .await
        .expect("answer");
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn unrouted(status: StatusCode, body: &str) -> bool {
    status == StatusCode::METHOD_NOT_ALLOWED
        || (status == StatusCode::NOT_FOUND && body.contains("no such endpoint"))
}

#[test]
fn the_document_describes_exactly_the_routes_and_those_being_built() {
    let routes = owned(ROUTES);
    let pending = owned(DOCUMENTED_NOT_YET_ROUTED);
    let overlap: Vec<_> = routes.intersection(&pending).collect();
    assert!(
        overlap.is_empty(),
        "routed now, so no longer pending: {overlap:?}"
    );
    let expected: Operations = routes.union(&pending).cloned().collect();
    let documented = documented();
    let undocumented: Vec<_> = expected.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&expected).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.json: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "documented but neither in ROUTES nor pending: {unknown:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_no_other_method_is() {
    let (state, _dir) = app().await;
    let pending = owned(DOCUMENTED_NOT_YET_ROUTED);
    let documented = documented();
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            let operation = (method.to_owned(), path.clone());
            let (status, body) = answer(&state, method, path).await;
            if pending.contains(&operation) {
                assert!(
                    unrouted(status, &body),
                    "{method} {path} is routed now: remove it from DOCUMENTED_NOT_YET_ROUTED"
                );
            } else if documented.contains(&operation) {
                assert!(
                    !unrouted(status, &body),
                    "{method} {path} is documented but not routed ({status} {body})"
                );
            } else if !pending.iter().any(|(_, p)| p == path) {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} answers without being documented ({body})"
                );
            }
        }
    }
}

/// Every `.route("path", …)` under `src/http/`, with the methods of its handlers.
fn routes_in_source() -> Operations {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = vec![root];
    let mut operations = Operations::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("dir")
                    .map(|e| e.expect("entry").path()),
            );
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for (at, _) in text.match_indices(".route(") {
            // rustfmt may put the path on the next line.
            let Some(rest) = text[at + ".route(".len()..].trim_start().strip_prefix('"') else {
                continue;
            };
            let Some(end) = rest.find('"') else { continue };
            let route = &rest[..end];
            let mut depth = 1;
            let call: String = rest
                .chars()
                .take_while(|c| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth > 0
                })
                .collect();
            for method in METHODS {
                let name = method.to_ascii_lowercase();
                let called = call.match_indices(&format!("{name}(")).any(|(i, _)| {
                    i == 0 || !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    operations.insert((method.to_owned(), route.to_owned()));
                }
            }
        }
    }
    operations
}

#[test]
fn every_route_in_the_source_is_in_the_list() {
    let in_source = routes_in_source();
    assert!(
        in_source.len() >= 20,
        "the scan found too little: {in_source:?}"
    );
    let listed = owned(ROUTES);
    let unlisted: Vec<_> = in_source.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "add these to http::ROUTES and docs/openapi.json: {unlisted:?}"
    );
    let gone: Vec<_> = listed.difference(&in_source).collect();
    assert!(
        gone.is_empty(),
        "in http::ROUTES but routed nowhere: {gone:?}"
    );
}
