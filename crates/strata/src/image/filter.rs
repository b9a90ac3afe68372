//! `images --filter` (and `images REPO[:TAG]`), as docker filters: `dangling=true|false`,
//! `reference=PATTERN` (Go's `path.Match` on `name:tag` and on `name`; only the names that
//! match are shown), `label=KEY` or `label=KEY=VALUE`, `before=IMAGE`, `since=IMAGE`. Values of
//! one key are alternatives; different keys must all hold.

use super::{ImageStore, ImageSummary};
use crate::error::{Error, Result};

/// `label=KEY` or `label=KEY=VALUE` filters: every one must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct LabelFilters(Vec<(String, Option<String>)>);

impl LabelFilters {
    pub(crate) fn push(&mut self, value: &str) {
        self.0.push(match value.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (value.to_owned(), None),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `labels` has every key (with its value, where one is given).
    pub(crate) fn hold_for(&self, labels: &std::collections::BTreeMap<String, String>) -> bool {
        self.0.iter().all(|(k, v)| match v {
            Some(v) => labels.get(k) == Some(v),
            None => labels.contains_key(k),
        })
    }
}

/// A filter's key and value (`KEY=VALUE`), and how to say what is wrong with it.
pub(crate) fn split(filter: &str) -> Result<(&str, &str, impl Fn(&str) -> Error + '_)> {
    let bad = move |reason: &str| Error::BadOption { what: "filter", value: filter.to_owned(), reason: reason.into() };
    let (key, value) = filter.split_once('=').ok_or_else(|| bad("give KEY=VALUE"))?;
    Ok((key, value, bad))
}

/// Parsed `--filter` values for `images`.
#[derive(Debug, Clone, Default)]
pub struct ImageFilters {
    dangling: Option<bool>,
    references: Vec<String>,
    labels: LabelFilters,
    before: Vec<String>,
    since: Vec<String>,
}

impl ImageFilters {
    /// Parse `KEY=VALUE` filters; an unknown key or a bad value is an error.
    pub fn parse(filters: &[String]) -> Result<ImageFilters> {
        let mut out = ImageFilters::default();
        for filter in filters {
            let (key, value, bad) = split(filter)?;
            match key {
                "dangling" => {
                    out.dangling = Some(match value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("dangling is true or false")),
                    })
                }
                "reference" => out.references.push(value.to_owned()),
                "label" => out.labels.push(value),
                "before" => out.before.push(value.to_owned()),
                "since" => out.since.push(value.to_owned()),
                _ => return Err(bad("images filter on dangling, reference, label, before or since")),
            }
        }
        Ok(out)
    }

    /// A `reference=` filter for `images REPO[:TAG]`.
    pub fn with_reference(mut self, reference: &str) -> ImageFilters {
        self.references.push(reference.to_owned());
        self
    }
}

impl ImageStore {
    /// [`list`](Self::list), filtered as `docker images --filter` filters.
    pub fn list_filtered(&self, all: bool, filters: &ImageFilters) -> Result<Vec<ImageSummary>> {
        // Creation times to the nanosecond, as dockerd compares them.
        let created = |id: super::ImageId| -> Result<i128> {
            let config = self.get(id)?.config;
            let at = config.created.as_deref().and_then(|c| c.parse::<jiff::Timestamp>().ok());
            Ok(at.map_or(0, |t| t.as_nanosecond()))
        };
        let created_of = |name: &str| -> Result<i128> { created(self.resolve(name)?) };
        let before: Vec<i128> = filters.before.iter().map(|n| created_of(n)).collect::<Result<_>>()?;
        let since: Vec<i128> = filters.since.iter().map(|n| created_of(n)).collect::<Result<_>>()?;
        let mut out = Vec::new();
        for mut image in self.list(all || filters.dangling == Some(true))? {
            let tags: Vec<String> =
                image.repo_tags.clone().unwrap_or_default().into_iter().filter(|t| t != "<none>:<none>").collect();
            if let Some(dangling) = filters.dangling
                && tags.is_empty() != dangling
            {
                continue;
            }
            if !filters.references.is_empty() {
                let matching: Vec<String> = tags
                    .iter()
                    .filter(|t| {
                        let name = t.rsplit_once(':').map_or(t.as_str(), |(n, _)| n);
                        filters.references.iter().any(|p| crate::glob::matches(p, t) || crate::glob::matches(p, name))
                    })
                    .cloned()
                    .collect();
                if matching.is_empty() {
                    continue;
                }
                image.repo_tags = Some(matching);
            }
            if !filters.labels.is_empty() && !filters.labels.hold_for(&image.labels.clone().unwrap_or_default()) {
                continue;
            }
            if !before.is_empty() || !since.is_empty() {
                let at = created(image.id)?;
                if before.iter().any(|t| at >= *t) || since.iter().any(|t| at <= *t) {
                    continue;
                }
            }
            out.push(image);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters_all_hold() {
        let labels = [("a".to_owned(), "1".to_owned()), ("b".to_owned(), "".to_owned())].into_iter().collect();
        let mut f = LabelFilters::default();
        f.push("a");
        f.push("b=");
        assert!(f.hold_for(&labels));
        f.push("a=2");
        assert!(!f.hold_for(&labels));
        let parsed = ImageFilters::parse(&["label=a=1".into(), "dangling=false".into()]).unwrap();
        assert!(parsed.labels.hold_for(&labels) && parsed.dangling == Some(false));
        assert!(ImageFilters::parse(&["dangling=maybe".into()]).is_err());
        assert!(ImageFilters::parse(&["nokey".into()]).is_err());
    }
}
