use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

fn review(desired: &str, objects: Vec<Value>) -> ConversionReview {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "desiredAPIVersion": desired, "objects": objects},
    }))
    .expect("a review")
}

/// The response of `convert`, as the apiserver reads it.
fn answer(desired: &str, objects: Vec<Value>) -> Value {
    let converted = convert(review(desired, objects));
    let value = serde_json::to_value(converted).expect("serializes");
    assert_eq!(value["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(value["kind"], "ConversionReview");
    assert_eq!(
        value["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    value["response"].clone()
}

fn converted(desired: &str, object: Value) -> Value {
    let response = answer(desired, vec![object]);
    assert_eq!(response["result"]["status"], "Success", "{response}");
    response["convertedObjects"][0].clone()
}

fn failure(desired: &str, objects: Vec<Value>) -> String {
    let response = answer(desired, objects);
    assert_eq!(response["result"]["status"], "Failure", "{response}");
    assert_eq!(response["convertedObjects"], json!([]), "{response}");
    response["result"]["message"]
        .as_str()
        .expect("a message")
        .to_owned()
}

/// A Subscription as in Dapr's docs, at `version`, with `spec` merged in.
fn subscription(version: &str, spec: Value) -> Value {
    let mut object = json!({
        "apiVersion": version,
        "kind": "Subscription",
        "metadata": {"name": "order-pub-sub", "namespace": "shop", "uid": "u1", "resourceVersion": "7", "generation": 2,
                     "labels": {"team": "a"}},
        "spec": {"topic": "orders", "pubsubname": "pubsub", "deadLetterTopic": "poison",
                 "metadata": {"rawPayload": "true"}, "bulkSubscribe": {"enabled": true, "maxMessagesCount": 10}},
        "scopes": ["orderprocessing", "checkout"],
        "status": {"observedGeneration": 2, "conditions": []},
    });
    if let (Some(base), Value::Object(extra)) = (object["spec"].as_object_mut(), spec) {
        base.extend(extra);
    }
    object
}

#[test]
fn v1alpha1_route_becomes_the_default_route() {
    let v1 = subscription(V1ALPHA1, json!({"route": "/checkout"}));
    let v2 = converted(V2ALPHA1, v1.clone());
    assert_eq!(
        v2,
        subscription(V2ALPHA1, json!({"routes": {"default": "/checkout"}}))
    );
    assert_eq!(converted(V1ALPHA1, v2), v1);
}

#[test]
fn rules_go_into_an_annotation_and_come_back() {
    let routes = json!({"rules": [{"match": "event.type == \"widget\"", "path": "/widgets"}], "default": "/products"});
    let v2 = subscription(V2ALPHA1, json!({"routes": routes}));
    let v1 = converted(V1ALPHA1, v2.clone());
    assert_eq!(v1["spec"]["route"], "/products");
    assert!(v1["spec"].get("routes").is_none(), "{v1}");
    let kept = v1["metadata"]["annotations"][ROUTES_ANNOTATION]
        .as_str()
        .expect("annotation");
    let kept: Value = serde_json::from_str(kept).expect("JSON");
    assert_eq!(kept, json!({"rules": routes["rules"]}));
    assert_eq!(v1["metadata"]["labels"], json!({"team": "a"}));
    assert_eq!(converted(V2ALPHA1, v1), v2, "no annotation left behind");
}

#[test]
fn a_v1alpha1_edit_of_the_route_keeps_the_rules() {
    let routes = json!({"rules": [{"match": "true", "path": "/all"}], "default": "/old"});
    let mut v1 = converted(V1ALPHA1, subscription(V2ALPHA1, json!({"routes": routes})));
    v1["spec"]["route"] = json!("/new");
    let v2 = converted(V2ALPHA1, v1);
    assert_eq!(
        v2["spec"]["routes"],
        json!({"rules": [{"match": "true", "path": "/all"}], "default": "/new"})
    );
}

#[test]
fn edge_shapes() {
    let cases = [
        // (from, to, spec in, spec out)
        (V1ALPHA1, V2ALPHA1, json!({}), json!({})),
        (V2ALPHA1, V1ALPHA1, json!({}), json!({})),
        (
            V2ALPHA1,
            V1ALPHA1,
            json!({"routes": {"default": "/d"}}),
            json!({"route": "/d"}),
        ),
        // Stored before the webhook existed (strategy None): `route` stays as it is.
        (
            V2ALPHA1,
            V1ALPHA1,
            json!({"route": "/legacy"}),
            json!({"route": "/legacy"}),
        ),
        // A stray `routes` on a v1alpha1 object with a route.
        (
            V1ALPHA1,
            V2ALPHA1,
            json!({"route": "/r", "routes": {"rules": []}}),
            json!({"routes": {"rules": [], "default": "/r"}}),
        ),
    ];
    for (from, to, spec, want) in cases {
        let mut object = subscription(from, json!({}));
        object["spec"] = spec.clone();
        let out = converted(to, object);
        assert_eq!(out["spec"], want, "{from} → {to} of {spec}");
        assert_eq!(out["apiVersion"], to);
    }
    let mut no_spec = subscription(V1ALPHA1, json!({}));
    no_spec.as_object_mut().map(|o| o.remove("spec"));
    assert!(converted(V2ALPHA1, no_spec).get("spec").is_none());
}

#[test]
fn same_version_is_unchanged() {
    for version in [V1ALPHA1, V2ALPHA1] {
        let object = subscription(version, json!({"route": "/x", "unknownField": {"a": 1}}));
        assert_eq!(converted(version, object.clone()), object);
    }
}

#[test]
fn every_object_is_converted_in_order() {
    let objects: Vec<Value> = (0..5)
        .map(|i| subscription(V1ALPHA1, json!({"route": format!("/r{i}")})))
        .collect();
    let response = answer(V2ALPHA1, objects);
    let converted = response["convertedObjects"].as_array().expect("objects");
    let defaults: Vec<_> = converted
        .iter()
        .map(|o| o["spec"]["routes"]["default"].clone())
        .collect();
    assert_eq!(
        defaults,
        ["/r0", "/r1", "/r2", "/r3", "/r4"].map(Value::from)
    );
}

#[test]
fn failures_name_the_problem() {
    let good = subscription(V1ALPHA1, json!({"route": "/a"}));
    let mut bad_annotation = subscription(V1ALPHA1, json!({}));
    bad_annotation["metadata"]["annotations"] = json!({ROUTES_ANNOTATION: "{not json"});
    let cases = [
        (
            "dapr.io/v3",
            vec![good.clone()],
            "desiredAPIVersion \"dapr.io/v3\"",
        ),
        (
            V2ALPHA1,
            vec![good.clone(), json!("text")],
            "object 1 is not a JSON object",
        ),
        (
            V2ALPHA1,
            vec![subscription("dapr.io/v9", json!({}))],
            "Subscription shop/order-pub-sub: apiVersion \"dapr.io/v9\"",
        ),
        (
            V2ALPHA1,
            vec![subscription(V1ALPHA1, json!({"route": 5}))],
            "spec.route must be a string",
        ),
        (
            V1ALPHA1,
            vec![subscription(V2ALPHA1, json!({"routes": []}))],
            "spec.routes must be an object",
        ),
        (
            V1ALPHA1,
            vec![subscription(V2ALPHA1, json!({"routes": {"default": 1}}))],
            "spec.routes.default must be a string",
        ),
        (
            V2ALPHA1,
            vec![good, bad_annotation],
            "annotation tandem.io/v2alpha1-routes is not a JSON object",
        ),
    ];
    for (desired, objects, want) in cases {
        let message = failure(desired, objects);
        assert!(
            message.contains(want),
            "{message:?} should contain {want:?}"
        );
    }
}

#[test]
fn a_review_without_a_request_fails() {
    let review: ConversionReview = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"
    }))
    .expect("parses");
    let answer = serde_json::to_value(convert(review)).expect("serializes");
    assert_eq!(answer["response"]["result"]["status"], "Failure");
}

/// A random v2alpha1 Subscription (v2alpha1's canonical shape: no `route`).
fn random_v2(rng: &mut StdRng) -> Value {
    let word = |rng: &mut StdRng| format!("/p{}", rng.random_range(0..1000));
    let mut spec = json!({"topic": "t", "pubsubname": "ps"});
    if rng.random_bool(0.8) {
        let mut routes = Map::new();
        if rng.random_bool(0.7) {
            routes.insert("default".into(), Value::String(word(rng)));
        }
        if rng.random_bool(0.6) {
            let rules: Vec<Value> = (0..rng.random_range(0..4))
                .map(|i| json!({"match": format!("event.type == \"t{i}\""), "path": word(rng)}))
                .collect();
            routes.insert("rules".into(), Value::Array(rules));
        }
        spec["routes"] = Value::Object(routes);
    }
    if rng.random_bool(0.5) {
        spec["deadLetterTopic"] = json!("dead");
    }
    let mut object = json!({"apiVersion": V2ALPHA1, "kind": "Subscription", "metadata": {"name": "s"}, "spec": spec});
    if rng.random_bool(0.5) {
        object["metadata"]["annotations"] = json!({"other": word(rng)});
    }
    if rng.random_bool(0.3) {
        object["scopes"] = json!(["a", "b"]);
    }
    object
}

#[test]
fn v2_to_v1_to_v2_round_trips() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for _ in 0..2000 {
        let v2 = random_v2(&mut rng);
        let v1 = converted(V1ALPHA1, v2.clone());
        assert_eq!(v1["apiVersion"], V1ALPHA1);
        assert!(v1["spec"].get("routes").is_none(), "{v1}");
        assert_eq!(
            v1["spec"].get("route"),
            v2["spec"]["routes"].get("default"),
            "{v2}"
        );
        assert_eq!(converted(V2ALPHA1, v1.clone()), v2, "via {v1}");
        // And v1 → v2 → v1 from there.
        assert_eq!(converted(V1ALPHA1, converted(V2ALPHA1, v1.clone())), v1);
    }
}
