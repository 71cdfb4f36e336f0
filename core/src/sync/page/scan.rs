//! The one pass over a list page's body: the envelope's fields, where each record lies in the
//! body and, when asked, each record's key and `date_modified`, read by serde visitors without
//! building a value or an allocation per record.
//!
//! A record's place is found from its first and last member values, which serde_json hands out as
//! borrowed slices of the body (`&RawValue`): the record starts at the `{` before its first member
//! and ends at the `}` after its last. serde_json has already checked everything in between, so
//! the walk from a value back over `"key":` to the `{` only has to skip whitespace and one string.

use std::cell::Cell;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::value::RawValue;

use super::RecordKey;

/// What one pass over a page body found.
#[derive(Debug, Default)]
pub(super) struct Scanned {
    pub count: Option<u64>,
    pub next_link: Option<String>,
    pub continuation_token: Option<String>,
    /// Where each record lies in the body; `None` when the envelope had no `value` (or `null`).
    pub records: Option<Vec<Range<usize>>>,
    /// The key of each record, in the same order, when [`scan`] was given a key field.
    pub keys: Vec<RecordKey>,
}

/// Why a pass failed.
#[derive(Debug)]
pub(super) enum ScanError {
    /// The body is not a list envelope (or not JSON).
    Envelope(String),
    /// A record has no usable key (only when [`scan`] was given a key field).
    Record(String),
}

/// Reads the envelope of `body` and each record's place in it; with `key`, also each record's
/// `key` field and `date_modified` ([`record_key`] on every record, in the same pass).
pub(super) fn scan(body: &str, key: Option<&str>) -> Result<Scanned, ScanError> {
    let pass = Pass { body, key, problem: Cell::new(None) };
    let mut de = serde_json::Deserializer::from_str(body);
    let scanned = de.deserialize_map(EnvelopeVisitor(&pass)).and_then(|s| de.end().map(|()| s));
    scanned.map_err(|e| match pass.problem.take() {
        Some(problem) => ScanError::Record(problem),
        None => ScanError::Envelope(e.to_string()),
    })
}

/// The key field `key` and `date_modified` of one record (`record`: the record's JSON alone).
pub(super) fn record_key(record: &str, key: &str) -> Result<RecordKey, String> {
    let pass = Pass { body: record, key: Some(key), problem: Cell::new(None) };
    let mut de = serde_json::Deserializer::from_str(record);
    let read = RecordSeed(&pass).deserialize(&mut de).and_then(|r| de.end().map(|()| r));
    match read {
        Ok((_, Some(key))) => Ok(key),
        Ok((_, None)) => Err(format!("record without a usable {key}")),
        Err(e) => Err(pass.problem.take().unwrap_or_else(|| format!("record is not JSON: {e}"))),
    }
}

/// One pass: the body (to find records' places) and the first record problem met.
struct Pass<'p> {
    body: &'p str,
    key: Option<&'p str>,
    /// Set when a record, not the envelope, stopped the pass.
    problem: Cell<Option<String>>,
}

impl Pass<'_> {
    /// Notes `problem` and returns the error that stops the pass.
    fn fail<E: de::Error>(&self, problem: String) -> E {
        let e = E::custom(&problem);
        self.problem.set(Some(problem));
        e
    }

    /// Offset of `part` (a slice of the body) in the body.
    fn offset(&self, part: &str) -> Option<usize> {
        let at = (part.as_ptr() as usize).checked_sub(self.body.as_ptr() as usize)?;
        (at + part.len() <= self.body.len()).then_some(at)
    }

    /// The place of the record whose first member value is `first` and last member value is
    /// `last` (both slices of the body): from its `{` to its `}`.
    fn record_span(&self, first: &str, last: &str) -> Option<Range<usize>> {
        let bytes = self.body.as_bytes();
        // Back from the first value: whitespace, `:`, whitespace, the key's closing quote.
        let mut at = skip_ws_back(bytes, self.offset(first)?);
        at = expect_back(bytes, at, b':')?;
        at = skip_ws_back(bytes, at);
        let closing = expect_back(bytes, at, b'"')?;
        // The key's opening quote: the nearest `"` before it not escaped by a backslash.
        let mut end = closing;
        let opening = loop {
            let quote = bytes[..end].iter().rposition(|&b| b == b'"')?;
            let backslashes = bytes[..quote].iter().rev().take_while(|&&b| b == b'\\').count();
            if backslashes % 2 == 0 {
                break quote;
            }
            end = quote;
        };
        let start = expect_back(bytes, skip_ws_back(bytes, opening), b'{')?;
        // Forward from the last value: whitespace, `}`.
        let mut after = self.offset(last)? + last.len();
        while bytes.get(after).is_some_and(|b| is_ws(*b)) {
            after += 1;
        }
        (bytes.get(after) == Some(&b'}')).then_some(start..after + 1)
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The position after the whitespace that ends at `end` (exclusive), going back.
fn skip_ws_back(bytes: &[u8], mut end: usize) -> usize {
    while end > 0 && is_ws(bytes[end - 1]) {
        end -= 1;
    }
    end
}

/// The position of `want` just before `end` (exclusive), if it is there.
fn expect_back(bytes: &[u8], end: usize, want: u8) -> Option<usize> {
    let at = end.checked_sub(1)?;
    (bytes[at] == want).then_some(at)
}

/// The envelope's members.
enum EnvelopeField {
    Count,
    NextLink,
    ContinuationToken,
    Value,
    Other,
}

impl<'de> Deserialize<'de> for EnvelopeField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl Visitor<'_> for Names {
            type Value = EnvelopeField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<EnvelopeField, E> {
                Ok(match name {
                    "count" => EnvelopeField::Count,
                    "next_link" => EnvelopeField::NextLink,
                    "continuation_token" => EnvelopeField::ContinuationToken,
                    "value" => EnvelopeField::Value,
                    _ => EnvelopeField::Other,
                })
            }
        }
        d.deserialize_identifier(Names)
    }
}

struct EnvelopeVisitor<'p>(&'p Pass<'p>);

impl<'de> Visitor<'de> for EnvelopeVisitor<'_> {
    type Value = Scanned;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list envelope {count, next_link, value}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scanned, A::Error> {
        let mut s = Scanned::default();
        let mut seen = [false; 4];
        let mut once = |i: usize, name: &'static str| {
            if std::mem::replace(&mut seen[i], true) { Err(de::Error::duplicate_field(name)) } else { Ok(()) }
        };
        while let Some(field) = map.next_key::<EnvelopeField>()? {
            match field {
                EnvelopeField::Count => {
                    once(0, "count")?;
                    s.count = map.next_value()?;
                }
                EnvelopeField::NextLink => {
                    once(1, "next_link")?;
                    s.next_link = map.next_value()?;
                }
                EnvelopeField::ContinuationToken => {
                    once(2, "continuation_token")?;
                    s.continuation_token = map.next_value()?;
                }
                EnvelopeField::Value => {
                    once(3, "value")?;
                    if let Some((records, keys)) = map.next_value_seed(RecordsSeed(self.0))? {
                        s.records = Some(records);
                        s.keys = keys;
                    }
                }
                EnvelopeField::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(s)
    }
}

/// The `value` array (or `null`): each record's place and key.
struct RecordsSeed<'p>(&'p Pass<'p>);

type Records = Option<(Vec<Range<usize>>, Vec<RecordKey>)>;

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_> {
    type Value = Records;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Records, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_> {
    type Value = Records;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_none<E: de::Error>(self) -> Result<Records, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Records, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Records, D::Error> {
        d.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Records, A::Error> {
        let (mut records, mut keys) = (Vec::new(), Vec::new());
        while let Some((span, key)) = seq.next_element_seed(RecordSeed(self.0))? {
            records.push(span);
            keys.extend(key);
        }
        Ok(Some((records, keys)))
    }
}

/// One record: its place in the body and, when the pass reads keys, its key.
struct RecordSeed<'p>(&'p Pass<'p>);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = (Range<usize>, Option<RecordKey>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        match self.0.key {
            // Without keys a record is any JSON value, taken whole.
            None => {
                let raw = <&RawValue>::deserialize(d)?;
                let at = self.0.offset(raw.get()).ok_or_else(|| de::Error::custom("a record outside the body"))?;
                Ok((at..at + raw.get().len(), None))
            }
            Some(key) => d.deserialize_any(RecordVisitor { pass: self.0, key }),
        }
    }
}

struct RecordVisitor<'p> {
    pass: &'p Pass<'p>,
    key: &'p str,
}

/// A record's members the sync reads.
enum RecordField {
    Key,
    DateModified,
    Other,
}

struct RecordFieldSeed<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for RecordFieldSeed<'_> {
    type Value = RecordField;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RecordField, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for RecordFieldSeed<'_> {
    type Value = RecordField;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_str<E: de::Error>(self, name: &str) -> Result<RecordField, E> {
        Ok(if name == self.0 {
            RecordField::Key
        } else if name == "date_modified" {
            RecordField::DateModified
        } else {
            RecordField::Other
        })
    }
}

impl RecordVisitor<'_> {
    fn not_an_object<E: de::Error>(&self, what: Unexpected<'_>) -> E {
        self.pass.fail(format!("record without a usable {}: the record is {what}, not an object", self.key))
    }
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = (Range<usize>, Option<RecordKey>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record (an object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut first, mut last): (Option<&'de str>, Option<&'de str>) = (None, None);
        let (mut id, mut date_modified): (Option<&'de str>, Option<&'de str>) = (None, None);
        while let Some(field) = map.next_key_seed(RecordFieldSeed(self.key))? {
            let value = map.next_value::<&'de RawValue>()?.get();
            first.get_or_insert(value);
            last = Some(value);
            let slot = match field {
                RecordField::Key => &mut id,
                RecordField::DateModified => &mut date_modified,
                RecordField::Other => continue,
            };
            if slot.replace(value).is_some() {
                let name = if matches!(field, RecordField::Key) { self.key } else { "date_modified" };
                return Err(self.pass.fail(format!("record with two {name} members")));
            }
        }
        let key = key_of(self.key, id, date_modified).map_err(|p| self.pass.fail(p))?;
        // A record with a key has at least one member, so `first` and `last` are set.
        let span = first
            .zip(last)
            .and_then(|(first, last)| self.pass.record_span(first, last))
            .ok_or_else(|| de::Error::custom("a record's boundaries were not found"))?;
        Ok((span, Some(key)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Err(self.not_an_object(Unexpected::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Err(self.not_an_object(Unexpected::Signed(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Err(self.not_an_object(Unexpected::Unsigned(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Err(self.not_an_object(Unexpected::Float(v)))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(self.not_an_object(Unexpected::Other("a string")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(self.not_an_object(Unexpected::Unit))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(self.not_an_object(Unexpected::Seq))
    }
}

/// The key and `date_modified` of a record from the raw JSON of those two members.
fn key_of(key: &str, id: Option<&str>, date_modified: Option<&str>) -> Result<RecordKey, String> {
    let id = id.ok_or_else(|| format!("record without a usable {key}: the field is missing"))?;
    let id = match plain_string(id) {
        Some("") => return Err(format!("record {key} is not a string or number (empty string)")),
        Some(s) => s.to_owned(),
        None => match serde_json::from_str(id).map_err(|e| format!("record without a usable {key}: {e}"))? {
            serde_json::Value::String(s) if !s.is_empty() => s,
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(format!("record {key} is not a string or number ({})", type_name(&other))),
        },
    };
    let date_modified = match date_modified {
        None => None,
        Some(raw) => match plain_string(raw) {
            Some(s) => Some(s.to_owned()),
            // The lists keyed by `id` (all but a few general ledger ones) refuse a
            // `date_modified` that is not text; the others ignore it.
            None if key == "id" => serde_json::from_str::<Option<String>>(raw)
                .map_err(|e| format!("record with an unusable date_modified: {e}"))?,
            None => match serde_json::from_str(raw) {
                Ok(serde_json::Value::String(s)) => Some(s),
                _ => None,
            },
        },
    };
    Ok(RecordKey { id, date_modified })
}

/// The text of a JSON string without escapes (`"abc"` → `abc`); `None` for anything else.
fn plain_string(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "empty string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
