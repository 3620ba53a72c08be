//! The first phase of loading: TOML text into a tree that remembers where
//! every value stood, so that the second phase can report each problem with
//! its line, and report all of them at once.

use std::collections::BTreeMap;

use toml_edit::{ImDocument, Item, Key, Value};

/// A value and the byte offset it starts at, where the parser knows it.
#[derive(Debug, Clone)]
pub struct Located {
    /// The byte offset of the value (or of its key, for implicit tables).
    pub at: Option<usize>,
    /// The value.
    pub node: Node,
}

/// A table of located values.
pub type Table = BTreeMap<String, Located>;

/// A TOML value whose nested values are located too.
#[derive(Debug, Clone)]
pub enum Node {
    /// A table.
    Table(Table),
    /// An array of values, or of tables (`[[name]]`).
    Array(Vec<Located>),
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A date-time; no key of ours takes one.
    Datetime,
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
            Node::Datetime => "a date-time",
        }
    }
}

/// Parses TOML text into a located tree, or returns the parser's message
/// and the byte offset it points at.
pub fn parse(text: &str) -> Result<Table, (String, Option<usize>)> {
    let doc = ImDocument::parse(text)
        .map_err(|e| (e.message().to_string(), e.span().map(|s| s.start)))?;
    Ok(table(doc.as_table()))
}

fn start(span: Option<std::ops::Range<usize>>) -> Option<usize> {
    span.map(|s| s.start)
}

fn table(t: &toml_edit::Table) -> Table {
    let mut out = Table::new();
    for (name, _) in t.iter() {
        if let Some((key, item)) = t.get_key_value(name) {
            if let Some(node) = item_node(item) {
                out.insert(name.to_string(), located(key, item.span(), node));
            }
        }
    }
    out
}

fn inline_table(t: &toml_edit::InlineTable) -> Table {
    let mut out = Table::new();
    for (name, _) in t.iter() {
        if let Some((key, item)) = t.get_key_value(name) {
            if let Some(node) = item_node(item) {
                out.insert(name.to_string(), located(key, item.span(), node));
            }
        }
    }
    out
}

fn located(key: &Key, span: Option<std::ops::Range<usize>>, node: Node) -> Located {
    Located {
        at: start(span).or(start(key.span())),
        node,
    }
}

fn item_node(item: &Item) -> Option<Node> {
    match item {
        Item::None => None,
        Item::Value(v) => Some(value_node(v)),
        Item::Table(t) => Some(Node::Table(table(t))),
        Item::ArrayOfTables(a) => Some(Node::Array(
            a.iter()
                .map(|t| Located {
                    at: start(t.span()),
                    node: Node::Table(table(t)),
                })
                .collect(),
        )),
    }
}

fn value_node(v: &Value) -> Node {
    match v {
        Value::String(s) => Node::Str(s.value().clone()),
        Value::Integer(i) => Node::Int(*i.value()),
        Value::Float(f) => Node::Float(*f.value()),
        Value::Boolean(b) => Node::Bool(*b.value()),
        Value::Datetime(_) => Node::Datetime,
        Value::Array(a) => Node::Array(
            a.iter()
                .map(|v| Located {
                    at: start(v.span()),
                    node: value_node(v),
                })
                .collect(),
        ),
        Value::InlineTable(t) => Node::Table(inline_table(t)),
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

    fn sub<'a>(t: &'a Table, key: &str) -> &'a Table {
        match &t[key].node {
            Node::Table(t) => t,
            other => panic!("{key} is {}", other.kind()),
        }
    }

    #[test]
    fn nested_values_keep_their_lines() {
        let text = "[poll]\ninterval = \"5m\"\n\n[credentials.main]\ntype = \"token\"\n\n[[targets]]\nproject_id = \"p\"\nlabels = { env = \"x\" }\n";
        let lines = LineIndex::new(text);
        let root = parse(text).unwrap();
        let line = |l: &Located| lines.line(l.at.unwrap());
        assert_eq!(line(&sub(&root, "poll")["interval"]), 2);
        assert_eq!(line(&sub(sub(&root, "credentials"), "main")["type"]), 5);
        let Node::Array(targets) = &root["targets"].node else {
            panic!("targets")
        };
        let Node::Table(t0) = &targets[0].node else {
            panic!("target")
        };
        assert_eq!(line(&targets[0]), 7);
        assert_eq!(line(&t0["project_id"]), 8);
        assert_eq!(line(&sub(t0, "labels")["env"]), 9);
    }

    #[test]
    fn syntax_errors_carry_an_offset() {
        let (msg, at) = parse("[poll\n").unwrap_err();
        assert!(!msg.is_empty());
        assert!(at.is_some());
    }
}
