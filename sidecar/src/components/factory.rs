//! The table from component type to implementation. A type's row names the function that
//! validates its metadata into [`Settings`] (pure, run before any port is bound); the settings
//! build the [`Instance`] (which may reach a server, and is retried until the component's
//! `initTimeout`). A new component is one file (its settings, their `init` and a `settings`
//! function) plus one row here; a test checks the rows against the contract crate's catalogue.

use super::bindings::{self, Binding};
use super::lock::{self, LockStore};
use super::metadata::{Metadata, MetadataError};
use super::pubsub::{self, PubSub};
use super::secrets::{self, SecretStore};
use super::state::{self, StateStore};
use std::path::Path;
use std::sync::Arc;

/// A ready component instance.
#[derive(Clone)]
pub enum Instance {
    State(Arc<dyn StateStore>),
    Secrets(Arc<dyn SecretStore>),
    PubSub(Arc<dyn PubSub>),
    Binding(Binding),
    Lock(Arc<dyn LockStore>),
}

/// The validated settings of one component.
#[async_trait::async_trait]
pub trait Settings: std::fmt::Debug + Send + Sync + 'static {
    /// Builds the instance; may be retried until the component's init timeout.
    async fn init(&self) -> Result<Instance, String>;
}

/// Validates a component's metadata; `base` is the manifest's folder, for relative file paths.
type Parse = fn(&Metadata, &Path) -> Result<Arc<dyn Settings>, MetadataError>;

/// Every type with an implementation (catalogue names; aliases resolve to these first).
const FACTORIES: &[(&str, Parse)] = &[
    ("pubsub.in-memory", pubsub::memory::settings),
    ("pubsub.redis", pubsub::redis::settings),
    ("pubsub.mqtt3", pubsub::mqtt::settings),
    ("pubsub.rabbitmq", pubsub::rabbitmq::settings),
    ("state.in-memory", state::memory::settings),
    ("state.sqlite", state::sqlite::settings),
    ("state.redis", state::redis::settings),
    ("state.postgresql", state::postgres::settings),
    ("secretstores.local.env", secrets::env::settings),
    ("secretstores.local.file", secrets::file::settings),
    ("bindings.cron", bindings::cron::settings),
    ("bindings.http", bindings::http::settings),
    ("bindings.redis", bindings::redis::settings),
    ("bindings.mqtt3", bindings::mqtt::settings),
    ("bindings.localstorage", bindings::localstorage::settings),
    ("bindings.postgresql", bindings::postgres::settings),
    ("lock.redis", lock::redis::settings),
    ("lock.in-memory", lock::memory::settings),
];

/// Validates the metadata of a catalogue type.
pub fn settings(
    type_: &str,
    md: &Metadata,
    base: &Path,
) -> Result<Arc<dyn Settings>, MetadataError> {
    match FACTORIES.iter().find(|(name, _)| *name == type_) {
        Some((_, parse)) => parse(md, base),
        None => Err(MetadataError {
            field: "spec.type".into(),
            value: type_.into(),
            reason: "no implementation".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crds::catalogue::CATALOGUE;

    #[test]
    fn every_catalogue_type_has_a_factory_and_every_factory_a_catalogue_entry() {
        for kind in CATALOGUE {
            assert!(
                FACTORIES.iter().any(|(name, _)| *name == kind.type_),
                "{} is in the catalogue but has no implementation",
                kind.type_
            );
        }
        for (name, _) in FACTORIES {
            assert!(
                CATALOGUE.iter().any(|kind| kind.type_ == *name),
                "{name} has an implementation but no catalogue entry"
            );
        }
        let mut names: Vec<&str> = FACTORIES.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FACTORIES.len(), "one row per type");
    }

    #[test]
    fn an_unknown_type_names_the_field() {
        let err = settings("state.nope", &Metadata::default(), Path::new("."))
            .expect_err("no implementation");
        assert_eq!(err.field, "spec.type");
    }
}
