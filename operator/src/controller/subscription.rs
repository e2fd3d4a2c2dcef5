//! Subscription rules: it has a route, every routing rule's `match` is valid CEL (compiled the way
//! the sidecar compiles it: `cel::Env::stdlib()`, an empty `match` always matching), and its
//! `pubsubname` is a `pubsub.*` Component in the same namespace. Components are watched, so
//! creating the pub/sub flips its Subscriptions to Ready.

use super::{Context, Labelled, Validate, namespace_of};
use crate::cache::Shared;
use crate::conditions::{Reason, Verdict};
use crate::error::{Error, Result};
use kube::Api;
use kube::runtime::Controller;
use kube::runtime::reflector::ObjectRef;
use std::sync::Arc;
use tandem_crds::subscription::Routes;
use tandem_crds::{Component, Status, Subscription};

/// The verdict on one Subscription, given the Component its `pubsubname` names (if it exists).
pub fn subscription_verdict(subscription: &Subscription, pubsub: Option<&Component>) -> Verdict {
    let spec = &subscription.spec;
    if let Err(message) = check_routes(spec.route.as_deref(), spec.routes.as_ref()) {
        return message;
    }
    let name = spec.pubsubname.as_str();
    let namespace = subscription
        .metadata
        .namespace
        .as_deref()
        .unwrap_or_default();
    let Some(component) = pubsub else {
        return Verdict::invalid(
            Reason::PubsubNotFound,
            format!(
                "pubsubname {name:?} names no Component in namespace {namespace:?}; create a \
                 pubsub.* Component called {name:?} or fix spec.pubsubname"
            ),
        );
    };
    let type_ = component.spec.type_.as_str();
    if !type_.starts_with("pubsub.") {
        return Verdict::invalid(
            Reason::NotAPubsub,
            format!(
                "pubsubname {name:?} names a {type_} Component, not a pubsub.* one; point \
                 spec.pubsubname at a pub/sub component"
            ),
        );
    }
    Verdict::valid(format!(
        "topic {:?} on {type_} component {name:?}; routes valid",
        spec.topic
    ))
}

/// Checks that there is a route and that every rule's `match` compiles.
fn check_routes(route: Option<&str>, routes: Option<&Routes>) -> Result<(), Verdict> {
    let rules = routes.map(|r| r.rules.as_slice()).unwrap_or_default();
    for (i, rule) in rules.iter().enumerate() {
        if let Err(reason) = compile_match(&rule.match_) {
            return Err(Verdict::invalid(
                Reason::InvalidRoute,
                format!(
                    "spec.routes.rules[{i}].match {:?} is not valid CEL: {reason}",
                    rule.match_
                ),
            ));
        }
    }
    let has_default = [route, routes.and_then(|r| r.default.as_deref())]
        .into_iter()
        .flatten()
        .any(|path| !path.is_empty());
    if rules.is_empty() && !has_default {
        return Err(Verdict::invalid(
            Reason::NoRoute,
            "no route: set spec.route (v1alpha1), or spec.routes.default or spec.routes.rules \
             (v2alpha1)",
        ));
    }
    Ok(())
}

/// Compiles a `match` expression as the sidecar does; an empty one always matches.
pub fn compile_match(expression: &str) -> Result<(), String> {
    if expression.trim().is_empty() {
        return Ok(());
    }
    let env = cel::Env::stdlib();
    env.compile(expression).map(drop).map_err(|e| {
        // The parser's report is "ERROR: <input>:line:column: what", then a caret diagram; a
        // condition message keeps the first line.
        let report = e.to_string();
        let first = report.lines().next().unwrap_or_default();
        first
            .trim_start_matches("ERROR: <input>:")
            .trim()
            .to_owned()
    })
}

/// The Subscriptions in `component`'s namespace whose `pubsubname` is its name.
pub fn subscriptions_using(
    subscriptions: &[Arc<Subscription>],
    component: &Component,
) -> Vec<ObjectRef<Subscription>> {
    let namespace = component.metadata.namespace.as_deref();
    subscriptions
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == namespace)
        .filter(|s| s.spec.pubsubname == component.name())
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// Subscriptions, and the Components they name (both from the shared caches).
pub(crate) fn controller(
    subscriptions: &Shared<Subscription>,
    components: &Shared<Component>,
) -> Controller<Subscription> {
    let store = subscriptions.store();
    Controller::for_shared_stream(subscriptions.applied(), store.clone())
        .watches_shared_stream(components.touched(), move |component: Arc<Component>| {
            subscriptions_using(&store.state(), &component)
        })
}

impl Labelled for Subscription {
    const LABEL: &'static str = "subscription";
}

impl Validate for Subscription {
    fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// Reads the named Component from the API, in the Subscription's namespace.
    async fn verdict(&self, ctx: &Context) -> Result<Verdict> {
        let namespace = namespace_of(self)?;
        let name = self.spec.pubsubname.as_str();
        let pubsub = if name.is_empty() {
            None
        } else {
            let api: Api<Component> = Api::namespaced(ctx.client.clone(), &namespace);
            let action = format!("get Component {namespace}/{name}");
            api.get_opt(name).await.map_err(Error::api(action))?
        };
        Ok(subscription_verdict(self, pubsub.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_crds::subscription::{Rule, SubscriptionSpec};

    fn subscription(pubsub: &str, route: Option<&str>, rules: &[(&str, &str)]) -> Subscription {
        let mut s = Subscription {
            spec: SubscriptionSpec {
                pubsubname: pubsub.into(),
                topic: "orders".into(),
                route: route.map(str::to_owned),
                ..SubscriptionSpec::default()
            },
            ..Subscription::default()
        };
        s.metadata.name = Some("orders".into());
        s.metadata.namespace = Some("prod".into());
        if !rules.is_empty() {
            s.spec.routes = Some(Routes {
                rules: rules
                    .iter()
                    .map(|(m, p)| Rule {
                        match_: (*m).into(),
                        path: (*p).into(),
                    })
                    .collect(),
                default: None,
            });
        }
        s
    }

    fn component(name: &str, type_: &str, namespace: &str) -> Component {
        let mut c = Component::test(name, type_);
        c.metadata.namespace = Some(namespace.into());
        c
    }

    #[test]
    fn verdicts() {
        let pubsub = component("pubsub", "pubsub.redis", "prod");
        let state = component("pubsub", "state.redis", "prod");
        let good_rule = [("event.type == \"order\" && event.data.total > 3", "/big")];
        let cases: [(Subscription, Option<&Component>, Reason); 8] = [
            (
                subscription("pubsub", Some("/o"), &[]),
                Some(&pubsub),
                Reason::Valid,
            ),
            (
                subscription("pubsub", None, &good_rule),
                Some(&pubsub),
                Reason::Valid,
            ),
            (
                subscription("pubsub", None, &[("", "/all")]),
                Some(&pubsub),
                Reason::Valid,
            ),
            (
                subscription("pubsub", Some("/o"), &[]),
                None,
                Reason::PubsubNotFound,
            ),
            (
                subscription("pubsub", Some("/o"), &[]),
                Some(&state),
                Reason::NotAPubsub,
            ),
            (
                subscription("pubsub", None, &[("event.type ==", "/x")]),
                Some(&pubsub),
                Reason::InvalidRoute,
            ),
            (
                subscription("pubsub", None, &[]),
                Some(&pubsub),
                Reason::NoRoute,
            ),
            (
                subscription("pubsub", Some(""), &[]),
                Some(&pubsub),
                Reason::NoRoute,
            ),
        ];
        for (s, c, want) in cases {
            let verdict = subscription_verdict(&s, c);
            assert_eq!(verdict.reason, want, "{:?}: {}", s.spec, verdict.message);
        }
    }

    #[test]
    fn messages_say_what_to_fix() {
        let missing = subscription_verdict(&subscription("pubsub", Some("/o"), &[]), None);
        assert!(missing.message.contains("\"pubsub\"") && missing.message.contains("\"prod\""));
        let bad = subscription("pubsub", None, &[("true", "/a"), ("event.type ==", "/x")]);
        let bad = subscription_verdict(&bad, None);
        assert!(
            bad.message.starts_with("spec.routes.rules[1].match"),
            "{}",
            bad.message
        );
        assert!(
            bad.message.contains("CEL: 1:14: Syntax error"),
            "{}",
            bad.message
        );
        assert!(!bad.message.contains('\n'), "one line: {}", bad.message);
    }

    #[test]
    fn component_events_map_to_subscriptions_of_that_pubsub_in_that_namespace() {
        let subs: Vec<_> = [
            subscription("pubsub", Some("/a"), &[]),
            subscription("other", Some("/a"), &[]),
            {
                let mut s = subscription("pubsub", Some("/a"), &[]);
                s.metadata.namespace = Some("dev".into());
                s
            },
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let refs = subscriptions_using(&subs, &component("pubsub", "pubsub.redis", "prod"));
        assert_eq!(refs, vec![ObjectRef::from_obj(subs[0].as_ref())]);
    }
}
