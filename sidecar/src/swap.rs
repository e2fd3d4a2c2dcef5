//! [`Swap<T>`]: a value replaced whole while the sidecar runs (the component registry, the
//! Configuration). A request takes the value of the moment (an `Arc`) and keeps it to its end, so
//! a component replaced meanwhile finishes the requests it started.

use std::sync::{Arc, RwLock};

pub struct Swap<T>(RwLock<Arc<T>>);

impl<T> Swap<T> {
    pub fn new(value: T) -> Swap<T> {
        Swap(RwLock::new(Arc::new(value)))
    }

    pub fn current(&self) -> Arc<T> {
        Arc::clone(&self.0.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Puts `next` in place; returns the one it replaces.
    pub fn replace(&self, next: Arc<T>) -> Arc<T> {
        std::mem::replace(
            &mut *self.0.write().unwrap_or_else(|p| p.into_inner()),
            next,
        )
    }
}
