//! Manifests as registries serve them: OCI and Docker schema 2 image manifests, OCI indexes
//! and Docker manifest lists, asked for with an explicit `Accept` list, kept as the exact
//! bytes their digest covers, and checked against it.

use oci_spec::image::{ImageIndex, ImageManifest};
use serde::Deserialize;

use super::client::Client;
use crate::digest::Digest;
use crate::error::{ErrorKind, Result};

/// OCI image manifest.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker image manifest, schema 2.
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What a pull accepts, every type named (a registry answers an OCI manifest with 404 to a
/// client that does not name it).
const ACCEPT: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];
/// The largest manifest read (the spec asks registries to take at least 4 MB).
const MAX_MANIFEST: u64 = 4 << 20;

/// A manifest, parsed.
#[derive(Debug)]
pub(crate) enum Manifest {
    /// An image: config and layers.
    Image(Box<ImageManifest>),
    /// An index of images by platform.
    Index(Box<ImageIndex>),
}

/// A manifest as fetched: its digest (of the exact bytes), parsed.
pub(crate) struct Fetched {
    pub(crate) digest: Digest,
    pub(crate) manifest: Manifest,
}

impl Client {
    /// The digest `reference` (a tag) points at, by a `HEAD` request: one request, no
    /// download. `None` if the registry does not say.
    pub(crate) fn manifest_digest(&self, reference: &str) -> Result<Option<Digest>> {
        let url = self.url(&format!("manifests/{reference}"));
        let response = self.send("HEAD", &url, &[("Accept", ACCEPT.join(", "))])?;
        match response.status().as_u16() {
            200 => Ok(response
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            404 => {
                Err(self.error(format!("manifest for {reference} not found: manifest unknown"), ErrorKind::NotFound))
            }
            // Some registries refuse HEAD; the GET will tell.
            _ => Ok(None),
        }
    }

    /// The manifest `reference` (a tag or a digest) names. With `pinned`, its bytes must
    /// hash to that digest.
    pub(crate) fn manifest(&self, reference: &str, pinned: Option<Digest>) -> Result<Fetched> {
        let url = self.url(&format!("manifests/{reference}"));
        let mut response = self.send("GET", &url, &[("Accept", ACCEPT.join(", "))])?;
        if response.status().as_u16() != 200 {
            return Err(self.refused(&format!("manifest for {reference}"), response));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header("content-type").map(|t| t.split(';').next().unwrap_or_default().trim().to_owned());
        let said_digest = header("docker-content-digest");
        let bytes = response.body_mut().with_config().limit(MAX_MANIFEST).read_to_vec().map_err(|e| {
            self.error(
                format!("manifest for {reference}: {e} (more than 4 MiB, or the connection dropped)"),
                ErrorKind::Corrupt,
            )
        })?;
        let digest = Digest::of(&bytes);
        if let Some(pinned) = pinned.filter(|p| *p != digest) {
            return Err(self.error(
                format!("manifest {pinned} has digest {digest}: the registry answered other content"),
                ErrorKind::Corrupt,
            ));
        }
        if let Some(said) = said_digest.as_deref().and_then(|d| d.parse::<Digest>().ok()).filter(|d| *d != digest) {
            return Err(self.error(
                format!("manifest for {reference}: the registry says {said}, its bytes hash to {digest}"),
                ErrorKind::Corrupt,
            ));
        }
        let (_, manifest) = parse(&bytes, content_type.as_deref())
            .map_err(|reason| self.error(format!("manifest for {reference}: {reason}"), ErrorKind::Corrupt))?;
        Ok(Fetched { digest, manifest })
    }
}

impl Client {
    /// Every tag of the repository, following the registry's pages (`Link: <…>; rel="next"`).
    pub(crate) fn tags(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags = Vec::new();
        let mut url = self.url("tags/list?n=1000");
        for _ in 0..1000 {
            let mut response = self.send("GET", &url, &[])?;
            if response.status().as_u16() != 200 {
                return Err(self.refused("tags", response));
            }
            let next = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .filter(|l| l.contains("rel=\"next\""))
                .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_owned()));
            let body = response
                .body_mut()
                .with_config()
                .limit(MAX_MANIFEST)
                .read_to_vec()
                .map_err(|e| self.error(format!("tags: {e}"), ErrorKind::Interrupted))?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| self.error(format!("tags: the answer is not valid: {e}"), ErrorKind::Corrupt))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) if next.starts_with("http") => url = next,
                Some(next) => url = format!("{}{next}", self.base()),
                None => return Ok(tags),
            }
        }
        Err(self.error("tags: the registry's pages do not end".into(), ErrorKind::Corrupt))
    }
}

/// Parse a manifest, telling an image's from an index by its media type (in the body, else
/// the `Content-Type`) or its shape.
pub(crate) fn parse(bytes: &[u8], content_type: Option<&str>) -> std::result::Result<(String, Manifest), String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Shape {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    let shape: Shape = serde_json::from_slice(bytes).map_err(|e| format!("it is not JSON: {e}"))?;
    if shape.schema_version == Some(1)
        || content_type.is_some_and(|t| t.starts_with("application/vnd.docker.distribution.manifest.v1"))
    {
        return Err("it is a Docker schema 1 manifest, which is no longer supported: push the image again with a current docker, podman or skopeo".into());
    }
    let media_type = shape.media_type.clone().or(content_type.map(str::to_owned)).unwrap_or_default();
    let is_index = shape.manifests.is_some() || media_type == OCI_INDEX || media_type == DOCKER_LIST;
    if is_index {
        let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| format!("it is not a valid index: {e}"))?;
        let media_type = if media_type.is_empty() { OCI_INDEX.to_owned() } else { media_type };
        return Ok((media_type, Manifest::Index(Box::new(index))));
    }
    if !media_type.is_empty() && media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(format!("its media type {media_type} is not an image's"));
    }
    let manifest: ImageManifest =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not a valid image manifest: {e}"))?;
    let media_type = if media_type.is_empty() { OCI_MANIFEST.to_owned() } else { media_type };
    Ok((media_type, Manifest::Image(Box::new(manifest))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYER: &str = r#"{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":3,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000001"}"#;
    const CONFIG: &str = r#"{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000002"}"#;

    #[test]
    fn docker_and_oci_shapes() {
        let docker =
            format!(r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{CONFIG},"layers":[{LAYER}]}}"#);
        let (media, parsed) = parse(docker.as_bytes(), Some("application/json")).unwrap();
        assert_eq!(media, DOCKER_MANIFEST);
        assert!(matches!(parsed, Manifest::Image(m) if m.layers().len() == 1));
        // An OCI manifest may leave its media type to the Content-Type.
        let oci = format!(r#"{{"schemaVersion":2,"config":{CONFIG},"layers":[]}}"#);
        assert_eq!(parse(oci.as_bytes(), Some(OCI_MANIFEST)).unwrap().0, OCI_MANIFEST);
        let list = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert!(matches!(parse(list.as_bytes(), None).unwrap().1, Manifest::Index(_)));
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(parse(index.as_bytes(), None).unwrap().0, OCI_INDEX);
    }

    #[test]
    fn schema1_and_strangers_are_refused() {
        let schema1 = r#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[]}"#;
        assert!(parse(schema1.as_bytes(), None).unwrap_err().contains("schema 1"));
        let artifact = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.example+json","config":{CONFIG},"layers":[]}}"#
        );
        assert!(parse(artifact.as_bytes(), None).unwrap_err().contains("not an image"));
        assert!(parse(b"[1,2]", None).is_err());
    }
}
