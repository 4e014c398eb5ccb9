//! The tree of known configuration keys, read off the `Settings` types themselves: each
//! table's field names and each enum's values come from serde's derived `Deserialize`, so a
//! field added to a settings struct is known here at once. This file only says which fields
//! are tables, maps with user-chosen keys (routes, accounts, aliases) or enums.

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{
    AccountSettings, AuthSettings, ClevertapSettings, DeliverySettings, LogFormat, LogSettings,
    MappingSettings, Mode, OnInvalidField, QueueSettings, RouteSettings, ServerSettings, Settings,
};

/// One node of the key tree.
#[derive(Debug)]
pub(super) enum Node {
    /// A value of any shape serde checks (numbers, strings, lists).
    Leaf,
    /// A string that must be one of these values.
    Enum(&'static [&'static str]),
    /// A table with fixed keys; `children` are the fields that are not plain leaves.
    Table {
        fields: &'static [&'static str],
        children: Vec<(&'static str, Node)>,
    },
    /// A table whose keys the user chooses (route names, account names); each entry is strict.
    Map(Box<Node>),
}

impl Node {
    /// The node under `key`, when the key is valid here.
    pub(super) fn child(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Table { fields, children } => {
                if let Some((_, node)) = children.iter().find(|(name, _)| *name == key) {
                    Some(node)
                } else if fields.contains(&key) {
                    Some(&Node::Leaf)
                } else {
                    None
                }
            }
            Node::Map(entry) => Some(entry),
            Node::Leaf | Node::Enum(_) => None,
        }
    }
}

/// Every key freshtap reads. Add a child here when a new field is a table, a map or an enum;
/// plain fields need nothing.
pub(super) fn settings() -> Node {
    table::<Settings>(vec![
        ("server", table::<ServerSettings>(vec![])),
        ("queue", table::<QueueSettings>(vec![])),
        ("delivery", table::<DeliverySettings>(vec![])),
        (
            "mapping",
            table::<MappingSettings>(vec![(
                "on_invalid_field",
                Node::Enum(variants::<OnInvalidField>()),
            )]),
        ),
        (
            "clevertap",
            table::<ClevertapSettings>(vec![(
                "accounts",
                Node::Map(Box::new(table::<AccountSettings>(vec![]))),
            )]),
        ),
        (
            "routes",
            Node::Map(Box::new(table::<RouteSettings>(vec![
                ("mode", Node::Enum(variants::<Mode>())),
                ("aliases", Node::Map(Box::new(Node::Leaf))),
            ]))),
        ),
        ("auth", table::<AuthSettings>(vec![])),
        (
            "log",
            table::<LogSettings>(vec![("format", Node::Enum(variants::<LogFormat>()))]),
        ),
    ])
}

fn table<'de, T: Deserialize<'de>>(children: Vec<(&'static str, Node)>) -> Node {
    Node::Table {
        fields: record::<T>().fields,
        children,
    }
}

fn variants<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    record::<T>().variants
}

/// What a type's derived `Deserialize` asked for: its field names or its variant names.
#[derive(Default)]
struct Recorded {
    fields: &'static [&'static str],
    variants: &'static [&'static str],
}

fn record<'de, T: Deserialize<'de>>() -> Recorded {
    let mut recorder = Recorder::default();
    // The recorder always answers an error after noting what was asked: only the note matters.
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

#[derive(Default)]
struct Recorder(Recorded);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for &mut Recorder {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.fields = fields;
        Err(Stop)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.variants = variants;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_read_off_the_settings_types() {
        let tree = settings();
        let server = tree.child("server").expect("server is a section");
        assert!(server.child("bind").is_some());
        assert!(
            server.child("admin_bind").is_some(),
            "optional keys are known"
        );
        assert!(server.child("bnd").is_none());
        let route = tree
            .child("routes")
            .and_then(|r| r.child("any-name"))
            .expect("route names are the user's");
        assert!(route.child("template").is_some());
        assert!(route.child("templte").is_none());
        assert!(matches!(
            route.child("mode"),
            Some(Node::Enum(["auto", "template", "passthrough", "delete"]))
        ));
    }

    #[test]
    fn every_listed_child_is_a_field_of_its_table() {
        fn walk(node: &Node, path: &str) {
            match node {
                Node::Table { fields, children } => {
                    for (name, child) in children {
                        assert!(fields.contains(name), "{path}.{name} is not a field");
                        walk(child, &format!("{path}.{name}"));
                    }
                }
                Node::Map(entry) => walk(entry, &format!("{path}.*")),
                Node::Enum(values) => assert!(!values.is_empty(), "{path}"),
                Node::Leaf => {}
            }
        }
        walk(&settings(), "");
    }
}
