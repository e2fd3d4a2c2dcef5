//! Label decisions, as pure functions: the HTTP `path` and `method` labels (Dapr's cardinality
//! rules: `increasedCardinality`, `pathMatching`, `excludeVerbs`), the gRPC status names and a
//! bounded gRPC method label.

use std::sync::Arc;

/// Paths daprd always labels as they are.
const STATIC_PATHS: &[&str] = &[
    "/dapr/config",
    "/dapr/metrics",
    "/dapr/subscribe",
    "/healthz",
];

const HTTP_VERBS: &[&str] = &[
    "GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// What goes in a `path` label. Built without allocating except for raw paths, which only
/// `increasedCardinality` asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum PathLabel {
    Empty,
    Static(&'static str),
    Pattern(Arc<str>),
    Raw(String),
}

impl PathLabel {
    pub fn as_str(&self) -> &str {
        match self {
            PathLabel::Empty => "",
            PathLabel::Static(s) => s,
            PathLabel::Pattern(p) => p,
            PathLabel::Raw(r) => r,
        }
    }
}

/// One `pathMatching` pattern, parsed once (Go `ServeMux` syntax: `{name}` is one segment,
/// `{name...}` the rest, a trailing `/` matches everything below).
#[derive(Clone, Debug)]
struct Pattern {
    text: Arc<str>,
    segments: Vec<Segment>,
    prefix: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Literal(String),
    One,
    Rest,
}

impl Pattern {
    fn parse(text: &str) -> Pattern {
        let prefix = text.len() > 1 && text.ends_with('/');
        let segments = text
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                s if s.starts_with('{') && s.ends_with("...}") => Segment::Rest,
                s if s.starts_with('{') && s.ends_with('}') => Segment::One,
                s => Segment::Literal(s.to_owned()),
            })
            .collect();
        Pattern {
            text: text.into(),
            segments,
            prefix,
        }
    }

    fn matches(&self, path: &[&str]) -> bool {
        let mut i = 0;
        for segment in &self.segments {
            match segment {
                Segment::Rest => return true,
                Segment::One if i < path.len() => {}
                Segment::Literal(l) if path.get(i) == Some(&l.as_str()) => {}
                _ => return false,
            }
            i += 1;
        }
        i == path.len() || self.prefix
    }

    /// Go's "most specific wins", approximated: exact over prefix, then more literal segments,
    /// then more segments.
    fn specificity(&self) -> (bool, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!self.prefix, literals, self.segments.len())
    }
}

/// How HTTP paths become labels.
#[derive(Clone, Debug, Default)]
pub struct PathRules {
    increased_cardinality: bool,
    patterns: Vec<Pattern>,
}

impl PathRules {
    /// Like daprd, each pattern is also registered under `/v1.0/invoke/{app_id}/method`, so an
    /// invocation through the API groups as the app's own path does.
    pub fn new(increased_cardinality: bool, path_matching: &[String]) -> PathRules {
        let mut texts: Vec<String> = Vec::new();
        for p in path_matching {
            let p = normalize(p);
            if !p.starts_with("/v1.0/invoke/") {
                texts.push(format!("/v1.0/invoke/{{app_id}}/method{p}"));
            }
            texts.push(p);
        }
        texts.sort();
        texts.dedup();
        PathRules {
            increased_cardinality,
            patterns: texts.iter().map(|t| Pattern::parse(t)).collect(),
        }
    }

    /// The `path` label of a request to (or from) `path`.
    pub fn label(&self, path: &str) -> PathLabel {
        if let Some(s) = STATIC_PATHS.iter().find(|s| **s == path) {
            return PathLabel::Static(s);
        }
        if !self.patterns.is_empty() {
            if let Some(p) = self.matching(path) {
                return PathLabel::Pattern(p);
            }
            let converted = dapr_path_label(path);
            if converted != path
                && let Some(p) = self.matching(&converted)
            {
                return PathLabel::Pattern(p);
            }
        }
        match self.increased_cardinality {
            true => PathLabel::Raw(dapr_path_label(path)),
            false => PathLabel::Empty,
        }
    }

    fn matching(&self, path: &str) -> Option<Arc<str>> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.patterns
            .iter()
            .filter(|p| p.matches(&segments))
            .max_by_key(|p| p.specificity())
            .map(|p| p.text.clone())
    }
}

/// Merges double slashes and ensures a leading one.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    if !path.starts_with('/') {
        out.push('/');
    }
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// daprd's high-cardinality path label: the raw path with state keys and secret names cut
/// off and actor ids replaced by `{id}`.
pub fn dapr_path_label(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let path = normalize(path);
    let parts: Vec<&str> = path[1..].splitn(6, '/').collect();
    if parts.len() < 3 {
        return path;
    }
    if parts[0] == "actors" {
        let mut parts = parts;
        parts[2] = "{id}";
        return parts.join("/");
    }
    match parts[1] {
        "state" | "secrets" => format!("/{}", parts[..3].join("/")),
        "actors" if parts.len() >= 5 => {
            let mut parts = parts;
            parts[3] = "{id}";
            format!("/{}", parts[..5].join("/"))
        }
        _ => path,
    }
}

/// The `method` label: empty with `excludeVerbs`, `UNKNOWN` for anything not an HTTP verb.
pub fn method_label(method: &str, exclude_verbs: bool) -> &'static str {
    if exclude_verbs {
        return "";
    }
    HTTP_VERBS
        .iter()
        .find(|v| **v == method)
        .copied()
        .unwrap_or("UNKNOWN")
}

/// grpc-go's name of a status code, as daprd writes `grpc_server_status`.
pub fn grpc_status_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "Canceled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

/// The gRPC method label: the full method (`/package.Service/Method`) when it is well formed and
/// was served; calls that found no method (UNIMPLEMENTED) or malformed paths share `unknown`, so
/// a client cannot grow the label set with made-up names.
pub fn grpc_method_label(path: &str, code: i32) -> &str {
    let well_formed = path.len() <= 200
        && path.starts_with('/')
        && path[1..].split_once('/').is_some_and(|(service, method)| {
            !service.is_empty()
                && !method.is_empty()
                && service
                    .bytes()
                    .chain(method.bytes())
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        });
    if well_formed && code != 12 {
        path
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests;
