//! A [`Value`] into any `Deserialize` type.

use super::Value;

/// Converts a [`Value`] into any deserializable type.
///
/// # Errors
/// When the value does not have the shape `T` expects.
pub fn from_value<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, serde_json::Error> {
    serde_json::from_value(v.into())
}
