//! [`Shared`]: one watch of a kind, one store of its (trimmed) objects, and any number of
//! subscribers that are told what changed. The sidecar API reads the store; a controller reconciles
//! what its subscription yields ([`Shared::applied`]) and is triggered by other kinds' changes
//! ([`Shared::touched`]). A kind is listed and held once however many parts of the operator read it.

use futures_util::future::BoxFuture;
use futures_util::{FutureExt, Stream, StreamExt, stream};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

/// Changes a subscriber may fall behind by before it is handed the whole store instead.
const BACKLOG: usize = 1024;

/// What a subscriber hears.
#[derive(Debug)]
enum Change<K> {
    /// Created or changed; the object as stored.
    Applied(Arc<K>),
    /// Deleted; the object as last seen.
    Deleted(Arc<K>),
    /// The watch listed everything again (after losing its place): anything may have changed.
    Relisted,
}

// By hand: a derive would require `K: Clone`.
impl<K> Clone for Change<K> {
    fn clone(&self) -> Self {
        match self {
            Change::Applied(object) => Change::Applied(Arc::clone(object)),
            Change::Deleted(object) => Change::Deleted(Arc::clone(object)),
            Change::Relisted => Change::Relisted,
        }
    }
}

/// The cache of one kind.
pub struct Shared<K: Resource<DynamicType = ()> + 'static> {
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for Shared<K> {
    fn clone(&self) -> Self {
        Shared {
            store: self.store.clone(),
            changes: self.changes.clone(),
        }
    }
}

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    /// The cache of what `api` and `config` select, each object passed through `trim` before it is
    /// stored, and the future that keeps it current (it never ends; every event, whole relists
    /// included, bumps `ticks`).
    pub fn start(
        api: Api<K>,
        config: watcher::Config,
        trim: fn(&mut K),
        ticks: Option<watch::Sender<u64>>,
    ) -> (Shared<K>, BoxFuture<'static, ()>) {
        let (store, writer) = reflector::store::<K>();
        let (changes, _) = broadcast::channel(BACKLOG);
        let shared = Shared {
            store: store.clone(),
            changes: changes.clone(),
        };
        let kind = K::kind(&()).into_owned();
        let mut listed = false;
        let feeding = watcher(api, config)
            .default_backoff()
            .modify(trim)
            .reflect(writer)
            .for_each(move |event| {
                let change = match event {
                    Ok(watcher::Event::Apply(object)) => {
                        let stored = store.get(&ObjectRef::from_obj(&object));
                        stored.map(Change::Applied)
                    }
                    Ok(watcher::Event::Delete(object)) => Some(Change::Deleted(Arc::new(object))),
                    // Subscribers start from the whole store once it is ready, so the first list
                    // is news to nobody.
                    Ok(watcher::Event::InitDone) => {
                        std::mem::replace(&mut listed, true).then_some(Change::Relisted)
                    }
                    // Objects listed during a (re)list arrive one by one; look once it is whole.
                    Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => return ready(),
                    Err(error) => {
                        tracing::warn!(%error, "watch failed; retrying with backoff");
                        return ready();
                    }
                };
                if let Some(ticks) = &ticks {
                    ticks.send_modify(|n| *n = n.wrapping_add(1));
                }
                if let Some(change) = change {
                    // No subscriber: nobody to tell.
                    let _ = changes.send(change);
                }
                ready()
            })
            .instrument(tracing::info_span!("cache", %kind));
        (shared, feeding.boxed())
    }
}

fn ready() -> std::future::Ready<()> {
    std::future::ready(())
}

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    /// The store (empty until the first list is whole; see `Store::wait_until_ready`).
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Every stored object once the store is ready, then each object created or changed from
    /// then on (again all of them after a relist, or if this subscriber fell behind): what a
    /// controller of `K` reconciles.
    pub fn applied(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe(false)
    }

    /// As [`Shared::applied`], and deleted objects as well: what triggers a controller of another
    /// kind that watches or owns `K`.
    pub fn touched(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        self.subscribe(true)
    }

    fn subscribe(&self, deletes: bool) -> impl Stream<Item = Arc<K>> + Send + 'static {
        // Subscribed before the store is read, so nothing falls between the two.
        let changes = self.changes.subscribe();
        let store = self.store.clone();
        let whole = {
            let store = store.clone();
            async move {
                // False: the writer is gone, there is nothing more to yield.
                let objects = if super::ready(&store).await {
                    store.state()
                } else {
                    Vec::new()
                };
                stream::iter(objects)
            }
        };
        let live = stream::unfold((changes, store), move |(mut changes, store)| async move {
            let batch = loop {
                match changes.recv().await {
                    Ok(Change::Applied(object)) => break vec![object],
                    Ok(Change::Deleted(object)) if deletes => break vec![object],
                    Ok(Change::Deleted(_)) => {}
                    Ok(Change::Relisted) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        break store.state();
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            };
            Some((stream::iter(batch), (changes, store)))
        });
        stream::once(whole).chain(live).flatten()
    }
}
