//! JSON Schema documents read into the subset that [`super::json_schema`] converts, as llama.cpp
//! reads them (`common_chat_schema_from_json`): `$ref` into the same document, `anyOf`/`oneOf`,
//! `allOf`, `const`, `enum`, the seven types (a `type` array as alternatives), object
//! properties, `required` and `additionalProperties`, array `items`/`prefixItems` and their counts,
//! string `pattern`, `format` and lengths, integer bounds (exclusive ones folded in).
//!
//! Strict mode (chord's default) refuses what this subset cannot express instead of converting it
//! into a looser grammar: keywords that constrain values but are not implemented (`multipleOf`,
//! `not`, `uniqueItems`, bounds on a `number`, ...), string formats other than date, time,
//! date-time and uuid, and lengths beside a pattern. Lenient mode ignores them, as llama.cpp does.

use serde_json::Value;
use std::collections::BTreeMap;

/// A schema error at a JSON path (`#/properties/a`).
pub type SchemaResult<T> = std::result::Result<T, String>;

/// The string formats with a grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// No format (or one that lenient mode ignores).
    None,
    /// `uuid`, `uuid1` .. `uuid5`.
    Uuid,
    /// `date`.
    Date,
    /// `time`.
    Time,
    /// `date-time`.
    DateTime,
}

/// One schema node of the convertible subset.
#[derive(Debug, Clone)]
pub enum Node {
    /// Any JSON value.
    Any,
    /// A `$ref` into the document (its target is in [`Document::refs`]).
    Ref(String),
    /// `anyOf`, `oneOf` or a `type` array.
    AnyOf(Vec<Node>),
    /// `allOf`.
    AllOf(Vec<Node>),
    /// `const`.
    Const(Value),
    /// `enum`.
    Enum(Vec<Value>),
    /// `null`.
    Null,
    /// `boolean`.
    Boolean,
    /// `number`.
    Number,
    /// `integer` with inclusive bounds (`i64::MIN` / `i64::MAX`: unbounded).
    Integer {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// `string`.
    String {
        /// The `pattern`, when there is one.
        pattern: Option<String>,
        /// The `format`.
        format: Format,
        /// `minLength`.
        min_len: i32,
        /// `maxLength` (-1: unbounded).
        max_len: i32,
    },
    /// `array` of one item schema.
    Array {
        /// The items' schema.
        items: Box<Node>,
        /// `minItems`.
        min: i32,
        /// `maxItems` (-1: unbounded).
        max: i32,
    },
    /// `array` with an `items`/`prefixItems` list.
    Tuple(Vec<Node>),
    /// `object`.
    Object {
        /// Properties in schema order: name, schema, required.
        props: Vec<(String, Node, bool)>,
        /// Other properties' schema; `None` when they are not allowed.
        additional: Option<Box<Node>>,
    },
}

/// A schema read from JSON: its root and the targets of its `$ref`s.
#[derive(Debug)]
pub struct Document {
    /// The root schema.
    pub root: Node,
    /// Each `$ref` string's target.
    pub refs: BTreeMap<String, Node>,
}

/// Keywords that constrain values but that the conversion does not implement: refused in strict
/// mode (lenient mode ignores them, as llama.cpp does).
const UNSUPPORTED: [&str; 17] = [
    "multipleOf",
    "not",
    "if",
    "then",
    "else",
    "uniqueItems",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedProperties",
];

/// Keywords that constrain values, which strict mode refuses beside a keyword that would make
/// the conversion ignore them (`type` is allowed there: schemas repeat their alternatives' type).
const CONSTRAINTS: [&str; 21] = [
    "$ref",
    "anyOf",
    "oneOf",
    "allOf",
    "properties",
    "additionalProperties",
    "required",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
];

struct Builder<'a> {
    root: &'a Value,
    strict: bool,
    refs: BTreeMap<String, Option<Node>>,
    /// How deep the schemas (and `$ref`s) being read are nested.
    depth: usize,
}

/// Longest property name (the grammar of other keys nests a group per character).
const MAX_NAME: usize = 256;

/// Deepest nesting of schemas and chains of `$ref`s (reading and converting recurse into each).
pub const MAX_DEPTH: usize = 128;

fn fail<T>(path: &str, msg: impl AsRef<str>) -> SchemaResult<T> {
    Err(format!("JSON Schema error at {path}: {}", msg.as_ref()))
}

/// Reads `schema` into a [`Document`]; `strict` refuses what the grammar could only loosen.
pub fn read(schema: &Value, strict: bool) -> SchemaResult<Document> {
    let mut b = Builder {
        root: schema,
        strict,
        refs: BTreeMap::new(),
        depth: 0,
    };
    let root = b.node(schema, "#")?;
    let refs = b
        .refs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    Ok(Document { root, refs })
}

impl<'a> Builder<'a> {
    fn count(&self, s: &Value, key: &str, path: &str, default: i32) -> SchemaResult<i32> {
        let Some(v) = s.get(key) else {
            return Ok(default);
        };
        match v.as_i64() {
            Some(n) if (0..=i32::MAX as i64).contains(&n) => Ok(n as i32),
            _ => fail(path, format!("{key} must be a non-negative integer")),
        }
    }

    /// A `(min, max)` pair of counts (max -1 when absent); a max below the min matches nothing,
    /// and is an error rather than a grammar with an impossible repetition.
    fn counts(&self, s: &Value, min: &str, max: &str, path: &str) -> SchemaResult<(i32, i32)> {
        let (lo, hi) = (self.count(s, min, path, 0)?, self.count(s, max, path, -1)?);
        if hi >= 0 && lo > hi {
            return fail(
                path,
                format!("{min} ({lo}) is greater than {max} ({hi}): nothing matches"),
            );
        }
        Ok((lo, hi))
    }

    /// An integer bound; a fractional one rounded inwards.
    fn bound(&self, s: &Value, key: &str, path: &str, round_up: bool) -> SchemaResult<i64> {
        let v = &s[key];
        if let Some(n) = v.as_i64() {
            if n == i64::MIN {
                return fail(path, format!("{key} is out of range"));
            }
            return Ok(n);
        }
        let Some(d) = v.as_f64() else {
            return fail(path, format!("{key} must be a number"));
        };
        let r = if round_up { d.ceil() } else { d.floor() };
        if !(-9.2e18..=9.2e18).contains(&r) {
            return fail(path, format!("{key} is out of range"));
        }
        Ok(r as i64)
    }

    fn format(&self, s: &Value, path: &str) -> SchemaResult<Format> {
        let Some(v) = s.get("format") else {
            return Ok(Format::None);
        };
        let Some(f) = v.as_str() else {
            return fail(path, "format must be a string");
        };
        Ok(match f {
            "date" => Format::Date,
            "time" => Format::Time,
            "date-time" => Format::DateTime,
            "uuid" | "uuid1" | "uuid2" | "uuid3" | "uuid4" | "uuid5" => Format::Uuid,
            _ if self.strict => {
                return fail(
                    path,
                    format!(
                        "string format '{f}' is not supported (date, time, date-time, uuid are)"
                    ),
                )
            }
            _ => Format::None,
        })
    }

    fn resolve(&self, r: &str, path: &str) -> SchemaResult<&'a Value> {
        let mut target = self.root;
        for sel in r[1..].split('/').skip(1) {
            if let Some(v) = target.as_object().and_then(|o| o.get(sel)) {
                target = v;
            } else if let Some(a) = target.as_array() {
                match sel.parse::<usize>().ok().and_then(|i| a.get(i)) {
                    Some(v) => target = v,
                    None => {
                        return fail(
                            path,
                            format!("cannot resolve $ref {r}, {sel} is out of range"),
                        )
                    }
                }
            } else {
                return fail(path, format!("cannot resolve $ref {r}, {sel} not found"));
            }
        }
        Ok(target)
    }

    fn reference(&mut self, v: &Value, path: &str) -> SchemaResult<Node> {
        let Some(r) = v.as_str() else {
            return fail(path, "$ref must be a string");
        };
        if !r.starts_with("#/") {
            return fail(
                path,
                format!(
                    "unsupported $ref {r}, only references into the same document are supported"
                ),
            );
        }
        if !self.refs.contains_key(r) {
            // Reserved first, so that a cycle back to this $ref stops here.
            self.refs.insert(r.to_string(), None);
            let target = self.resolve(r, path)?;
            let node = self.node(target, r)?;
            self.refs.insert(r.to_string(), Some(node));
        }
        Ok(Node::Ref(r.to_string()))
    }

    fn alternatives(&mut self, alts: &Value, path: &str) -> SchemaResult<Vec<Node>> {
        let Some(alts) = alts.as_array() else {
            return fail(path, "must be an array of schemas");
        };
        if alts.is_empty() {
            return fail(path, "must not be empty");
        }
        alts.iter()
            .enumerate()
            .map(|(i, a)| self.node(a, &format!("{path}/{i}")))
            .collect()
    }

    fn object(&mut self, s: &Value, path: &str) -> SchemaResult<Node> {
        let required: Vec<&str> = s
            .get("required")
            .and_then(|r| r.as_array())
            .map(|r| r.iter().filter_map(|n| n.as_str()).collect())
            .unwrap_or_default();
        let mut props = Vec::new();
        if let Some(p) = s.get("properties") {
            let Some(p) = p.as_object() else {
                return fail(path, "properties must be an object");
            };
            for (name, prop) in p {
                if name.chars().count() > MAX_NAME {
                    return fail(
                        path,
                        format!("a property name longer than {MAX_NAME} characters"),
                    );
                }
                let node = self.node(prop, &format!("{path}/properties/{name}"))?;
                props.push((name.clone(), node, required.contains(&name.as_str())));
            }
        }
        let additional = match s.get("additionalProperties") {
            Some(Value::Bool(true)) => Some(Box::new(Node::Any)),
            Some(Value::Bool(false)) => None,
            Some(a @ Value::Object(_)) => Some(Box::new(
                self.node(a, &format!("{path}/additionalProperties"))?,
            )),
            Some(_) => return fail(path, "additionalProperties must be a boolean or a schema"),
            // {"type": "object"} on its own accepts any object.
            None if s.get("properties").is_none() => Some(Box::new(Node::Any)),
            None => None,
        };
        Ok(Node::Object { props, additional })
    }

    fn array(&mut self, s: &Value, path: &str) -> SchemaResult<Node> {
        let key = if s.get("items").is_some() {
            Some("items")
        } else if s.get("prefixItems").is_some() {
            Some("prefixItems")
        } else {
            None
        };
        let items = match key {
            Some(key) => {
                let items = &s[key];
                if let Some(list) = items.as_array() {
                    let mut out = Vec::new();
                    for (i, item) in list.iter().enumerate() {
                        out.push(self.node(item, &format!("{path}/{key}/{i}"))?);
                    }
                    if self.strict && (s.get("minItems").is_some() || s.get("maxItems").is_some()) {
                        return fail(
                            path,
                            "minItems/maxItems beside a list of items is not supported",
                        );
                    }
                    return Ok(Node::Tuple(out));
                }
                self.node(items, &format!("{path}/{key}"))?
            }
            None => Node::Any,
        };
        let (min, max) = self.counts(s, "minItems", "maxItems", path)?;
        Ok(Node::Array {
            items: Box::new(items),
            min,
            max,
        })
    }

    fn string(&mut self, s: &Value, path: &str) -> SchemaResult<Node> {
        let pattern = match s.get("pattern") {
            Some(Value::String(p)) => Some(p.clone()),
            Some(_) => return fail(path, "pattern must be a string"),
            None => None,
        };
        let format = self.format(s, path)?;
        let (min_len, max_len) = self.counts(s, "minLength", "maxLength", path)?;
        if self.strict
            && (pattern.is_some() || format != Format::None)
            && (s.get("minLength").is_some() || s.get("maxLength").is_some())
        {
            return fail(
                path,
                "minLength/maxLength beside a pattern or format is not supported",
            );
        }
        if self.strict && pattern.is_some() && format != Format::None {
            return fail(path, "a pattern beside a format is not supported");
        }
        Ok(Node::String {
            pattern,
            format,
            min_len,
            max_len,
        })
    }

    fn integer(&mut self, s: &Value, path: &str) -> SchemaResult<Node> {
        let mut min = i64::MIN;
        let mut max = i64::MAX;
        if s.get("minimum").is_some() {
            min = self.bound(s, "minimum", path, true)?;
        } else if s.get("exclusiveMinimum").is_some() {
            min = self
                .bound(s, "exclusiveMinimum", path, false)?
                .saturating_add(1);
        }
        if s.get("maximum").is_some() {
            max = self.bound(s, "maximum", path, false)?;
        } else if s.get("exclusiveMaximum").is_some() {
            max = self
                .bound(s, "exclusiveMaximum", path, true)?
                .saturating_sub(1);
        }
        if self.strict && s.get("minimum").is_some() && s.get("exclusiveMinimum").is_some()
            || self.strict && s.get("maximum").is_some() && s.get("exclusiveMaximum").is_some()
        {
            return fail(path, "both an inclusive and an exclusive bound on one side");
        }
        if self.strict && min > max {
            return fail(path, "no integer lies within the bounds");
        }
        Ok(Node::Integer { min, max })
    }

    fn node(&mut self, s: &Value, path: &str) -> SchemaResult<Node> {
        if self.depth == MAX_DEPTH {
            return fail(
                path,
                format!("schemas nested or referenced more than {MAX_DEPTH} deep"),
            );
        }
        self.depth += 1;
        let r = self.node_inner(s, path);
        self.depth -= 1;
        r
    }

    fn node_inner(&mut self, s: &Value, path: &str) -> SchemaResult<Node> {
        let Some(obj) = s.as_object() else {
            return fail(path, "schema must be an object");
        };
        if self.strict {
            if let Some(k) = UNSUPPORTED.iter().find(|k| obj.contains_key(**k)) {
                return fail(path, format!("the keyword '{k}' is not supported"));
            }
            // A $ref, an anyOf/oneOf or an allOf decides alone: constraints beside it would be
            // dropped.
            for key in ["$ref", "anyOf", "oneOf", "allOf"] {
                if obj.contains_key(key) {
                    let beside = CONSTRAINTS
                        .iter()
                        .find(|k| **k != key && obj.contains_key(**k));
                    if let Some(k) = beside {
                        return fail(path, format!("'{k}' beside '{key}' is not supported"));
                    }
                }
            }
        }
        if let Some(r) = s.get("$ref") {
            return self.reference(r, path);
        }
        if s.get("oneOf").is_some() || s.get("anyOf").is_some() {
            let key = if s.get("oneOf").is_some() {
                "oneOf"
            } else {
                "anyOf"
            };
            return Ok(Node::AnyOf(
                self.alternatives(&s[key], &format!("{path}/{key}"))?,
            ));
        }
        let ty = s.get("type").cloned().unwrap_or(Value::Null);
        if let Some(types) = ty.as_array() {
            if types.is_empty() {
                return fail(path, "type must not be empty");
            }
            let mut alts = Vec::new();
            for (i, t) in types.iter().enumerate() {
                let mut alt = s.clone();
                alt["type"] = t.clone();
                alts.push(self.node(&alt, &format!("{path}/type/{i}"))?);
            }
            return Ok(Node::AnyOf(alts));
        }
        if let Some(c) = s.get("const") {
            return Ok(Node::Const(c.clone()));
        }
        if let Some(e) = s.get("enum") {
            return match e.as_array() {
                Some(v) if !v.is_empty() => Ok(Node::Enum(v.clone())),
                _ => fail(path, "enum must be a non-empty array"),
            };
        }
        let name = match &ty {
            Value::Null => "",
            Value::String(t) => t.as_str(),
            _ => return fail(path, "type must be a string or an array of strings"),
        };
        let has_properties = s.get("properties").is_some()
            || s.get("additionalProperties")
                .is_some_and(|a| a != &Value::Bool(true));
        let bounds = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];
        match name {
            "" => {
                if has_properties {
                    return self.object(s, path);
                }
                if let Some(a) = s.get("allOf") {
                    return Ok(Node::AllOf(self.alternatives(a, &format!("{path}/allOf"))?));
                }
                if s.get("items").is_some() || s.get("prefixItems").is_some() {
                    return self.array(s, path);
                }
                let stringy = ["pattern", "minLength", "maxLength"]
                    .iter()
                    .any(|k| s.get(*k).is_some());
                if stringy || self.format(s, path)? != Format::None {
                    return self.string(s, path);
                }
                if self.strict && bounds.iter().any(|k| s.get(*k).is_some()) {
                    return fail(path, "numeric bounds without a type are not supported");
                }
                Ok(Node::Any)
            }
            "object" => {
                if !has_properties {
                    if let Some(a) = s.get("allOf") {
                        return Ok(Node::AllOf(self.alternatives(a, &format!("{path}/allOf"))?));
                    }
                }
                self.object(s, path)
            }
            "string" => {
                if let Some(a) = s.get("allOf") {
                    return Ok(Node::AllOf(self.alternatives(a, &format!("{path}/allOf"))?));
                }
                self.string(s, path)
            }
            "array" => self.array(s, path),
            "integer" => self.integer(s, path),
            "number" => {
                if self.strict && bounds.iter().any(|k| s.get(*k).is_some()) {
                    return fail(
                        path,
                        "bounds on a number are not supported (they are on an integer)",
                    );
                }
                Ok(Node::Number)
            }
            "boolean" => Ok(Node::Boolean),
            "null" => Ok(Node::Null),
            t => fail(path, format!("unrecognized type {t}")),
        }
    }
}
