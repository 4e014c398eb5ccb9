//! Tests of the queue boundary: redacted URLs, and codes and states that read back what they store.

use super::*;

#[test]
fn urls_lose_their_password() {
    assert_eq!(
        redact_url("postgres://app:s3cret@db:5432/x"),
        "postgres://app:***@db:5432/x"
    );
    assert_eq!(
        redact_url("sqlite://data/freshtap.db"),
        "sqlite://data/freshtap.db"
    );
}

#[test]
fn codes_and_states_read_back_what_they_store() {
    for code in [
        DeadCode::InvalidBody,
        DeadCode::RenderError,
        DeadCode::InvalidRecord,
        DeadCode::MaxAttempts,
        DeadCode::MaxAge,
        DeadCode::Refused(516),
    ] {
        assert_eq!(DeadCode::parse(&code.as_text()), Some(code), "{code}");
    }
    assert_eq!(DeadCode::parse("nonsense"), None);
    for state in RowState::ALL {
        assert_eq!(RowState::parse(state.as_str()), Some(state));
    }
    for kind in HoldKind::ALL {
        assert_eq!(HoldKind::parse(kind.as_str()), Some(kind));
    }
}
