use super::*;

#[test]
fn lines_are_split_across_chunks_and_blank_ones_skipped() {
    let mut buffer = LineBuffer::default();
    assert!(buffer.push(b"{\"a\":").is_empty());
    assert_eq!(buffer.push(b"1}\n\n{\"b\""), vec![b"{\"a\":1}".to_vec()]);
    assert_eq!(
        buffer.push(b":2}\n{}\n"),
        vec![b"{\"b\":2}".to_vec(), b"{}".to_vec()]
    );
    assert!(buffer.push(b"  \n").is_empty());
}

#[test]
fn the_url_names_the_pod_app_and_configuration() {
    let plane = ControlPlane::new(
        "tandem-api.tandem-system.svc.cluster.local:6500".into(),
        PathBuf::from("/t"),
        "shop".into(),
        "order-1".into(),
        "order".into(),
        Some("tracing".into()),
        None,
    )
    .expect("client");
    assert_eq!(
        plane.url(true),
        "http://tandem-api.tandem-system.svc.cluster.local:6500/v1/namespaces/shop/pods/order-1/resources?appId=order&config=tracing&watch=true"
    );
}

#[test]
fn only_server_side_and_network_failures_are_retried() {
    let refused = |status| ControlPlaneError::Refused {
        status,
        message: String::new(),
    };
    assert!(refused(503).is_transient());
    assert!(!refused(403).is_transient());
    assert!(!refused(401).is_transient());
    let unreachable = ControlPlaneError::Unreachable {
        address: "a".into(),
        message: "refused".into(),
    };
    assert!(unreachable.is_transient());
}
