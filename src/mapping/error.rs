//! What compiling a route's mapping can find wrong, each naming file, key path and line.

/// Display names the template file, the key path and filter where relevant, and the line when known.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}:{line}:{column}: template is not valid JSON: {message}")]
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {path}: {message}")]
    Shape {
        file: String,
        path: String,
        message: String,
    },
    #[error("{file}{}: {path}: cannot compile expression: {message}", at_line(*.line))]
    Expression {
        file: String,
        path: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{file}{}: {path}: unknown filter `{filter}`", at_line(*.line))]
    UnknownFilter {
        file: String,
        path: String,
        line: Option<usize>,
        filter: String,
    },
    #[error("route {route}: timezone `{value}` is not an IANA time zone name")]
    Timezone { route: String, value: String },
    #[error("route {route}: default_region `{value}` is not an ISO 3166 alpha-2 region")]
    Region { route: String, value: String },
    #[error("route {route}: date_format `{value}` is not a valid chrono strftime format")]
    DateFormat { route: String, value: String },
    #[error("route {route}: alias `{name}` lists no webhook field")]
    Alias { route: String, name: String },
}

impl MappingError {
    /// True for a problem of the global `[mapping]` settings, which `check_settings` reports
    /// once: a bad time zone or region, or a bad date format when the route has none of its own.
    pub fn is_global(&self, route_has_date_format: bool) -> bool {
        match self {
            Self::Timezone { .. } | Self::Region { .. } => true,
            Self::DateFormat { .. } => !route_has_date_format,
            _ => false,
        }
    }
}

fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}
