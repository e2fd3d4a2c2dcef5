//! Standalone hot reload: a component written to, edited in or removed from `--resources-path`
//! while the sidecar runs takes effect without a restart, and a component left as it was keeps
//! its live instance (its in-memory data survives the reload).

mod common;

use common::{client, json_of, manifest, write_component};
use std::time::{Duration, Instant};
use tandem_crds::Component;
use tandem_sidecar::testing::sidecar::SidecarBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_tandem-sidecar");

/// Polls `GET path` until its status is `want`; fails after a generous deadline.
async fn wait_for_status(url: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client()
            .get(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or_default();
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {status}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn components_follow_the_resources_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let resources = dir.path().join("resources");
    let kept = Component::test("kept", "state.in-memory");
    write_component(&resources, "kept.yaml", &manifest(&kept));
    let s = SidecarBuilder::new(BIN, "reloader", dir.path())
        .resources(&resources)
        .start();
    let c = client();
    let saved = c
        .post(s.url("/v1.0/state/kept"))
        .json(&serde_json::json!([{"key": "k", "value": "before the reload"}]))
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 204);
    let missing = c
        .get(s.url("/v1.0/state/added/k"))
        .send()
        .await
        .expect("get");
    assert_eq!(missing.status().as_u16(), 400);
    assert_eq!(
        json_of(missing).await["errorCode"],
        "ERR_STATE_STORE_NOT_FOUND"
    );

    // Added: usable without a restart.
    let added = Component::test("added", "state.in-memory");
    write_component(&resources, "added.yaml", &manifest(&added));
    wait_for_status(&s.url("/v1.0/state/added/k"), 204).await;

    // The untouched component kept its instance, and its data.
    let kept_value = c
        .get(s.url("/v1.0/state/kept/k"))
        .send()
        .await
        .expect("get kept");
    assert_eq!(kept_value.status().as_u16(), 200);
    assert_eq!(
        kept_value.text().await.expect("body"),
        "\"before the reload\""
    );

    // Removed: gone again.
    std::fs::remove_file(resources.join("added.yaml")).expect("remove");
    wait_for_status(&s.url("/v1.0/state/added/k"), 400).await;

    // A broken manifest changes nothing: once the sidecar has read it and said so, the running
    // components are still there.
    write_component(
        &resources,
        "broken.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: broken}\nspec: [not, a, map]\n",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.log().contains("keeping the current components") {
        assert!(
            Instant::now() < deadline,
            "the broken manifest was never read:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still = c
        .get(s.url("/v1.0/state/kept/k"))
        .send()
        .await
        .expect("get kept");
    assert_eq!(still.status().as_u16(), 200);
}
