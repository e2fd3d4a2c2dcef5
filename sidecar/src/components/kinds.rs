//! The table from component type to implementation: validated settings
//! ([`ComponentConfig::from_metadata`], pure, run before any port is bound) and initialisation
//! ([`ComponentConfig::init`], which may reach a server and is retried).

use super::bindings::mqtt as mqtt_binding;
use super::bindings::{self, Binding};
use super::metadata::{Metadata, MetadataError};
use super::mqtt_connection::MqttSettings;
use super::postgres_connection::PostgresConnection;
use super::pubsub::mqtt::MqttPubSub;
use super::pubsub::rabbitmq;
use super::pubsub::redis as redis_pubsub;
use super::pubsub::{PubSub, memory::MemoryBroker};
use super::redis_connection::RedisConnection;
use super::secrets::{SecretStore, env::EnvStore, file::FileStore};
use super::state::{StateStore, memory::MemoryStore, postgres, redis, sqlite::SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A ready component instance.
#[derive(Clone)]
pub enum Instance {
    State(Arc<dyn StateStore>),
    Secrets(Arc<dyn SecretStore>),
    PubSub(Arc<dyn PubSub>),
    Binding(Binding),
}

/// Validated settings of one component.
#[derive(Debug, Clone)]
pub enum ComponentConfig {
    PubSubMemory,
    PubSubRedis(Box<redis_pubsub::RedisPubSubConfig>),
    PubSubMqtt(Box<MqttSettings>),
    PubSubRabbitMq(Box<rabbitmq::RabbitMqConfig>),
    BindingMqtt(Box<mqtt_binding::MqttBindingConfig>),
    StateMemory,
    StateSqlite {
        path: String,
        table: String,
        busy_timeout: Duration,
    },
    StateRedis(Box<redis::RedisConfig>),
    StatePostgres(Box<postgres::PostgresConfig>),
    SecretsEnv {
        prefix: Option<String>,
    },
    SecretsFile {
        path: PathBuf,
        separator: String,
        multi_valued: bool,
    },
    /// The built-in `kubernetes` store of Kubernetes mode (not declared in manifests).
    SecretsKubernetes(Box<crate::control_plane::ControlPlane>),
    BindingCron(Box<bindings::cron::CronConfig>),
    BindingHttp(Box<bindings::http::HttpConfig>),
    BindingRedis(Box<RedisConnection>),
    BindingLocalStorage(Box<bindings::localstorage::LocalStorageConfig>),
    BindingPostgres(Box<PostgresConnection>),
}

impl ComponentConfig {
    /// Validates the metadata of a catalogue type. `base` is the manifest's folder, for relative
    /// file paths.
    pub fn from_metadata(type_: &str, md: &Metadata, base: &Path) -> Result<Self, MetadataError> {
        Ok(match type_ {
            "pubsub.in-memory" => ComponentConfig::PubSubMemory,
            "pubsub.redis" => ComponentConfig::PubSubRedis(Box::new(
                redis_pubsub::RedisPubSubConfig::from_metadata(md)?,
            )),
            "pubsub.mqtt3" => {
                ComponentConfig::PubSubMqtt(Box::new(MqttSettings::from_metadata(md)?))
            }
            "pubsub.rabbitmq" => ComponentConfig::PubSubRabbitMq(Box::new(
                rabbitmq::RabbitMqConfig::from_metadata(md)?,
            )),
            "bindings.mqtt3" => ComponentConfig::BindingMqtt(Box::new(
                mqtt_binding::MqttBindingConfig::from_metadata(md)?,
            )),
            "state.in-memory" => ComponentConfig::StateMemory,
            "state.sqlite" => ComponentConfig::StateSqlite {
                path: md.require("connectionString")?.to_owned(),
                table: md.get("tableName").unwrap_or("state").to_owned(),
                busy_timeout: md
                    .duration("busyTimeout")?
                    .unwrap_or(Duration::from_secs(5)),
            },
            "state.redis" => {
                ComponentConfig::StateRedis(Box::new(redis::RedisConfig::from_metadata(md)?))
            }
            "state.postgresql" => ComponentConfig::StatePostgres(Box::new(
                postgres::PostgresConfig::from_metadata(md)?,
            )),
            "secretstores.local.env" => ComponentConfig::SecretsEnv {
                prefix: md.get("prefix").map(str::to_owned),
            },
            "secretstores.local.file" => {
                let file = PathBuf::from(md.require("secretsFile")?);
                ComponentConfig::SecretsFile {
                    path: if file.is_relative() && !file.exists() {
                        base.join(file)
                    } else {
                        file
                    },
                    separator: md.get("nestedSeparator").unwrap_or(":").to_owned(),
                    multi_valued: md.bool("multiValued", false)?,
                }
            }
            "bindings.cron" => ComponentConfig::BindingCron(Box::new(
                bindings::cron::CronConfig::from_metadata(md)?,
            )),
            "bindings.http" => ComponentConfig::BindingHttp(Box::new(
                bindings::http::HttpConfig::from_metadata(md)?,
            )),
            "bindings.redis" => {
                ComponentConfig::BindingRedis(Box::new(RedisConnection::from_metadata(md)?))
            }
            "bindings.localstorage" => ComponentConfig::BindingLocalStorage(Box::new(
                bindings::localstorage::LocalStorageConfig::from_metadata(md)?,
            )),
            "bindings.postgresql" => {
                ComponentConfig::BindingPostgres(Box::new(PostgresConnection::from_metadata(md)?))
            }
            other => {
                return Err(MetadataError {
                    field: "spec.type".into(),
                    value: other.into(),
                    reason: "no implementation".into(),
                });
            }
        })
    }

    /// Builds the instance; may be retried until the component's init timeout.
    pub async fn init(&self) -> Result<Instance, String> {
        Ok(match self {
            ComponentConfig::PubSubMemory => Instance::PubSub(Arc::new(MemoryBroker::new())),
            ComponentConfig::PubSubRedis(cfg) => {
                Instance::PubSub(Arc::new(redis_pubsub::RedisPubSub::connect(cfg).await?))
            }
            ComponentConfig::PubSubMqtt(cfg) => {
                Instance::PubSub(Arc::new(MqttPubSub::connect(cfg).await?))
            }
            ComponentConfig::PubSubRabbitMq(cfg) => {
                Instance::PubSub(Arc::new(rabbitmq::RabbitMqPubSub::connect(cfg).await?))
            }
            ComponentConfig::BindingMqtt(cfg) => {
                let binding = Arc::new(mqtt_binding::MqttBinding::connect(cfg).await?);
                Instance::Binding(Binding {
                    input: Some(binding.clone()),
                    output: Some(binding),
                })
            }
            ComponentConfig::StateMemory => Instance::State(Arc::new(MemoryStore::new())),
            ComponentConfig::StateSqlite {
                path,
                table,
                busy_timeout,
            } => Instance::State(Arc::new(
                SqliteStore::open(path, table, *busy_timeout).await?,
            )),
            ComponentConfig::StateRedis(cfg) => {
                Instance::State(Arc::new(redis::RedisStore::connect(cfg).await?))
            }
            ComponentConfig::StatePostgres(cfg) => {
                Instance::State(Arc::new(postgres::PostgresStore::connect(cfg).await?))
            }
            ComponentConfig::SecretsEnv { prefix } => {
                Instance::Secrets(Arc::new(EnvStore::new(prefix.as_deref())))
            }
            ComponentConfig::SecretsFile {
                path,
                separator,
                multi_valued,
            } => Instance::Secrets(Arc::new(FileStore::load(path, separator, *multi_valued)?)),
            ComponentConfig::SecretsKubernetes(control_plane) => Instance::Secrets(Arc::new(
                super::secrets::kubernetes::KubernetesSecretStore::new(
                    control_plane.as_ref().clone(),
                ),
            )),
            ComponentConfig::BindingCron(cfg) => {
                Instance::Binding(bindings::cron::CronBinding::binding(cfg))
            }
            ComponentConfig::BindingHttp(cfg) => Instance::Binding(Binding::output(Arc::new(
                bindings::http::HttpBinding::new(cfg)?,
            ))),
            ComponentConfig::BindingRedis(cfg) => Instance::Binding(Binding::output(Arc::new(
                bindings::redis::RedisBinding::connect(cfg).await?,
            ))),
            ComponentConfig::BindingLocalStorage(cfg) => Instance::Binding(Binding::output(
                Arc::new(bindings::localstorage::LocalStorage::open(cfg).await?),
            )),
            ComponentConfig::BindingPostgres(cfg) => Instance::Binding(Binding::output(Arc::new(
                bindings::postgres::PostgresBinding::connect(cfg).await?,
            ))),
        })
    }
}
