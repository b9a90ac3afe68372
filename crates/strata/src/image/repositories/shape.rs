//! repositories.json as text: its shape checked without keeping anything, and one name found
//! or taken out by a search of the text, in the compact form dockerd and strata write.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::image::ids::ImageId;

/// Check that `text` is the file's shape (`{"Repositories":{repo:{name:id}}}`, as strata
/// parses it); whether it has no other member, so that every `"name":"id"` in it is a name.
pub(super) fn check(text: &str) -> serde_json::Result<bool> {
    Ok(serde_json::from_str::<Top>(text)?.0)
}

/// A name's `"key":"id"` pair in the text: where it starts (its first quote) and ends (after
/// its last), and the image.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Pair {
    start: usize,
    end: usize,
    pub id: ImageId,
}

/// The pair of `key`, if it is written once and points at an image ID.
pub(super) fn only_pair(text: &str, key: &str) -> Option<Pair> {
    let needle = format!("\"{key}\":\"");
    let mut found = memchr::memmem::find_iter(text.as_bytes(), needle.as_bytes());
    let start = found.next()?;
    if found.next().is_some() {
        return None;
    }
    let value = &text[start + needle.len()..];
    let close = value.find('"')?;
    let id = value[..close].parse().ok()?;
    Some(Pair { start, end: start + needle.len() + close + 1, id })
}

/// `text` without `pair`, and without its repository if the pair was its last name; `None`
/// unless the text around it has the compact form.
pub(super) fn without(text: &str, pair: &Pair) -> Option<String> {
    let (before, after) = (text[..pair.start].bytes().last()?, text.as_bytes().get(pair.end)?);
    let (start, end) = match (before, after) {
        (b',', _) => (pair.start - 1, pair.end),
        (b'{', b',') => (pair.start, pair.end + 1),
        (b'{', b'}') => {
            // The repository's last name: `"repo":{…}` goes, with a comma beside it.
            let open = pair.start - 1;
            let key_end = text[..open].strip_suffix(':')?.strip_suffix('"')?.len();
            let key_start = text[..key_end].rfind('"')?;
            let (start, end) = (key_start, pair.end + 1);
            match (text[..start].bytes().last()?, text.as_bytes().get(end)?) {
                (b',', _) => (start - 1, end),
                (b'{', b',') => (start, end + 1),
                (b'{', b'}') => (start, end),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(format!("{}{}", &text[..start], &text[end..]))
}

/// The keys written with value `id` (`sha256:…`), in the text's order.
pub(super) fn keys_of<'a>(text: &'a str, id: &str) -> impl Iterator<Item = &'a str> {
    let needle = format!("\":\"{id}\"");
    let ends: Vec<usize> = memchr::memmem::find_iter(text.as_bytes(), needle.as_bytes()).collect();
    ends.into_iter().filter_map(move |end| Some(&text[text[..end].rfind('"')? + 1..end]))
}

/// The whole file: whether "Repositories" is its only member.
struct Top(bool);

impl<'de> Deserialize<'de> for Top {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Top, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Top;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with Repositories")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top, A::Error> {
                let mut only = true;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match key.as_ref() {
                        "Repositories" => {
                            map.next_value::<Each<Each<Text>>>()?;
                        }
                        _ => {
                            only = false;
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Top(only))
            }
        }
        d.deserialize_map(Members)
    }
}

/// An object whose every value is a `V`, nothing kept.
struct Each<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Each<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Each<V>, D::Error> {
        struct Entries<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Entries<V> {
            type Value = Each<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Each<V>, A::Error> {
                while map.next_entry::<IgnoredAny, V>()?.is_some() {}
                Ok(Each(PhantomData))
            }
        }
        d.deserialize_map(Entries(PhantomData))
    }
}

/// A string, not kept.
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct Str;
        impl Visitor<'_> for Str {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Text, E> {
                Ok(Text)
            }
        }
        d.deserialize_str(Str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn the_shape_is_checked_as_a_parse_would() {
        let (a, b) = (id('a'), id('b'));
        assert!(check(&format!(r#"{{"Repositories":{{"x":{{"x:1":"{a}","x:2":"{b}"}}}}}}"#)).unwrap());
        assert!(check(r#"{"Repositories":{}}"#).unwrap());
        assert!(check("{}").unwrap());
        assert!(!check(r#"{"Repositories":{},"Other":[1]}"#).unwrap());
        for bad in
            [r#"{"Repositories":[]}"#, r#"{"Repositories":{"x":{"x:1":1}}}"#, r#"{"Repositories":{"x":"y"}}"#, "{"]
        {
            assert!(check(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<super::super::OnDisk>(bad).is_err(), "a parse refuses {bad} too");
        }
    }

    #[test]
    fn a_name_is_taken_out_with_its_comma_and_its_repository_with_its_last_name() {
        let (a, b, c) = (id('a'), id('b'), id('c'));
        let text = format!(
            r#"{{"Repositories":{{"p":{{"p:1":"{a}"}},"q":{{"q:1":"{b}","q:2":"{c}","q:3":"{a}"}},"r:5000/s":{{"r:5000/s:1":"{c}"}}}}}}"#
        );
        let take = |text: &str, key: &str| {
            let pair = only_pair(text, key).unwrap();
            let left = without(text, &pair).unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&left).expect("still JSON");
            assert!(parsed["Repositories"].to_string().find(key).is_none(), "{key} left in {left}");
            left
        };
        // First, middle and last name of a repository; a repository's last name, first and last.
        let expect =
            |left: String, want: &str| assert_eq!(left, want.replace("A", &a).replace("B", &b).replace("C", &c));
        expect(
            take(&text, "q:1"),
            r#"{"Repositories":{"p":{"p:1":"A"},"q":{"q:2":"C","q:3":"A"},"r:5000/s":{"r:5000/s:1":"C"}}}"#,
        );
        expect(
            take(&text, "q:2"),
            r#"{"Repositories":{"p":{"p:1":"A"},"q":{"q:1":"B","q:3":"A"},"r:5000/s":{"r:5000/s:1":"C"}}}"#,
        );
        expect(
            take(&text, "q:3"),
            r#"{"Repositories":{"p":{"p:1":"A"},"q":{"q:1":"B","q:2":"C"},"r:5000/s":{"r:5000/s:1":"C"}}}"#,
        );
        expect(
            take(&text, "p:1"),
            r#"{"Repositories":{"q":{"q:1":"B","q:2":"C","q:3":"A"},"r:5000/s":{"r:5000/s:1":"C"}}}"#,
        );
        expect(take(&text, "r:5000/s:1"), r#"{"Repositories":{"p":{"p:1":"A"},"q":{"q:1":"B","q:2":"C","q:3":"A"}}}"#);
        let only = format!(r#"{{"Repositories":{{"p":{{"p:1":"{a}"}}}}}}"#);
        assert_eq!(take(&only, "p:1"), r#"{"Repositories":{}}"#);
        // Found once, with its image; not found, or found twice, or spaced out: no answer.
        assert_eq!(only_pair(&text, "q:2").unwrap().id, c.parse().unwrap());
        assert_eq!(only_pair(&text, "q:4"), None);
        assert_eq!(
            only_pair(&format!(r#"{{"Repositories":{{"x":{{"q:1":"{a}"}},"q":{{"q:1":"{b}"}}}}}}"#), "q:1"),
            None
        );
        let spaced = format!(r#"{{"Repositories": {{"p": {{"p:1":"{a}" }}}}}}"#);
        assert_eq!(without(&spaced, &only_pair(&spaced, "p:1").unwrap()), None);
        assert_eq!(keys_of(&text, &a).collect::<Vec<_>>(), ["p:1", "q:3"]);
        assert_eq!(keys_of(&text, &id('d')).count(), 0);
    }
}
