//! `ps --filter`, as docker filters: `status=created|running|exited|paused|…`, `name=TEXT`
//! (contained in the name), `id=PREFIX`, `ancestor=IMAGE` (made from that image or one built
//! on it, by name or ID), `label=KEY[=VALUE]`, `exited=CODE`, `volume=NAME|DEST` (a volume or mount
//! point it has). Values of one key are alternatives; different keys
//! must all hold (labels: every one).

use super::{ContainerStore, ContainerSummary};
use crate::error::Result;
use crate::image::filter::LabelFilters;

/// Parsed `--filter` values for `ps`.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilters {
    status: Vec<String>,
    names: Vec<String>,
    ids: Vec<String>,
    ancestors: Vec<String>,
    labels: LabelFilters,
    exited: Vec<i32>,
    volumes: Vec<String>,
}

const STATES: &[&str] = &["created", "restarting", "running", "removing", "paused", "exited", "dead"];

impl ContainerFilters {
    /// Parse `KEY=VALUE` filters; an unknown key or a bad value is an error.
    pub fn parse(filters: &[String]) -> Result<ContainerFilters> {
        let mut out = ContainerFilters::default();
        for filter in filters {
            let (key, value, bad) = crate::image::filter::split(filter)?;
            match key {
                "status" if STATES.contains(&value) => out.status.push(value.to_owned()),
                "status" => return Err(bad(&format!("status is one of {}", STATES.join(", ")))),
                "name" => out.names.push(value.trim_start_matches('/').to_owned()),
                "id" => out.ids.push(value.to_owned()),
                "ancestor" => out.ancestors.push(value.to_owned()),
                "label" => out.labels.push(value),
                "exited" => out.exited.push(value.parse().map_err(|_| bad("exited takes an exit code"))?),
                "volume" => out.volumes.push(value.to_owned()),
                _ => return Err(bad("ps filters on status, name, id, ancestor, label, exited or volume")),
            }
        }
        Ok(out)
    }

    /// Whether a status filter is given (it shows stopped containers without `-a`).
    pub fn names_a_status(&self) -> bool {
        !self.status.is_empty() || !self.exited.is_empty()
    }
}

impl ContainerStore {
    /// [`summaries`](Self::summaries), filtered as `docker ps --filter` filters.
    pub fn summaries_filtered(&self, filters: &ContainerFilters) -> Result<Vec<ContainerSummary>> {
        // As dockerd: each image named and every image built on it; a name that names no image
        // adds none.
        let mut ancestors: Vec<String> = Vec::new();
        for name in &filters.ancestors {
            if let Ok(id) = self.images.resolve(name) {
                ancestors.extend(self.images.with_descendants(id)?.iter().map(ToString::to_string));
            }
        }
        let nothing_matches = !filters.ancestors.is_empty() && ancestors.is_empty();
        let mut out = Vec::new();
        for summary in self.summaries()? {
            let any = |values: &[String], test: &dyn Fn(&String) -> bool| values.is_empty() || values.iter().any(test);
            let name = summary.names.first().map(|n| n.trim_start_matches('/')).unwrap_or_default();
            if !any(&filters.status, &|s| s == summary.state)
                || !any(&filters.names, &|n| name.contains(n.as_str()))
                || !any(&filters.ids, &|p| summary.id.starts_with(p.as_str()))
                || nothing_matches
                || !any(&ancestors, &|a| *a == summary.image_id)
                || !(filters.exited.is_empty()
                    || (summary.state == "exited" && filters.exited.contains(&summary.exit_code)))
            {
                continue;
            }
            if !filters.labels.is_empty() || !filters.volumes.is_empty() {
                let container = self.get(summary.id.parse()?)?;
                if !filters.labels.hold_for(&container.record.config.labels.clone().unwrap_or_default()) {
                    continue;
                }
                let points = container.record.mount_points();
                let mounts = |v: &String| points.iter().any(|p| p.name == *v || p.destination == *v);
                if !any(&filters.volumes, &mounts) {
                    continue;
                }
            }
            out.push(summary);
        }
        Ok(out)
    }
}
