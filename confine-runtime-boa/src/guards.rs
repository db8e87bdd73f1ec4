//! Guards around built-ins whose own recursion boa does not bound.
//!
//! boa's `JSON.parse` recurses on the native stack once per nesting level, outside the
//! recursion limit, so text nested a few tens of thousands deep would overflow the guest's
//! stack and end the process. The wrapper installed here measures the nesting first (one
//! linear scan, no allocation per level) and throws a catchable `RangeError` past
//! [`MAX_JSON_DEPTH`], which is deeper than any real document; shallower text goes to the
//! original `JSON.parse` unchanged.

use boa_engine::{
    js_string, object::FunctionObjectBuilder, Context, JsNativeError, JsObject, JsResult, JsValue,
    NativeFunction,
};

/// The deepest nesting `JSON.parse` accepts. boa overflows an 8 MiB stack at about 20 000.
pub(crate) const MAX_JSON_DEPTH: usize = 5_000;

/// Replaces `JSON.parse` with the depth-checking wrapper.
pub(crate) fn install(ctx: &mut Context) -> JsResult<()> {
    let json = ctx
        .global_object()
        .get(js_string!("JSON"), ctx)?
        .as_object()
        .ok_or_else(|| JsNativeError::typ().with_message("JSON is not an object"))?;
    let parse = json
        .get(js_string!("parse"), ctx)?
        .as_object()
        .ok_or_else(|| JsNativeError::typ().with_message("JSON.parse is not an object"))?;
    let wrapper = NativeFunction::from_copy_closure_with_captures(
        |this, args, original: &JsObject, ctx| {
            if let Some(text) = args.first().and_then(JsValue::as_string) {
                let depth = max_depth(text.iter());
                if depth > MAX_JSON_DEPTH {
                    return Err(JsNativeError::range()
                        .with_message(format!(
                            "JSON.parse: text nested deeper than {MAX_JSON_DEPTH} levels"
                        ))
                        .into());
                }
            }
            original.call(this, args, ctx)
        },
        parse,
    );
    let wrapper = FunctionObjectBuilder::new(ctx.realm(), wrapper)
        .name(js_string!("parse"))
        .length(2)
        .build();
    json.set(js_string!("parse"), wrapper, true, ctx)?;
    Ok(())
}

/// The deepest `[`/`{` nesting in JSON text (UTF-16 code units), ignoring brackets inside
/// strings. Stops counting once past [`MAX_JSON_DEPTH`].
fn max_depth(text: impl Iterator<Item = u16>) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for unit in text {
        if in_string {
            match unit {
                _ if escaped => escaped = false,
                0x5C => escaped = true,    // '\'
                0x22 => in_string = false, // '"'
                _ => {}
            }
            continue;
        }
        match unit {
            0x22 => in_string = true,
            0x5B | 0x7B => {
                depth += 1;
                max = max.max(depth);
                if max > MAX_JSON_DEPTH {
                    break;
                }
            }
            0x5D | 0x7D => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(s: &str) -> usize {
        max_depth(s.encode_utf16())
    }

    #[test]
    fn counts_nesting_outside_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth("[[{\"a\": [1]}]]"), 4);
        assert_eq!(depth("[\"[[[[\\\"[[\", {}]"), 2);
        assert_eq!(depth("[][][]"), 1);
        assert_eq!(depth(&"[".repeat(MAX_JSON_DEPTH + 10)), MAX_JSON_DEPTH + 1);
    }
}
