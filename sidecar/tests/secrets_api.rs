//! The secrets API against real sidecars: local env and file stores, secret scopes from
//! `--config`, and Dapr's status codes (including its 401 for an unknown store).

mod common;

use common::{client, json_of, write_component};
use serde_json::json;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_and_file_stores_with_scopes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    std::fs::create_dir_all(&res).expect("res");
    std::fs::write(
        res.join("secrets.json"),
        r#"{"db":{"user":"admin","password":"s3cret"},"apikey":"k-123"}"#,
    )
    .expect("write");
    write_component(
        &res,
        "stores.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: envvars}\nspec:\n  type: secretstores.local.env\n  version: v1\n  metadata:\n  - {name: prefix, value: TANDEMTEST_}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: files}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - {name: secretsFile, value: secrets.json}\n  - {name: nestedSeparator, value: '.'}\n",
    );
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata: {name: appconfig}\nspec:\n  secrets:\n    scopes:\n    - storeName: files\n      defaultAccess: deny\n      allowedSecrets: [apikey, db.user]\n").expect("write");
    let s = SidecarBuilder::new(BIN, "sec", dir.path())
        .resources(&res)
        .arg("--config")
        .arg(config.to_str().expect("utf8"))
        .env("TANDEMTEST_TOKEN", "tok-value")
        .start();
    let c = client();
    let get = |p: &str| c.get(s.url(p)).send();

    let r = get("/v1.0/secrets/envvars/TOKEN").await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(json_of(r).await, json!({"TOKEN": "tok-value"}));
    let bulk = json_of(get("/v1.0/secrets/envvars/bulk").await.expect("bulk")).await;
    assert_eq!(bulk["TOKEN"], json!({"TOKEN": "tok-value"}));
    assert!(
        bulk.get("PATH").is_none(),
        "the prefix hides other variables"
    );

    let r = get("/v1.0/secrets/files/apikey").await.expect("get");
    assert_eq!(json_of(r).await, json!({"apikey": "k-123"}));
    let r = get("/v1.0/secrets/files/db.user").await.expect("get");
    assert_eq!(json_of(r).await, json!({"db.user": "admin"}));
    let r = get("/v1.0/secrets/files/db.password").await.expect("get");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(json_of(r).await["errorCode"], "ERR_PERMISSION_DENIED");
    let bulk = json_of(get("/v1.0/secrets/files/bulk").await.expect("bulk")).await;
    assert_eq!(
        bulk,
        json!({"apikey": {"apikey": "k-123"}, "db.user": {"db.user": "admin"}})
    );

    let r = get("/v1.0/secrets/nostore/x").await.expect("get");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(json_of(r).await["errorCode"], "ERR_SECRET_STORE_NOT_FOUND");
    let r = get("/v1.0/secrets/envvars/NOT_SET_ANYWHERE")
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(json_of(r).await["errorCode"], "ERR_SECRET_GET");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_stores_is_500_not_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SidecarBuilder::new(BIN, "nosec", dir.path()).start();
    let r = client()
        .get(s.url("/v1.0/secrets/any/x"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(
        json_of(r).await["errorCode"],
        "ERR_SECRET_STORES_NOT_CONFIGURED"
    );
}

/// A manifest with an empty `metadata:` key (the JS SDK's own `secret-envvars.yaml` has one)
/// loads as a component without settings, as daprd loads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_with_an_empty_metadata_key_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let res = dir.path().join("res");
    write_component(
        &res,
        "secret-envvars.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: secret-envvars\n  namespace: default\nspec:\n  type: secretstores.local.env\n  version: v1\n  metadata:\n",
    );
    let s = SidecarBuilder::new(BIN, "empty-metadata", dir.path())
        .resources(&res)
        .env("TANDEM_EMPTY_MD_SECRET", "v-1")
        .start();
    let r = client()
        .get(s.url("/v1.0/secrets/secret-envvars/TANDEM_EMPTY_MD_SECRET"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200, "{}", s.log());
    assert_eq!(json_of(r).await, json!({"TANDEM_EMPTY_MD_SECRET": "v-1"}));
}
