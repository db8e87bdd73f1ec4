//! [`ContainerSource`]: what a container is made from.

use crate::error::{Error, Result};
use confine_runtime_abstract::{protocol::Source, to_value, Value};
use serde::Serialize;
use std::path::Path;

/// A container's code, a name for its stack traces, and runtime options.
///
/// ```
/// use confine::ContainerSource;
/// let src = ContainerSource::code("module.exports.addOne = (n) => n + 1").name("add.js");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSource {
    pub(crate) source: Source,
    pub(crate) options: Value,
}

impl ContainerSource {
    /// Source text. Its name defaults to `container.js`.
    ///
    /// CommonJS (`module.exports`, `exports`) and ES modules (`export`) both work; the
    /// runtime tells them apart.
    pub fn code(code: impl Into<String>) -> Self {
        ContainerSource {
            source: Source {
                code: code.into(),
                name: "container.js".to_owned(),
            },
            options: Value::Undefined,
        }
    }

    /// The contents of a file, named by its path. The file is read here, on the host; the
    /// guest never sees the path.
    ///
    /// # Errors
    /// [`Error::ReadSource`] if the file cannot be read as UTF-8 text.
    pub async fn file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let code = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| Error::ReadSource {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self::code(code).name(path.display().to_string()))
    }

    /// The name stack traces and error locations use.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.source.name = name.into();
        self
    }

    /// Runtime options for the container (the seed's extra `execContainer` options).
    ///
    /// # Errors
    /// [`Error::Value`] if `options` cannot be converted.
    pub fn options(mut self, options: impl Serialize) -> Result<Self> {
        self.options = to_value(&options)?;
        Ok(self)
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.source.code
    }
}
