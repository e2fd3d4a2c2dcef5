//! Access control on the callee (`Configuration.spec.accessControl`): [`Acl::compile`] checks a
//! spec once, [`Acl::decide`] is a pure function of the caller's identity and the operation.
//!
//! Dapr's rules: no spec, allow; policies but no global `defaultAction`, deny; a caller with no
//! policy, or whose policy's trust domain or namespace differ, gets the global default; then
//! the operation's verb action, then the policy's `defaultAction`, then the global default. HTTP
//! operation names compare lower-cased; gRPC ones as they are, with no verbs. A policy without
//! trust domain or namespace makes the spec invalid.
//!
//! Where Dapr's trie picks the first rule listed among siblings, Tandem picks the most specific
//! rule (most literal segments), whatever the order; `*` matches exactly one segment, `**` zero
//! or more.

use super::spiffe::SpiffeId;
use tandem_crds::access_control::AccessControlSpec;

/// Dapr's default trust domain for apps.
pub const DEFAULT_TRUST_DOMAIN: &str = "public";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    #[error("spec.accessControl: policy {0:?} needs an appId, a trustDomain and a namespace")]
    Incomplete(String),
    #[error("spec.accessControl: {0:?} is not allow or deny")]
    Action(String),
}

/// Which rule decided: Dapr's `app` or `global` policy metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    App,
    Global,
}

impl Decided {
    pub fn as_str(self) -> &'static str {
        match self {
            Decided::App => "app",
            Decided::Global => "global",
        }
    }
}

/// What is being invoked.
#[derive(Debug, Clone, Copy)]
pub struct Operation<'a> {
    /// The method path (with or without a leading `/`).
    pub path: &'a str,
    /// The HTTP verb; `None` for a gRPC call.
    pub verb: Option<&'a str>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// Pattern segments, lower-cased for HTTP matching in `http_segments`.
    segments: Vec<String>,
    http_segments: Vec<String>,
    verbs: Vec<(String, bool)>,
    allow: bool,
}

#[derive(Debug, Clone)]
struct Policy {
    app_id: String,
    trust_domain: String,
    namespace: String,
    default: Option<bool>,
    rules: Vec<Rule>,
}

/// A checked access-control spec.
#[derive(Debug, Clone)]
pub struct Acl {
    default_allow: bool,
    trust_domain: String,
    policies: Vec<Policy>,
}

fn action(value: &str) -> Result<bool, AclError> {
    match value.to_ascii_lowercase().as_str() {
        "allow" => Ok(true),
        "deny" => Ok(false),
        _ => Err(AclError::Action(value.to_owned())),
    }
}

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Acl {
    /// Checks a Configuration's `accessControl`; `None` when there is nothing to enforce.
    pub fn compile(spec: Option<&AccessControlSpec>) -> Result<Option<Acl>, AclError> {
        let Some(spec) = spec else { return Ok(None) };
        let empty = |s: &Option<String>| s.as_deref().unwrap_or("").is_empty();
        if empty(&spec.default_action) && empty(&spec.trust_domain) && spec.policies.is_empty() {
            return Ok(None);
        }
        let default_allow = match spec.default_action.as_deref().filter(|s| !s.is_empty()) {
            Some(a) => action(a)?,
            None => false,
        };
        let mut policies = Vec::new();
        for p in &spec.policies {
            let (Some(td), Some(ns)) = (&p.trust_domain, &p.namespace) else {
                return Err(AclError::Incomplete(p.app_id.clone()));
            };
            if p.app_id.is_empty() || td.is_empty() || ns.is_empty() {
                return Err(AclError::Incomplete(p.app_id.clone()));
            }
            let mut rules = Vec::new();
            for op in &p.operations {
                let verbs = op
                    .http_verb
                    .iter()
                    .map(|v| action(&op.action).map(|a| (v.to_ascii_uppercase(), a)))
                    .collect::<Result<_, _>>()?;
                rules.push(Rule {
                    segments: segments(&op.name),
                    http_segments: segments(&op.name.to_lowercase()),
                    verbs,
                    allow: action(&op.action)?,
                });
            }
            policies.push(Policy {
                app_id: p.app_id.clone(),
                trust_domain: td.clone(),
                namespace: ns.clone(),
                default: match p.default_action.as_deref().filter(|s| !s.is_empty()) {
                    Some(a) => Some(action(a)?),
                    None => None,
                },
                rules,
            });
        }
        Ok(Some(Acl {
            default_allow,
            trust_domain: spec
                .trust_domain
                .clone()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_TRUST_DOMAIN.to_owned()),
            policies,
        }))
    }

    /// This app's trust domain as the spec names it.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Whether `caller` (when known) may invoke `op`, and which level decided.
    pub fn decide(&self, caller: Option<&SpiffeId>, op: Operation<'_>) -> (bool, Decided) {
        let global = (self.default_allow, Decided::Global);
        let Some(caller) = caller else { return global };
        let Some(policy) = self.policies.iter().find(|p| {
            p.app_id == caller.app_id
                && p.namespace == caller.namespace
                && p.trust_domain == caller.trust_domain
        }) else {
            return global;
        };
        let mut allow = self.default_allow;
        let mut decided = Decided::Global;
        if let Some(default) = policy.default {
            (allow, decided) = (default, Decided::App);
        }
        let path = match op.verb {
            Some(_) => segments(&op.path.to_lowercase()),
            None => segments(op.path),
        };
        let best = policy
            .rules
            .iter()
            .filter(|r| {
                let pattern = if op.verb.is_some() {
                    &r.http_segments
                } else {
                    &r.segments
                };
                matches(pattern, &path)
            })
            .max_by_key(|r| {
                let literal = r.segments.iter().filter(|s| !s.contains('*')).count();
                (literal, std::cmp::Reverse(r.segments.len()))
            });
        if let Some(rule) = best {
            match op.verb {
                None => (allow, decided) = (rule.allow, Decided::App),
                Some(verb) => {
                    let verb = verb.to_ascii_uppercase();
                    let by_verb = rule.verbs.iter().find(|(v, _)| *v == verb);
                    let any = rule.verbs.iter().find(|(v, _)| v == "*");
                    if let Some((_, a)) = by_verb.or(any) {
                        (allow, decided) = (*a, Decided::App);
                    }
                }
            }
        }
        (allow, decided)
    }
}

/// Whether `path` matches `pattern`: `**` takes zero or more segments, `*` exactly one, and a
/// segment with `*` inside matches as a glob.
fn matches(pattern: &[String], path: &[String]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| matches(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((segment, tail)) => glob(first, segment) && matches(rest, tail),
            None => false,
        },
    }
}

fn glob(pattern: &str, text: &str) -> bool {
    let Some((head, tail)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(rest) = text.strip_prefix(head) else {
        return false;
    };
    if tail.is_empty() {
        return true;
    }
    (0..=rest.len())
        .filter(|i| rest.is_char_boundary(*i))
        .any(|i| glob(tail, &rest[i..]))
}

#[cfg(test)]
mod tests;
