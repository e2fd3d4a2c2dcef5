//! The behaviour every state store must show (see the module docs of `state`). Each store's tests
//! call [`run`] against a real instance: the in-memory and SQLite stores in unit tests, Redis and
//! PostgreSQL against servers the tests start.

use super::*;
use std::time::Duration;

fn set(key: &str, value: &str) -> SetRequest {
    SetRequest {
        key: key.to_owned(),
        value: Bytes::from(value.to_owned()),
        etag: None,
        concurrency: Concurrency::LastWrite,
        ttl: None,
    }
}

fn del(key: &str, etag: Option<&str>) -> DeleteRequest {
    DeleteRequest {
        key: key.to_owned(),
        etag: etag.map(str::to_owned),
        concurrency: Concurrency::LastWrite,
    }
}

async fn etag_of(store: &dyn StateStore, key: &str) -> String {
    let item = store.get(key).await.expect("get").expect("present");
    item.etag.expect("stores used here support etags")
}

/// What an ETag naming a key that does not exist means: each Dapr store decides, and Tandem's
/// store of the same type decides the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtagOnMissingKey {
    /// A conflict (in-memory, SQLite, PostgreSQL: the write compares against a stored version).
    Conflicts,
    /// The write (or delete) goes ahead (Redis: the script compares versions only when the key
    /// has one).
    Proceeds,
}

/// Runs the whole suite; `ns` keeps keys of concurrent runs apart.
pub async fn run(store: &dyn StateStore, ns: &str, missing: EtagOnMissingKey) {
    let k = |name: &str| format!("{ns}||{name}");

    // Round trip and missing keys.
    assert!(store.get(&k("missing")).await.expect("get").is_none());
    store.set(set(&k("a"), r#"{"n":1}"#)).await.expect("set");
    let item = store.get(&k("a")).await.expect("get").expect("present");
    assert_eq!(item.data, Bytes::from_static(br#"{"n":1}"#));
    let first = item.etag.clone().expect("etag");

    // A write changes the etag; a stale etag conflicts; the current one wins.
    store.set(set(&k("a"), "2")).await.expect("overwrite");
    let second = etag_of(store, &k("a")).await;
    assert_ne!(first, second, "a write must change the etag");
    let stale = SetRequest {
        etag: Some(first.clone()),
        ..set(&k("a"), "3")
    };
    assert!(matches!(
        store.set(stale).await,
        Err(StoreError::EtagMismatch(_))
    ));
    let current = SetRequest {
        etag: Some(second.clone()),
        ..set(&k("a"), "3")
    };
    store.set(current).await.expect("matching etag");
    assert_eq!(
        store
            .get(&k("a"))
            .await
            .expect("get")
            .expect("present")
            .data,
        Bytes::from_static(b"3")
    );

    // Malformed etags are invalid, not mismatched; an etag for a missing key is the store's call.
    let bad = SetRequest {
        etag: Some("not-a-number".into()),
        ..set(&k("a"), "4")
    };
    assert!(matches!(
        store.set(bad).await,
        Err(StoreError::EtagInvalid(_))
    ));
    let ghost = SetRequest {
        etag: Some("12345".into()),
        ..set(&k("ghost"), "1")
    };
    // The JS SDK's case: an etag and first-write on a key that does not exist.
    let ghost_first_write = SetRequest {
        etag: Some("1234".into()),
        concurrency: Concurrency::FirstWrite,
        ..set(&k("ghost-fw"), "1")
    };
    match missing {
        EtagOnMissingKey::Conflicts => {
            assert!(matches!(
                store.set(ghost).await,
                Err(StoreError::EtagMismatch(_))
            ));
            assert!(matches!(
                store.set(ghost_first_write).await,
                Err(StoreError::EtagMismatch(_))
            ));
            assert!(store.get(&k("ghost")).await.expect("get").is_none());
        }
        EtagOnMissingKey::Proceeds => {
            store
                .set(ghost)
                .await
                .expect("etag on a missing key writes");
            store
                .set(ghost_first_write)
                .await
                .expect("etag and first-write on a missing key write");
            let written = store.get(&k("ghost")).await.expect("get").expect("written");
            assert_eq!(written.data, Bytes::from_static(b"1"));
            let stale = SetRequest {
                etag: Some("12345".into()),
                ..set(&k("ghost"), "2")
            };
            if written.etag.as_deref() != Some("12345") {
                assert!(matches!(
                    store.set(stale).await,
                    Err(StoreError::EtagMismatch(_))
                ));
            }
            store.delete(del(&k("ghost"), None)).await.expect("cleanup");
            store
                .delete(del(&k("ghost-fw"), None))
                .await
                .expect("cleanup");
        }
    }

    // First-write without etag: only when the key is new.
    let fw = |key: &str| SetRequest {
        concurrency: Concurrency::FirstWrite,
        ..set(key, "fw")
    };
    store
        .set(fw(&k("fw")))
        .await
        .expect("first write of a new key");
    assert!(matches!(
        store.set(fw(&k("fw"))).await,
        Err(StoreError::EtagMismatch(_))
    ));

    // Deletes: stale etag conflicts, bad etag is invalid, current etag deletes, missing is fine.
    let now = etag_of(store, &k("a")).await;
    assert!(matches!(
        store.delete(del(&k("a"), Some(&first))).await,
        Err(StoreError::EtagMismatch(_))
    ));
    assert!(matches!(
        store.delete(del(&k("a"), Some(""))).await,
        Err(StoreError::EtagInvalid(_))
    ));
    store
        .delete(del(&k("a"), Some(&now)))
        .await
        .expect("delete with etag");
    assert!(store.get(&k("a")).await.expect("get").is_none());
    store
        .delete(del(&k("a"), None))
        .await
        .expect("deleting a missing key");
    let delete_missing = store.delete(del(&k("a"), Some(&now))).await;
    match missing {
        EtagOnMissingKey::Conflicts => {
            assert!(matches!(delete_missing, Err(StoreError::EtagMismatch(_))))
        }
        EtagOnMissingKey::Proceeds => delete_missing.expect("deleting a missing key with an etag"),
    }

    // Transactions are all or nothing.
    store.set(set(&k("t1"), "old")).await.expect("set");
    let t1 = etag_of(store, &k("t1")).await;
    let failing = vec![
        TxOperation::Upsert(set(&k("t2"), "new")),
        TxOperation::Delete(del(&k("t1"), Some(&first))),
    ];
    assert!(matches!(
        store.transact(failing).await,
        Err(StoreError::EtagMismatch(_))
    ));
    assert!(
        store.get(&k("t2")).await.expect("get").is_none(),
        "aborted tx wrote t2"
    );
    let passing = vec![
        TxOperation::Upsert(set(&k("t2"), "new")),
        TxOperation::Upsert(SetRequest {
            etag: Some(t1),
            ..set(&k("t1"), "newer")
        }),
        TxOperation::Delete(del(&k("fw"), None)),
    ];
    store.transact(passing).await.expect("tx");
    assert_eq!(
        store.get(&k("t1")).await.expect("get").expect("t1").data,
        Bytes::from_static(b"newer")
    );
    assert_eq!(
        store.get(&k("t2")).await.expect("get").expect("t2").data,
        Bytes::from_static(b"new")
    );
    assert!(store.get(&k("fw")).await.expect("get").is_none());

    // TTL: expires, reports its expiry, and a plain write removes it.
    if store.features().contains(&Feature::Ttl) {
        store
            .set(SetRequest {
                ttl: Some(1),
                ..set(&k("ttl"), "x")
            })
            .await
            .expect("ttl set");
        let item = store
            .get(&k("ttl"))
            .await
            .expect("get")
            .expect("fresh ttl key");
        assert!(item.expires_at.is_some(), "ttl keys report their expiry");
        store
            .set(SetRequest {
                ttl: Some(1),
                ..set(&k("kept"), "x")
            })
            .await
            .expect("ttl set");
        store
            .set(SetRequest {
                ttl: Some(-1),
                ..set(&k("kept"), "y")
            })
            .await
            .expect("persist");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.get(&k("ttl")).await.expect("get").is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "ttl key never expired"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let kept = store
            .get(&k("kept"))
            .await
            .expect("get")
            .expect("ttl -1 keeps the key");
        assert!(kept.expires_at.is_none());
    }
    fences_and_scans(store, ns).await;
}

/// Actor placement's needs: a `Check` holds only at the key's current ETag and writes nothing,
/// and a prefix scan returns every key under the prefix, across pages, and nothing else.
async fn fences_and_scans(store: &dyn StateStore, ns: &str) {
    let k = |name: &str| format!("{ns}||{name}");
    store.set(set(&k("fence"), "1")).await.expect("fence");
    let fence = etag_of(store, &k("fence")).await;
    let guarded = |etag: &str| {
        vec![
            TxOperation::Upsert(set(&k("guarded"), "g")),
            TxOperation::Check(CheckRequest {
                key: k("fence"),
                etag: etag.to_owned(),
            }),
        ]
    };
    store
        .transact(guarded(&fence))
        .await
        .expect("at the current fence");
    assert_eq!(
        etag_of(store, &k("fence")).await,
        fence,
        "a check writes nothing"
    );
    store
        .set(set(&k("fence"), "2"))
        .await
        .expect("the fence moves");
    store
        .delete(del(&k("guarded"), None))
        .await
        .expect("delete");
    assert!(matches!(
        store.transact(guarded(&fence)).await,
        Err(StoreError::EtagMismatch(_))
    ));
    assert!(
        store.get(&k("guarded")).await.expect("get").is_none(),
        "nothing applied"
    );
    let missing = vec![TxOperation::Check(CheckRequest {
        key: k("no-fence"),
        etag: fence.clone(),
    })];
    assert!(matches!(
        store.transact(missing).await,
        Err(StoreError::EtagMismatch(_))
    ));

    for i in 0..7 {
        store
            .set(set(&k(&format!("scan||{i}")), "s"))
            .await
            .expect("scan key");
    }
    store
        .set(set(&k("scanner"), "outside"))
        .await
        .expect("outside key");
    let (mut seen, mut cursor) = (Vec::new(), None);
    loop {
        let page = store
            .scan_prefix(&k("scan||"), cursor, 3)
            .await
            .expect("scan");
        seen.extend(page.items.into_iter().map(|(key, _)| key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    let want: Vec<String> = (0..7).map(|i| k(&format!("scan||{i}"))).collect();
    assert_eq!(seen, want);
}

/// Many clients doing read-modify-write with etags on one key: the count must come out exact.
pub async fn contended_increments(
    store: std::sync::Arc<dyn StateStore>,
    key: &str,
    clients: usize,
    total: u64,
) {
    store.set(set(key, "0")).await.expect("seed");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (store, done, key) = (store.clone(), done.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            while done.load(std::sync::atomic::Ordering::SeqCst) < total {
                let item = store.get(&key).await.expect("get").expect("present");
                let n: u64 = std::str::from_utf8(&item.data)
                    .expect("utf8")
                    .parse()
                    .expect("number");
                let req = SetRequest {
                    etag: item.etag,
                    ..set(&key, &(n + 1).to_string())
                };
                match store.set(req).await {
                    Ok(()) => {
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(StoreError::EtagMismatch(_)) => {}
                    Err(other) => panic!("unexpected error under contention: {other}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    let n = done.load(std::sync::atomic::Ordering::SeqCst);
    let item = store.get(key).await.expect("get").expect("present");
    assert_eq!(
        std::str::from_utf8(&item.data).expect("utf8"),
        n.to_string()
    );
}
