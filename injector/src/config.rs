//! Flags (each also read from an env var, names fixed by the chart contract) and the validated
//! [`InjectorConfig`] built from them before any port is bound.

use clap::{ArgAction, Parser};
use std::net::SocketAddr;
use tandem_crds::annotations::defaults;
use tandem_crds::cluster_dns::{DEFAULT_CLUSTER_DOMAIN, cluster_domain_from_resolv_conf};
use tandem_webhook_tls::Sans;

/// Kubernetes controllers that create pods on someone's behalf (Dapr's built-in list,
/// `pkg/injector/service/injector.go`), as `namespace:name` patterns.
pub const BUILTIN_ALLOWED_SERVICE_ACCOUNTS: &[&str] = &[
    "kube-system:replicaset-controller",
    "kube-system:replication-controller",
    "kube-system:deployment-controller",
    "kube-system:cronjob-controller",
    "kube-system:job-controller",
    "kube-system:statefulset-controller",
    "kube-system:daemon-set-controller",
    "openshift-operator-lifecycle-manager:olm-operator-serviceaccount",
    "tekton-pipelines:tekton-pipelines-controller",
    "mirrord:mirrord-operator",
];

#[derive(Debug, Clone, Parser)]
#[command(
    name = "tandem-injector",
    version,
    about = "Tandem's sidecar injector (mutating admission webhook)"
)]
pub struct Args {
    /// HTTPS address of `POST /mutate`.
    #[arg(long, env = "TANDEM_INJECTOR_ADDR", default_value = "0.0.0.0:4000")]
    pub addr: String,
    /// Plain HTTP address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(
        long,
        env = "TANDEM_INJECTOR_ADMIN_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_addr: String,
    /// The injector's own namespace (its TLS Secret lives here).
    #[arg(long, env = "NAMESPACE", default_value = "default")]
    pub namespace: String,
    /// The Service in front of the injector; names the serving certificate.
    #[arg(
        long,
        env = "TANDEM_INJECTOR_SERVICE_NAME",
        default_value = "tandem-sidecar-injector"
    )]
    pub service_name: String,
    /// The Secret holding the CA and serving certificate.
    #[arg(
        long,
        env = "TANDEM_INJECTOR_TLS_SECRET",
        default_value = "tandem-sidecar-injector-tls"
    )]
    pub tls_secret_name: String,
    /// The MutatingWebhookConfiguration whose caBundles are kept current.
    #[arg(
        long,
        env = "TANDEM_INJECTOR_WEBHOOK_CONFIG",
        default_value = "tandem-sidecar-injector"
    )]
    pub webhook_config_name: String,
    /// Extra DNS names or IP addresses for the serving certificate (comma-separated, repeatable).
    #[arg(long = "tls-san", env = "TANDEM_INJECTOR_TLS_SANS", value_delimiter = ',', action = ArgAction::Append)]
    pub tls_sans: Vec<String>,
    /// The sidecar image.
    #[arg(
        long,
        env = "SIDECAR_IMAGE",
        default_value = "ghcr.io/tandem-run/tandem-sidecar:latest"
    )]
    pub sidecar_image: String,
    /// The sidecar's imagePullPolicy.
    #[arg(
        long,
        env = "SIDECAR_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub sidecar_image_pull_policy: String,
    /// The cluster domain; from the `svc.<domain>` search entry of /etc/resolv.conf when unset.
    #[arg(long, env = "KUBE_CLUSTER_DOMAIN")]
    pub kube_cluster_domain: Option<String>,
    /// The operator's sidecar API; `tandem-api.<namespace>.svc.<domain>:6500` when unset.
    #[arg(long, env = "TANDEM_CONTROL_PLANE_ADDRESS")]
    pub control_plane_address: Option<String>,
    /// More requesters allowed to create injected pods, `namespace:name` (glob `*`), comma-separated.
    #[arg(long, env = "ALLOWED_SERVICE_ACCOUNTS", value_delimiter = ',', action = ArgAction::Append)]
    pub allowed_service_accounts: Vec<String>,
    #[arg(long, env = "SIDECAR_RUN_AS_NON_ROOT", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sidecar_run_as_non_root: bool,
    #[arg(long, env = "SIDECAR_READ_ONLY_ROOT_FILESYSTEM", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sidecar_read_only_root_filesystem: bool,
    #[arg(long, env = "SIDECAR_DROP_ALL_CAPABILITIES", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sidecar_drop_all_capabilities: bool,
    /// Injected sidecars speak only mTLS between themselves (`--enable-mtls true`), with
    /// certificates from the operator's CA; cluster-wide, as Dapr's `global.mtls.enabled`.
    #[arg(long, env = "TANDEM_INJECTOR_SIDECAR_MTLS", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub sidecar_mtls: bool,
    #[command(flatten)]
    pub trust: crate::trust::TrustArgs,
    /// Log JSON lines.
    #[arg(long, env = "TANDEM_INJECTOR_LOG_AS_JSON", default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set)]
    pub log_as_json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// A `namespace:name` pattern; `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountPattern {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccountPattern {
    pub fn parse(value: &str) -> Option<ServiceAccountPattern> {
        let (namespace, name) = value.trim().split_once(':')?;
        if namespace.is_empty() || name.is_empty() || name.contains(':') {
            return None;
        }
        Some(ServiceAccountPattern {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        glob_matches(&self.namespace, namespace) && glob_matches(&self.name, name)
    }
}

/// `*`-only glob matching (what `ALLOWED_SERVICE_ACCOUNTS` patterns use), iterative so hostile
/// patterns cannot blow the stack.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The injector's settings, validated.
#[derive(Debug, Clone)]
pub struct InjectorConfig {
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub namespace: String,
    pub tls_secret_name: String,
    pub webhook_config_name: String,
    /// The serving certificate's names: the Service's DNS names plus `--tls-san`.
    pub sans: Sans,
    pub sidecar_image: String,
    pub sidecar_image_pull_policy: PullPolicy,
    pub cluster_domain: String,
    pub control_plane_address: String,
    /// Built-in controllers and `--allowed-service-accounts`.
    pub allowed_service_accounts: Vec<ServiceAccountPattern>,
    pub sidecar_run_as_non_root: bool,
    pub sidecar_read_only_root_filesystem: bool,
    pub sidecar_drop_all_capabilities: bool,
    /// Injected sidecars get `--enable-mtls true`.
    pub sidecar_mtls: bool,
    /// What injected sidecars verify their control plane against.
    pub control_plane_trust: crate::trust::ControlPlaneTrust,
    pub log_as_json: bool,
}

/// A flag with a value that cannot work; the message names both.
#[derive(Debug, thiserror::Error)]
#[error("invalid value {value:?} for --{flag}: {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        flag,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

impl InjectorConfig {
    /// Validates `args`; `resolv_conf` is the text of /etc/resolv.conf (for the cluster domain).
    pub fn from_args(args: Args, resolv_conf: Option<&str>) -> Result<InjectorConfig, ConfigError> {
        let Args {
            addr,
            admin_addr,
            namespace,
            service_name,
            tls_secret_name,
            webhook_config_name,
            tls_sans,
            sidecar_image,
            sidecar_image_pull_policy,
            kube_cluster_domain,
            control_plane_address,
            allowed_service_accounts,
            sidecar_run_as_non_root,
            sidecar_read_only_root_filesystem,
            sidecar_drop_all_capabilities,
            sidecar_mtls,
            trust,
            log_as_json,
        } = args;
        let socket = |flag, value: &str| {
            value
                .parse::<SocketAddr>()
                .map_err(|_| invalid(flag, value, "expected host:port with an IP address"))
        };
        let addr = socket("addr", &addr)?;
        let admin_addr = socket("admin-addr", &admin_addr)?;
        if addr == admin_addr && addr.port() != 0 {
            return Err(invalid(
                "admin-addr",
                &admin_addr.to_string(),
                "the same as --addr",
            ));
        }
        for (flag, value) in [
            ("namespace", &namespace),
            ("service-name", &service_name),
            ("tls-secret-name", &tls_secret_name),
            ("webhook-config-name", &webhook_config_name),
        ] {
            if !is_dns_subdomain(value) {
                return Err(invalid(
                    flag,
                    value,
                    "not a Kubernetes object name (DNS-1123)",
                ));
            }
        }
        if sidecar_image.trim().is_empty() || sidecar_image.contains(char::is_whitespace) {
            return Err(invalid(
                "sidecar-image",
                &sidecar_image,
                "not an image reference",
            ));
        }
        let sidecar_image_pull_policy = match sidecar_image_pull_policy.as_str() {
            "Always" => PullPolicy::Always,
            "IfNotPresent" => PullPolicy::IfNotPresent,
            "Never" => PullPolicy::Never,
            other => {
                return Err(invalid(
                    "sidecar-image-pull-policy",
                    other,
                    "one of Always, IfNotPresent, Never",
                ));
            }
        };
        let cluster_domain = match kube_cluster_domain {
            Some(domain) if is_dns_subdomain(&domain) => domain,
            Some(domain) => return Err(invalid("kube-cluster-domain", &domain, "not a DNS name")),
            None => resolv_conf
                .and_then(cluster_domain_from_resolv_conf)
                .unwrap_or_else(|| DEFAULT_CLUSTER_DOMAIN.to_owned()),
        };
        let control_plane_address = match control_plane_address {
            Some(address) => {
                let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !valid {
                    return Err(invalid(
                        "control-plane-address",
                        &address,
                        "expected host:port",
                    ));
                }
                address
            }
            None => format!(
                "tandem-api.{namespace}.svc.{cluster_domain}:{}",
                defaults::CONTROL_PLANE_PORT
            ),
        };
        let mut patterns: Vec<ServiceAccountPattern> = BUILTIN_ALLOWED_SERVICE_ACCOUNTS
            .iter()
            .filter_map(|p| ServiceAccountPattern::parse(p))
            .collect();
        for value in allowed_service_accounts
            .iter()
            .filter(|v| !v.trim().is_empty())
        {
            let pattern = ServiceAccountPattern::parse(value).ok_or_else(|| {
                invalid(
                    "allowed-service-accounts",
                    value,
                    "expected namespace:name (glob * allowed)",
                )
            })?;
            patterns.push(pattern);
        }
        let mut names =
            tandem_webhook_tls::service_dns_names(&service_name, &namespace, &cluster_domain);
        for san in tls_sans.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if san.parse::<std::net::IpAddr>().is_err() && !is_dns_subdomain(&san.replace('*', "x"))
            {
                return Err(invalid(
                    "tls-san",
                    san,
                    "neither an IP address nor a DNS name",
                ));
            }
            names.push(san.to_owned());
        }
        let control_plane_trust = crate::trust::ControlPlaneTrust::new(trust, &namespace);
        Ok(InjectorConfig {
            addr,
            admin_addr,
            namespace,
            tls_secret_name,
            webhook_config_name,
            sans: Sans::from_names(names),
            sidecar_image,
            sidecar_image_pull_policy,
            cluster_domain,
            control_plane_address,
            allowed_service_accounts: patterns,
            sidecar_run_as_non_root,
            sidecar_read_only_root_filesystem,
            sidecar_drop_all_capabilities,
            sidecar_mtls,
            control_plane_trust,
            log_as_json,
        })
    }
}

/// A DNS-1123 label: lowercase alphanumerics and `-`, alphanumeric at both ends, 1–63 chars.
pub fn is_dns_label(value: &str) -> bool {
    (1..=63).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 chars.
pub fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    fn parse(flags: &[&str]) -> Result<InjectorConfig, String> {
        let args =
            Args::try_parse_from(std::iter::once("tandem-injector").chain(flags.iter().copied()))
                .map_err(|e| e.to_string())?;
        InjectorConfig::from_args(args, None).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_contracts() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.addr.to_string(), "0.0.0.0:4000");
        assert_eq!(config.admin_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(
            config.control_plane_address,
            "tandem-api.default.svc.cluster.local:6500"
        );
        assert_eq!(config.sidecar_image_pull_policy, PullPolicy::IfNotPresent);
        assert!(config.sidecar_run_as_non_root && config.sidecar_drop_all_capabilities);
        assert!(
            config
                .sans
                .dns_names
                .contains(&"tandem-sidecar-injector.default.svc".to_owned())
        );
        assert_eq!(
            config.allowed_service_accounts.len(),
            BUILTIN_ALLOWED_SERVICE_ACCOUNTS.len()
        );
    }

    #[test]
    fn flags_are_read_and_bad_ones_name_the_flag() {
        let config = parse(&[
            "--tls-san",
            "127.0.0.1,localhost",
            "--tls-san",
            "::1",
            "--allowed-service-accounts",
            "ci:*,argo-*:workflow",
            "--sidecar-run-as-non-root=false",
            "--namespace",
            "tandem",
            "--kube-cluster-domain",
            "k8s.example",
        ])
        .unwrap();
        assert_eq!(config.sans.ip_addresses.len(), 2);
        assert!(config.sans.dns_names.contains(&"localhost".to_owned()));
        assert!(!config.sidecar_run_as_non_root);
        assert_eq!(
            config.control_plane_address,
            "tandem-api.tandem.svc.k8s.example:6500"
        );
        assert!(
            config
                .allowed_service_accounts
                .iter()
                .any(|p| p.matches("argo-x", "workflow"))
        );
        for (flags, needle) in [
            (&["--addr", "nope"][..], "--addr"),
            (
                &["--sidecar-image-pull-policy", "Sometimes"][..],
                "--sidecar-image-pull-policy",
            ),
            (
                &["--allowed-service-accounts", "no-colon"][..],
                "--allowed-service-accounts",
            ),
            (&["--namespace", "Bad_NS"][..], "--namespace"),
            (
                &["--control-plane-address", "host-only"][..],
                "--control-plane-address",
            ),
            (&["--tls-san", "not a name"][..], "--tls-san"),
            (&["--sidecar-image", ""][..], "--sidecar-image"),
        ] {
            let error = parse(flags).unwrap_err();
            assert!(error.contains(needle), "{flags:?}: {error}");
        }
    }

    #[test]
    fn cluster_domain_from_search_entries() {
        let text = "nameserver 10.96.0.10\nsearch ns.svc.k8s.corp svc.k8s.corp k8s.corp\noptions ndots:5\n";
        assert_eq!(
            cluster_domain_from_resolv_conf(text).as_deref(),
            Some("k8s.corp")
        );
        assert_eq!(
            cluster_domain_from_resolv_conf("nameserver 1.1.1.1\n"),
            None
        );
        let args = Args::try_parse_from(["x"]).unwrap();
        assert_eq!(
            InjectorConfig::from_args(args, Some(text))
                .unwrap()
                .cluster_domain,
            "k8s.corp"
        );
    }

    #[test]
    fn globs() {
        for (pattern, text, expected) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abcd", false),
            ("replicaset-controller", "replicaset-controller", true),
            ("*-controller", "job-controller", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("", "", true),
            ("", "a", false),
        ] {
            assert_eq!(glob_matches(pattern, text), expected, "{pattern} {text}");
        }
    }
}
