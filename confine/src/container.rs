//! [`ContainerSource`]: what a container is made from.

use crate::error::{Error, Result};
use confine_runtime_abstract::{protocol::Source, to_value, Value};
use serde::Serialize;
use std::path::Path;

/// The first four bytes of every WebAssembly module in the binary format.
const WASM_MAGIC: &[u8] = b"\0asm";

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
            source: Source::text(code, "container.js"),
            options: Value::Undefined,
        }
    }

    /// A WebAssembly module (the binary format) for the `wasm` runtime. Its name defaults to
    /// `container.wasm`. Text runtimes refuse it.
    pub fn wasm(module: impl Into<Vec<u8>>) -> Self {
        ContainerSource {
            source: Source::binary(module, "container.wasm"),
            options: Value::Undefined,
        }
    }

    /// The contents of a file, named by its path. The file is read here, on the host; the
    /// guest never sees the path. A file that starts with the WebAssembly magic (`\0asm`)
    /// becomes a [`ContainerSource::wasm`] source; anything else must be UTF-8 text.
    ///
    /// # Errors
    /// [`Error::ReadSource`] if the file cannot be read, or is neither a WebAssembly module
    /// nor UTF-8 text.
    pub async fn file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let read_error = |source| Error::ReadSource {
            path: path.to_path_buf(),
            source,
        };
        let bytes = tokio::fs::read(path).await.map_err(read_error)?;
        let name = path.display().to_string();
        if bytes.starts_with(WASM_MAGIC) {
            return Ok(Self::wasm(bytes).name(name));
        }
        let code = String::from_utf8(bytes)
            .map_err(|e| read_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
        Ok(Self::code(code).name(name))
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

    /// The source text (empty for a WebAssembly module).
    pub fn text(&self) -> &str {
        &self.source.code
    }

    /// The WebAssembly module, for a [`ContainerSource::wasm`] source.
    pub fn binary(&self) -> Option<&[u8]> {
        self.source.binary.as_deref()
    }
}
