//! Unit tests of `component`: the catalogue rules, the secretKeyRef rules, and which Components a
//! Secret event reconciles.

use super::*;
use k8s_openapi::ByteString;
use tandem_crds::component::Auth;
use tandem_crds::{MetadataItem, SecretKeyRef};

fn redis() -> Component {
    let mut c = Component::test("statestore", "state.redis").with_metadata("redisHost", "r:6379");
    c.metadata.namespace = Some("prod".into());
    c
}

fn with_secret_ref(mut c: Component, field: &str, secret: &str, key: &str) -> Component {
    c.spec.metadata.push(MetadataItem {
        name: field.into(),
        secret_key_ref: Some(SecretKeyRef {
            name: secret.into(),
            key: key.into(),
        }),
        ..MetadataItem::default()
    });
    c
}

fn with_store(mut c: Component, store: &str) -> Component {
    c.auth = Some(Auth {
        secret_store: store.into(),
    });
    c
}

fn secrets(entries: &[(&str, &[&str])]) -> SecretIndex {
    let mut index = SecretIndex::default();
    for (name, keys) in entries {
        index.insert(name, keys.iter().map(|k| k.to_string()));
    }
    index
}

#[test]
fn catalogue_rules() {
    let none = SecretIndex::default();
    let mut v9 = redis();
    v9.spec.version = "v9".into();
    let mut no_version = redis();
    no_version.spec.version = String::new();
    let postgres = Component::test("s", "state.postgres").with_metadata("host", "db");
    let cases = [
        (redis(), Reason::Valid),
        (no_version, Reason::Valid),
        (postgres, Reason::Valid),
        (Component::test("s", "state.nope"), Reason::UnknownType),
        (v9, Reason::UnsupportedVersion),
        (Component::test("s", "state.redis"), Reason::MissingMetadata),
        (
            redis().with_metadata("redisHots", "x"),
            Reason::UnknownMetadata,
        ),
    ];
    for (component, want) in cases {
        let verdict = component_verdict(&component, &none);
        assert_eq!(
            verdict.reason, want,
            "{:?}: {}",
            component.spec, verdict.message
        );
    }
}

#[test]
fn catalogue_messages_say_what_to_do() {
    let none = SecretIndex::default();
    let unknown = component_verdict(&Component::test("s", "state.nope"), &none);
    assert!(
        unknown.message.contains("\"state.nope\""),
        "{}",
        unknown.message
    );
    assert!(
        unknown.message.contains("state.redis"),
        "lists what is supported"
    );
    let missing = component_verdict(&Component::test("s", "state.redis"), &none);
    assert!(
        missing.message.contains("\"redisHost\""),
        "{}",
        missing.message
    );
    let valid = component_verdict(&redis(), &none);
    assert_eq!(valid.message, "state.redis v1: metadata complete");
}

#[test]
fn secret_refs_resolve_in_the_components_namespace() {
    let component = with_secret_ref(redis(), "redisPassword", "redis", "password");
    let cases = [
        (secrets(&[]), Reason::SecretNotFound),
        (secrets(&[("redis", &["user"])]), Reason::SecretKeyNotFound),
        (secrets(&[("redis", &["password"])]), Reason::Valid),
        (secrets(&[("other", &["password"])]), Reason::SecretNotFound),
    ];
    for (index, want) in cases {
        let verdict = component_verdict(&component, &index);
        assert_eq!(verdict.reason, want, "{index:?}: {}", verdict.message);
    }
    let missing = component_verdict(&component, &secrets(&[]));
    for part in [
        "\"redisPassword\"",
        "Secret \"redis\"",
        "namespace \"prod\"",
        "key \"password\"",
    ] {
        assert!(
            missing.message.contains(part),
            "{part}: {}",
            missing.message
        );
    }
    let no_key = component_verdict(&component, &secrets(&[("redis", &["a", "b"])]));
    assert!(
        no_key.message.contains("(it has: a, b)"),
        "{}",
        no_key.message
    );
    let found = component_verdict(&component, &secrets(&[("redis", &["password"])]));
    assert!(
        found
            .message
            .ends_with("1 secretKeyRef(s) found in Secrets"),
        "{}",
        found.message
    );
}

#[test]
fn the_key_defaults_to_the_secret_name_and_a_missing_secret_is_reported_first() {
    let component = with_secret_ref(redis(), "redisPassword", "pw", "");
    let verdict = component_verdict(&component, &secrets(&[("pw", &["pw"])]));
    assert_eq!(verdict.reason, Reason::Valid, "{}", verdict.message);
    let both = with_secret_ref(component, "redisUsername", "user", "name");
    let verdict = component_verdict(&both, &secrets(&[("pw", &["other"])]));
    assert_eq!(verdict.reason, Reason::SecretNotFound);
    assert!(
        verdict.message.contains("Secret \"pw\""),
        "both listed: {}",
        verdict.message
    );
}

#[test]
fn another_secret_store_skips_the_check_and_says_so() {
    let component = with_store(
        with_secret_ref(redis(), "redisPassword", "redis", "pw"),
        "vault",
    );
    assert!(referenced_secrets(&component).is_empty());
    let verdict = component_verdict(&component, &SecretIndex::default());
    assert_eq!(verdict.reason, Reason::Valid);
    assert!(
        verdict.message.contains("secret store \"vault\""),
        "{}",
        verdict.message
    );
    assert!(
        verdict.message.contains("not checked"),
        "{}",
        verdict.message
    );
    let kubernetes = with_store(
        with_secret_ref(redis(), "redisPassword", "redis", "pw"),
        "kubernetes",
    );
    assert_eq!(
        referenced_secrets(&kubernetes),
        BTreeSet::from(["redis".to_owned()])
    );
    let verdict = component_verdict(&kubernetes, &SecretIndex::default());
    assert_eq!(verdict.reason, Reason::SecretNotFound);
}

#[test]
fn the_index_keeps_key_names_of_data_and_string_data() {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("redis".into()),
            ..Default::default()
        },
        data: Some([("password".to_owned(), ByteString(b"hunter2".to_vec()))].into()),
        string_data: Some([("user".to_owned(), "admin".to_owned())].into()),
        ..Secret::default()
    };
    let mut index = SecretIndex::default();
    index.insert_secret(&secret);
    assert_eq!(index, secrets(&[("redis", &["password", "user"])]));
}

#[test]
fn secret_events_map_to_the_components_that_read_them() {
    let reader = with_secret_ref(redis(), "redisPassword", "redis", "pw");
    let mut elsewhere = reader.clone();
    elsewhere.metadata.namespace = Some("dev".into());
    let external = with_store(reader.clone(), "vault");
    let components: Vec<_> = [reader, elsewhere, external, redis()]
        .into_iter()
        .map(Arc::new)
        .collect();
    let mut secret = Secret::default();
    secret.metadata.name = Some("redis".into());
    secret.metadata.namespace = Some("prod".into());
    let refs = components_reading(&components, &secret.metadata);
    assert_eq!(refs, vec![ObjectRef::from_obj(components[0].as_ref())]);
}
