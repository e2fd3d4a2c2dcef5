//! Which local executable stands for which container image. The test owns the table: the node
//! agent runs no images, it runs these files with the container's arguments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Image repository (without tag or digest) → executable.
#[derive(Clone, Debug, Default)]
pub struct Images {
    by_repository: BTreeMap<String, PathBuf>,
}

impl Images {
    pub fn new() -> Images {
        Images::default()
    }

    /// Runs `executable` for every tag of `image` (`ghcr.io/tandem/tandem-sidecar`, say; a tag or
    /// digest given here is ignored).
    pub fn with(mut self, image: &str, executable: impl Into<PathBuf>) -> Images {
        self.by_repository
            .insert(repository(image).to_owned(), executable.into());
        self
    }

    /// The executable for `image`, by its repository.
    pub fn executable(&self, image: &str) -> Option<&Path> {
        self.by_repository
            .get(repository(image))
            .map(PathBuf::as_path)
    }
}

/// `image` without its `@digest` and `:tag` (a registry's `:port` is kept).
pub fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let name_start = image.rfind('/').map_or(0, |slash| slash + 1);
    match image[name_start..].find(':') {
        Some(colon) => &image[..name_start + colon],
        None => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_drops_tag_and_digest_but_not_a_registry_port() {
        assert_eq!(repository("redis"), "redis");
        assert_eq!(repository("redis:7"), "redis");
        assert_eq!(repository("ghcr.io/t/sidecar:0.1.0"), "ghcr.io/t/sidecar");
        assert_eq!(repository("localhost:5000/app:1"), "localhost:5000/app");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(repository("app@sha256:abc"), "app");
        assert_eq!(repository("app:1@sha256:abc"), "app");
    }

    #[test]
    fn any_tag_of_a_listed_image_finds_its_executable() {
        let images = Images::new().with("ghcr.io/t/sidecar:latest", "/bin/sidecar");
        assert_eq!(
            images.executable("ghcr.io/t/sidecar:0.2"),
            Some(Path::new("/bin/sidecar"))
        );
        assert_eq!(images.executable("ghcr.io/t/other:0.2"), None);
    }
}
