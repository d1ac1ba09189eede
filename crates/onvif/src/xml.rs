//! Hand-written XML helpers. Writing: the responses and requests are fixed shapes built as
//! text (a DOM would only add allocations): escaping and a few element builders. Reading
//! answers of other devices: [`parse`] turns a document into a small [`Element`] tree that
//! the client-side parsers walk by local name, because cameras bind the ONVIF namespaces
//! to whatever prefixes they like and nest extensions freely; the tree keeps each
//! element's namespace for the places where it tells things apart (the SOAP envelope,
//! fault codes).

use quick_xml::events::{BytesRef, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

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

/// The namespace URI of a resolved name; empty when unbound or unknown.
pub fn namespace_of(r: &ResolveResult) -> String {
    match r {
        ResolveResult::Bound(n) => String::from_utf8_lossy(n.as_ref()).into_owned(),
        _ => String::new(),
    }
}

/// The character an entity or character reference stands for (the five predefined
/// entities and `&#N;` / `&#xN;`); None for any other entity (no DTDs here).
pub fn reference_char(r: &BytesRef) -> Option<char> {
    match r.as_ref() {
        b"amp" => Some('&'),
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        _ => r.resolve_char_ref().ok().flatten(),
    }
}

/// Documents larger than this are refused before parsing (a camera's GetProfiles answer
/// with a dozen profiles is under 100 KiB).
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
/// Deeper nesting than this is refused.
const MAX_DEPTH: usize = 64;
/// More elements than this are refused.
const MAX_ELEMENTS: usize = 100_000;

/// One element of a parsed document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI (empty when the name is unqualified and no default namespace applies).
    pub namespace: String,
    /// Local name, without its prefix.
    pub name: String,
    /// Attributes as (local name, unescaped value); namespace declarations left out.
    pub attributes: Vec<(String, String)>,
    /// The element's own text (not its children's), trimmed.
    pub text: String,
    /// For the elements [`parse`] was asked to resolve: the text's whitespace-separated
    /// QNames as (namespace URI, local name), resolved with the bindings in scope there.
    pub qnames: Vec<(String, String)>,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `local` (any namespace).
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// Every child named `local`.
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == local)
    }

    /// Follows a path of child names: `e.path(&["Resolution", "Width"])`.
    pub fn path(&self, locals: &[&str]) -> Option<&Element> {
        locals.iter().try_fold(self, |e, l| e.child(l))
    }

    /// The text at a path of child names, if the element is there.
    pub fn text_at(&self, locals: &[&str]) -> Option<&str> {
        self.path(locals).map(|e| e.text.as_str())
    }

    /// The first descendant (depth first, document order; not `self`) named any of `locals`.
    pub fn find(&self, locals: &[&str]) -> Option<&Element> {
        self.children.iter().find_map(|c| {
            if locals.contains(&c.name.as_str()) {
                Some(c)
            } else {
                c.find(locals)
            }
        })
    }

    /// The value of attribute `local` (any prefix).
    pub fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == local)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole document into its root [`Element`]. The text of elements whose local
/// name is in `qname_lists` is also read as a list of QNames and resolved
/// ([`Element::qnames`]): WS-Discovery `Types`, SOAP fault code `Value`s.
///
/// Refused: documents over [`MAX_DOCUMENT_BYTES`], nesting deeper than 64, more than
/// 100 000 elements, a DOCTYPE (no entity expansion), malformed XML, non-UTF-8 text.
pub fn parse(xml: &[u8], qname_lists: &[&str]) -> Result<Element, String> {
    if xml.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the document is {} bytes long, more than the {MAX_DOCUMENT_BYTES} accepted",
            xml.len()
        ));
    }
    let mut reader = NsReader::from_reader(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut buf = Vec::new();
    loop {
        let position = reader.buffer_position();
        let (resolved, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| format!("malformed XML near byte {position}: {e}"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err("content after the document element".into());
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(format!("more than {MAX_ELEMENTS} elements"));
                }
                let mut element = Element {
                    namespace: namespace_of(&resolved),
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
                    let key = a.key.as_ref();
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        continue;
                    }
                    let value = a
                        .unescape_value()
                        .map_err(|e| format!("malformed attribute value: {e}"))?;
                    element.attributes.push((
                        String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    attach(&mut stack, &mut root, element);
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                    }
                    stack.push(element);
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| format!("text is not UTF-8: {e}"))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::GeneralRef(r) => {
                let c = reference_char(&r).ok_or_else(|| {
                    format!("unknown entity reference &{};", String::from_utf8_lossy(&r))
                })?;
                if let Some(top) = stack.last_mut() {
                    top.text.push(c);
                }
            }
            Event::End(_) => {
                let Some(mut element) = stack.pop() else {
                    return Err("unbalanced end tag".into());
                };
                let trimmed = element.text.trim();
                if trimmed.len() != element.text.len() {
                    element.text = trimmed.to_owned();
                }
                if qname_lists.contains(&element.name.as_str()) {
                    // The element's own bindings are still in scope at its end tag.
                    for q in element.text.split_whitespace() {
                        let local = q.split_once(':').map_or(q, |(_, l)| l);
                        let (r, _) = reader
                            .resolver()
                            .resolve(quick_xml::name::QName(q.as_bytes()), true);
                        element.qnames.push((namespace_of(&r), local.to_owned()));
                    }
                }
                attach(&mut stack, &mut root, element);
            }
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".into()),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no document element".to_owned())
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_with_prefixes_entities_and_qnames() {
        let doc = br#"<?xml version="1.0"?>
<a:Root xmlns:a="urn:a" xmlns:q="urn:q" id="1">
  <a:Item key="x&amp;y">one &amp; <![CDATA[two]]> &#x33;</a:Item>
  <Item xmlns="urn:b"/>
  <Codes xmlns:r="urn:r">r:One q:Two Three</Codes>
</a:Root>"#;
        let root = parse(doc, &["Codes"]).unwrap();
        assert_eq!(
            (root.namespace.as_str(), root.name.as_str()),
            ("urn:a", "Root")
        );
        assert_eq!(root.attribute("id"), Some("1"));
        let items: Vec<&Element> = root.children_named("Item").collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text, "one & two 3");
        assert_eq!(items[0].attribute("key"), Some("x&y"));
        assert_eq!(items[1].namespace, "urn:b");
        let codes = root.find(&["Codes"]).unwrap();
        assert_eq!(
            codes.qnames,
            [
                ("urn:r".to_owned(), "One".to_owned()),
                ("urn:q".to_owned(), "Two".to_owned()),
                (String::new(), "Three".to_owned())
            ]
        );
        assert_eq!(root.text, "");
    }

    #[test]
    fn refusals() {
        for bad in [
            &b""[..],
            b"not xml",
            b"<a><b></a>",
            b"<a>",
            b"<a/><b/>",
            b"<a>&bogus;</a>",
            b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        ] {
            assert!(
                parse(bad, &[]).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
        assert!(parse(deep.as_bytes(), &[]).is_err());
    }
}
