//! Running a container's source as CommonJS or as an ES module.
//!
//! Which one a source is: QuickJS's `JS_DetectModule` is no help, since quickjs-ng
//! implements it as "compiles as a module", and ordinary CommonJS (`module.exports = ...`)
//! compiles as a module too. Instead the source is compiled as a CommonJS function body
//! first; only code that cannot be one (`import`/`export` declarations, top-level `await`)
//! fails there, and is then compiled as a module. Code that compiles either way declares
//! nothing a module could export, so running it as CommonJS (sloppy unless it says
//! `"use strict"`, as in node) loses nothing and gains `module.exports`.
//!
//! CommonJS code runs inside `(function (exports, module) {` + code + `\n})`, opened on the
//! source's first line so line numbers in errors and stacks stay right (columns on line 1
//! are shifted by the wrapper; reported syntax error locations are corrected).

use crate::errors;
use confine_runtime_abstract::{protocol::Source, support, ErrorData, ErrorKind};
use rquickjs::{
    context::EvalOptions, function::This, Ctx, Function, Module, Object, Persistent, Promise,
    Value as JsValue,
};

/// Where a container's exports live.
pub(crate) enum Exports {
    /// The CommonJS `module` object: exports are whatever `module.exports` holds when called.
    CommonJs(Persistent<Object<'static>>),
    /// An ES module's namespace object.
    Module(Persistent<Object<'static>>),
}

impl Exports {
    /// The object exports are looked up on (for CommonJS, the current `module.exports`).
    pub(crate) fn object<'js>(&self, ctx: &Ctx<'js>) -> Result<JsValue<'js>, ErrorData> {
        let restore_failed = |_| ErrorData::internal("exports belong to another runtime");
        match self {
            Exports::CommonJs(module) => module
                .clone()
                .restore(ctx)
                .map_err(restore_failed)?
                .get("exports")
                .map_err(|e| errors::caught(ctx, e)),
            Exports::Module(ns) => Ok(ns
                .clone()
                .restore(ctx)
                .map_err(restore_failed)?
                .into_value()),
        }
    }
}

/// A source whose top-level code has run (or, for a module, started).
pub(crate) struct Loaded {
    pub(crate) exports: Exports,
    /// A module's evaluation promise: it settles once top-level `await`s are done.
    pub(crate) evaluation: Option<Persistent<Promise<'static>>>,
}

/// Compiles and runs `source`.
///
/// # Errors
/// [`ErrorKind::Syntax`] when it compiles neither way; [`ErrorKind::Thrown`] when top-level
/// code throws (or an import is refused).
pub(crate) fn load<'js>(ctx: &Ctx<'js>, source: &Source) -> Result<Loaded, ErrorData> {
    if source.code.contains('\0') || source.name.contains('\0') {
        return Err(ErrorData::invalid(
            "source code and name must not contain NUL",
        ));
    }
    let cjs_error = match compile_common_js(ctx, source) {
        Ok(wrapper) => return run_common_js(ctx, wrapper),
        Err(e) if e.kind == ErrorKind::Syntax => e,
        Err(e) => return Err(e),
    };
    match Module::declare(ctx.clone(), source.name.as_str(), source.code.as_str()) {
        Ok(module) => run_module(ctx, module),
        Err(e) => {
            let module_error = compile_error(ctx, e, false);
            Err(if support::looks_like_module(&source.code) {
                module_error
            } else {
                cjs_error
            })
        }
    }
}

fn compile_common_js<'js>(ctx: &Ctx<'js>, source: &Source) -> Result<Function<'js>, ErrorData> {
    let mut options = EvalOptions::default();
    options.global = true;
    // CommonJS code is sloppy unless it says "use strict", as in node.
    options.strict = false;
    options.filename = Some(source.name.clone());
    let wrapped = support::commonjs_wrap(&source.code);
    let value: JsValue = ctx
        .eval_with_options(wrapped, options)
        .map_err(|e| compile_error(ctx, e, true))?;
    value.into_function().ok_or_else(|| {
        ErrorData::new(
            ErrorKind::Syntax,
            "SyntaxError",
            "unbalanced braces: the source closes its CommonJS wrapper",
        )
    })
}

fn run_common_js<'js>(ctx: &Ctx<'js>, wrapper: Function<'js>) -> Result<Loaded, ErrorData> {
    let caught = |e| errors::caught(ctx, e);
    let module = Object::new(ctx.clone()).map_err(caught)?;
    let exports = Object::new(ctx.clone()).map_err(caught)?;
    module.set("exports", exports.clone()).map_err(caught)?;
    wrapper
        .call::<_, JsValue>((This(exports.clone()), exports, module.clone()))
        .map_err(caught)?;
    Ok(Loaded {
        exports: Exports::CommonJs(Persistent::save(ctx, module)),
        evaluation: None,
    })
}

fn run_module<'js>(
    ctx: &Ctx<'js>,
    module: Module<'js, rquickjs::module::Declared>,
) -> Result<Loaded, ErrorData> {
    let (module, evaluation) = module.eval().map_err(|e| errors::caught(ctx, e))?;
    let namespace = module.namespace().map_err(|e| errors::caught(ctx, e))?;
    Ok(Loaded {
        exports: Exports::Module(Persistent::save(ctx, namespace)),
        evaluation: Some(Persistent::save(ctx, evaluation)),
    })
}

/// An error from compiling: a `SyntaxError` becomes [`ErrorKind::Syntax`] with its location
/// (columns on line 1 corrected when the source was `wrapped` as CommonJS).
fn compile_error<'js>(ctx: &Ctx<'js>, e: rquickjs::Error, wrapped: bool) -> ErrorData {
    let mut data = errors::caught(ctx, e);
    if data.kind == ErrorKind::Thrown && data.name == "SyntaxError" {
        data.kind = ErrorKind::Syntax;
        if let Some(loc) = data.location.as_mut() {
            if wrapped {
                support::commonjs_location(loc);
            }
        }
    }
    data
}
