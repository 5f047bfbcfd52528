//! Which fields a record of the spec may have, for "did you mean" hints.
//!
//! The field lists come from the serde model itself (through a deserializer
//! that only records the field names it is asked for), so they cannot drift
//! from what the compiler accepts.

use serde::{
    Deserialize, Deserializer,
    de::{self, Visitor},
    forward_to_deserialize_any,
};

use crate::{
    diagnostic::{FieldPath, Segment},
    raw::*,
};

/// A deserializer that fails at once, remembering the fields of the struct asked for.
struct Introspect<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for Introspect<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("introspection only"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("introspection only"))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

/// The fields allowed in the record at `path`, if it is a record of the schema.
pub fn allowed_fields(path: &FieldPath) -> Option<&'static [&'static str]> {
    let names: Vec<&str> = path
        .segments()
        .iter()
        .map(|s| match s {
            Segment::Field(name) => name.as_str(),
            Segment::Index(_) => "[]",
        })
        .collect();
    let fields = match names.as_slice() {
        [] => fields_of::<RawPlatform>(),
        ["services", _] => fields_of::<RawService>(),
        ["topics", _] => fields_of::<RawTopic>(),
        ["frontend"] => fields_of::<RawFrontend>(),
        ["environments", _] => fields_of::<RawEnvironment>(),
        ["environments", _, "hosts", _] => fields_of::<RawHost>(),
        ["environments", _, "acme"] => fields_of::<RawAcme>(),
        ["environments", _, "postgres"] => fields_of::<RawPostgres>(),
        ["environments", _, "postgres", "backup"] => fields_of::<RawBackup>(),
        ["environments", _, "kafka"] => fields_of::<RawKafka>(),
        ["environments", _, "nginx"] => fields_of::<RawNginx>(),
        [
            "environments",
            _,
            "nginx",
            "auth_rate_limit" | "order_rate_limit",
        ] => fields_of::<RawRateLimit>(),
        ["services", _, "order_limits"] => fields_of::<RawOrderLimits>(),
        ["environments", _, "jwt"] => fields_of::<RawJwt>(),
        _ => return None,
    };
    Some(fields)
}

/// The allowed field closest to a misspelt one, if any is close.
pub fn closest<'a>(typo: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|candidate| (edit_distance(typo, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 3))
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance (characters).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_of_a_service_come_from_the_model() {
        let fields = allowed_fields(&FieldPath::parse("services.order")).unwrap();
        assert!(fields.contains(&"port"));
        assert!(fields.contains(&"database"));
        assert!(allowed_fields(&FieldPath::parse("services.order.port")).is_none());
    }

    #[test]
    fn typos_find_their_field() {
        let fields = allowed_fields(&FieldPath::parse("services.order")).unwrap();
        assert_eq!(closest("databse", fields), Some("database"));
        assert_eq!(closest("prot", fields), Some("port"));
        assert_eq!(closest("consume", fields), Some("consumes"));
        assert_eq!(closest("zzzzzzzz", fields), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
