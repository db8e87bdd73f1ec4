//! `console.log` and friends, and the readable formatting they (and error messages) use.
//!
//! Formatting follows node's `util.inspect` loosely, exactly as the QuickJS runtime does:
//! strings print verbatim at the top level and quoted inside structures, objects as
//! `{ a: 1, b: 'x' }`, arrays as `[ 1, 2 ]`, errors as `Name: message`. It never throws: cycles
//! print `[Circular]`, nesting stops at [`MAX_DEPTH`], long collections are cut at
//! [`MAX_ITEMS`], a message at [`MAX_LEN`] bytes, and a property whose getter throws prints
//! `<error>`.

use crate::{
    convert::{own_keys, string_prop},
    install_value,
    state::Untraced,
};
use boa_engine::{
    builtins::error::Error as ErrorObject,
    js_string,
    object::{
        builtins::{JsDate, JsTypedArray},
        FunctionObjectBuilder,
    },
    Context, JsNativeError, JsObject, JsValue, JsVariant, NativeFunction,
};
use confine_runtime_abstract::{protocol::LogLevel, ContainerId, Link};
use std::fmt::Write as _;

/// How deep nested objects are shown before `[Object]`.
const MAX_DEPTH: usize = 4;
/// How many elements or properties of one collection are shown.
const MAX_ITEMS: usize = 100;
/// The longest message, in bytes; longer ones are cut and end with `…`.
const MAX_LEN: usize = 1 << 20;

/// Installs `console` with `log`, `info`, `debug`, `warn` and `error`.
pub(crate) fn install(
    ctx: &mut Context,
    link: &Link,
    cid: ContainerId,
) -> boa_engine::JsResult<()> {
    let console = JsObject::with_object_proto(ctx.intrinsics());
    for level in [
        LogLevel::Log,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Warn,
        LogLevel::Error,
    ] {
        let f = NativeFunction::from_copy_closure_with_captures(
            |_, args, captures: &Untraced<(Link, ContainerId, LogLevel)>, ctx| {
                let (link, cid, level) = &captures.0;
                // Boa cannot interrupt a script, so a container over its output budget gets
                // an error from each further `console` call: a logging loop ends there (its
                // call fails with the limit either way).
                if let Some(e) = link.tripped(*cid) {
                    return Err(JsNativeError::range().with_message(e.message).into());
                }
                let message = format_args(ctx, args);
                link.log(*cid, *level, message);
                Ok(JsValue::undefined())
            },
            Untraced((link.clone(), cid, level)),
        );
        let f = FunctionObjectBuilder::new(ctx.realm(), f)
            .name(js_string!(level.as_str()))
            .length(0)
            .build();
        console.set(js_string!(level.as_str()), f, true, ctx)?;
    }
    install_value(ctx, "console", console.into())
}

/// Formats console arguments: joined by spaces, strings verbatim.
pub(crate) fn format_args(ctx: &mut Context, args: &[JsValue]) -> String {
    let mut f = Formatter::new(ctx);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            f.out.push(' ');
        }
        f.top(arg);
        if f.full() {
            break;
        }
    }
    f.finish()
}

/// Formats one value as `console.log` would show it alone.
pub(crate) fn display(ctx: &mut Context, v: &JsValue) -> String {
    let mut f = Formatter::new(ctx);
    f.top(v);
    f.finish()
}

struct Formatter<'a> {
    ctx: &'a mut Context,
    out: String,
    /// Objects being printed, outermost first.
    path: Vec<JsObject>,
}

impl<'a> Formatter<'a> {
    fn new(ctx: &'a mut Context) -> Self {
        Formatter {
            ctx,
            out: String::new(),
            path: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.out.len() >= MAX_LEN
    }

    fn finish(mut self) -> String {
        if self.out.len() > MAX_LEN {
            let mut cut = MAX_LEN;
            while !self.out.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.truncate(cut);
            self.out.push('…');
        }
        self.out
    }

    /// A top-level value: strings unquoted, errors as `Name: message`.
    fn top(&mut self, v: &JsValue) {
        match v.variant() {
            JsVariant::String(s) => self.out.push_str(&s.to_std_string_lossy()),
            JsVariant::Object(obj) if obj.is::<ErrorObject>() => self.error(&obj),
            _ => self.value(v, 0),
        }
    }

    fn value(&mut self, v: &JsValue, depth: usize) {
        if self.full() {
            return;
        }
        match v.variant() {
            JsVariant::Undefined => self.out.push_str("undefined"),
            JsVariant::Null => self.out.push_str("null"),
            JsVariant::Boolean(b) => self.out.push_str(if b { "true" } else { "false" }),
            JsVariant::Integer32(_) | JsVariant::Float64(_) => self.primitive(v),
            JsVariant::BigInt(b) => {
                let _ = write!(self.out, "{b}n");
            }
            JsVariant::String(s) => quote(&mut self.out, &s.to_std_string_lossy()),
            JsVariant::Symbol(s) => {
                let description = s
                    .description()
                    .map(|d| d.to_std_string_lossy())
                    .unwrap_or_default();
                let _ = write!(self.out, "Symbol({description})");
            }
            JsVariant::Object(obj) if obj.is_callable() => self.function(&obj),
            JsVariant::Object(obj) if obj.is::<ErrorObject>() => {
                self.out.push('[');
                self.error(&obj);
                self.out.push(']');
            }
            JsVariant::Object(obj) => self.object(&obj, depth),
        }
    }

    /// Numbers as JS prints them (`1e+21`, `-0` as `0`): converting a number to a string runs
    /// no script code.
    fn primitive(&mut self, v: &JsValue) {
        match v.to_string(self.ctx) {
            Ok(s) => self.out.push_str(&s.to_std_string_lossy()),
            Err(_) => self.out.push_str("<error>"),
        }
    }

    fn function(&mut self, obj: &JsObject) {
        let name = string_prop(self.ctx, obj, "name").filter(|n| !n.is_empty());
        match name {
            Some(name) => {
                let _ = write!(self.out, "[Function: {name}]");
            }
            None => self.out.push_str("[Function (anonymous)]"),
        }
    }

    fn error(&mut self, obj: &JsObject) {
        let name = string_prop(self.ctx, obj, "name").unwrap_or_else(|| "Error".to_owned());
        let message = string_prop(self.ctx, obj, "message").unwrap_or_default();
        if message.is_empty() {
            self.out.push_str(&name);
        } else {
            let _ = write!(self.out, "{name}: {message}");
        }
    }

    fn get(
        &mut self,
        obj: &JsObject,
        key: impl Into<boa_engine::property::PropertyKey>,
    ) -> Option<JsValue> {
        obj.get(key, self.ctx).ok()
    }

    fn item(&mut self, v: Option<JsValue>, depth: usize) {
        match v {
            Some(v) => self.value(&v, depth),
            None => self.out.push_str("<error>"),
        }
    }

    fn object(&mut self, obj: &JsObject, depth: usize) {
        if self.path.iter().any(|o| JsObject::equals(o, obj)) {
            self.out.push_str("[Circular]");
            return;
        }
        if depth >= MAX_DEPTH {
            self.out.push_str(if obj.is_array() {
                "[Array]"
            } else {
                "[Object]"
            });
            return;
        }
        self.path.push(obj.clone());
        if obj.is_array() {
            self.elements(obj, "", depth);
        } else if JsTypedArray::from_object(obj.clone()).is_ok() {
            let name = self.constructor_name(obj).unwrap_or_default();
            let len = self.length(obj);
            self.elements(obj, &format!("{name}({len}) "), depth);
        } else if let Ok(date) = JsDate::from_object(obj.clone()) {
            let iso = date
                .to_iso_string(self.ctx)
                .ok()
                .and_then(|s| s.as_string())
                .map(|s| s.to_std_string_lossy());
            self.out.push_str(iso.as_deref().unwrap_or("Invalid Date"));
        } else {
            self.properties(obj, depth);
        }
        self.path.pop();
    }

    fn length(&mut self, obj: &JsObject) -> usize {
        self.get(obj, js_string!("length"))
            .and_then(|l| l.as_number())
            .filter(|l| *l >= 0.0)
            .map_or(0, |l| l as usize)
    }

    fn elements(&mut self, obj: &JsObject, prefix: &str, depth: usize) {
        let len = self.length(obj);
        self.out.push_str(prefix);
        if len == 0 {
            self.out.push_str("[]");
            return;
        }
        self.out.push_str("[ ");
        for i in 0..len.min(MAX_ITEMS) {
            if i > 0 {
                self.out.push_str(", ");
            }
            let item = u32::try_from(i).ok().and_then(|i| self.get(obj, i));
            self.item(item, depth + 1);
            if self.full() {
                return;
            }
        }
        if len > MAX_ITEMS {
            let _ = write!(self.out, ", ... {} more items", len - MAX_ITEMS);
        }
        self.out.push_str(" ]");
    }

    fn properties(&mut self, obj: &JsObject, depth: usize) {
        if let Some(name) = self.constructor_name(obj).filter(|n| n != "Object") {
            self.out.push_str(&name);
            self.out.push(' ');
        }
        let Ok(keys) = own_keys(self.ctx, obj) else {
            self.out.push_str("{ <error> }");
            return;
        };
        if keys.is_empty() {
            self.out.push_str("{}");
            return;
        }
        self.out.push_str("{ ");
        for (i, key) in keys.into_iter().enumerate() {
            if i == MAX_ITEMS {
                self.out.push_str(", ...");
                break;
            }
            if i > 0 {
                self.out.push_str(", ");
            }
            let name = key.to_std_string_lossy();
            if is_identifier(&name) {
                self.out.push_str(&name);
            } else {
                quote(&mut self.out, &name);
            }
            self.out.push_str(": ");
            let item = self.get(obj, key);
            self.item(item, depth + 1);
            if self.full() {
                return;
            }
        }
        self.out.push_str(" }");
    }

    /// The name of the object's constructor, for non-plain objects (`Map`, a class).
    fn constructor_name(&mut self, obj: &JsObject) -> Option<String> {
        let ctor = self.get(obj, js_string!("constructor"))?;
        let ctor = ctor.as_object()?;
        string_prop(self.ctx, &ctor, "name").filter(|n| !n.is_empty())
    }
}

use confine_runtime_abstract::support::{is_identifier, quote};
