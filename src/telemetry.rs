//! Logging: the tracing subscriber (JSON lines or pretty) and masking of personal data.
//!
//! `log.level` sets freshtap's own verbosity. Other crates' events are capped at WARN whatever
//! it says — also a directive naming a crate (`hyper=debug`): database drivers, HTTP
//! stacks and TLS print statement parameters, bodies and headers at debug and trace, and those
//! hold webhooks' emails and phones and the secrets. The phone library is silenced entirely.

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Installs the process-wide subscriber once; later calls (tests) are no-ops.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let quiet = filter_fn(allowed);
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(quiet)
            .try_init(),
        LogFormat::Pretty => builder.compact().finish().with(quiet).try_init(),
    };
}

/// Whether an event or span may reach the log at all, before `log.level` is consulted.
fn allowed(meta: &Metadata<'_>) -> bool {
    let target = meta.target();
    if is_own(target) {
        return true;
    }
    // The phone library traces the numbers it parses, even at WARN.
    if target.starts_with("rlibphonenumber") {
        return false;
    }
    *meta.level() <= Level::WARN
}

/// freshtap's own targets (the binary and the library); nothing else.
fn is_own(target: &str) -> bool {
    target == "freshtap" || target.starts_with("freshtap::")
}

/// Masks personal data for log fields unless masking is switched off (`log.mask_pii`).
#[derive(Debug, Clone, Copy)]
pub struct Pii {
    pub mask: bool,
}

impl Pii {
    /// `amelia.hart@example.com` → `am***@example.com`.
    pub fn email(self, value: &str) -> String {
        if !self.mask {
            return value.to_owned();
        }
        match value.split_once('@') {
            Some((local, domain)) => {
                format!("{}***@{domain}", local.chars().take(2).collect::<String>())
            }
            None => self.text(value),
        }
    }

    /// `+447700900123` → `+44*******23`: country code and the last two digits.
    pub fn phone(self, value: &str) -> String {
        if !self.mask {
            return value.to_owned();
        }
        let chars: Vec<char> = value.chars().collect();
        if chars.len() <= 5 {
            return "*".repeat(chars.len());
        }
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[chars.len() - 2..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 5))
    }

    /// Any other personal value: its first character and its length.
    pub fn text(self, value: &str) -> String {
        if !self.mask {
            return value.to_owned();
        }
        let first: String = value.chars().take(1).collect();
        format!("{first}*** ({} chars)", value.chars().count())
    }

    /// A value whose kind is unknown: masked as an email when it looks like one, as a phone
    /// when it is mostly digits, else as text.
    pub fn any(self, value: &str) -> String {
        if value.contains('@') {
            self.email(value)
        } else if value.chars().filter(char::is_ascii_digit).count() * 2 > value.len() {
            self.phone(value)
        } else {
            self.text(value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_freshtap_is_verbose() {
        assert!(is_own("freshtap::worker::deliver"));
        assert!(is_own("freshtap"));
        assert!(!is_own("freshtapish"));
        assert!(!is_own("hyper::proto::h1"));
    }

    #[test]
    fn personal_data_is_masked_by_default() {
        let pii = Pii { mask: true };
        assert_eq!(pii.email("amelia.hart@example.com"), "am***@example.com");
        assert_eq!(pii.phone("+447700900123"), "+44********23");
        assert_eq!(pii.any("amelia.hart@example.com"), "am***@example.com");
        assert!(!pii.any("+1 (415) 555-0134").contains("555"));
        assert_eq!(pii.text("Zoë"), "Z*** (3 chars)");
        let clear = Pii { mask: false };
        assert_eq!(clear.email("a@b.c"), "a@b.c");
    }
}
