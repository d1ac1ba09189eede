//! Hand-written helpers for writing the response XML as text (the responses are fixed
//! shapes; a DOM would only add allocations): escaping and a few element builders.

/// Escapes `&`, `<`, `>`, `"` and `'` for element text and attribute values.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// `<name>text</name>` with the text escaped.
pub fn el(name: &str, text: impl std::fmt::Display) -> String {
    format!("<{name}>{}</{name}>", escape(&text.to_string()))
}

/// `true` / `false` as xs:boolean.
pub fn b(v: bool) -> &'static str {
    if v {
        "true"
    } else {
        "false"
    }
}
