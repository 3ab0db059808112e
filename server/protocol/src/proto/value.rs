//! JSON values ⇄ `google.protobuf.Value` / `Struct`, as `@ag-ui/proto@1.0.0` converts them.
//!
//! The reference encoder is ts-proto's `Value.wrap` / `Struct.wrap` (`src/generated/google/
//! protobuf/struct.ts` in the package's source map): `null` → `null_value`, booleans →
//! `bool_value`, every number → `number_value` (a double: JavaScript has no other number), strings
//! → `string_value`, arrays → `list_value`, objects → `struct_value`. A Struct's entries are
//! written in `Object.keys` order, which in JavaScript is NOT plain insertion order: keys that
//! are array indices (canonical decimal integers below 2^32 - 1) come first in ascending
//! numeric order, then every other key in insertion order (ECMA-262 §10.1.11.1
//! OrdinaryOwnPropertyKeys). [`struct_from_map`] reproduces that order from an insertion-ordered
//! `serde_json::Map` (the crate enables serde_json's `preserve_order`), so the bytes match and a
//! JavaScript consumer sees the same key order.

use serde_json::{Map, Number, Value as Json};

use super::ProtoError;
use super::pb::google::protobuf::{
    ListValue, NullValue, Struct, Value, r#struct::FieldsEntry, value::Kind,
};

/// Converts any JSON value (`null` included) to a `google.protobuf.Value`.
pub(crate) fn value_from_json(json: &Json) -> Value {
    let kind = match json {
        Json::Null => Kind::NullValue(NullValue::NullValue as i32),
        Json::Bool(b) => Kind::BoolValue(*b),
        // Always `Some` unless serde_json's `arbitrary_precision` is on; a number that cannot be
        // a double cannot exist in JavaScript either.
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(value_from_json).collect(),
        }),
        Json::Object(map) => Kind::StructValue(struct_from_map(map)),
    };
    Value { kind: Some(kind) }
}

/// Converts a JSON object to a `google.protobuf.Struct`, entries in JavaScript `Object.keys`
/// order (see the module docs).
pub(crate) fn struct_from_map(map: &Map<String, Json>) -> Struct {
    let entry = |(key, value): (&String, &Json)| FieldsEntry {
        key: key.clone(),
        value: Some(value_from_json(value)),
    };
    // Fast path: most objects have no integer-like keys, and then insertion order is JS order.
    if !map.keys().any(|key| array_index(key).is_some()) {
        return Struct {
            fields: map.iter().map(entry).collect(),
        };
    }
    let mut indexed: Vec<(u32, (&String, &Json))> = map
        .iter()
        .filter_map(|kv| array_index(kv.0).map(|index| (index, kv)))
        .collect();
    indexed.sort_unstable_by_key(|(index, _)| *index);
    let named = map.iter().filter(|(key, _)| array_index(key).is_none());
    Struct {
        fields: indexed
            .into_iter()
            .map(|(_, kv)| kv)
            .chain(named)
            .map(entry)
            .collect(),
    }
}

/// The value of `key` if it is an ECMAScript array index: the canonical decimal form (no sign,
/// no leading zero unless it is `"0"`) of an integer in `0..=2^32 - 2`.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    let value: u64 = key.parse().ok()?;
    u32::try_from(value).ok().filter(|v| *v != u32::MAX)
}

/// Converts a `google.protobuf.Value` back to JSON, as `@ag-ui/proto`'s `decode` followed by
/// `JSON.stringify` would see it.
///
/// Integral doubles below 1e21 become JSON integers (JavaScript prints them without a fraction
/// or exponent), so `1` survives a round trip as `1`, not `1.0`.
///
/// # Errors
///
/// [`ProtoError::Invalid`] for a value with no kind set (not valid JSON) or a non-finite number.
pub(crate) fn json_from_value(value: Value) -> Result<Json, ProtoError> {
    match value.kind {
        None => Err(ProtoError::invalid(
            "google.protobuf.Value with no kind set",
        )),
        Some(Kind::NullValue(_)) => Ok(Json::Null),
        Some(Kind::BoolValue(b)) => Ok(Json::Bool(b)),
        Some(Kind::NumberValue(n)) => json_number(n).map(Json::Number),
        Some(Kind::StringValue(s)) => Ok(Json::String(s)),
        Some(Kind::ListValue(list)) => list
            .values
            .into_iter()
            // ts-proto unwraps a kind-less list element to `undefined`, which JSON shows as null.
            .map(|v| {
                if v.kind.is_none() {
                    Ok(Json::Null)
                } else {
                    json_from_value(v)
                }
            })
            .collect::<Result<_, _>>()
            .map(Json::Array),
        Some(Kind::StructValue(st)) => map_from_struct(st).map(Json::Object),
    }
}

/// Converts a `google.protobuf.Struct` back to a JSON object, entries in wire order.
///
/// Like ts-proto's `Struct.decode`, an entry without a value is skipped and a repeated key
/// keeps its first position with the last value.
///
/// # Errors
///
/// As [`json_from_value`].
pub(crate) fn map_from_struct(st: Struct) -> Result<Map<String, Json>, ProtoError> {
    let mut map = Map::with_capacity(st.fields.len());
    for FieldsEntry { key, value } in st.fields {
        match value {
            Some(v) if v.kind.is_some() => {
                map.insert(key, json_from_value(v)?);
            }
            _ => {}
        }
    }
    Ok(map)
}

fn json_number(n: f64) -> Result<Number, ProtoError> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if !n.is_finite() {
        return Err(ProtoError::invalid(
            "non-finite number in google.protobuf.Value",
        ));
    }
    if n.fract() == 0.0 && n.abs() < 1e21 {
        // In range, the casts are exact: `n` is integral and fits the target type.
        if (-TWO_63..TWO_63).contains(&n) {
            return Ok(Number::from(n as i64));
        }
        if (0.0..TWO_64).contains(&n) {
            return Ok(Number::from(n as u64));
        }
    }
    Number::from_f64(n)
        .ok_or_else(|| ProtoError::invalid("non-finite number in google.protobuf.Value"))
}

/// An optional id or string, owned.
pub(crate) fn opt_str<T: AsRef<str>>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(|v| v.as_ref().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(st: &Struct) -> Vec<&str> {
        st.fields.iter().map(|e| e.key.as_str()).collect()
    }

    #[test]
    fn struct_keys_follow_javascript_object_key_order() {
        // Node: Object.keys(JSON.parse(this)) ==
        // ["0","2","10","4294967294","b","01","4294967295","-1","1.5",""]
        let map: Map<String, Json> = serde_json::from_str(
            r#"{"b":1,"10":1,"2":1,"01":1,"4294967295":1,"4294967294":1,"-1":1,"1.5":1,"0":1,"":1}"#,
        )
        .unwrap();
        assert_eq!(
            keys(&struct_from_map(&map)),
            [
                "0",
                "2",
                "10",
                "4294967294",
                "b",
                "01",
                "4294967295",
                "-1",
                "1.5",
                ""
            ]
        );
    }

    #[test]
    fn struct_without_index_keys_keeps_insertion_order() {
        let map: Map<String, Json> = serde_json::from_str(r#"{"z":1,"a":2,"m":3}"#).unwrap();
        assert_eq!(keys(&struct_from_map(&map)), ["z", "a", "m"]);
    }

    #[test]
    fn array_index_accepts_only_canonical_u32_below_max() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(4_294_967_294));
        for not_index in [
            "",
            "00",
            "01",
            "-1",
            "+1",
            "1.0",
            "4294967295",
            "99999999999",
            "1e3",
        ] {
            assert_eq!(array_index(not_index), None, "{not_index:?}");
        }
    }

    #[test]
    fn numbers_become_doubles_and_integral_ones_come_back_as_integers() {
        let v = value_from_json(&json!(3));
        assert_eq!(v.kind, Some(Kind::NumberValue(3.0)));
        assert_eq!(json_from_value(v).unwrap(), json!(3));
        assert_eq!(
            json_from_value(value_from_json(&json!(-2.5))).unwrap(),
            json!(-2.5)
        );
        assert_eq!(
            json_from_value(value_from_json(&json!(1e21))).unwrap(),
            json!(1e21)
        );
        // 2^53 + 1 is not a double: it rounds, as JSON.parse rounds it.
        assert_eq!(
            json_from_value(value_from_json(&json!(9_007_199_254_740_993_u64))).unwrap(),
            json!(9_007_199_254_740_992_u64)
        );
    }

    #[test]
    fn nested_json_round_trips() {
        let doc = json!({"a": [1, null, true, "s", {"b": []}, []], "c": {}, "d": null});
        assert_eq!(json_from_value(value_from_json(&doc)).unwrap(), doc);
    }

    #[test]
    fn kindless_and_non_finite_values_are_rejected_but_skipped_inside_structs() {
        assert!(json_from_value(Value { kind: None }).is_err());
        assert!(
            json_from_value(Value {
                kind: Some(Kind::NumberValue(f64::NAN))
            })
            .is_err()
        );
        let st = Struct {
            fields: vec![
                FieldsEntry {
                    key: "gone".into(),
                    value: Some(Value { kind: None }),
                },
                FieldsEntry {
                    key: "kept".into(),
                    value: Some(value_from_json(&json!(1))),
                },
            ],
        };
        assert_eq!(
            map_from_struct(st).unwrap(),
            *json!({"kept": 1}).as_object().unwrap()
        );
    }
}
