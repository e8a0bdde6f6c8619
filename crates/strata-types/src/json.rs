//! Strict readings of untrusted JSON that `serde_json` alone is lenient about.
//!
//! * Objects with a key twice: `serde_json` keeps the last value silently. A gateway that
//!   authorises on the first `"tenant"` and a store that keeps the second would disagree
//!   about whose event it is, so every object Strata reads (the event, `attrs`, the payload)
//!   must name each key once.
//! * Nesting: a payload nested tens of thousands deep is valid JSON, but common parsers
//!   (including the readers of replay and archive output) give up on it, so the payload's
//!   depth is capped.
//! * Framing: payloads are stored and served as compact JSON (whitespace outside strings
//!   removed; strings and numbers kept exactly as written), so every line of an NDJSON answer
//!   is exactly one event, whatever the client sent.

use std::collections::HashSet;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The entries of a JSON object in document order, duplicates included (the caller decides
/// what a duplicate means). Values stay raw JSON text borrowed from `text`.
pub fn object_entries(text: &str) -> Result<Vec<(String, &RawValue)>, serde_json::Error> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8));
            while let Some(entry) = map.next_entry::<String, &'de RawValue>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = (&mut de).deserialize_map(Entries)?;
    de.end()?;
    Ok(entries)
}

/// The first key that appears twice among `entries`, if any.
pub fn first_duplicate<V>(entries: &[(String, V)]) -> Option<&str> {
    let mut seen = HashSet::with_capacity(entries.len());
    entries
        .iter()
        .map(|(k, _)| k.as_str())
        .find(|k| !seen.insert(*k))
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Nested deeper than the limit.
    TooDeep {
        /// The limit (`max_payload_depth`).
        max: usize,
    },
    /// An object names a key twice; `path` is the dotted path of the key (`a.b`).
    DuplicateKey {
        /// Where the duplicate key is, from the payload's root.
        path: String,
    },
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooDeep { max } => write!(
                f,
                "is nested more than {max} levels deep (max_payload_depth)"
            ),
            Self::DuplicateKey { path } => {
                write!(
                    f,
                    "has the key `{path}` twice; every object key must be unique"
                )
            }
        }
    }
}

/// One open object or array while scanning.
struct Frame {
    /// `Some` for an object: the keys seen so far (decoded).
    keys: Option<HashSet<String>>,
    /// The key this container sits under in its parent object (for error paths).
    name: Option<String>,
    /// Inside an object: the next string is a key.
    expect_key: bool,
}

/// `raw` (text that is already known to be valid JSON, e.g. a [`RawValue`]) as compact JSON:
/// whitespace outside strings removed, every string and number byte for byte as written.
/// Fails when the value nests deeper than `max_depth` or an object repeats a key. One pass,
/// no recursion, memory proportional to the depth and the keys of the open objects.
pub fn compact(raw: &str, max_depth: usize) -> Result<String, PayloadError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut last_key: Option<String> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'"' => {
                let end = string_end(bytes, i);
                let text = &raw[i..end];
                out.push_str(text);
                if let Some(frame) = stack.last_mut()
                    && frame.expect_key
                {
                    frame.expect_key = false;
                    let key = if text.contains('\\') {
                        serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned())
                    } else {
                        text[1..text.len() - 1].to_owned()
                    };
                    if let Some(keys) = frame.keys.as_mut()
                        && !keys.insert(key.clone())
                    {
                        return Err(PayloadError::DuplicateKey {
                            path: path_of(&stack, &key),
                        });
                    }
                    last_key = Some(key);
                }
                i = end;
            }
            b'{' | b'[' => {
                if stack.len() >= max_depth {
                    return Err(PayloadError::TooDeep { max: max_depth });
                }
                let in_object = stack.last().is_some_and(|f| f.keys.is_some());
                stack.push(Frame {
                    keys: (b == b'{').then(HashSet::new),
                    name: if in_object { last_key.take() } else { None },
                    expect_key: b == b'{',
                });
                out.push(b as char);
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                out.push(b as char);
                i += 1;
            }
            b',' => {
                if let Some(frame) = stack.last_mut() {
                    frame.expect_key = frame.keys.is_some();
                }
                out.push(',');
                i += 1;
            }
            _ => {
                // Numbers, literals and ':' are copied as they are, up to the next
                // structural byte or whitespace.
                let start = i;
                while i < bytes.len()
                    && !matches!(
                        bytes[i],
                        b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'{' | b'[' | b'}' | b']' | b','
                    )
                {
                    i += 1;
                }
                out.push_str(&raw[start..i]);
            }
        }
    }
    Ok(out)
}

/// The index just past the string starting at `start` (a `"`), honouring escapes.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn path_of(stack: &[Frame], key: &str) -> String {
    let mut parts: Vec<&str> = stack.iter().filter_map(|f| f.name.as_deref()).collect();
    parts.push(key);
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_outside_strings_only() {
        let raw = "{ \"a b\" : [ 1 , 2.50 ,\n -3e2 ] ,\t\"s\" : \" x  y \\\" z \" , \"t\":true }";
        assert_eq!(
            compact(raw, 64).unwrap(),
            r#"{"a b":[1,2.50,-3e2],"s":" x  y \" z ","t":true}"#
        );
        assert_eq!(compact("  7 ", 64).unwrap(), "7");
        assert_eq!(compact("\"a\\nb\"", 64).unwrap(), "\"a\\nb\"");
    }

    #[test]
    fn caps_depth() {
        let deep = "[".repeat(65) + &"]".repeat(65);
        assert_eq!(compact(&deep, 64), Err(PayloadError::TooDeep { max: 64 }));
        let ok = "[".repeat(64) + &"]".repeat(64);
        assert_eq!(compact(&ok, 64).unwrap(), ok);
        let deep_obj = "{\"a\":".repeat(70) + "1" + &"}".repeat(70);
        assert!(compact(&deep_obj, 64).is_err());
    }

    #[test]
    fn finds_duplicate_keys_at_any_depth() {
        assert_eq!(
            compact(r#"{"a":1,"a":2}"#, 64),
            Err(PayloadError::DuplicateKey { path: "a".into() })
        );
        assert_eq!(
            compact(r#"{"x":{"y":1,"\u0079":2}}"#, 64),
            Err(PayloadError::DuplicateKey { path: "x.y".into() })
        );
        // The same key in sibling objects and in arrays of objects is fine.
        assert!(compact(r#"{"a":{"k":1},"b":{"k":2},"c":[{"k":1},{"k":2}]}"#, 64).is_ok());
        // A string value equal to a key is not a key.
        assert!(compact(r#"{"a":"a","b":["a","a"]}"#, 64).is_ok());
    }

    #[test]
    fn entries_keep_order_and_duplicates() {
        let e = object_entries(r#"{"tenant":"a","x":1,"tenant":"b"}"#).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(first_duplicate(&e), Some("tenant"));
        assert!(object_entries("[1]").is_err());
        assert!(object_entries("{} x").is_err());
    }
}
