//! WeChat's flat `<xml>` documents, written and read safely.
//!
//! Out: one child of `<xml>` per parameter, strings in CDATA (split where a
//! value contains `]]>`), integers bare.
//!
//! In: tolerant of what WeChat varies (CDATA or plain text, any order,
//! unknown elements, `hblist/hbinfo` lists) and hostile to what an attacker
//! would try: any `DOCTYPE`/`ENTITY` (or other `<!` declaration) is refused
//! before parsing, bodies over [`MAX_BODY_BYTES`] are refused, nesting and
//! element counts are bounded, and only the five predefined entities and
//! character references are decoded. No input makes it panic.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem;
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::params::{field_name, field_name_owned};
use crate::{Fields, Params};

/// The largest body accepted. WeChat's answers are well under 4 KiB; a
/// request with every text field at its limit is under 2 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most elements one document may hold (a 20-packet fission `hblist`
/// with all fields is about 100).
const MAX_ELEMENTS: usize = 1_000;

/// `<xml>` → `hblist` → `hbinfo` → field: four levels; anything deeper is refused.
const MAX_DEPTH: usize = 4;

/// Fields WeChat types as integers; they are written without CDATA.
const INTEGER_FIELDS: [&str; 5] = [
    "total_amount",
    "total_num",
    "amount",
    "refund_amount",
    "agentid",
];

/// Why a body could not be read as a WeChat XML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("body is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// The body's length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The body holds a DOCTYPE, ENTITY or other `<!` declaration.
    #[error("body contains a DOCTYPE or ENTITY declaration, which is never accepted")]
    Declaration,
    /// The body is empty or only whitespace.
    #[error("body is empty")]
    Empty,
    /// The body is not UTF-8.
    #[error("body is not UTF-8")]
    NotUtf8,
    /// The body is not well-formed XML or not shaped as `<xml>…</xml>`.
    #[error("malformed XML: {0}")]
    Malformed(String),
}

/// A parsed `<xml>` document: its flat fields, and its lists (`hblist`, the
/// only nested element in this API family) as one map per item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XmlDoc {
    /// Top-level elements holding text, by name (a known field's name is
    /// the program's own, not a copy).
    pub fields: Fields,
    /// Top-level elements holding elements, by name (e.g. `hblist`), each
    /// item (e.g. `hbinfo`) as a map of its text children.
    pub lists: BTreeMap<String, Vec<BTreeMap<String, String>>>,
}

impl XmlDoc {
    /// The text of top-level field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name)
    }

    /// The flat fields as a parameter set (empty values dropped).
    pub fn to_params(&self) -> Params {
        self.fields.named().map(|(k, v)| (k.clone(), v)).collect()
    }
}

/// Writes `params` (and a `sign`, if given) as a flat `<xml>` document.
pub fn to_xml(params: &Params, sign: Option<&str>) -> String {
    to_xml_pairs(params.iter().chain(sign.map(|s| ("sign", s))))
}

/// Writes any list of pairs as a flat `<xml>` document, in the given order.
pub fn to_xml_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    // A send's document is about 800 bytes. Written straight into the
    // string: names are parameter names, integers digits and everything
    // else CDATA, so nothing is ever escaped but `]]>`.
    let mut out = String::with_capacity(1024);
    out.push_str("<xml>");
    for (name, value) in pairs {
        for part in ["<", name, ">"] {
            out.push_str(part);
        }
        let integer = INTEGER_FIELDS.contains(&name) && value.bytes().all(|b| b.is_ascii_digit());
        if integer {
            out.push_str(value);
        } else {
            push_cdata(&mut out, value);
        }
        for part in ["</", name, ">"] {
            out.push_str(part);
        }
    }
    out.push_str("</xml>");
    out
}

/// `]]>` ends a CDATA section and so cannot stand in one: a value holding
/// it is split there, `]]` closing one section and `>` opening the next.
fn push_cdata(out: &mut String, value: &str) {
    let mut rest = value;
    while let Some(at) = CDATA_END.find(rest.as_bytes()) {
        let (head, tail) = rest.split_at(at + 2);
        for part in ["<![CDATA[", head, "]]>"] {
            out.push_str(part);
        }
        rest = tail;
    }
    for part in ["<![CDATA[", rest, "]]>"] {
        out.push_str(part);
    }
}

// (Searchers built once: `str::find` and `memmem::find` set one up at
// every call, and a document has a dozen CDATA sections.)
static CDATA_END: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"]]>"));
static COMMENT_END: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"-->"));

/// Refuses, before any parsing, what a WeChat document never contains.
pub fn precheck(body: &[u8]) -> Result<&str, XmlError> {
    let text = read_text(body)?;
    refuse_declarations(text)?;
    Ok(text)
}

/// The body as text: not too large, UTF-8 (less a byte-order mark), not blank.
fn read_text(body: &[u8]) -> Result<&str, XmlError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(XmlError::TooLarge {
            len: body.len(),
            max: MAX_BODY_BYTES,
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(XmlError::Empty);
    }
    Ok(text)
}

/// Any `<!` other than a CDATA section or a comment is a declaration
/// (DOCTYPE, ENTITY, ELEMENT, ATTLIST): never needed, refused outright.
/// The content of a CDATA section or comment is skipped whole: a text
/// value may itself contain `<!`.
fn refuse_declarations(text: &str) -> Result<(), XmlError> {
    let mut rest = text.as_bytes();
    while let Some(at) = memchr::memchr(b'<', rest) {
        let after = &rest[at + 1..];
        let Some(after) = after.strip_prefix(b"!") else {
            rest = after;
            continue;
        };
        let end = if let Some(content) = after.strip_prefix(b"[CDATA[") {
            CDATA_END.find(content).map(|e| &content[e + 3..])
        } else if let Some(content) = after.strip_prefix(b"--") {
            COMMENT_END.find(content).map(|e| &content[e + 3..])
        } else {
            return Err(XmlError::Declaration);
        };
        // An unclosed section is the parser's to refuse.
        rest = end.unwrap_or_default();
    }
    Ok(())
}

/// One open element below the root while parsing.
struct Frame {
    name: String,
    text: String,
    had_cdata: bool,
    had_child: bool,
}

/// Parses a WeChat XML document.
pub fn parse(body: &[u8]) -> Result<XmlDoc, XmlError> {
    parse_text(body).map(|(doc, _)| doc)
}

/// As [`parse`], with the body as the text it was checked to be.
pub(crate) fn parse_text(body: &[u8]) -> Result<(XmlDoc, &str), XmlError> {
    let text = read_text(body)?;
    // A flat document holds no `<!` but its closed CDATA sections: it
    // passes the precheck, which is only needed for the rest.
    if let Some(doc) = parse_flat(text) {
        return Ok((doc, text));
    }
    refuse_declarations(text)?;
    Ok((parse_general(text)?, text))
}

/// Whitespace between elements, as the flat reading accepts it: no
/// carriage return, which the general parser normalises.
fn skip_layout(text: &str) -> &str {
    text.trim_start_matches([' ', '\t', '\n'])
}

/// The shape nearly every answer has, read without the general parser:
/// `<xml>` holding only fields, each of CDATA sections or of plain text
/// without entities, brackets or carriage returns, no name twice. `None`
/// for anything else, which [`parse_general`] reads or refuses instead.
/// What this reads, [`parse_general`] reads the same (a test holds them
/// to it); it only does so with a fraction of the work and allocations.
fn parse_flat(text: &str) -> Option<XmlDoc> {
    // Carriage returns and control characters are for the general parser,
    // wherever they are. (A fold, not `any`: it runs in vector steps.)
    let unusual = text.bytes().fold(false, |seen, b| {
        seen | (b < 0x20 && b != b'\t' && b != b'\n')
    });
    if unusual {
        return None;
    }
    // The values are kept where they are, in a copy of the document: a
    // value's place is an offset into `text`, of which `rest` and `after`
    // are what is left to read.
    let at = |rest: &str| text.len() - rest.len();
    let mut fields = Fields::over(text.to_owned(), 16);
    let mut rest = skip_layout(text).strip_prefix("<xml>")?;
    // Bounded: each turn consumes a whole field, or ends.
    loop {
        rest = skip_layout(rest);
        if let Some(after) = rest.strip_prefix("</xml>") {
            return skip_layout(after).is_empty().then(|| XmlDoc {
                fields,
                lists: BTreeMap::new(),
            });
        }
        // The root and this field among the elements counted.
        if fields.len() + 2 > MAX_ELEMENTS {
            return None;
        }
        let after = rest.strip_prefix('<')?;
        let name_len = after
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))?;
        let (name, after) = after.split_at(name_len);
        if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return None;
        }
        let mut after = after.strip_prefix('>')?;
        let value = if let Some((first, tail)) = cdata_section(after) {
            let start = at(after) + "<![CDATA[".len();
            after = tail;
            if cdata_section(after).is_none() {
                Value::At(start..start + first.len())
            } else {
                // A value split around `]]>` continues in the next
                // sections: joined, it is kept after the document.
                let mut value = first.to_owned();
                while let Some((more, tail)) = cdata_section(after) {
                    value.push_str(more);
                    after = tail;
                }
                Value::Joined(value)
            }
        } else {
            let end = memchr::memchr(b'<', after.as_bytes())?;
            let (value, tail) = after.split_at(end);
            if value.bytes().any(|b| matches!(b, b'&' | b']')) {
                return None;
            }
            let start = at(after);
            after = tail;
            Value::At(start..start + value.len())
        };
        rest = after
            .strip_prefix("</")?
            .strip_prefix(name)?
            .strip_prefix('>')?;
        let name = field_name(name);
        match value {
            Value::At(place) => fields.add_place(name, place),
            Value::Joined(value) => fields.add(name, &value),
        }
        .ok()?;
    }
}

/// Where a flat field's value is: in the document, or joined from sections.
enum Value {
    At(Range<usize>),
    Joined(String),
}

/// The content of the closed CDATA section `text` opens with, and what
/// follows it.
fn cdata_section(text: &str) -> Option<(&str, &str)> {
    let section = text.strip_prefix("<![CDATA[")?;
    let end = cdata_end(section.as_bytes())?;
    Some((&section[..end], &section[end + 3..]))
}

/// Where the first `]]>` of `text` is. A section's content is short (a
/// few dozen bytes): looking for its brackets costs less there than
/// setting up a substring search.
fn cdata_end(text: &[u8]) -> Option<usize> {
    let mut from = 0;
    // Bounded: each turn moves past one `]`.
    while let Some(found) = memchr::memchr(b']', &text[from..]) {
        let at = from + found;
        if text[at..].starts_with(b"]]>") {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Any WeChat document, by quick-xml's reader.
fn parse_general(text: &str) -> Result<XmlDoc, XmlError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;

    let mut doc = XmlDoc::default();
    // Open elements below the root: 1 = field or list, 2 = list item, 3 = item field.
    let mut stack: Vec<Frame> = Vec::with_capacity(MAX_DEPTH);
    let mut root = RootState::NotSeen;
    let mut elements = 0usize;

    loop {
        let event = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root == RootState::Closed => {
                return Err(XmlError::Malformed(format!(
                    "<{}> after the root element",
                    element_name(&start)?
                )));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let is_empty = matches!(event, Event::Empty(_));
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(XmlError::Malformed(format!(
                        "more than {MAX_ELEMENTS} elements"
                    )));
                }
                let name = element_name(start)?;
                if root == RootState::NotSeen {
                    if name != "xml" {
                        return Err(XmlError::Malformed(format!(
                            "root element is <{name}>, not <xml>"
                        )));
                    }
                    root = if is_empty {
                        RootState::Closed
                    } else {
                        RootState::Open
                    };
                    continue;
                }
                if stack.len() + 1 >= MAX_DEPTH {
                    return Err(XmlError::Malformed(format!(
                        "nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                if let Some(parent) = stack.last_mut() {
                    parent.had_child = true;
                }
                if stack.len() == 1 {
                    // A child of a top-level element: that element is a list
                    // and this is one of its items.
                    let list = &stack[0].name;
                    if doc.fields.contains(list) {
                        return Err(twice(list));
                    }
                    doc.lists
                        .entry(list.clone())
                        .or_default()
                        .push(BTreeMap::new());
                }
                stack.push(Frame {
                    name,
                    text: String::new(),
                    had_cdata: false,
                    had_child: false,
                });
                if is_empty {
                    close_element(&mut doc, &mut stack)?;
                }
            }
            Event::End(_) => {
                if stack.is_empty() {
                    root = RootState::Closed;
                } else {
                    close_element(&mut doc, &mut stack)?;
                }
            }
            Event::Text(t) => {
                let piece = t.xml10_content();
                match stack.last_mut() {
                    // Whitespace around a CDATA section is layout, not value.
                    Some(frame) if !(frame.had_cdata && piece.trim().is_empty()) => {
                        frame.text.push_str(&piece);
                    }
                    Some(_) => {}
                    None if piece.trim().is_empty() => {}
                    None => return Err(XmlError::Malformed("text outside the fields".into())),
                }
            }
            Event::CData(c) => {
                let Some(frame) = stack.last_mut() else {
                    return Err(XmlError::Malformed("CDATA outside the fields".into()));
                };
                if !frame.had_cdata {
                    // Whitespace that only preceded the first CDATA section is layout too.
                    if frame.text.trim().is_empty() {
                        frame.text.clear();
                    }
                    frame.had_cdata = true;
                }
                frame.text.push_str(&c.xml10_content());
            }
            Event::GeneralRef(r) => {
                let Some(frame) = stack.last_mut() else {
                    return Err(XmlError::Malformed(
                        "entity reference outside the fields".into(),
                    ));
                };
                let ch = match r.resolve_char_ref() {
                    Ok(Some(ch)) => ch,
                    Ok(None) => match &*r.into_inner() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(XmlError::Malformed(format!("unknown entity &{other};")));
                        }
                    },
                    Err(e) => return Err(XmlError::Malformed(e.to_string())),
                };
                frame.text.push(ch);
            }
            Event::DocType(_) => return Err(XmlError::Declaration),
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if root != RootState::Closed {
        return Err(XmlError::Malformed("no complete <xml> element".into()));
    }
    Ok(doc)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RootState {
    NotSeen,
    Open,
    Closed,
}

fn element_name(start: &BytesStart<'_>) -> Result<String, XmlError> {
    let name = start.name();
    let name: &str = name.as_ref();
    Ok(name.to_owned())
}

fn twice(name: &str) -> XmlError {
    XmlError::Malformed(format!("<{name}> appears twice"))
}

/// Closes the innermost open element, storing its text where it belongs.
fn close_element(doc: &mut XmlDoc, stack: &mut Vec<Frame>) -> Result<(), XmlError> {
    let frame = stack.pop().expect("an element is open");
    if frame.had_child {
        if !frame.text.trim().is_empty() {
            return Err(XmlError::Malformed(format!(
                "<{}> mixes text and elements",
                frame.name
            )));
        }
        return Ok(());
    }
    match stack.len() {
        // A top-level field.
        // (The name moves into the map: no copy of it per field.)
        0 => {
            if doc.lists.contains_key(&frame.name) {
                return Err(twice(&frame.name));
            }
            if let Err(name) = doc.fields.add(field_name_owned(frame.name), &frame.text) {
                return Err(twice(&name));
            }
        }
        // A list item without fields (`<hbinfo/>`): already counted as an item.
        1 => {}
        // A field of a list item.
        _ => {
            let list = &stack[0].name;
            let item = doc
                .lists
                .get_mut(list)
                .and_then(|items| items.last_mut())
                .expect("the item was opened with its start tag");
            match item.entry(frame.name) {
                Entry::Vacant(field) => {
                    field.insert(frame.text);
                }
                Entry::Occupied(field) => {
                    return Err(XmlError::Malformed(format!(
                        "<{}> appears twice in one <{}>",
                        field.key(),
                        stack[1].name
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn a_sections_end_is_found_as_a_substring_search_finds_it() {
        for text in [
            "",
            "]]>",
            "]]]>",
            "a]b]]>c",
            "]]",
            "]>]]>",
            "]] >",
            "x]]]]>]]>",
            "天]]>",
            "]",
        ] {
            assert_eq!(cdata_end(text.as_bytes()), text.find("]]>"), "{text:?}");
        }
    }

    fn params(pairs: &[(&'static str, &str)]) -> Params {
        pairs.iter().copied().collect()
    }

    #[test]
    fn strings_go_in_cdata_and_integers_bare() {
        let xml = to_xml(
            &params(&[
                ("total_amount", "1000"),
                ("send_name", "天虹百货"),
                ("mch_billno", "123"),
            ]),
            Some("ABC"),
        );
        assert_eq!(
            xml,
            "<xml><mch_billno><![CDATA[123]]></mch_billno><send_name><![CDATA[天虹百货]]></send_name>\
             <total_amount>1000</total_amount><sign><![CDATA[ABC]]></sign></xml>"
        );
    }

    #[test]
    fn a_value_containing_the_cdata_terminator_round_trips() {
        for value in [
            "a]]>b",
            "]]>",
            "x]]>]]>y",
            "<b>&amp;</b>",
            "]]",
            "]>",
            // A text may hold what looks like a declaration or a comment.
            "a<!b",
            "<!DOCTYPE x [<!ENTITY e \"boom\">]>",
            "<!-- x",
            "]]><!ENTITY",
        ] {
            let xml = to_xml(&params(&[("remark", value)]), None);
            let doc = parse(xml.as_bytes()).unwrap();
            assert_eq!(doc.get("remark"), Some(value), "{xml}");
        }
    }

    /// A repeatable stream of pseudo-random numbers from `state`.
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    /// The document as quick-xml's writer makes it.
    fn written_by_quick_xml(pairs: &[(&str, &str)]) -> String {
        use quick_xml::Writer;
        use quick_xml::events::{BytesCData, BytesEnd, BytesText};
        let mut writer = Writer::new(Vec::new());
        let mut write = |event: Event<'_>| writer.write_event(event).unwrap();
        write(Event::Start(BytesStart::new("xml")));
        for &(name, value) in pairs {
            write(Event::Start(BytesStart::new(name)));
            if INTEGER_FIELDS.contains(&name) && value.bytes().all(|b| b.is_ascii_digit()) {
                write(Event::Text(BytesText::new(value)));
            } else {
                for part in BytesCData::escaped(value) {
                    write(Event::CData(part));
                }
            }
            write(Event::End(BytesEnd::new(name)));
        }
        write(Event::End(BytesEnd::new("xml")));
        String::from_utf8(writer.into_inner()).unwrap()
    }

    #[test]
    fn documents_are_written_as_quick_xml_writes_them() {
        let values = [
            "",
            "a",
            "1000",
            "10.5",
            "a]]>b",
            "]]>",
            "]]]>",
            "x]]>]]>y",
            "]]>]]>",
            ">]]>>",
            "]]",
            "]>",
            "<&>\"'",
            "天虹]]>百货",
            "\r\n\t",
        ];
        for name in ["remark", "total_amount", "sign"] {
            for value in values {
                let pairs = [("mch_id", "1900000109"), (name, value)];
                assert_eq!(
                    to_xml_pairs(pairs),
                    written_by_quick_xml(&pairs),
                    "{name} = {value:?}"
                );
            }
        }
        assert_eq!(to_xml_pairs([]), written_by_quick_xml(&[]));
    }

    #[test]
    fn plain_text_cdata_entities_and_layout_are_read() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xml>\n  <return_code>SUCCESS</return_code>\n  \
                    <return_msg>\n    <![CDATA[发放成功]]>\n  </return_msg>\n  <a>x &amp; y &lt;&#26159;&#x662F;</a>\n  <!-- note -->\n  <unknown attr=\"1\">ignored</unknown>\n  <empty/>\n</xml>\n";
        let doc = parse(body.as_bytes()).unwrap();
        assert_eq!(doc.get("return_code"), Some("SUCCESS"));
        assert_eq!(doc.get("return_msg"), Some("发放成功"));
        assert_eq!(doc.get("a"), Some("x & y <是是"));
        assert_eq!(doc.get("unknown"), Some("ignored"));
        assert_eq!(doc.get("empty"), Some(""));
    }

    #[test]
    fn known_field_names_are_the_programs_own_by_either_reading() {
        let flat = "<xml><return_code><![CDATA[SUCCESS]]></return_code><send_listid>1</send_listid><odd>x</odd></xml>";
        // A comment sends the same fields to the general parser.
        let general = "<xml><!-- c --><return_code>SUCCESS</return_code><send_listid>1</send_listid><odd>x</odd></xml>";
        for body in [flat, general] {
            let doc = parse(body.as_bytes()).unwrap();
            let borrowed: Vec<(&str, bool)> = doc
                .fields
                .named()
                .map(|(k, _)| (k.as_ref(), matches!(k, Cow::Borrowed(_))))
                .collect();
            assert_eq!(
                borrowed,
                [("odd", false), ("return_code", true), ("send_listid", true)],
                "{body}"
            );
        }
    }

    #[test]
    fn hblist_items_are_read_as_a_list() {
        let body = "<xml><status><![CDATA[RECEIVED]]></status><hblist>\
            <hbinfo><openid><![CDATA[o1]]></openid><amount>100</amount><rcv_time><![CDATA[2017-11-14 15:38:28]]></rcv_time></hbinfo>\
            <hbinfo><openid>o2</openid><amount>200</amount></hbinfo><hbinfo/></hblist></xml>";
        let doc = parse(body.as_bytes()).unwrap();
        assert_eq!(doc.get("status"), Some("RECEIVED"));
        let items = &doc.lists["hblist"];
        assert_eq!(items.len(), 3);
        assert_eq!(items[0]["openid"], "o1");
        assert_eq!(items[0]["rcv_time"], "2017-11-14 15:38:28");
        assert_eq!(items[1]["amount"], "200");
        assert!(!items[1].contains_key("rcv_time"));
        assert!(items[2].is_empty());
    }

    #[test]
    fn declarations_are_refused_before_parsing() {
        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><xml><a>&x;</a></xml>";
        assert_eq!(parse(xxe.as_bytes()), Err(XmlError::Declaration));
        let entity_only = "<xml><!ENTITY x \"y\"><a>1</a></xml>";
        assert_eq!(parse(entity_only.as_bytes()), Err(XmlError::Declaration));
        let lowercase = "<!doctype xml><xml/>";
        assert_eq!(parse(lowercase.as_bytes()), Err(XmlError::Declaration));
        // After a CDATA section or a comment, a declaration is still seen.
        let after_cdata = "<xml><a><![CDATA[<!x]]></a><!ENTITY y \"z\"></xml>";
        assert_eq!(parse(after_cdata.as_bytes()), Err(XmlError::Declaration));
        let after_comment = "<xml><!-- <! --><!DOCTYPE q></xml>";
        assert_eq!(parse(after_comment.as_bytes()), Err(XmlError::Declaration));
    }

    #[test]
    fn oversize_and_non_wechat_bodies_are_refused() {
        let big = format!("<xml><a>{}</a></xml>", "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(
            parse(big.as_bytes()),
            Err(XmlError::TooLarge { .. })
        ));
        assert_eq!(parse(b""), Err(XmlError::Empty));
        assert_eq!(parse(b"  \n"), Err(XmlError::Empty));
        assert_eq!(parse(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
        for bad in [
            "<html><body>502 Bad Gateway</body></html>",
            "<xml><a>1</a>",
            "<xml><a>1</b></xml>",
            "<xml><a>1</a></xml><xml/>",
            "<xml><a>1</a><a>2</a></xml>",
            "<xml><a>&unknown;</a></xml>",
            "<xml><a><b><c><d>deep</d></c></b></a></xml>",
            "garbage",
            "{\"return_code\":\"SUCCESS\"}",
            "<xml>loose</xml>",
        ] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(XmlError::Malformed(_))),
                "{bad}: {:?}",
                parse(bad.as_bytes())
            );
        }
    }

    #[test]
    fn element_count_is_bounded() {
        let many = format!("<xml><l>{}</l></xml>", "<i/>".repeat(MAX_ELEMENTS + 1));
        assert!(matches!(
            parse(many.as_bytes()),
            Err(XmlError::Malformed(_))
        ));
    }

    /// A deterministic stand-in for the fuzz target: mutated documents never
    /// panic the parser (the fuzz target in `fuzz/` explores further).
    #[test]
    fn the_flat_reading_reads_what_the_general_parser_reads() {
        let seed_doc = format!(
            "<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n{}{}{}{}</xml>\n",
            "<total_amount>100</total_amount><remark><![CDATA[a]]]]><![CDATA[>b]]></remark>",
            "<err_code_des><![CDATA[天虹 <b> & c <!DOCTYPE x>]]></err_code_des><empty></empty>",
            "<re_openid>oUpF8uMuAJO_M2pxb1Q9zNjWeS6o</re_openid><sign>SIG</sign>",
            "<send_time> 20261122 </send_time>",
        );
        let seed = seed_doc.as_bytes();
        let whole = parse_flat(&seed_doc).expect("the seed is flat");
        assert_eq!(Ok(whole.clone()), parse_general(&seed_doc));
        assert_eq!(whole.get("remark"), Some("a]]>b"));
        assert_eq!(whole.get("send_time"), Some(" 20261122 "));
        assert_eq!(whole.fields.len(), 8);

        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let alphabet = b"<>/![]&;x\"' \r\n\t\x01-?=Aa_1";
        let (mut flat, mut differ) = (0, Vec::new());
        for _ in 0..50_000 {
            let mut mutated = seed.to_vec();
            for _ in 0..(next() % 3 + 1) {
                let at = usize::try_from(next() % mutated.len() as u64).unwrap();
                let byte = alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()];
                match next() % 4 {
                    0 => mutated[at] = byte,
                    1 => mutated.insert(at, byte),
                    2 => {
                        mutated.remove(at);
                    }
                    _ => {
                        let len = usize::try_from(next() % 12)
                            .unwrap()
                            .min(mutated.len() - at);
                        let piece = mutated[at..at + len].to_vec();
                        mutated.splice(at..at, piece);
                    }
                }
                if mutated.is_empty() {
                    break;
                }
            }
            let Ok(text) = read_text(&mutated) else {
                continue;
            };
            if let Some(doc) = parse_flat(text) {
                flat += 1;
                if refuse_declarations(text).is_err() || parse_general(text) != Ok(doc) {
                    differ.push(text.to_owned());
                }
            }
        }
        assert!(
            differ.is_empty(),
            "{} differ, first: {:?}",
            differ.len(),
            differ[0]
        );
        // The comparison is not empty: many mutations keep the flat shape.
        assert!(flat > 5_000, "only {flat} mutated documents read flat");
    }

    #[test]
    fn mutated_documents_never_panic() {
        let seed_doc = to_xml(
            &params(&[
                ("return_code", "SUCCESS"),
                ("total_amount", "100"),
                ("remark", "a]]>b"),
            ]),
            Some("SIG"),
        )
        .replace(
            "</xml>",
            "<hblist><hbinfo><openid>o</openid></hbinfo></hblist></xml>",
        );
        let bytes = seed_doc.as_bytes();
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut mutated = bytes.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = usize::try_from(next() % mutated.len() as u64).unwrap();
                match next() % 3 {
                    0 => mutated[at] = b"<>/![]&;x\"'"[usize::try_from(next() % 11).unwrap()],
                    1 => {
                        mutated.remove(at);
                    }
                    _ => mutated.truncate(at),
                }
                if mutated.is_empty() {
                    break;
                }
            }
            let _ = parse(&mutated);
        }
    }
}
