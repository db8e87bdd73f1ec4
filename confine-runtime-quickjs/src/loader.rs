//! The module loader: it refuses every import.
//!
//! A container is one source; it has nothing to import, and nothing of the host (files
//! included) may be reachable from it. Without a loader QuickJS would still fail imports, but
//! with a message about a missing module; this one says why, for static `import` (the
//! container's evaluation fails) and dynamic `import()` (the promise rejects) alike.

use rquickjs::{
    loader::{ImportAttributes, Loader, Resolver},
    module::Declared,
    Ctx, Exception, Module,
};

/// Resolver and loader that refuse everything with a clear `Error`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DenyImports;

impl Resolver for DenyImports {
    fn resolve<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        _base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        Err(refuse(ctx, name))
    }
}

impl Loader for DenyImports {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        Err(refuse(ctx, name))
    }
}

/// The message script code sees for an import of `name`.
pub(crate) fn refusal(name: &str) -> String {
    format!("import of '{name}' is not allowed: containers cannot load modules")
}

/// Throws the refusal as a JS `Error` (rquickjs's own resolver errors would be a
/// `ReferenceError` saying the module was not found).
fn refuse<'js>(ctx: &Ctx<'js>, name: &str) -> rquickjs::Error {
    match Exception::from_message(ctx.clone(), &refusal(name)) {
        Ok(e) => e.throw(),
        Err(e) => e,
    }
}
