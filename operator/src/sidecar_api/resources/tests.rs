use super::*;
use k8s_openapi::ByteString;
use tandem_crds::component::Auth;
use tandem_crds::subscription::SubscriptionSpec;
use tandem_crds::{ConfigurationSpec, MetadataItem, SecretKeyRef};

fn in_namespace<T>(
    mut object: T,
    namespace: &str,
    meta: impl Fn(&mut T) -> &mut tandem_crds::ObjectMeta,
) -> T {
    meta(&mut object).namespace = Some(namespace.to_owned());
    object
}

fn component(namespace: &str, name: &str, scopes: &[&str]) -> Component {
    let mut c = in_namespace(Component::test(name, "state.redis"), namespace, |c| {
        &mut c.metadata
    });
    c.scopes = scopes.iter().map(|s| s.to_string()).collect();
    c
}

fn subscription(namespace: &str, name: &str, scopes: &[&str]) -> Subscription {
    Subscription {
        metadata: tandem_crds::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..Default::default()
        },
        spec: SubscriptionSpec {
            pubsubname: "pubsub".into(),
            topic: "orders".into(),
            ..Default::default()
        },
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn configuration(namespace: &str, name: &str) -> Configuration {
    let mut c = Configuration::new(name, ConfigurationSpec::default());
    c.metadata.namespace = Some(namespace.to_owned());
    c
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| name(i).to_owned()).collect()
}

const ORDER: Wanted<'static> = Wanted {
    namespace: "shop",
    app_id: "order",
    configuration: Some("tracing"),
};

#[test]
fn only_the_callers_namespace_and_scope_are_sent() {
    let components = [
        component("shop", "statestore", &[]),
        component("shop", "orders-only", &["order"]),
        component("shop", "catalog-only", &["catalog"]),
        component("other", "statestore", &[]),
        component("other", "foreign-order", &["order"]),
    ];
    let subscriptions = [
        subscription("shop", "everyone", &[]),
        subscription("shop", "for-catalog", &["catalog"]),
        subscription("shop", "for-order", &["order", "catalog"]),
        subscription("other", "everyone", &[]),
    ];
    let configurations = [
        configuration("other", "tracing"),
        configuration("shop", "tracing"),
    ];
    let sent = resources_for(&ORDER, &components, &configurations, &subscriptions);
    assert_eq!(
        names(&sent.components, |c| c.name()),
        ["orders-only", "statestore"]
    );
    assert!(
        sent.components
            .iter()
            .all(|c| c.metadata.namespace.as_deref() == Some("shop"))
    );
    assert_eq!(
        names(&sent.subscriptions, |s| s.name()),
        ["everyone", "for-order"]
    );
    assert!(
        sent.subscriptions
            .iter()
            .all(|s| s.metadata.namespace.as_deref() == Some("shop"))
    );
    let config = sent.configuration.expect("the named configuration");
    assert_eq!(config.metadata.namespace.as_deref(), Some("shop"));

    let catalog = Wanted {
        app_id: "catalog",
        ..ORDER
    };
    let sent = resources_for(&catalog, &components, &configurations, &subscriptions);
    assert_eq!(
        names(&sent.components, |c| c.name()),
        ["catalog-only", "statestore"]
    );
    assert_eq!(
        names(&sent.subscriptions, |s| s.name()),
        ["everyone", "for-catalog", "for-order"]
    );
}

#[test]
fn a_configuration_is_sent_only_when_named_and_present() {
    let configurations = [configuration("shop", "tracing")];
    let none: [Component; 0] = [];
    let subs: [Subscription; 0] = [];
    let unnamed = Wanted {
        configuration: None,
        ..ORDER
    };
    assert_eq!(
        resources_for(&unnamed, &none, &configurations, &subs).configuration,
        None
    );
    let missing = Wanted {
        configuration: Some("absent"),
        ..ORDER
    };
    assert_eq!(
        resources_for(&missing, &none, &configurations, &subs).configuration,
        None
    );
}

#[test]
fn status_and_managed_fields_are_not_sent() {
    let mut c = component("shop", "statestore", &[]);
    c.status = Some(tandem_crds::Status::default());
    c.metadata.managed_fields = Some(vec![Default::default()]);
    let subs: [Subscription; 0] = [];
    let configs: [Configuration; 0] = [];
    let sent = resources_for(&ORDER, [&c], &configs, &subs);
    assert_eq!(sent.components[0].status, None);
    assert_eq!(sent.components[0].metadata.managed_fields, None);
}

fn with_secret_ref(mut c: Component, item: &str, name: &str, key: &str) -> Component {
    c.spec.metadata.push(MetadataItem {
        name: item.into(),
        secret_key_ref: Some(SecretKeyRef {
            name: name.into(),
            key: key.into(),
        }),
        ..Default::default()
    });
    c
}

fn secret(name: &str, data: &[(&str, &str)]) -> (String, Secret) {
    let data = data
        .iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect();
    let secret = Secret {
        metadata: tandem_crds::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    (name.to_owned(), secret)
}

#[test]
fn kubernetes_secret_refs_are_resolved_and_others_left_alone() {
    let plain = with_secret_ref(
        component("shop", "redis", &[]),
        "redisPassword",
        "redis",
        "password",
    );
    let defaulted_key = with_secret_ref(
        component("shop", "pg", &[]),
        "connectionString",
        "pg-conn",
        "",
    );
    let missing = with_secret_ref(
        component("shop", "mq", &[]),
        "password",
        "absent",
        "password",
    );
    let mut vault = with_secret_ref(
        component("shop", "vaulted", &[]),
        "token",
        "redis",
        "password",
    );
    vault.auth = Some(Auth {
        secret_store: "vault".into(),
    });
    let mut builtin = with_secret_ref(
        component("shop", "builtin", &[]),
        "token",
        "redis",
        "password",
    );
    builtin.auth = Some(Auth {
        secret_store: KUBERNETES_SECRET_STORE.into(),
    });
    let mut components = vec![plain, defaulted_key, missing, vault, builtin];
    assert_eq!(
        secrets_needed(&components).into_iter().collect::<Vec<_>>(),
        ["absent", "pg-conn", "redis"]
    );
    let secrets = BTreeMap::from([
        secret("redis", &[("password", "s3cret")]),
        secret("pg-conn", &[("pg-conn", "host=db")]),
    ]);
    resolve_secrets(&mut components, &secrets);
    let item = |c: &Component| c.spec.metadata[0].clone();
    assert_eq!(
        item(&components[0]).value_string().as_deref(),
        Some("s3cret")
    );
    assert_eq!(item(&components[0]).secret_key_ref, None);
    assert_eq!(
        item(&components[1]).value_string().as_deref(),
        Some("host=db")
    );
    assert_eq!(
        item(&components[2]).value,
        None,
        "a missing secret stays a reference"
    );
    assert!(item(&components[2]).secret_key_ref.is_some());
    assert_eq!(
        item(&components[3]).value,
        None,
        "another store's refs are the sidecar's to resolve"
    );
    assert_eq!(
        item(&components[4]).value_string().as_deref(),
        Some("s3cret")
    );
}
