//! Host globals: functions and values the host hands to scripts.
//!
//! A global lives at a dotted path from the script's global object: `whoami`, or
//! `robot.sayHello` (intermediate objects are created). Functions are async on both sides:
//! script code gets a promise (`await whoami()`), and the host function is a Rust future that
//! runs on the host's tokio runtime while the guest keeps serving other requests.
//!
//! ```
//! use confine::{Globals, HostError};
//!
//! let globals = Globals::new()
//!     .function("whoami", |(): ()| async { Ok::<_, HostError>("Bob") })
//!     .function("math.add", |(a, b): (f64, f64)| async move { Ok::<_, HostError>(a + b) })
//!     .value("robot.name", "Robbie");
//! ```
//!
//! A host function receives its arguments as one tuple (or any `Deserialize` type that reads
//! from an array) and returns anything `Serialize`. An `Err` rejects the script's promise with
//! an `Error` carrying the message.

use crate::error::Result;
use confine_runtime_abstract::{
    protocol::{GlobalDef, GlobalKind},
    to_value, ErrorData, ErrorKind, Value,
};
use serde::{de::DeserializeOwned, Serialize};
use std::{collections::HashMap, fmt, future::Future, pin::Pin, sync::Arc};

/// The error a host function returns; the script sees it as a rejected promise.
pub type HostError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, ErrorData>> + Send>>;

/// A type-erased host function.
pub(crate) type HostFn = Arc<dyn Fn(Vec<Value>) -> BoxFuture + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Global {
    Function(HostFn),
    Value(Value),
}

/// A set of host globals. Cheap to clone.
#[derive(Clone, Default)]
pub struct Globals {
    entries: Vec<(Vec<String>, Global)>,
}

impl fmt::Debug for Globals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(p, g)| {
                let kind = match g {
                    Global::Function(_) => "fn",
                    Global::Value(_) => "value",
                };
                format!("{} ({kind})", p.join("."))
            }))
            .finish()
    }
}

fn split(path: &str) -> Vec<String> {
    path.split('.').map(str::to_owned).collect()
}

fn failure(message: impl fmt::Display) -> ErrorData {
    ErrorData::new(ErrorKind::HostFunction, "Error", message.to_string())
}

impl Globals {
    /// No globals.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` if no globals are defined.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an async host function at `path` (dotted for namespaces, e.g. `robot.sayHello`).
    ///
    /// The script's arguments are converted to `A` (a tuple, usually: `(String, f64)`; `()`
    /// for none; extra arguments are an error unless `A` accepts them, missing ones are
    /// `undefined`). The result is converted from `R`.
    pub fn function<A, R, E, F, Fut>(mut self, path: &str, f: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        E: Into<HostError> + Send + 'static,
        F: Fn(A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
    {
        let f = Arc::new(f);
        let erased: HostFn = Arc::new(move |args: Vec<Value>| {
            let f = Arc::clone(&f);
            Box::pin(async move {
                let args: A = decode_args(args)?;
                let out = f(args).await.map_err(|e| failure(e.into()))?;
                to_value(&out).map_err(failure)
            })
        });
        self.entries.push((split(path), Global::Function(erased)));
        self
    }

    /// Adds an async host function that takes and returns raw [`Value`]s.
    pub fn function_raw<E, F, Fut>(mut self, path: &str, f: F) -> Self
    where
        E: Into<HostError> + Send + 'static,
        F: Fn(Vec<Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, E>> + Send + 'static,
    {
        let f = Arc::new(f);
        let erased: HostFn = Arc::new(move |args: Vec<Value>| {
            let f = Arc::clone(&f);
            Box::pin(async move { f(args).await.map_err(|e| failure(e.into())) })
        });
        self.entries.push((split(path), Global::Function(erased)));
        self
    }

    /// Adds a plain value at `path`, copied into every container.
    ///
    /// A value that cannot be converted (a map with non-string keys, say) is stored as
    /// `undefined` and a warning is logged; use [`Globals::try_value`] to get the error.
    pub fn value(mut self, path: &str, value: impl Serialize) -> Self {
        let v = to_value(&value).unwrap_or_else(|e| {
            tracing::warn!(path, error = %e, "global value cannot be converted; using undefined");
            Value::Undefined
        });
        self.entries.push((split(path), Global::Value(v)));
        self
    }

    /// Adds a plain value at `path`.
    ///
    /// # Errors
    /// [`crate::Error::Value`] if `value` cannot be converted.
    pub fn try_value(mut self, path: &str, value: impl Serialize) -> Result<Self> {
        let v = to_value(&value)?;
        self.entries.push((split(path), Global::Value(v)));
        Ok(self)
    }

    /// Adds every global of `other`.
    pub fn extend(mut self, other: Globals) -> Self {
        self.entries.extend(other.entries);
        self
    }

    /// The guest's view: paths and kinds.
    pub(crate) fn defs(&self) -> Vec<GlobalDef> {
        self.entries
            .iter()
            .map(|(path, g)| GlobalDef {
                path: path.clone(),
                kind: match g {
                    Global::Function(_) => GlobalKind::Function,
                    Global::Value(v) => GlobalKind::Value(v.clone()),
                },
            })
            .collect()
    }

    /// The host's view: function paths to functions.
    pub(crate) fn functions(&self) -> impl Iterator<Item = (Vec<String>, HostFn)> + '_ {
        self.entries.iter().filter_map(|(p, g)| match g {
            Global::Function(f) => Some((p.clone(), Arc::clone(f))),
            Global::Value(_) => None,
        })
    }
}

/// Host functions by path, as the connection looks them up.
pub(crate) type FunctionTable = HashMap<Vec<String>, HostFn>;

fn decode_args<A: DeserializeOwned>(args: Vec<Value>) -> Result<A, ErrorData> {
    let bad = |e: &dyn fmt::Display| {
        ErrorData::new(
            ErrorKind::HostFunction,
            "TypeError",
            format!("bad arguments: {e}"),
        )
    };
    if args.len() > 1 {
        return confine_runtime_abstract::from_value(Value::Array(args)).map_err(|e| bad(&e));
    }
    // With zero or one argument, accept both `|(name,): (String,)|` (the array form) and
    // `|name: String|` (the lone argument), so simple functions read naturally.
    let single = args.first().cloned().unwrap_or(Value::Undefined);
    match confine_runtime_abstract::from_value::<A>(Value::Array(args)) {
        Ok(a) => Ok(a),
        Err(first) => confine_runtime_abstract::from_value::<A>(single).map_err(|_| bad(&first)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn unconvertible_value_keeps_earlier_globals() {
        let bad: HashMap<(i32, i32), i32> = [((1, 2), 3)].into();
        let g = Globals::new().value("a", 1).value("b", bad);
        let defs = g.defs();
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].kind, GlobalKind::Value(Value::Number(1.0)));
        assert_eq!(defs[1].path, ["b"]);
        assert_eq!(defs[1].kind, GlobalKind::Value(Value::Undefined));
        assert!(Globals::new()
            .try_value("b", [((1, 2), 3)].into_iter().collect::<HashMap<_, _>>())
            .is_err());
    }
}
