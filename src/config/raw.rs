//! The first phase of loading: TOML text into a tree that remembers where
//! every value stood, so that the second phase can report each problem with
//! its line, and report all of them at once.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A TOML value with the byte span of every nested value.
#[derive(Debug, Clone)]
pub enum Node {
    /// A table; keys in file order are not needed, so a sorted map will do.
    Table(BTreeMap<String, Spanned<Node>>),
    /// An array of values.
    Array(Vec<Spanned<Node>>),
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date-time, kept as its text; no key of ours takes one.
    Datetime(String),
}

impl Node {
    /// The TOML type name, for messages such as "expected a string, found an integer".
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Table(_) => "a table",
            Node::Array(_) => "an array",
            Node::Str(_) => "a string",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a float",
            Node::Bool(_) => "a boolean",
            Node::Datetime(_) => "a date-time",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut table = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            // toml hands date-times over as a one-key map with a private name.
            if key == "$__toml_private_datetime" {
                let text: String = map.next_value()?;
                return Ok(Node::Datetime(text));
            }
            let value = map.next_value::<Spanned<Node>>()?;
            table.insert(key, value);
        }
        Ok(Node::Table(table))
    }
}

/// Parses TOML text into a spanned tree, or returns the parser's message and
/// the byte offset it points at.
pub fn parse(text: &str) -> Result<BTreeMap<String, Spanned<Node>>, (String, Option<usize>)> {
    let root: Spanned<Node> =
        toml::from_str(text).map_err(|e| (e.message().to_string(), e.span().map(|s| s.start)))?;
    match root.into_inner() {
        Node::Table(t) => Ok(t),
        other => Err((format!("expected a table, found {}", other.kind()), None)),
    }
}

/// Turns byte offsets into 1-based line numbers.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Indexes the line starts of `text`.
    pub fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// The line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_keep_their_spans() {
        let text = "[poll]\ninterval = \"5m\"\n\n[[targets]]\nproject_id = \"p\"\nlabels = { env = \"x\" }\n";
        let lines = LineIndex::new(text);
        let root = parse(text).unwrap();
        let Node::Table(poll) = root["poll"].get_ref() else {
            panic!("poll is a table")
        };
        assert_eq!(lines.line(poll["interval"].span().start), 2);
        let Node::Array(targets) = root["targets"].get_ref() else {
            panic!("targets")
        };
        let Node::Table(t0) = targets[0].get_ref() else {
            panic!("target")
        };
        assert_eq!(lines.line(t0["project_id"].span().start), 5);
        let Node::Table(labels) = t0["labels"].get_ref() else {
            panic!("labels")
        };
        assert_eq!(lines.line(labels["env"].span().start), 6);
    }

    #[test]
    fn syntax_errors_carry_an_offset() {
        let (msg, at) = parse("[poll\n").unwrap_err();
        assert!(!msg.is_empty());
        assert!(at.is_some());
    }
}
