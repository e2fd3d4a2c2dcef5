//! Subscription route resolution: which app path gets an event.
//!
//! Dapr semantics (`pkg/runtime/subscription` `findMatchingRoute`, `pkg/expr`): the rules are
//! tried in order, and the first whose CEL `match` expression evaluates to `true` wins; a rule
//! with an empty `match` always matches. Then `routes.default` if set, else the v1 `route`. The
//! expression sees one variable, `event`: the CloudEvent as a map (e.g. `event.type == "x"`,
//! `event.data.size > 3`). A rule that fails to evaluate, or yields a non-bool, does not match.
//!
//! Expressions are compiled once in [`RouteTable::compile`] and evaluated per event.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::Key;
use cel::{Context, Env, Program, Value};

/// Why a subscription's routes could not be built or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The `match` expression is not valid CEL.
    #[error("invalid match expression {expression:?}: {reason}")]
    Compile { expression: String, reason: String },
    /// The expression failed at run time (only logged by [`RouteTable::route`]).
    #[error("failed to evaluate match expression {expression:?}: {reason}")]
    Evaluate { expression: String, reason: String },
}

/// One compiled rule: `program` is `None` for an empty `match`, which always matches.
struct Rule {
    expression: String,
    program: Option<Program>,
    path: String,
}

/// A subscription's compiled routes.
pub struct RouteTable {
    rules: Vec<Rule>,
    default: Option<String>,
    /// The standard CEL environment (functions and macros), built once and shared by evaluations.
    env: Arc<Env>,
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable")
            .field("rules", &self.rules())
            .finish_non_exhaustive()
    }
}

impl RouteTable {
    /// rules: (match expression, path) in order; default: routes.default or the v1 `route`.
    pub fn compile(
        rules: &[(String, String)],
        default: Option<String>,
    ) -> Result<Self, RoutingError> {
        let env = Arc::new(Env::stdlib());
        let rules = rules
            .iter()
            .map(|(expression, path)| {
                let program = if expression.trim().is_empty() {
                    None
                } else {
                    let program = env.compile(expression).map_err(|e| RoutingError::Compile {
                        expression: expression.clone(),
                        reason: e.to_string(),
                    })?;
                    Some(program)
                };
                Ok(Rule {
                    expression: expression.clone(),
                    program,
                    path: path.clone(),
                })
            })
            .collect::<Result<Vec<_>, RoutingError>>()?;
        Ok(Self {
            rules,
            default: default.filter(|d| !d.is_empty()),
            env,
        })
    }

    /// The path for an event (a CloudEvent JSON object), or None when nothing matches and there
    /// is no default. A rule whose expression does not evaluate to a bool, or fails to evaluate
    /// (e.g. a missing field), does not match; the reason is logged at debug level.
    pub fn route(&self, event: &serde_json::Value) -> Option<&str> {
        let mut context: Option<Context<'_, '_>> = None;
        for rule in &self.rules {
            let Some(program) = &rule.program else {
                return Some(&rule.path);
            };
            let context = context.get_or_insert_with(|| {
                let mut context = Context::with_env(Arc::clone(&self.env));
                context.add_variable_from_value("event", json_to_cel(event));
                context
            });
            match self.evaluate(rule, program, context) {
                Ok(true) => return Some(&rule.path),
                Ok(false) => {}
                Err(error) => {
                    tracing::debug!(%error, path = %rule.path, "route rule does not match")
                }
            }
        }
        self.default.as_deref()
    }

    /// The route when it does not depend on the event: `Some(path)` (or `Some(None)`: no route)
    /// when no rule has to be evaluated before one matches, `None` when the event decides.
    pub fn fixed(&self) -> Option<Option<&str>> {
        match self.rules.first() {
            None => Some(self.default.as_deref()),
            Some(rule) if rule.program.is_none() => Some(Some(&rule.path)),
            Some(_) => None,
        }
    }

    /// All paths this table can route to (for /v1.0/metadata): each rule as `(match, path)` in
    /// order, then the default (if any) as a rule with an empty match, as Dapr lists it.
    pub fn rules(&self) -> Vec<(&str, &str)> {
        self.rules
            .iter()
            .map(|r| (r.expression.as_str(), r.path.as_str()))
            .chain(self.default.as_deref().map(|d| ("", d)))
            .collect()
    }

    fn evaluate(
        &self,
        rule: &Rule,
        program: &Program,
        context: &Context<'_, '_>,
    ) -> Result<bool, RoutingError> {
        let evaluate_error = |reason: String| RoutingError::Evaluate {
            expression: rule.expression.clone(),
            reason,
        };
        match program.execute(context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(evaluate_error(format!(
                "result is a {}, not a bool",
                other.type_of()
            ))),
            Err(e) => Err(evaluate_error(e.to_string())),
        }
    }
}

/// serde_json → CEL: objects become string-keyed maps, arrays lists, integral numbers `int`
/// (`uint` above `i64::MAX`), other numbers `double`.
fn json_to_cel(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::String(Arc::new(s.clone())),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.iter().map(json_to_cel).collect()))
        }
        serde_json::Value::Object(fields) => {
            let map: HashMap<Key, Value> = fields
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), json_to_cel(v)))
                .collect();
            Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests;
