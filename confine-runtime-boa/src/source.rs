//! Running a container's source as CommonJS or as an ES module.
//!
//! As in the QuickJS runtime: the source is compiled as a CommonJS function body first; only
//! code that cannot be one (`import`/`export` declarations, top-level `await`) fails there,
//! and is then compiled as a module. Code that compiles either way declares nothing a module
//! could export, so running it as CommonJS (sloppy unless it says `"use strict"`, as in node)
//! loses nothing and gains `module.exports`.
//!
//! CommonJS code runs inside `(function (exports, module) {` + code + `\n})`, opened on the
//! source's first line so line numbers in errors and stacks stay right (columns on line 1
//! are shifted by the wrapper; reported syntax error locations are corrected).

use crate::errors;
use boa_engine::{
    builtins::promise::PromiseState, js_string, object::builtins::JsPromise, Context, JsObject,
    JsValue, Module, Script, Source as JsSource,
};
use confine_runtime_abstract::{protocol::Source, support, ErrorData, ErrorKind};
use std::path::Path;

/// Where a container's exports live.
pub(crate) enum Exports {
    /// The CommonJS `module` object: exports are whatever `module.exports` holds when called.
    CommonJs(JsObject),
    /// An ES module's namespace object.
    Module(JsObject),
}

impl Exports {
    /// The object exports are looked up on (for CommonJS, the current `module.exports`).
    pub(crate) fn object(&self, ctx: &mut Context) -> Result<JsValue, ErrorData> {
        match self {
            Exports::CommonJs(module) => module
                .get(js_string!("exports"), ctx)
                .map_err(|e| errors::caught(ctx, e)),
            Exports::Module(ns) => Ok(ns.clone().into()),
        }
    }
}

/// A source whose top-level code has run (or, for a module, started).
pub(crate) struct Loaded {
    pub(crate) exports: Exports,
    /// A module's evaluation promise: it settles once top-level `await`s are done.
    pub(crate) evaluation: Option<JsPromise>,
}

/// What compiling a source found it to be.
pub(crate) enum Compiled {
    /// The CommonJS wrapper function.
    CommonJs(JsObject),
    /// A module, parsed but not loaded yet.
    Module(Module),
}

/// Compiles `source` as CommonJS or, failing that, as a module.
///
/// # Errors
/// [`ErrorKind::Syntax`] when it compiles neither way; [`ErrorKind::Thrown`] if evaluating the
/// wrapper expression fails.
pub(crate) fn compile(ctx: &mut Context, source: &Source) -> Result<Compiled, ErrorData> {
    let cjs_error = match compile_common_js(ctx, source) {
        Ok(wrapper) => return Ok(Compiled::CommonJs(wrapper)),
        Err(e) if e.kind == ErrorKind::Syntax => e,
        Err(e) => return Err(e),
    };
    let js_source = JsSource::from_bytes(source.code.as_bytes()).with_path(Path::new(&source.name));
    match Module::parse(js_source, None, ctx) {
        Ok(module) => Ok(Compiled::Module(module)),
        Err(e) => {
            let module_error = compile_error(ctx, e, &source.name, false);
            Err(if support::looks_like_module(&source.code) {
                module_error
            } else {
                cjs_error
            })
        }
    }
}

fn compile_common_js(ctx: &mut Context, source: &Source) -> Result<JsObject, ErrorData> {
    let wrapped = support::commonjs_wrap(&source.code);
    let js_source = JsSource::from_bytes(wrapped.as_bytes()).with_path(Path::new(&source.name));
    // Scripts are sloppy unless they say "use strict" (the context is never strict).
    let script = Script::parse(js_source, None, ctx)
        .map_err(|e| compile_error(ctx, e, &source.name, true))?;
    let value = script.evaluate(ctx).map_err(|e| errors::caught(ctx, e))?;
    value
        .as_object()
        .filter(JsObject::is_callable)
        .ok_or_else(|| {
            ErrorData::new(
                ErrorKind::Syntax,
                "SyntaxError",
                "unbalanced braces: the source closes its CommonJS wrapper",
            )
        })
}

/// Runs the CommonJS wrapper with fresh `exports` and `module` objects.
pub(crate) fn run_common_js(ctx: &mut Context, wrapper: &JsObject) -> Result<Loaded, ErrorData> {
    let module = JsObject::with_object_proto(ctx.intrinsics());
    let exports = JsObject::with_object_proto(ctx.intrinsics());
    module
        .set(js_string!("exports"), exports.clone(), true, ctx)
        .map_err(|e| errors::caught(ctx, e))?;
    wrapper
        .call(
            &exports.clone().into(),
            &[exports.into(), module.clone().into()],
            ctx,
        )
        .map_err(|e| errors::caught(ctx, e))?;
    Ok(Loaded {
        exports: Exports::CommonJs(module),
        evaluation: None,
    })
}

/// Links and starts evaluating a module whose imports have been loaded (`load` settled).
pub(crate) fn run_module(
    ctx: &mut Context,
    module: &Module,
    load: &JsPromise,
) -> Result<Loaded, ErrorData> {
    match load.state() {
        PromiseState::Fulfilled(_) => {}
        PromiseState::Rejected(reason) => {
            return Err(errors::from_exception(ctx, &reason, ErrorKind::Thrown));
        }
        PromiseState::Pending => {
            return Err(ErrorData::internal(
                "module loading did not finish (boa left an import pending)",
            ))
        }
    }
    module.link(ctx).map_err(|e| errors::caught(ctx, e))?;
    let evaluation = module.evaluate(ctx).map_err(|e| errors::caught(ctx, e))?;
    let namespace = module.namespace(ctx);
    Ok(Loaded {
        exports: Exports::Module(namespace),
        evaluation: Some(evaluation),
    })
}

/// An error from parsing: boa reports syntax errors as a `SyntaxError` whose message ends in
/// "at line L, col C"; that becomes the location (columns on line 1 corrected when the
/// source was `wrapped` as CommonJS).
fn compile_error(
    ctx: &mut Context,
    e: boa_engine::JsError,
    file: &str,
    wrapped: bool,
) -> ErrorData {
    let mut data = errors::caught(ctx, e);
    if data.kind == ErrorKind::Thrown && data.name == "SyntaxError" {
        data.kind = ErrorKind::Syntax;
        let (message, location) = errors::split_syntax_position(&data.message, file);
        if let Some(mut loc) = location {
            if wrapped {
                support::commonjs_location(&mut loc);
            }
            data.message = message;
            data.location = Some(loc);
        }
        // A parse error's stack points into the engine, not the script.
        data.stack = None;
    }
    data
}
