//! The module loader: it refuses every import.
//!
//! A container is one source; it has nothing to import, and nothing of the host (files
//! included) may be reachable from it. This matters more on boa than elsewhere: a context
//! built without a loader gets boa's `SimpleModuleLoader`, which reads modules from the
//! current directory. This one says why an import fails, for static `import` (the container's
//! evaluation fails) and dynamic `import()` (the promise rejects) alike.

use boa_engine::module::ModuleRequest;
use boa_engine::{
    module::{ModuleLoader, Referrer},
    Context, JsError, JsNativeError, JsResult, Module,
};
use std::{cell::RefCell, rc::Rc};

/// A loader that refuses everything with a clear `Error`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DenyImports;

impl ModuleLoader for DenyImports {
    fn load_imported_module(
        self: Rc<Self>,
        _referrer: Referrer,
        request: ModuleRequest,
        _context: &RefCell<&mut Context>,
    ) -> impl std::future::Future<Output = JsResult<Module>> {
        let name = request.specifier().to_std_string_lossy();
        std::future::ready(Err(JsError::from_native(
            JsNativeError::error().with_message(refusal(&name)),
        )))
    }
}

/// The message script code sees for an import of `name`.
pub(crate) fn refusal(name: &str) -> String {
    format!("import of '{name}' is not allowed: containers cannot load modules")
}
