//! `Obj<T>`: a JSON value that must be an object. serde's derived structs also accept a JSON
//! array (fields in order), which would let `[["k", 1]]` pass as a state item; Dapr refuses
//! such bodies, and so does this wrapper, without parsing the input twice.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor, value::MapAccessDeserializer};
use std::marker::PhantomData;

/// A `T` read only from a JSON object.
#[derive(Debug)]
pub struct Obj<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnly<T> {
            type Value = Obj<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }

        deserializer.deserialize_map(ObjectOnly(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Item {
        key: String,
        #[serde(default)]
        n: u32,
    }

    #[test]
    fn objects_pass_and_arrays_do_not() {
        let ok: Obj<Item> = serde_json::from_str(r#"{"key":"k","n":2}"#).expect("object");
        assert_eq!(
            ok.0,
            Item {
                key: "k".into(),
                n: 2
            }
        );
        assert!(serde_json::from_str::<Obj<Item>>(r#"["k", 2]"#).is_err());
        assert!(serde_json::from_str::<Vec<Obj<Item>>>(r#"[["k", 2]]"#).is_err());
        assert!(serde_json::from_str::<Obj<Item>>("5").is_err());
    }
}
