//! From a Pod spec to what the node agent does, as pure functions: which Secrets, ConfigMaps and
//! ServiceAccount tokens the pod needs, the files of each volume, and each container's launch
//! (executable, arguments, environment, mounts). The agent fetches, then calls these.

use super::images::Images;
use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// What the agent fetched through the API for one pod: Secrets and ConfigMaps by name (key →
/// value), and ServiceAccount tokens by (audience, expiration seconds).
#[derive(Clone, Debug, Default)]
pub struct Fetched {
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub tokens: BTreeMap<TokenSpec, String>,
}

/// A projected ServiceAccount token: its audience ("" for the API server's) and lifetime.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokenSpec {
    pub audience: String,
    pub expiration_seconds: i64,
}

/// What a pod refers to, to fetch before it starts.
#[derive(Debug, Default, PartialEq)]
pub struct References {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
    pub tokens: BTreeSet<TokenSpec>,
}

/// The Secrets, ConfigMaps and tokens `pod`'s environment and volumes use.
pub fn references(pod: &Pod) -> References {
    let mut out = References::default();
    let Some(spec) = &pod.spec else { return out };
    for container in &spec.containers {
        for var in container.env.iter().flatten() {
            let Some(from) = &var.value_from else {
                continue;
            };
            if let Some(secret) = &from.secret_key_ref {
                out.secrets.insert(secret.name.clone());
            }
            if let Some(map) = &from.config_map_key_ref {
                out.config_maps.insert(map.name.clone());
            }
        }
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(secret) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            out.secrets.insert(secret);
        }
        if let Some(map) = &volume.config_map {
            out.config_maps.insert(map.name.clone());
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(secret) = &source.secret {
                out.secrets.insert(secret.name.clone());
            }
            if let Some(map) = &source.config_map {
                out.config_maps.insert(map.name.clone());
            }
            if let Some(token) = &source.service_account_token {
                out.tokens.insert(token_spec(
                    token.audience.as_deref(),
                    token.expiration_seconds,
                ));
            }
        }
    }
    out
}

fn token_spec(audience: Option<&str>, expiration: Option<i64>) -> TokenSpec {
    TokenSpec {
        audience: audience.unwrap_or_default().to_owned(),
        expiration_seconds: expiration.unwrap_or(3600),
    }
}

/// A volume's contents: files (path relative to the volume → bytes), or a host directory.
#[derive(Debug, PartialEq)]
pub enum VolumeContents {
    Files(Vec<(String, Vec<u8>)>),
    HostPath(PathBuf),
}

/// The contents of each of `pod`'s volumes, by name; an error names what is missing.
pub fn volumes(pod: &Pod, fetched: &Fetched) -> Result<BTreeMap<String, VolumeContents>, String> {
    let mut out = BTreeMap::new();
    let spec_volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
    for volume in spec_volumes {
        out.insert(volume.name.clone(), volume_contents(volume, fetched)?);
    }
    Ok(out)
}

fn volume_contents(volume: &Volume, fetched: &Fetched) -> Result<VolumeContents, String> {
    let name = &volume.name;
    if let Some(host) = &volume.host_path {
        return Ok(VolumeContents::HostPath(PathBuf::from(&host.path)));
    }
    let mut files = Vec::new();
    if let Some(secret) = &volume.secret {
        let secret_name = secret.secret_name.clone().unwrap_or_default();
        files.extend(all_keys(&fetched.secrets, "Secret", &secret_name)?);
    } else if let Some(map) = &volume.config_map {
        files.extend(all_keys(&fetched.config_maps, "ConfigMap", &map.name)?);
    } else if let Some(projected) = &volume.projected {
        for source in projected.sources.iter().flatten() {
            if let Some(token) = &source.service_account_token {
                let spec = token_spec(token.audience.as_deref(), token.expiration_seconds);
                let value = fetched
                    .tokens
                    .get(&spec)
                    .ok_or_else(|| format!("volume {name}: no token for {spec:?}"))?;
                files.push((token.path.clone(), value.clone().into_bytes()));
            }
            if let Some(secret) = &source.secret {
                files.extend(all_keys(&fetched.secrets, "Secret", &secret.name)?);
            }
            if let Some(map) = &source.config_map {
                files.extend(all_keys(&fetched.config_maps, "ConfigMap", &map.name)?);
            }
        }
    } else if volume.empty_dir.is_none() {
        return Err(format!(
            "volume {name}: only emptyDir, hostPath, secret, configMap and projected volumes run here"
        ));
    }
    Ok(VolumeContents::Files(files))
}

fn all_keys(
    objects: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    kind: &str,
    name: &str,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let data = objects
        .get(name)
        .ok_or_else(|| format!("{kind} {name} not found"))?;
    Ok(data.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

/// How to start one container as a local process.
#[derive(Debug, PartialEq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// (source on this machine, path the container sees).
    pub mounts: Vec<(PathBuf, String)>,
}

/// Where the pod runs: its IP, the node's, and where its volumes were written.
pub struct Placement<'a> {
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub volume_dirs: &'a BTreeMap<String, PathBuf>,
}

/// `container` of `pod` as a process: the image's executable in place of the command's first
/// word (or of the image's entrypoint), the arguments and environment the spec gives.
pub fn launch(
    pod: &Pod,
    container: &Container,
    images: &Images,
    fetched: &Fetched,
    placement: &Placement<'_>,
) -> Result<Launch, String> {
    let image = container.image.as_deref().unwrap_or_default();
    let program = images
        .executable(image)
        .ok_or_else(|| {
            format!(
                "container {}: no executable for image {image:?}",
                container.name
            )
        })?
        .to_path_buf();
    let mut args: Vec<String> = container
        .command
        .iter()
        .flatten()
        .skip(1)
        .cloned()
        .collect();
    args.extend(container.args.iter().flatten().cloned());
    let mut env = vec![
        (
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        ),
        (
            "HOSTNAME".to_owned(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
    ];
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => expand(value, &env),
            (None, Some(from)) => env_from(pod, from, fetched, placement)
                .map_err(|e| format!("container {} env {}: {e}", container.name, var.name))?,
            (None, None) => String::new(),
        };
        env.retain(|(name, _)| name != &var.name);
        env.push((var.name.clone(), value));
    }
    let args = args.iter().map(|arg| expand(arg, &env)).collect();
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let dir = placement
            .volume_dirs
            .get(&mount.name)
            .ok_or_else(|| format!("container {}: no volume {}", container.name, mount.name))?;
        let source = match mount.sub_path.as_deref() {
            Some(sub) if !sub.is_empty() => dir.join(sub),
            _ => dir.clone(),
        };
        mounts.push((source, mount.mount_path.clone()));
    }
    Ok(Launch {
        program,
        args,
        env,
        mounts,
    })
}

fn env_from(
    pod: &Pod,
    from: &k8s_openapi::api::core::v1::EnvVarSource,
    fetched: &Fetched,
    placement: &Placement<'_>,
) -> Result<String, String> {
    if let Some(field) = &from.field_ref {
        let meta = &pod.metadata;
        let spec = pod.spec.as_ref();
        return Ok(match field.field_path.as_str() {
            "metadata.name" => meta.name.clone().unwrap_or_default(),
            "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
            "metadata.uid" => meta.uid.clone().unwrap_or_default(),
            "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            "spec.serviceAccountName" => spec
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_else(|| "default".to_owned()),
            "status.podIP" => placement.pod_ip.to_string(),
            "status.hostIP" => placement.host_ip.to_string(),
            other => return Err(format!("field {other} is not supported here")),
        });
    }
    let lookup = |objects: &BTreeMap<String, BTreeMap<String, Vec<u8>>>, name: &str, key: &str| {
        objects
            .get(name)
            .and_then(|data| data.get(key))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .ok_or_else(|| format!("{name}/{key} not found"))
    };
    if let Some(secret) = &from.secret_key_ref {
        return lookup(&fetched.secrets, &secret.name, &secret.key);
    }
    if let Some(map) = &from.config_map_key_ref {
        return lookup(&fetched.config_maps, &map.name, &map.key);
    }
    Err("only fieldRef, secretKeyRef and configMapKeyRef are supported here".to_owned())
}

/// `$(NAME)` replaced by the value of an earlier variable, as the kubelet does.
fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = text.to_owned();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    out
}

/// The path a volume of `pod_dir` is written to.
pub fn volume_dir(pod_dir: &Path, volume: &str) -> PathBuf {
    pod_dir.join("volumes").join(volume)
}
