//! The flat parameter set of one request or response.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A flat set of `name → value` parameters, kept in byte order of the names
/// (the order WeChat signs in).
///
/// Empty values are never stored: WeChat leaves them out of the signature,
/// so they are left out of the request too. A name known when the program
/// is built (every request's) is kept as it is, not copied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(BTreeMap<Cow<'static, str>, String>);

impl Params {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`; an empty value removes the parameter.
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        if value.is_empty() {
            self.0.remove(name.as_ref());
        } else {
            self.0.insert(name, value);
        }
    }

    /// Sets `name` to `value` when there is one.
    pub fn insert_opt(&mut self, name: &'static str, value: Option<impl Into<String>>) {
        if let Some(value) = value {
            self.insert(name, value);
        }
    }

    /// Sets `name` to the non-empty `value`, in the allocation of the value
    /// it had, if any.
    pub(crate) fn replace(&mut self, name: &'static str, value: &str) {
        debug_assert!(!value.is_empty());
        match self.0.get_mut(name) {
            Some(old) => {
                old.clear();
                old.push_str(value);
            }
            None => self.insert(name, value),
        }
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Removes `name` and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The parameters in byte order of their names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_str()))
    }

    /// The parameter names in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(AsRef::as_ref)
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

impl<K: Into<Cow<'static, str>>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut params = Params::new();
        for (k, v) in iter {
            params.insert(k, v);
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_dropped_and_names_sort_by_bytes() {
        let params: Params = [("b", "2"), ("B", "1"), ("a", ""), ("_", "0")]
            .into_iter()
            .collect();
        let names: Vec<_> = params.names().collect();
        // Byte order: 'B' (0x42) < '_' (0x5F) < 'b' (0x62); the empty 'a' is gone.
        assert_eq!(names, ["B", "_", "b"]);
    }
}
