//! Per-container limits, read from the container's options.
//!
//! Options are an object; every key is optional and unknown keys are ignored (they may be
//! meant for another runtime):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `timeLimitMs` | wall time one call (or the module's start) may run before it stops with a `TimeoutError` ([`ErrorKind::Limit`]); enforced every [`crate::TICK_MS`] ms while wasm code runs, not while it waits for the host | none |
//! | `memoryLimitBytes` | linear memory ceiling; growing past it stops the call with a `RangeError` ([`ErrorKind::Limit`]) | 256 MiB |
//! | `tableLimit` | table elements ceiling | 100 000 |
//! | `outputLimitBytes` | stdout/stderr bytes buffered between two flushes; more is dropped | 1 MiB |

use confine_runtime_abstract::{ErrorData, ErrorKind, Value};
use std::time::Duration;

/// The limits a container runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) time: Option<Duration>,
    pub(crate) memory: usize,
    pub(crate) table: usize,
    pub(crate) output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: None,
            memory: 256 << 20,
            table: 100_000,
            output: 1 << 20,
        }
    }
}

impl Limits {
    /// Reads `options` (see the module docs).
    pub(crate) fn from_options(options: &Value) -> Result<Self, ErrorData> {
        let mut limits = Limits::default();
        match options {
            Value::Undefined | Value::Null => return Ok(limits),
            Value::Object(_) => {}
            other => {
                return Err(invalid(format!(
                    "container options must be an object, not {}",
                    other.type_name()
                )))
            }
        }
        if let Some(ms) = number(options, "timeLimitMs")? {
            limits.time = Some(Duration::from_secs_f64(ms / 1000.0));
        }
        if let Some(n) = number(options, "memoryLimitBytes")? {
            limits.memory = n as usize;
        }
        if let Some(n) = number(options, "tableLimit")? {
            limits.table = n as usize;
        }
        if let Some(n) = number(options, "outputLimitBytes")? {
            limits.output = n as usize;
        }
        Ok(limits)
    }
}

/// A non-negative finite number at `key`, if present (and not null/undefined).
fn number(options: &Value, key: &str) -> Result<Option<f64>, ErrorData> {
    match options.get(key) {
        None | Some(Value::Undefined | Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if (0.0..=9.0e15).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(format!(
                "option `{key}` must be a non-negative number"
            ))),
        },
    }
}

fn invalid(message: String) -> ErrorData {
    ErrorData::new(ErrorKind::InvalidRequest, "TypeError", message)
}
