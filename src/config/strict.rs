//! Strict keys: every key of every file layer and every `FRESHTAP__…` variable is checked
//! against the known key tree (`schema.rs`) before the settings are built. An unknown key is a
//! problem naming the key, where it came from and the nearest valid key; an enum value outside
//! its list names the valid values.

use config::{Map, Value, ValueKind};

use super::schema::{self, Node};

/// The environment variable prefix of settings (`FRESHTAP__SERVER__BIND`).
pub const ENV_PREFIX: &str = "FRESHTAP__";

/// The nearest of `candidates` to `word` by edit distance (a transposition counts one), when
/// it is close enough to be a typo of it.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&word, &c.to_lowercase()), c))
        .filter(|(distance, _)| *distance <= 2 && distance * 3 <= word.chars().count() + 1)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// The environment variable of a key path: `server.bind` → `FRESHTAP__SERVER__BIND`.
pub fn env_var(path: &str) -> String {
    format!("{ENV_PREFIX}{}", path.replace('.', "__").to_uppercase())
}

/// Problems in one file layer; `source` names it in each message.
pub(super) fn check_file(source: &str, map: &Map<String, Value>) -> Vec<String> {
    let root = schema::settings();
    let mut problems = Vec::new();
    walk_table(&root, &root, "", map, &mut problems);
    // The layer's tables are unordered: sorted, the same file gives the same report.
    problems.sort();
    problems
        .into_iter()
        .map(|p| format!("{source}: {p}"))
        .collect()
}

/// Problems in the `FRESHTAP__…` variables among `vars` (name, value).
pub(super) fn check_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let root = schema::settings();
    let mut problems = Vec::new();
    for (name, value) in vars {
        let upper = name.to_uppercase();
        if let Some(rest) = upper.strip_prefix(ENV_PREFIX) {
            if let Some(problem) = env_problem(&root, rest, &value) {
                problems.push(format!("{name}: {problem}"));
            }
        } else if let Some(rest) = upper.strip_prefix("FRESHTAP_")
            && let Some((section, _)) = rest.split_once("__")
            && root.child(&section.to_lowercase()).is_some()
        {
            problems.push(format!(
                "{name}: not read; settings variables start with two underscores: \
                 {ENV_PREFIX}{rest}"
            ));
        }
    }
    problems
}

fn env_problem(root: &Node, rest: &str, value: &str) -> Option<String> {
    let segments: Vec<String> = rest.split("__").map(str::to_lowercase).collect();
    let mut node = root;
    for (depth, segment) in segments.iter().enumerate() {
        let path = segments[..depth].join(".");
        match node.child(segment) {
            Some(child) => node = child,
            None => {
                let full = join(&path, segment);
                return Some(match suggest(root, node, &path, segment) {
                    Some(better) => {
                        let mut fixed: Vec<String> = better.split('.').map(str::to_owned).collect();
                        fixed.extend(segments[depth + 1..].iter().cloned());
                        format!(
                            "`{full}`: unknown key; did you mean `{better}` ({})?",
                            env_var(&fixed.join("."))
                        )
                    }
                    None => unknown_without_hint(node, &path, &full),
                });
            }
        }
    }
    let path = segments.join(".");
    match node {
        Node::Enum(values) => enum_problem(values, &path, value),
        Node::Table { .. } | Node::Map(_) => Some(format!(
            "`{path}` is a table: set one of its keys (e.g. {}__…)",
            env_var(&path)
        )),
        Node::Leaf => None,
    }
}

fn walk_table(
    root: &Node,
    node: &Node,
    path: &str,
    map: &Map<String, Value>,
    problems: &mut Vec<String>,
) {
    for (key, value) in map {
        let full = join(path, key);
        match node.child(key) {
            Some(child) => walk(root, child, &full, value, problems),
            None => problems.push(match suggest(root, node, path, key) {
                Some(better) => format!("`{full}`: unknown key; did you mean `{better}`?"),
                None => unknown_without_hint(node, path, &full),
            }),
        }
    }
}

fn walk(root: &Node, node: &Node, path: &str, value: &Value, problems: &mut Vec<String>) {
    match (node, &value.kind) {
        (Node::Table { .. } | Node::Map(_), ValueKind::Table(map)) => {
            walk_table(root, node, path, map, problems);
        }
        (Node::Enum(values), ValueKind::String(text)) => {
            problems.extend(enum_problem(values, path, text));
        }
        // Other shapes (a number where a string is due, …) are serde's to report.
        _ => {}
    }
}

fn enum_problem(values: &[&str], path: &str, value: &str) -> Option<String> {
    if values.contains(&value) {
        return None;
    }
    let list: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    let hint = nearest(value, values.iter().copied())
        .map(|v| format!("; did you mean \"{v}\"?"))
        .unwrap_or_default();
    Some(format!(
        "`{path}` = \"{value}\": not one of {}{hint}",
        list.join(", ")
    ))
}

/// The key meant instead of `key` under `path`: a sibling a typo away, else the only place
/// in the fixed tree where a key of that name lives (`server.max_attempts` →
/// `delivery.max_attempts`).
fn suggest(root: &Node, node: &Node, path: &str, key: &str) -> Option<String> {
    if let Node::Table { fields, .. } = node
        && let Some(sibling) = nearest(key, fields.iter().copied())
    {
        return Some(join(path, sibling));
    }
    let mut elsewhere = Vec::new();
    fixed_paths(root, "", &mut elsewhere);
    let matching: Vec<&String> = elsewhere
        .iter()
        .filter(|p| p.rsplit('.').next() == Some(key))
        .collect();
    match matching.as_slice() {
        [only] => Some((*only).clone()),
        _ => None,
    }
}

fn unknown_without_hint(node: &Node, path: &str, full: &str) -> String {
    match node {
        Node::Table { fields, .. } => {
            let here = if path.is_empty() {
                "sections".to_owned()
            } else {
                format!("keys of `{path}`")
            };
            format!("`{full}`: unknown key ({here}: {})", fields.join(", "))
        }
        _ => format!("`{full}`: unknown key (`{path}` is a value, not a table)"),
    }
}

/// Every key path of the tree that does not go through a user-chosen map.
fn fixed_paths(node: &Node, path: &str, out: &mut Vec<String>) {
    if let Node::Table { fields, .. } = node {
        for field in *fields {
            let full = join(path, field);
            if let Some(child) = node.child(field) {
                fixed_paths(child, &full, out);
            }
            out.push(full);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use config::{File, FileFormat, Source};

    fn file_problems(toml: &str) -> Vec<String> {
        let map = File::from_str(toml, FileFormat::Toml)
            .collect()
            .expect("valid TOML");
        check_file("my.toml", &map)
    }

    fn env_problems(name: &str, value: &str) -> Vec<String> {
        check_env([(name.to_owned(), value.to_owned())])
    }

    #[test]
    fn a_misspelled_key_names_the_file_and_the_nearest_key() {
        assert_eq!(
            file_problems("[server]\nbnd = \"0.0.0.0:1\"\n"),
            ["my.toml: `server.bnd`: unknown key; did you mean `server.bind`?"]
        );
        assert_eq!(
            file_problems("[atuh]\ntoken = \"t\"\n"),
            ["my.toml: `atuh`: unknown key; did you mean `auth`?"]
        );
        assert_eq!(
            file_problems("[server]\nmax_attempts = 3\n"),
            ["my.toml: `server.max_attempts`: unknown key; did you mean `delivery.max_attempts`?"]
        );
    }

    #[test]
    fn user_named_tables_accept_any_name_but_their_entries_are_strict() {
        let problems = file_problems(
            "[routes.my-leads]\naccount = \"eu\"\ntemplte = \"x.json\"\n\
             [routes.my-leads.aliases]\nanything = \"field\"\n\
             [clevertap.accounts.eu]\naccount_id = \"A\"\npasscod = \"p\"\n",
        );
        assert_eq!(
            problems,
            [
                "my.toml: `clevertap.accounts.eu.passcod`: unknown key; did you mean \
                 `clevertap.accounts.eu.passcode`?",
                "my.toml: `routes.my-leads.templte`: unknown key; did you mean \
                 `routes.my-leads.template`?",
            ]
        );
    }

    #[test]
    fn a_key_with_no_near_match_lists_the_valid_ones() {
        let problems = file_problems("[log]\ncolour = true\n").join("\n");
        assert!(problems.contains("`log.colour`: unknown key"), "{problems}");
        assert!(problems.contains("format, level, mask_pii"), "{problems}");
    }

    #[test]
    fn enum_values_outside_the_list_name_the_valid_ones() {
        assert_eq!(
            file_problems("[mapping]\non_invalid_field = \"skip\"\n"),
            ["my.toml: `mapping.on_invalid_field` = \"skip\": not one of \"drop\", \"dead\""]
        );
        assert_eq!(
            env_problems("FRESHTAP__LOG__FORMAT", "jsn"),
            [
                "FRESHTAP__LOG__FORMAT: `log.format` = \"jsn\": not one of \"json\", \"pretty\"; \
                 did you mean \"json\"?"
            ]
        );
    }

    #[test]
    fn a_misspelled_variable_names_itself_and_the_right_one() {
        assert_eq!(
            env_problems("FRESHTAP__SERVR__BIND", "0.0.0.0:1"),
            [
                "FRESHTAP__SERVR__BIND: `servr`: unknown key; did you mean `server` \
                 (FRESHTAP__SERVER__BIND)?"
            ]
        );
        assert_eq!(
            env_problems("FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASCODE", "p"),
            ["FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASCODE: \
                 `clevertap.accounts.main.pascode`: unknown key; did you mean \
                 `clevertap.accounts.main.passcode` \
                 (FRESHTAP__CLEVERTAP__ACCOUNTS__MAIN__PASSCODE)?"]
        );
        assert!(env_problems("FRESHTAP_SERVER__BIND", "x")[0].contains("two underscores"));
    }

    #[test]
    fn valid_variables_and_unrelated_ones_pass() {
        let vars = [
            ("FRESHTAP__SERVER__BIND", "0.0.0.0:1"),
            ("FRESHTAP__ROUTES__LEADS__TOKEN", "t"),
            ("FRESHTAP__ROUTES__LEADS__ALIASES__PHONE", "mobile"),
            ("FRESHTAP_CONFIG", "x.toml"),
            ("FRESHTAP_TEST_DATABASE_URL", "postgres://x"),
            ("PATH", "/bin"),
        ];
        let problems = check_env(vars.map(|(n, v)| (n.to_owned(), v.to_owned())));
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn the_built_in_defaults_are_clean() {
        assert_eq!(file_problems(super::super::BUILT_IN), Vec::<String>::new());
    }
}
