use super::*;

fn ctx(dir: &Path) -> PlanContext {
    PlanContext {
        app_id: "order".into(),
        namespace: None,
        pod_name: None,
        resources_paths: vec![dir.to_path_buf()],
        secrets_from_operator: false,
        data_dir: dir.join("data"),
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).expect("write manifest");
}

fn names(plan: &Plan) -> Vec<&str> {
    plan.components
        .iter()
        .map(|p| p.info.name.as_str())
        .collect()
}

#[test]
fn embedded_defaults_are_a_sqlite_statestore_and_an_in_memory_pubsub() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = ctx(dir.path());
    c.resources_paths.clear();
    let (plan, _) = plan(&c).expect("plan");
    assert_eq!(names(&plan), vec!["statestore", "pubsub"]);
    assert_eq!(plan.components[0].info.type_, "state.sqlite");
    assert_eq!(plan.components[1].info.type_, "pubsub.in-memory");
}

#[test]
fn scopes_decide_what_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: mine}\nspec: {type: state.in-memory, version: v1}\nscopes: [order]\n",
    );
    write(
        dir.path(),
        "b.yml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: theirs}\nspec: {type: state.in-memory, version: v1}\nscopes: [catalog]\n",
    );
    write(dir.path(), "ignored.txt", "not yaml at all: [");
    let (plan, _) = plan(&ctx(dir.path())).expect("plan");
    assert_eq!(names(&plan), vec!["mine"]);
}

#[test]
fn errors_name_file_component_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "redis.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - {name: redisHots, value: x}\n",
    );
    let msg = plan(&ctx(dir.path()))
        .expect_err("bad metadata")
        .to_string();
    assert!(
        msg.contains("redis.yaml") && msg.contains("\"cache\"") && msg.contains("redisHost"),
        "{msg}"
    );

    write(
        dir.path(),
        "redis.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: cache}\nspec: {type: state.cassandra, version: v1}\n",
    );
    let msg = plan(&ctx(dir.path()))
        .expect_err("unknown type")
        .to_string();
    assert!(
        msg.contains("state.cassandra") && msg.contains("spec.type"),
        "{msg}"
    );
}

#[test]
fn ignore_errors_records_the_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "c.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: flaky}\nspec: {type: state.cassandra, version: v1, ignoreErrors: true}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: ok}\nspec: {type: state.in-memory, version: v1}\n",
    );
    let (plan, _) = plan(&ctx(dir.path())).expect("plan");
    assert_eq!(names(&plan), vec!["ok"]);
    assert_eq!(plan.failed.len(), 1);
    assert_eq!(plan.failed[0].info.name, "flaky");
}

#[test]
fn secret_refs_resolve_through_the_named_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "secrets.json",
        r#"{"redis":{"password":"hunter2"}}"#,
    );
    write(
        dir.path(),
        "a-secrets.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: files}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - {name: secretsFile, value: secrets.json}\n",
    );
    write(
        dir.path(),
        "b-sqlite.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: db}\nspec:\n  type: state.sqlite\n  version: v1\n  metadata:\n  - name: connectionString\n    secretKeyRef: {name: 'redis:password', key: 'redis:password'}\nauth: {secretStore: files}\n",
    );
    let (planned, stores) = plan(&ctx(dir.path())).expect("plan");
    assert!(stores.contains_key("files"));
    let db = planned
        .components
        .iter()
        .find(|p| p.info.name == "db")
        .expect("db planned");
    let settings = format!("{:?}", db.config);
    assert!(
        settings.starts_with("SqliteSettings") && settings.contains(r#"path: "hunter2""#),
        "the secret reached the sqlite settings: {settings}"
    );

    write(
        dir.path(),
        "b-sqlite.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: db}\nspec:\n  type: state.sqlite\n  version: v1\n  metadata:\n  - name: connectionString\n    secretKeyRef: {name: missing, key: k}\nauth: {secretStore: files}\n",
    );
    let msg = plan(&ctx(dir.path()))
        .expect_err("missing secret")
        .to_string();
    assert!(
        msg.contains("connectionString") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn templates_expand() {
    let c = PlanContext {
        namespace: Some("prod".into()),
        ..ctx(Path::new("/tmp"))
    };
    assert_eq!(
        expand_templates("{namespace}/{appID}", &c),
        "prod.order/order"
    );
    let uuid = expand_templates("{uuid}", &c);
    assert_eq!(uuid.len(), 36);
    assert_ne!(uuid, expand_templates("{uuid}", &c));
}

#[test]
fn declarative_subscriptions_honour_scopes_and_refuse_bad_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "subs.yaml",
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: mine}\nspec:\n  pubsubname: pubsub\n  topic: orders\n  routes:\n    rules:\n    - {match: 'event.type == \"big\"', path: /big}\n    default: /orders\nscopes: [order]\n---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: theirs}\nspec: {pubsubname: pubsub, topic: t, route: /t}\nscopes: [catalog]\n",
    );
    let (planned, _) = plan(&ctx(dir.path())).expect("plan");
    let names: Vec<&str> = planned.subscriptions.iter().map(|s| s.name()).collect();
    assert_eq!(names, vec!["mine"]);

    write(
        dir.path(),
        "subs.yaml",
        "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: broken}\nspec:\n  pubsubname: pubsub\n  topic: orders\n  routes:\n    rules:\n    - {match: 'event.type ==', path: /x}\n",
    );
    let msg = plan(&ctx(dir.path())).expect_err("bad CEL").to_string();
    assert!(
        msg.contains("subs.yaml") && msg.contains("broken") && msg.contains("event.type =="),
        "{msg}"
    );
}
