//! The error for a value or request that breaks one of WeChat's documented rules.

use std::borrow::Cow;
use std::fmt;

/// A field that breaks a rule, found before anything is sent.
///
/// It names the field as WeChat names it on the wire (`send_name`,
/// `total_amount`, ...) and says the rule in English and in Chinese, so that
/// callers can show it to a developer or pass it on to an API client as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidField {
    /// The wire name of the field, e.g. `send_name`.
    pub field: Cow<'static, str>,
    /// The broken rule, in English, e.g. "is 36 bytes in UTF-8; at most 32".
    pub message: String,
    /// The same rule in Chinese.
    pub zh_message: String,
}

impl InvalidField {
    /// A new error for `field` with the rule in English and Chinese.
    pub fn new(
        field: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        zh_message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            zh_message: zh_message.into(),
        }
    }

    /// The same error for another field name (a CSV column, a JSON key).
    #[must_use]
    pub fn for_field(mut self, field: impl Into<Cow<'static, str>>) -> Self {
        self.field = field.into();
        self
    }

    pub(crate) fn required(field: &'static str) -> Self {
        Self::new(
            field,
            "is required and must not be empty",
            "必填，且不能为空",
        )
    }
}

impl fmt::Display for InvalidField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.message)
    }
}

impl std::error::Error for InvalidField {}

/// Checks a text field WeChat shows to users or stores: present, at most
/// `max_bytes` bytes in UTF-8 (the safe reading of `String(n)`, facts §3.1c),
/// no control characters and no leading or trailing whitespace (which
/// WeChat's own SIGN_ERROR checklist warns about).
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max_bytes: usize,
) -> Result<(), InvalidField> {
    if value.is_empty() {
        return Err(InvalidField::required(field));
    }
    check_optional_text(field, value, max_bytes)
}

/// As [`check_text`], for a field that may be absent (but not empty when given).
pub(crate) fn check_optional_text(
    field: &'static str,
    value: &str,
    max_bytes: usize,
) -> Result<(), InvalidField> {
    let len = value.len();
    if len > max_bytes {
        return Err(InvalidField::new(
            field,
            format!("is {len} bytes in UTF-8; at most {max_bytes} (a Chinese character takes 3)"),
            format!("按 UTF-8 计为 {len} 字节，最多 {max_bytes} 字节（一个汉字占 3 字节）"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidField::new(
            field,
            "contains a control character (line break, tab, ...); remove it",
            "包含控制字符（换行、制表符等），请删除",
        ));
    }
    if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
        let code = u32::from(c);
        return Err(InvalidField::new(
            field,
            format!(
                "contains U+{code:04X}, a character XML 1.0 forbids (WeChat would refuse the whole request with XML_ERROR); remove it"
            ),
            format!(
                "包含字符 U+{code:04X}，XML 1.0 不允许使用（微信会以 XML_ERROR 拒绝整个请求），请删除"
            ),
        ));
    }
    if value.trim() != value {
        return Err(InvalidField::new(
            field,
            "has leading or trailing whitespace; WeChat may sign it differently, remove it",
            "首尾有空白字符，可能导致签名错误，请删除",
        ));
    }
    Ok(())
}

/// Whether XML 1.0 allows `c` in a document (its `Char` production; Rust's
/// `char` already excludes the surrogates).
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_length_is_counted_in_utf8_bytes() {
        // 11 Chinese characters are 33 bytes: over send_name's 32.
        let err = check_text("send_name", "天虹百货天虹百货天虹百", 32).unwrap_err();
        assert_eq!(err.field, "send_name");
        assert_eq!(
            err.message,
            "is 33 bytes in UTF-8; at most 32 (a Chinese character takes 3)"
        );
        assert!(check_text("send_name", "天虹百货天虹百货天虹", 32).is_ok());
    }

    #[test]
    fn empty_control_and_padded_texts_are_refused() {
        assert_eq!(check_text("wishing", "", 128).unwrap_err().field, "wishing");
        assert!(check_text("wishing", "a\nb", 128).is_err());
        assert!(check_text("wishing", " 恭喜发财", 128).is_err());
        assert!(check_text("wishing", "恭喜 发财", 128).is_ok());
    }

    #[test]
    fn characters_xml_forbids_are_refused_by_their_code_point() {
        for (text, code) in [("恭喜\u{FFFE}", "U+FFFE"), ("\u{FFFF}发财", "U+FFFF")] {
            let err = check_text("wishing", text, 128).unwrap_err();
            assert_eq!(err.field, "wishing");
            assert!(err.message.contains(code), "{}", err.message);
            assert!(err.message.contains("XML_ERROR") && err.zh_message.contains(code));
        }
        // Astral characters (emoji) and the rest of the BMP are fine.
        assert!(check_text("wishing", "恭喜发财🧧\u{FFFD}\u{E000}", 128).is_ok());
        assert!(!is_xml_char('\u{0}') && !is_xml_char('\u{1F}'));
        assert!(is_xml_char('\u{10FFFF}') && is_xml_char('\t'));
    }
}
