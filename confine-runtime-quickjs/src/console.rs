//! `console.log` and friends, and the readable formatting they (and error messages) use.
//!
//! Formatting follows node's `util.inspect` loosely: strings print verbatim at the top level
//! and quoted inside structures, objects as `{ a: 1, b: 'x' }`, arrays as `[ 1, 2 ]`, errors
//! as `Name: message`. It never throws: cycles print `[Circular]`, nesting stops at
//! [`MAX_DEPTH`], long collections are cut at [`MAX_ITEMS`], a message at [`MAX_LEN`] bytes,
//! and a property whose getter throws prints `<error>`.

use crate::{convert::string_prop, ffi, state::Shared};
use confine_runtime_abstract::protocol::LogLevel;
use rquickjs::{
    atom::PredefinedAtom, function::Rest, Coerced, Ctx, FromJs, Function, Object, Type,
    Value as JsValue,
};
use std::{fmt::Write as _, rc::Rc};

/// How deep nested objects are shown before `[Object]`.
const MAX_DEPTH: usize = 4;
/// How many elements or properties of one collection are shown.
const MAX_ITEMS: usize = 100;
/// The longest message, in bytes; longer ones are cut and end with `…`.
const MAX_LEN: usize = 1 << 20;

/// Installs `console` with `log`, `info`, `debug`, `warn` and `error`.
pub(crate) fn install<'js>(ctx: &Ctx<'js>, shared: &Rc<Shared>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    for level in [
        LogLevel::Log,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Warn,
        LogLevel::Error,
    ] {
        let link = shared.link.clone();
        let cid = shared.cid;
        let f = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<JsValue<'js>>| {
                link.log(cid, level, format_args(&ctx, &args.0));
            },
        )?
        .with_name(level.as_str())?;
        console.set(level.as_str(), f)?;
    }
    ctx.globals().set("console", console)
}

/// Formats console arguments: joined by spaces, strings verbatim.
pub(crate) fn format_args<'js>(ctx: &Ctx<'js>, args: &[JsValue<'js>]) -> String {
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
pub(crate) fn display<'js>(ctx: &Ctx<'js>, v: &JsValue<'js>) -> String {
    let mut f = Formatter::new(ctx);
    f.top(v);
    f.finish()
}

struct Formatter<'a, 'js> {
    ctx: &'a Ctx<'js>,
    out: String,
    /// Objects being printed, outermost first.
    path: Vec<Object<'js>>,
}

impl<'a, 'js> Formatter<'a, 'js> {
    fn new(ctx: &'a Ctx<'js>) -> Self {
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
    fn top(&mut self, v: &JsValue<'js>) {
        if v.is_string() {
            self.out.push_str(&ffi::string_lossy(v).unwrap_or_default());
        } else if v.is_error() {
            self.error(v);
        } else {
            self.value(v, 0);
        }
    }

    fn value(&mut self, v: &JsValue<'js>, depth: usize) {
        if self.full() {
            return;
        }
        match v.type_of() {
            Type::Uninitialized | Type::Undefined => self.out.push_str("undefined"),
            Type::Null => self.out.push_str("null"),
            Type::Bool => self.out.push_str(if v.as_bool() == Some(true) {
                "true"
            } else {
                "false"
            }),
            Type::Int | Type::Float => self.primitive(v),
            Type::BigInt => {
                self.primitive(v);
                self.out.push('n');
            }
            Type::String => quote(&mut self.out, &ffi::string_lossy(v).unwrap_or_default()),
            Type::Symbol => self.symbol(v),
            Type::Function | Type::Constructor => self.function(v),
            Type::Exception => {
                self.out.push('[');
                self.error(v);
                self.out.push(']');
            }
            Type::Array | Type::Object | Type::Promise | Type::Proxy => self.object(v, depth),
            Type::Module | Type::Unknown => self.out.push_str("[unknown]"),
        }
    }

    /// Numbers and BigInts as JS prints them (`1e+21`, `-0` as `0`): converting a primitive
    /// to a string runs no script code.
    fn primitive(&mut self, v: &JsValue<'js>) {
        match Coerced::<String>::from_js(self.ctx, v.clone()) {
            Ok(s) => self.out.push_str(&s.0),
            Err(_) => {
                let _ = self.ctx.catch();
                self.out.push_str("<error>");
            }
        }
    }

    fn symbol(&mut self, v: &JsValue<'js>) {
        let description = v
            .as_symbol()
            .and_then(|s| s.description().ok())
            .and_then(|d| ffi::string_lossy(&d));
        let _ = write!(self.out, "Symbol({})", description.unwrap_or_default());
    }

    fn function(&mut self, v: &JsValue<'js>) {
        let name = v
            .as_object()
            .and_then(|o| string_prop(self.ctx, o, "name"))
            .filter(|n| !n.is_empty());
        match name {
            Some(name) => {
                let _ = write!(self.out, "[Function: {name}]");
            }
            None => self.out.push_str("[Function (anonymous)]"),
        }
    }

    fn error(&mut self, v: &JsValue<'js>) {
        let Some(obj) = v.as_object() else {
            return;
        };
        let name = string_prop(self.ctx, obj, "name").unwrap_or_else(|| "Error".to_owned());
        let message = string_prop(self.ctx, obj, "message").unwrap_or_default();
        if message.is_empty() {
            self.out.push_str(&name);
        } else {
            let _ = write!(self.out, "{name}: {message}");
        }
    }

    fn get(&self, obj: &Object<'js>, key: impl rquickjs::IntoAtom<'js>) -> Option<JsValue<'js>> {
        match obj.get(key) {
            Ok(v) => Some(v),
            Err(_) => {
                let _ = self.ctx.catch();
                None
            }
        }
    }

    fn item(&mut self, v: Option<JsValue<'js>>, depth: usize) {
        match v {
            Some(v) => self.value(&v, depth),
            None => self.out.push_str("<error>"),
        }
    }

    fn object(&mut self, v: &JsValue<'js>, depth: usize) {
        let Some(obj) = v.as_object() else {
            return;
        };
        if self.path.contains(obj) {
            self.out.push_str("[Circular]");
            return;
        }
        if depth >= MAX_DEPTH {
            self.out
                .push_str(if v.is_array() { "[Array]" } else { "[Object]" });
            return;
        }
        self.path.push(obj.clone());
        if v.is_array() {
            self.elements(obj, "", depth);
        } else if ffi::is_typed_array(v) {
            let name = self.constructor_name(obj).unwrap_or_default();
            let len = self.length(obj);
            self.elements(obj, &format!("{name}({len}) "), depth);
        } else if ffi::is_date(v) {
            self.date(obj);
        } else {
            self.properties(obj, depth);
        }
        self.path.pop();
    }

    fn length(&self, obj: &Object<'js>) -> usize {
        self.get(obj, PredefinedAtom::Length)
            .and_then(|l| l.as_number())
            .filter(|l| *l >= 0.0)
            .map_or(0, |l| l as usize)
    }

    fn elements(&mut self, obj: &Object<'js>, prefix: &str, depth: usize) {
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

    fn date(&mut self, obj: &Object<'js>) {
        let iso = self
            .get(obj, "toISOString")
            .and_then(|f| f.into_function())
            .and_then(
                |f| match f.call::<_, JsValue>((rquickjs::function::This(obj.clone()),)) {
                    Ok(s) => ffi::string_lossy(&s),
                    Err(_) => {
                        let _ = self.ctx.catch();
                        None
                    }
                },
            );
        self.out.push_str(iso.as_deref().unwrap_or("Invalid Date"));
    }

    fn properties(&mut self, obj: &Object<'js>, depth: usize) {
        if let Some(name) = self.constructor_name(obj).filter(|n| n != "Object") {
            self.out.push_str(&name);
            self.out.push(' ');
        }
        let keys: Vec<_> = obj.keys::<rquickjs::Atom>().take(MAX_ITEMS + 1).collect();
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
            let Ok(key) = key else {
                let _ = self.ctx.catch();
                self.out.push_str("<error>");
                continue;
            };
            let name = key
                .to_js_string()
                .ok()
                .and_then(|s| ffi::string_lossy(s.as_value()))
                .unwrap_or_default();
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
    fn constructor_name(&self, obj: &Object<'js>) -> Option<String> {
        let ctor = self.get(obj, PredefinedAtom::Constructor)?;
        let ctor = ctor.as_object()?;
        string_prop(self.ctx, ctor, "name").filter(|n| !n.is_empty())
    }
}

use confine_runtime_abstract::support::{is_identifier, quote};
