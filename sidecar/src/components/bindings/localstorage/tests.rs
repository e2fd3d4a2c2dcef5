//! The binding on a real temporary folder: the four operations, Dapr's data decoding, and
//! every way a file name could leave the root.

use super::*;
use std::os::unix::fs::symlink;

async fn storage(root: &Path) -> LocalStorage {
    let md = Metadata::new([("rootPath".to_owned(), root.to_string_lossy().into_owned())]);
    let config = LocalStorageConfig::from_metadata(&md).expect("config");
    LocalStorage::open(&config).await.expect("open")
}

fn request(op: &str, data: &str, file: Option<&str>) -> InvokeRequest {
    InvokeRequest {
        operation: op.to_owned(),
        data: Bytes::copy_from_slice(data.as_bytes()),
        metadata: file
            .map(|f| BTreeMap::from([("fileName".to_owned(), f.to_owned())]))
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn create_get_list_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let store = storage(&root).await;
    assert!(root.is_dir(), "the root is created");
    let root = root.canonicalize().expect("root");

    // A JSON string is written without its quotes; base64 is decoded; other JSON as is.
    let answer = store
        .invoke(request("create", r#""hello""#, Some("a.txt")))
        .await
        .expect("create");
    assert_eq!(
        answer.data.as_deref(),
        Some(&br#"{"fileName":"a.txt"}"#[..])
    );
    assert_eq!(
        answer.metadata.get("fileName").map(String::as_str),
        Some("a.txt")
    );
    store
        .invoke(request("create", r#""aGk=""#, Some("sub/b.bin")))
        .await
        .expect("create in a sub-folder");
    store
        .invoke(request("create", r#"{"x":1}"#, Some("c.json")))
        .await
        .expect("create json");
    assert_eq!(std::fs::read(root.join("a.txt")).expect("a"), b"hello");
    assert_eq!(std::fs::read(root.join("sub/b.bin")).expect("b"), b"hi");
    assert_eq!(
        std::fs::read(root.join("c.json")).expect("c"),
        br#"{"x":1}"#
    );

    let answer = store
        .invoke(request("create", "42", None))
        .await
        .expect("unnamed");
    let generated = answer
        .metadata
        .get("fileName")
        .expect("a generated name")
        .clone();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    assert!(root.join(&generated).is_file());

    let got = store
        .invoke(request("get", "", Some("sub/b.bin")))
        .await
        .expect("get");
    assert_eq!(got.data.as_deref(), Some(&b"hi"[..]));

    let listed = store.invoke(request("list", "", None)).await.expect("list");
    let listed: Vec<String> =
        serde_json::from_slice(&listed.data.expect("data")).expect("a JSON array");
    let mut want: Vec<String> = ["a.txt", "c.json", "sub/b.bin", generated.as_str()]
        .iter()
        .map(|f| root.join(f).to_string_lossy().into_owned())
        .collect();
    want.sort();
    assert_eq!(listed, want);
    let listed = store
        .invoke(request("list", "", Some("sub")))
        .await
        .expect("list sub");
    assert_eq!(
        listed.data.as_deref(),
        Some(
            serde_json::to_vec(&[root.join("sub/b.bin")])
                .expect("json")
                .as_slice()
        )
    );

    store
        .invoke(request("delete", "", Some("a.txt")))
        .await
        .expect("delete");
    assert!(!root.join("a.txt").exists());
    let err = store
        .invoke(request("get", "", Some("a.txt")))
        .await
        .expect_err("gone");
    assert!(err.to_string().contains("not found"), "{err}");
    for op in ["get", "delete"] {
        let err = store.invoke(request(op, "", None)).await.expect_err(op);
        assert!(matches!(err, BindingError::BadRequest(_)), "{op}: {err}");
    }
    let err = store
        .invoke(request("append", "", Some("x")))
        .await
        .expect_err("append");
    assert!(
        matches!(err, BindingError::UnsupportedOperation { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn names_that_leave_the_root_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).expect("outside dir");
    std::fs::write(outside.join("secret"), "keep out").expect("outside file");
    let store = storage(&root).await;
    std::fs::create_dir_all(root.join("sub")).expect("sub");
    std::fs::write(root.join("sub/ok"), "fine").expect("ok");
    symlink(&outside, root.join("to-outside")).expect("link out");
    symlink(outside.join("secret"), root.join("secret-link")).expect("file link out");
    symlink(outside.join("not-yet"), root.join("dangling")).expect("dangling link");
    symlink(root.join("sub"), root.join("alias")).expect("link in");

    let names = [
        "../outside/secret",
        "sub/../../outside/secret",
        "/etc/passwd",
        "to-outside/secret",
        "to-outside/new",
        "secret-link",
        "dangling",
    ];
    for op in ["create", "get", "delete", "list"] {
        for name in names {
            let err = store
                .invoke(request(op, r#""overwritten""#, Some(name)))
                .await
                .expect_err(name);
            assert!(
                matches!(err, BindingError::BadRequest(_)),
                "{op} {name}: {err}"
            );
        }
    }
    assert_eq!(
        std::fs::read(outside.join("secret")).expect("secret"),
        b"keep out"
    );
    assert!(!outside.join("not-yet").exists() && !outside.join("new").exists());

    // Links that stay inside the root are followed.
    let got = store
        .invoke(request("get", "", Some("alias/ok")))
        .await
        .expect("alias");
    assert_eq!(got.data.as_deref(), Some(&b"fine"[..]));
}

#[tokio::test]
async fn bad_roots_are_refused() {
    for (root, field) in [
        ("", "rootPath"),
        ("/proc/self", "rootPath"),
        ("/var/run/secrets/x", "rootPath"),
    ] {
        let md = Metadata::new([("rootPath".to_owned(), root.to_owned())]);
        let err = LocalStorageConfig::from_metadata(&md).expect_err(root);
        assert_eq!(err.field, field);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let config = LocalStorageConfig { root: file };
    assert!(
        LocalStorage::open(&config).await.is_err(),
        "a file is not a root"
    );
}

#[tokio::test]
async fn the_component_type_builds_an_output_binding() {
    use crate::components::factory::{self, Instance};
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("files");
    let md = Metadata::new([("rootPath".to_owned(), root.to_string_lossy().into_owned())]);
    let config = factory::settings("bindings.localstorage", &md, dir.path()).expect("config");
    let Ok(Instance::Binding(binding)) = config.init().await else {
        panic!("bindings.localstorage did not build a binding");
    };
    assert!(binding.input.is_none() && binding.output.is_some());
    assert!(root.is_dir());
}
