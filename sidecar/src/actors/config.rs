//! The app's actor configuration: the JSON of `GET /dapr/config`, read into one typed value
//! with Dapr's defaults, per-type overrides from `entitiesConfig` applied.

use super::schedule::parse_go_duration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Dapr's defaults (`pkg/actors/api/config.go`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60 * 60);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_STACK_DEPTH: u32 = 32;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ReentrancyJson {
    enabled: bool,
    max_stack_depth: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct TypeJson {
    entities: Vec<String>,
    actor_idle_timeout: Option<String>,
    drain_ongoing_call_timeout: Option<String>,
    drain_rebalanced_actors: Option<bool>,
    reentrancy: Option<ReentrancyJson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct AppConfigJson {
    #[serde(flatten)]
    root: TypeJson,
    entities_config: Vec<TypeJson>,
}

/// How one actor type behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeConfig {
    pub idle_timeout: Duration,
    pub drain_timeout: Duration,
    pub drain_rebalanced: bool,
    /// `Some(max stack depth)` when reentrancy is on.
    pub reentrancy: Option<u32>,
}

/// The actor types this app hosts, each with its settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ActorsConfig {
    pub types: BTreeMap<String, TypeConfig>,
}

/// Why the app's configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the app's /dapr/config: {0}")]
pub struct ConfigError(String);

fn duration(field: &str, value: Option<&str>, fallback: Duration) -> Result<Duration, ConfigError> {
    match value {
        None | Some("") => Ok(fallback),
        Some(text) => parse_go_duration(text)
            .ok_or_else(|| ConfigError(format!("{field} {text:?} is not a Go duration"))),
    }
}

fn apply(json: &TypeJson, base: &TypeConfig) -> Result<TypeConfig, ConfigError> {
    Ok(TypeConfig {
        idle_timeout: duration(
            "actorIdleTimeout",
            json.actor_idle_timeout.as_deref(),
            base.idle_timeout,
        )?,
        drain_timeout: duration(
            "drainOngoingCallTimeout",
            json.drain_ongoing_call_timeout.as_deref(),
            base.drain_timeout,
        )?,
        drain_rebalanced: json
            .drain_rebalanced_actors
            .unwrap_or(base.drain_rebalanced),
        reentrancy: match &json.reentrancy {
            None => base.reentrancy,
            Some(r) if r.enabled => Some(r.max_stack_depth.unwrap_or(DEFAULT_MAX_STACK_DEPTH)),
            Some(_) => None,
        },
    })
}

impl ActorsConfig {
    /// Reads the app's answer. An empty body or `{}` means no actors.
    pub fn parse(body: &[u8]) -> Result<ActorsConfig, ConfigError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(ActorsConfig::default());
        }
        let json: AppConfigJson = serde_json::from_slice(body)
            .map_err(|e| ConfigError(format!("not Dapr's app configuration JSON: {e}")))?;
        let defaults = TypeConfig {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            drain_rebalanced: true,
            reentrancy: None,
        };
        let root = apply(&json.root, &defaults)?;
        let mut types: BTreeMap<String, TypeConfig> = json
            .root
            .entities
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| (t.clone(), root.clone()))
            .collect();
        for specific in &json.entities_config {
            let config = apply(specific, &root)?;
            for name in &specific.entities {
                if !types.contains_key(name) {
                    return Err(ConfigError(format!(
                        "entitiesConfig names {name:?}, which is not among the root entities"
                    )));
                }
                types.insert(name.clone(), config.clone());
            }
        }
        Ok(ActorsConfig { types })
    }

    pub fn hosts(&self, actor_type: &str) -> bool {
        self.types.contains_key(actor_type)
    }

    pub fn type_config(&self, actor_type: &str) -> Option<&TypeConfig> {
        self.types.get(actor_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dapr_config_with_overrides() {
        let body = br#"{"entities":["Cat","Dog"],"actorIdleTimeout":"1h30m","drainOngoingCallTimeout":"10s",
            "drainRebalancedActors":false,"reentrancy":{"enabled":true},
            "entitiesConfig":[{"entities":["Dog"],"actorIdleTimeout":"5s","reentrancy":{"enabled":true,"maxStackDepth":4}}],
            "remindersStoragePartitions":7}"#;
        let config = ActorsConfig::parse(body).expect("test value");
        let cat = config.type_config("Cat").expect("test value");
        assert_eq!(cat.idle_timeout, Duration::from_secs(5400));
        assert_eq!(cat.drain_timeout, Duration::from_secs(10));
        assert!(!cat.drain_rebalanced);
        assert_eq!(cat.reentrancy, Some(32));
        let dog = config.type_config("Dog").expect("test value");
        assert_eq!(dog.idle_timeout, Duration::from_secs(5));
        assert_eq!(dog.drain_timeout, Duration::from_secs(10));
        assert_eq!(dog.reentrancy, Some(4));
        assert!(!config.hosts("Bird"));
    }

    #[test]
    fn empty_answers_mean_no_actors_and_bad_ones_are_named() {
        assert!(
            ActorsConfig::parse(b"")
                .expect("test value")
                .types
                .is_empty()
        );
        assert!(
            ActorsConfig::parse(b"{}")
                .expect("test value")
                .types
                .is_empty()
        );
        let defaults = ActorsConfig::parse(br#"{"entities":["A"]}"#).expect("test value");
        assert_eq!(
            defaults.type_config("A").expect("test value").idle_timeout,
            DEFAULT_IDLE_TIMEOUT
        );
        for bad in [
            &br#"{"entities":["A"],"actorIdleTimeout":"soon"}"#[..],
            br#"{"entities":"A"}"#,
            br#"{"entities":["A"],"entitiesConfig":[{"entities":["B"]}]}"#,
            b"not json",
        ] {
            assert!(ActorsConfig::parse(bad).is_err());
        }
    }
}
