//! Template sources: the file a route names, or the shipped copy compiled into the binary.

/// The templates shipped in `config/templates/`, so the binary (and `demo`) works from any
/// directory and in a slim image without the config folder.
const SHIPPED: &[(&str, &str)] = &[
    (
        "contact.json",
        include_str!("../config/templates/contact.json"),
    ),
    ("deal.json", include_str!("../config/templates/deal.json")),
    (
        "account.json",
        include_str!("../config/templates/account.json"),
    ),
    (
        "seed-basic.json",
        include_str!("../config/templates/seed-basic.json"),
    ),
    (
        "seed-advanced.json",
        include_str!("../config/templates/seed-advanced.json"),
    ),
    (
        "contact-deleted.json",
        include_str!("../config/templates/contact-deleted.json"),
    ),
];

/// Reads a template file; when the file does not exist and it names a shipped template
/// (`config/templates/<name>`), the compiled-in copy is used.
pub fn source(path: &str) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let name = std::path::Path::new(path)
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            SHIPPED
                .iter()
                .find(|(shipped, _)| {
                    *shipped == name && path.ends_with(&format!("config/templates/{name}"))
                })
                .map(|(_, text)| (*text).to_owned())
                .ok_or_else(|| format!("cannot read {path}: {error}"))
        }
        Err(error) => Err(format!("cannot read {path}: {error}")),
    }
}
