//! Any `Serialize` type into a [`Value`].

use super::Value;

/// Converts any serializable value into a [`Value`].
///
/// # Errors
/// When the type's `Serialize` impl fails.
pub fn to_value<T: serde::Serialize + ?Sized>(v: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(v).map(Value::from)
}
