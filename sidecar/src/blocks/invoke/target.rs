//! Parsing an invocation target (`app` or `app.namespace`) and the invoked method: pure functions.

/// Whether an app id is unusable; `Some(reason)` when it is. Must make `<id>-dapr` a DNS label.
pub fn invalid_app_id(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return None; // no app id: the sidecar serves only APIs that need none
    }
    if id.contains('.') {
        return Some("app ids cannot contain dots");
    }
    if id.len() > 58 {
        return Some("app ids are at most 58 characters, so that <id>-dapr is a DNS label");
    }
    let valid = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Some(
            "app ids use letters, digits, '-' and '_', starting and ending with a letter or digit",
        );
    }
    None
}

/// Where an invocation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub app_id: String,
    /// `None`: the caller's own namespace.
    pub namespace: Option<String>,
}

/// Splits `app` / `app.namespace`; three or more parts are an error, as in Dapr.
pub fn parse_target(raw: &str) -> Result<Target, String> {
    let mut parts = raw.split('.');
    let app_id = parts.next().unwrap_or_default();
    let namespace = parts.next();
    if parts.next().is_some() {
        return Err(format!(
            "invalid app id {raw:?}: at most one '.' (app.namespace)"
        ));
    }
    if app_id.is_empty() || namespace.is_some_and(str::is_empty) {
        return Err(format!("invalid app id {raw:?}"));
    }
    if let Some(reason) = invalid_app_id(app_id) {
        return Err(format!("invalid app id {raw:?}: {reason}"));
    }
    Ok(Target {
        app_id: app_id.to_owned(),
        namespace: namespace.map(str::to_owned),
    })
}

/// Splits `/v1.0/invoke/{id}/method/{method...}` into the target and the method path (the rest,
/// unchanged, without its leading `/`). `None` when the path has no method part.
pub fn split_invoke_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/v1.0/invoke/")?;
    let (id, rest) = rest.split_once('/')?;
    let method = rest
        .strip_prefix("method/")
        .or_else(|| (rest == "method").then_some(""))?;
    Some((id, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_ids() {
        assert_eq!(invalid_app_id("order-svc_2"), None);
        assert!(invalid_app_id("a.b").is_some());
        assert!(invalid_app_id("-a").is_some());
        assert!(invalid_app_id("a b").is_some());
        assert!(invalid_app_id(&"a".repeat(59)).is_some());
    }

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("b"),
            Ok(Target {
                app_id: "b".into(),
                namespace: None
            })
        );
        assert_eq!(
            parse_target("b.prod"),
            Ok(Target {
                app_id: "b".into(),
                namespace: Some("prod".into())
            })
        );
        assert!(parse_target("a.b.c").is_err());
        assert!(parse_target(".x").is_err());
        assert!(parse_target("x.").is_err());
    }

    #[test]
    fn invoke_paths() {
        assert_eq!(
            split_invoke_path("/v1.0/invoke/b/method/x/y"),
            Some(("b", "x/y"))
        );
        assert_eq!(split_invoke_path("/v1.0/invoke/b/method/"), Some(("b", "")));
        assert_eq!(split_invoke_path("/v1.0/invoke/b/other/x"), None);
        assert_eq!(split_invoke_path("/v1.0/state/x"), None);
    }
}
