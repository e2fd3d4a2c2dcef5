//! The conversion itself, as a pure function of the `ConversionReview` the apiserver sends.
//!
//! - v1alpha1 → v2alpha1: `spec.route` becomes `spec.routes.default`; the routing rules a
//!   v1alpha1 object carries in [`ROUTES_ANNOTATION`] (put there by the way down) come back.
//! - v2alpha1 → v1alpha1: `spec.routes.default` becomes `spec.route`; whatever else `routes`
//!   holds (the rules), which v1alpha1 cannot express, goes into [`ROUTES_ANNOTATION`] as JSON, so
//!   v2alpha1 → v1alpha1 → v2alpha1 gives back the same object.
//!
//! Everything else (metadata, `pubsubname`, `topic`, `metadata`, `deadLetterTopic`,
//! `bulkSubscribe`, `scopes`, `status`, fields this code does not know) is carried unchanged. One
//! object that cannot be converted fails the whole review, with a message naming it.

use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use serde_json::{Map, Value};

/// Where a v1alpha1 Subscription keeps the v2alpha1 `routes` it cannot express (without `default`,
/// which is its `route`).
pub const ROUTES_ANNOTATION: &str = "tandem.io/v2alpha1-routes";
/// The two versions served.
pub const V1ALPHA1: &str = "dapr.io/v1alpha1";
pub const V2ALPHA1: &str = "dapr.io/v2alpha1";

/// Why one object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("desiredAPIVersion {0:?} is not one of {V1ALPHA1}, {V2ALPHA1}")]
    UnknownDesiredVersion(String),
    #[error("object {index} is not a JSON object")]
    NotAnObject { index: usize },
    #[error("{object}: apiVersion {version:?} is not one of {V1ALPHA1}, {V2ALPHA1}")]
    UnknownVersion { object: String, version: String },
    #[error("{object}: {field} must be {expected}")]
    WrongType {
        object: String,
        field: &'static str,
        expected: &'static str,
    },
    #[error("{object}: annotation {ROUTES_ANNOTATION} is not a JSON object: {message}")]
    BadAnnotation { object: String, message: String },
    #[error("the ConversionReview has no request")]
    NoRequest,
}

/// Answers a `ConversionReview`: every object converted to `desiredAPIVersion`, or a `Failure`
/// result with the first problem. The request's `uid` is echoed.
pub fn convert(review: ConversionReview) -> ConversionReview {
    let Ok(request) = ConversionRequest::from_review(review) else {
        let failed = Status::failure(&ConversionError::NoRequest.to_string(), "BadRequest");
        return ConversionResponse::invalid(failed).into_review();
    };
    let desired = request.desired_api_version.clone();
    let objects = request.objects.clone();
    let response = ConversionResponse::for_request(request);
    match convert_all(objects, &desired) {
        Ok(converted) => response.success(converted),
        Err(error) => response.failure(Status::failure(&error.to_string(), "Invalid")),
    }
    .into_review()
}

/// Converts every object to `desired`; the first failure fails them all.
pub fn convert_all(objects: Vec<Value>, desired: &str) -> Result<Vec<Value>, ConversionError> {
    if desired != V1ALPHA1 && desired != V2ALPHA1 {
        return Err(ConversionError::UnknownDesiredVersion(desired.to_owned()));
    }
    objects
        .into_iter()
        .enumerate()
        .map(|(index, object)| convert_object(index, object, desired))
        .collect()
}

/// Converts one Subscription to `desired` (a served version).
fn convert_object(index: usize, object: Value, desired: &str) -> Result<Value, ConversionError> {
    let Value::Object(mut object) = object else {
        return Err(ConversionError::NotAnObject { index });
    };
    let name = describe(index, &object);
    let version = object.get("apiVersion").and_then(Value::as_str);
    let version = version.unwrap_or_default().to_owned();
    if version != V1ALPHA1 && version != V2ALPHA1 {
        return Err(ConversionError::UnknownVersion {
            object: name,
            version,
        });
    }
    if version != desired {
        if desired == V2ALPHA1 {
            up(&mut object, &name)?;
        } else {
            down(&mut object, &name)?;
        }
        object.insert("apiVersion".to_owned(), Value::String(desired.to_owned()));
    }
    Ok(Value::Object(object))
}

/// v1alpha1 → v2alpha1.
fn up(object: &mut Map<String, Value>, name: &str) -> Result<(), ConversionError> {
    let kept = take_annotation(object, name)?;
    let Some(spec) = spec_of(object, name)? else {
        return Ok(());
    };
    let route = match spec.remove("route") {
        None | Some(Value::Null) => None,
        Some(Value::String(route)) => Some(route),
        Some(_) => return Err(wrong_type(name, "spec.route", "a string")),
    };
    // A v1alpha1 object has no `routes` (its schema prunes them); kept ones win.
    let stray = match spec.remove("routes") {
        Some(Value::Object(routes)) => Some(routes),
        _ => None,
    };
    let mut routes = kept.or(stray);
    if let Some(route) = route {
        let routes = routes.get_or_insert_default();
        routes.insert("default".to_owned(), Value::String(route));
    }
    if let Some(routes) = routes {
        spec.insert("routes".to_owned(), Value::Object(routes));
    }
    Ok(())
}

/// v2alpha1 → v1alpha1.
fn down(object: &mut Map<String, Value>, name: &str) -> Result<(), ConversionError> {
    let Some(spec) = spec_of(object, name)? else {
        return Ok(());
    };
    let mut routes = match spec.remove("routes") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(routes)) => routes,
        Some(_) => return Err(wrong_type(name, "spec.routes", "an object")),
    };
    let had_default = match routes.remove("default") {
        None | Some(Value::Null) => false,
        Some(Value::String(default)) => {
            spec.insert("route".to_owned(), Value::String(default));
            true
        }
        Some(_) => return Err(wrong_type(name, "spec.routes.default", "a string")),
    };
    // Only `routes: {default}` is fully expressed by `route`; anything else, even an empty
    // `routes`, is kept.
    if !routes.is_empty() || !had_default {
        let text = Value::Object(routes).to_string();
        annotations_of(object, name)?.insert(ROUTES_ANNOTATION.to_owned(), Value::String(text));
    }
    Ok(())
}

/// Removes [`ROUTES_ANNOTATION`] (and an annotation map it leaves empty); its routes, if any.
fn take_annotation(
    object: &mut Map<String, Value>,
    name: &str,
) -> Result<Option<Map<String, Value>>, ConversionError> {
    let Some(Value::Object(metadata)) = object.get_mut("metadata") else {
        return Ok(None);
    };
    let Some(Value::Object(annotations)) = metadata.get_mut("annotations") else {
        return Ok(None);
    };
    let Some(kept) = annotations.remove(ROUTES_ANNOTATION) else {
        return Ok(None);
    };
    if annotations.is_empty() {
        metadata.remove("annotations");
    }
    let bad = |message: String| ConversionError::BadAnnotation {
        object: name.to_owned(),
        message,
    };
    let text = kept
        .as_str()
        .ok_or_else(|| bad("not a string".to_owned()))?;
    match serde_json::from_str(text) {
        Ok(Value::Object(routes)) => Ok(Some(routes)),
        Ok(other) => Err(bad(format!("found {other}"))),
        Err(error) => Err(bad(error.to_string())),
    }
}

/// `metadata.annotations`, created when missing.
fn annotations_of<'a>(
    object: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Map<String, Value>, ConversionError> {
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return Err(wrong_type(name, "metadata", "an object"));
    };
    let annotations = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    match annotations {
        Value::Object(annotations) => Ok(annotations),
        _ => Err(wrong_type(name, "metadata.annotations", "an object")),
    }
}

/// `spec`, if the object has one.
fn spec_of<'a>(
    object: &'a mut Map<String, Value>,
    name: &str,
) -> Result<Option<&'a mut Map<String, Value>>, ConversionError> {
    match object.get_mut("spec") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(spec)) => Ok(Some(spec)),
        Some(_) => Err(wrong_type(name, "spec", "an object")),
    }
}

fn wrong_type(name: &str, field: &'static str, expected: &'static str) -> ConversionError {
    ConversionError::WrongType {
        object: name.to_owned(),
        field,
        expected,
    }
}

/// `Subscription namespace/name`, or the object's index when it has no name.
fn describe(index: usize, object: &Map<String, Value>) -> String {
    let metadata = object.get("metadata");
    let field = |key: &str| metadata?.get(key)?.as_str();
    match (field("namespace"), field("name")) {
        (Some(namespace), Some(name)) => format!("Subscription {namespace}/{name}"),
        (None, Some(name)) => format!("Subscription {name}"),
        _ => format!("object {index}"),
    }
}

#[cfg(test)]
mod tests;
