//! The streaming subscriptions open now (`SubscribeTopicEventsAlpha1`), as `/v1.0/metadata`
//! and `GetMetadata` list them with type `STREAMING`, as daprd does. A stream is listed once its
//! broker subscription is in place and unlisted when its [`StreamListing`] is dropped, which
//! happens when the stream closes.

use super::subscriptions::Subscription;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

type Open = Arc<Mutex<(u64, BTreeMap<u64, Arc<Subscription>>)>>;

/// Every open stream's subscription, in the order they opened.
#[derive(Default)]
pub struct StreamingSubscriptions {
    open: Open,
}

/// One stream's entry in [`StreamingSubscriptions`]; dropping it removes the entry.
pub struct StreamListing {
    open: Open,
    id: u64,
}

impl StreamingSubscriptions {
    /// Lists `subscription` until the returned listing is dropped.
    pub fn open(&self, subscription: Arc<Subscription>) -> StreamListing {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let id = open.0;
        open.0 += 1;
        open.1.insert(id, subscription);
        StreamListing {
            open: self.open.clone(),
            id,
        }
    }

    /// The subscriptions of the streams open now.
    pub fn list(&self) -> Vec<Arc<Subscription>> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.1.values().cloned().collect()
    }
}

impl Drop for StreamListing {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.1.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub::subscriptions::SubscriptionJson;

    fn subscription(topic: &str) -> Arc<Subscription> {
        let json = SubscriptionJson {
            pubsubname: "p".into(),
            topic: topic.into(),
            route: Some("/".into()),
            routes: None,
            metadata: None,
            dead_letter_topic: None,
            bulk_subscribe: None,
        };
        Arc::new(Subscription::try_from(json).expect("valid subscription"))
    }

    fn topics(streams: &StreamingSubscriptions) -> Vec<String> {
        streams.list().iter().map(|s| s.topic.clone()).collect()
    }

    #[test]
    fn a_stream_is_listed_while_its_listing_lives() {
        let streams = StreamingSubscriptions::default();
        let a = streams.open(subscription("a"));
        let b = streams.open(subscription("b"));
        // Two streams on one topic are two entries, as in daprd.
        let b_again = streams.open(subscription("b"));
        assert_eq!(topics(&streams), ["a", "b", "b"]);
        drop(b);
        assert_eq!(topics(&streams), ["a", "b"]);
        drop(a);
        drop(b_again);
        assert!(streams.list().is_empty());
    }
}
