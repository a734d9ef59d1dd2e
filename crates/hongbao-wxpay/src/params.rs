//! The flat parameter set of one request or response.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Api;

/// A flat set of `name → value` parameters, kept in byte order of the names
/// (the order WeChat signs in).
///
/// Empty values are never stored: WeChat leaves them out of the signature,
/// so they are left out of the request too. A name known when the program
/// is built (every request's) is kept as it is, not copied.
///
/// Kept as [`Fields`] are, the values sharing one string: a copy of a
/// whole request is two allocations, whatever its number of fields. (A
/// value replaced by a longer one leaves its old bytes unused.)
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Fields);

impl Params {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where `name` is, or where it would go.
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.find(name)
    }

    /// Sets the value at `index` (a found name) to `value`, in the old
    /// value's place when it fits there.
    fn set_at(&mut self, index: usize, value: &str) {
        let old = self.0.places[index].1.clone();
        let place = if value.len() == old.len() {
            self.0.text.replace_range(old.clone(), value);
            old
        } else {
            self.0.push_text(value)
        };
        self.0.places[index].1 = place;
    }

    /// Sets `name` to `value`; an empty value removes the parameter.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl AsRef<str>) {
        self.insert_str(name.into(), value.as_ref());
    }

    fn insert_str(&mut self, name: Cow<'static, str>, value: &str) {
        if value.is_empty() {
            self.remove(&name);
            return;
        }
        match self.find(&name) {
            Ok(index) => self.set_at(index, value),
            Err(index) => {
                let place = self.0.push_text(value);
                self.0.places.insert(index, (name, place));
            }
        }
    }

    /// Sets `name` to `value` when there is one.
    pub fn insert_opt(&mut self, name: &'static str, value: Option<impl AsRef<str>>) {
        if let Some(value) = value {
            self.insert(name, value);
        }
    }

    /// A copy with each `(name, value)` of `replacements` set (none may be
    /// empty), the values laid out afresh.
    pub(crate) fn replaced(&self, replacements: &[(&'static str, &str)]) -> Params {
        let mut copy = Params(Fields {
            places: Vec::with_capacity(self.len() + replacements.len()),
            text: String::with_capacity(
                self.0.text.len() + replacements.iter().map(|(_, v)| v.len()).sum::<usize>(),
            ),
        });
        for (name, value) in self.0.named() {
            let value = replacements
                .iter()
                .find(|(n, _)| *n == name.as_ref())
                .map_or(value, |(_, v)| *v);
            let place = copy.0.push_text(value);
            copy.0.places.push((name.clone(), place));
        }
        for (name, value) in replacements {
            debug_assert!(!value.is_empty());
            if !copy.contains(name) {
                copy.insert(*name, value);
            }
        }
        copy
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }

    /// Removes `name` and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let index = self.find(name).ok()?;
        let (_, place) = self.0.places.remove(index);
        let value = self.0.text[place.clone()].to_owned();
        if place.end == self.0.text.len() {
            self.0.text.truncate(place.start);
        }
        Some(value)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// The parameters in byte order of their names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.0.iter()
    }

    /// The parameter names in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.places.iter().map(|(k, _)| k.as_ref())
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// As a map of names to values.
impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<K: Into<Cow<'static, str>>, V: AsRef<str>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (k, v) in iter {
            params.insert(k, v);
        }
        params
    }
}

/// The text fields of a document read from WeChat, by name: unlike a
/// [`Params`], an empty field is kept (`<a></a>` is there, and empty).
///
/// The values share one text, and a known name is the program's own: a
/// whole answer's fields are a couple of allocations.
#[derive(Clone, Default)]
pub struct Fields {
    /// Each name with the place of its value in `text`, in byte order.
    places: Vec<(Cow<'static, str>, Range<usize>)>,
    /// The values (for a document read whole, the document itself).
    text: String,
}

impl Fields {
    /// Where `name` is, or where it would go.
    fn find(&self, name: &str) -> Result<usize, usize> {
        self.places
            .binary_search_by(|(k, _)| k.as_bytes().cmp(name.as_bytes()))
    }

    /// Appends `value` to the text and returns its place.
    fn push_text(&mut self, value: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(value);
        start..self.text.len()
    }

    /// No fields, over `text`: the values added by place are in it.
    pub(crate) fn over(text: String, capacity: usize) -> Fields {
        Fields {
            places: Vec::with_capacity(capacity),
            text,
        }
    }

    /// Adds `name` with its value at `place` in the text; gives the name
    /// back if it is there already.
    pub(crate) fn add_place(
        &mut self,
        name: Cow<'static, str>,
        place: Range<usize>,
    ) -> Result<(), Cow<'static, str>> {
        debug_assert!(self.text.get(place.clone()).is_some());
        let index = self.find(&name).err().ok_or_else(|| name.clone())?;
        self.places.insert(index, (name, place));
        Ok(())
    }

    /// Adds `name` with `value` (appended to the text); gives the name back
    /// if it is there already.
    pub(crate) fn add(
        &mut self,
        name: Cow<'static, str>,
        value: &str,
    ) -> Result<(), Cow<'static, str>> {
        let Err(index) = self.find(&name) else {
            return Err(name);
        };
        let place = self.push_text(value);
        self.places.insert(index, (name, place));
        Ok(())
    }

    /// The value of `name`.
    ///
    /// Looked for one by one, names of another length passed over at once:
    /// in a set of a dozen, that compares fewer strings than a binary
    /// search does.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (_, place) = self
            .places
            .iter()
            .find(|(k, _)| k.len() == name.len() && k.as_bytes() == name.as_bytes())?;
        Some(&self.text[place.clone()])
    }

    /// Whether `name` is there.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_ok()
    }

    /// The fields in byte order of their names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.places
            .iter()
            .map(|(k, place)| (k.as_ref(), &self.text[place.clone()]))
    }

    /// The fields with their names as kept (a known name borrowed).
    pub(crate) fn named(&self) -> impl Iterator<Item = (&Cow<'static, str>, &str)> {
        self.places
            .iter()
            .map(|(k, place)| (k, &self.text[place.clone()]))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Fields {}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A map of names to strings, in the order of the names.
impl Serialize for Params {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, value) in self.iter() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// From a map of names to strings (an empty value is left out, and a
/// name given twice keeps its last value). A known field's name is kept
/// as the program's own, not copied.
impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ParamsVisitor)
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of parameter names to strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut params = Params::new();
        while let Some(name) = map.next_key_seed(NameSeed)? {
            // The value is read straight into the shared text.
            let start = params.0.text.len();
            map.next_value_seed(TextSeed(&mut params.0.text))?;
            let end = params.0.text.len();
            let at_end = params
                .0
                .places
                .last()
                .is_none_or(|(last, _)| last.as_bytes() < name.as_bytes());
            if start == end {
                params.remove(&name);
            } else if at_end {
                params.0.places.push((name, start..end));
            } else {
                // Out of order or repeated: set it the general way.
                let value = params.0.text.split_off(start);
                params.insert_str(name, &value);
            }
        }
        Ok(params)
    }
}

/// A name, borrowed from the program's own names when it is a known field.
struct NameSeed;

impl<'de> DeserializeSeed<'de> for NameSeed {
    type Value = Cow<'static, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for NameSeed {
    type Value = Cow<'static, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(field_name(name))
    }
}

/// A string value, appended to the text it is given.
struct TextSeed<'a>(&'a mut String);

impl<'de> DeserializeSeed<'de> for TextSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TextSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter value (a string)")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.0.push_str(value);
        Ok(())
    }
}

/// Names of answer fields that are not also request fields.
const ANSWER_FIELDS: [&str; 20] = [
    "return_code",
    "return_msg",
    "result_code",
    "err_code",
    "err_code_des",
    "send_listid",
    "send_time",
    "package",
    "sp_ticket",
    "detail_id",
    "status",
    "send_type",
    "hb_type",
    "reason",
    "refund_time",
    "refund_amount",
    "hblist",
    "openid",
    "amount",
    "rcv_time",
];

/// `name` as the program's own, if it is a field of some API's request
/// or answer.
fn known_name(name: &str) -> Option<&'static str> {
    /// The longest name looked up; longer ones are none of ours.
    const LONGEST: usize = 32;
    // By length, so that a lookup compares a few names of its own length.
    static KNOWN: LazyLock<Vec<Vec<&'static str>>> = LazyLock::new(|| {
        let mut by_length = vec![Vec::new(); LONGEST + 1];
        for name in Api::ALL
            .iter()
            .flat_map(|api| api.fields())
            .chain(&ANSWER_FIELDS)
        {
            assert!(name.len() <= LONGEST, "{name} is longer than {LONGEST}");
            if !by_length[name.len()].contains(name) {
                by_length[name.len()].push(*name);
            }
        }
        by_length
    });
    let first = *name.as_bytes().first()?;
    KNOWN
        .get(name.len())?
        .iter()
        .find(|known| known.as_bytes()[0] == first && **known == name)
        .copied()
}

/// `name` borrowed from the program's own names when it is a known field,
/// else copied.
pub(crate) fn field_name(name: &str) -> Cow<'static, str> {
    known_name(name).map_or_else(|| Cow::Owned(name.to_owned()), Cow::Borrowed)
}

/// As [`field_name`], for a name already owned.
pub(crate) fn field_name_owned(name: String) -> Cow<'static, str> {
    known_name(&name).map_or(Cow::Owned(name), Cow::Borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_empty_values_refuse_a_name_twice_and_compare_by_content() {
        // Values in place in a document, and values added after it.
        let mut read = Fields::over("<b>xyz</b>".to_owned(), 4);
        read.add_place(field_name("b"), 3..6).unwrap();
        read.add(field_name("a"), "").unwrap();
        read.add(Cow::Owned("_c".to_owned()), "1").unwrap();
        assert_eq!(
            read.add_place(field_name("b"), 0..1),
            Err(Cow::Borrowed("b"))
        );
        assert_eq!(read.add(field_name("a"), "2"), Err(Cow::Borrowed("a")));
        assert_eq!(read.get("a"), Some(""));
        assert_eq!(read.get("b"), Some("xyz"));
        assert_eq!(read.get("c"), None);
        assert!(read.contains("a") && !read.contains("B"));
        assert_eq!(
            read.iter().collect::<Vec<_>>(),
            [("_c", "1"), ("a", ""), ("b", "xyz")]
        );
        assert_eq!(read.len(), 3);
        // The same fields laid out otherwise are the same fields.
        let mut built = Fields::default();
        for (name, value) in [("a", ""), ("b", "xyz"), ("_c", "1")] {
            built.add(field_name_owned(name.to_owned()), value).unwrap();
        }
        assert_eq!(read, built);
        built.add(field_name("d"), "").unwrap();
        assert_ne!(read, built);
        assert_eq!(format!("{read:?}"), r#"{"_c": "1", "a": "", "b": "xyz"}"#);
        assert!(Fields::default().is_empty());
    }

    #[test]
    fn empty_values_are_dropped_and_names_sort_by_bytes() {
        let params: Params = [("b", "2"), ("B", "1"), ("a", ""), ("_", "0")]
            .into_iter()
            .collect();
        let names: Vec<_> = params.names().collect();
        // Byte order: 'B' (0x42) < '_' (0x5F) < 'b' (0x62); the empty 'a' is gone.
        assert_eq!(names, ["B", "_", "b"]);
    }

    fn request() -> Params {
        [
            ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
            ("mch_billno", "1900000109202612030000000001"),
            ("mch_id", "1900000109"),
            ("re_openid", "oxTWIuGaIt6gTKsQRLau2M0yL16E"),
            ("total_amount", "100"),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn values_set_again_read_as_set_whatever_their_length() {
        let mut params = request();
        params.insert("total_amount", "2"); // shorter
        params.insert("mch_id", "1234567890"); // the same length, in place
        params.insert("re_openid", "o".repeat(40)); // longer
        params.insert("remark", "new");
        params.insert("nonce_str", "");
        assert_eq!(params.get("total_amount"), Some("2"));
        assert_eq!(params.get("mch_id"), Some("1234567890"));
        assert_eq!(params.get("re_openid"), Some("o".repeat(40).as_str()));
        assert_eq!(params.remove("remark").as_deref(), Some("new"));
        assert_eq!(params.remove("remark"), None);
        let names: Vec<_> = params.names().collect();
        assert_eq!(names, ["mch_billno", "mch_id", "re_openid", "total_amount"]);
        // Equality and the JSON are of the values, not of the text behind them.
        let fresh: Params = params.iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(params, fresh);
        assert_eq!(
            serde_json::to_string(&params).unwrap(),
            serde_json::to_string(&fresh).unwrap()
        );
        assert!(fresh.0.text.len() < params.0.text.len());
    }

    #[test]
    fn a_replaced_copy_is_the_set_with_those_values() {
        let params = request();
        let copy = params.replaced(&[
            ("mch_billno", "1900000109202612030000000002"),
            ("nonce_str", "short"),
            ("remark", "added"),
        ]);
        let mut expected = params.clone();
        expected.insert("mch_billno", "1900000109202612030000000002");
        expected.insert("nonce_str", "short");
        expected.insert("remark", "added");
        assert_eq!(copy, expected);
        assert_eq!(
            copy.iter().collect::<Vec<_>>(),
            expected.iter().collect::<Vec<_>>()
        );
        // The original is untouched.
        assert_eq!(params, request());
    }

    #[test]
    fn json_reads_back_what_was_written_and_known_names_are_not_copied() {
        let params = request();
        let json = serde_json::to_string(&params).unwrap();
        assert_eq!(
            json,
            r#"{"mch_billno":"1900000109202612030000000001","mch_id":"1900000109","nonce_str":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","re_openid":"oxTWIuGaIt6gTKsQRLau2M0yL16E","total_amount":"100"}"#
        );
        let read: Params = serde_json::from_str(&json).unwrap();
        assert_eq!(read, params);
        assert!(
            read.0
                .places
                .iter()
                .all(|(k, _)| matches!(k, Cow::Borrowed(_)))
        );
        assert_eq!(read.0.text.len(), params.0.text.len());
    }

    #[test]
    fn json_out_of_order_repeated_escaped_or_empty_reads_as_inserted() {
        let json = r#"{"total_amount":"1","mch_id":"x","total_amount":"100","odd_name":"a\"b","remark":"","act_name":"\u4f60"}"#;
        let read: Params = serde_json::from_str(json).unwrap();
        let mut expected = Params::new();
        expected.insert("total_amount", "100");
        expected.insert("mch_id", "x");
        expected.insert("odd_name", "a\"b");
        expected.insert("act_name", "你");
        assert_eq!(read, expected);
        assert!(!read.contains("remark"));
        assert!(matches!(
            &read.0.places[read.find("odd_name").unwrap()].0,
            Cow::Owned(_)
        ));
        let error = serde_json::from_str::<Params>(r#"{"total_amount":100}"#).unwrap_err();
        assert!(
            error.to_string().contains("a parameter value (a string)"),
            "{error}"
        );
    }

    #[test]
    fn every_field_of_every_api_and_answer_is_known_and_nothing_else() {
        for name in Api::ALL
            .iter()
            .flat_map(|api| api.fields())
            .chain(&ANSWER_FIELDS)
        {
            assert_eq!(known_name(name), Some(*name));
            assert!(matches!(field_name(name), Cow::Borrowed(n) if n == *name));
        }
        let long = "m".repeat(40);
        for unknown in [
            "",
            "odd",
            "Return_code",
            "return_cod",
            "return_codes",
            &long,
        ] {
            assert_eq!(known_name(unknown), None, "{unknown}");
            assert!(matches!(field_name_owned(unknown.to_owned()), Cow::Owned(n) if n == unknown));
        }
    }
}
