//! The component types Tandem supports, with their versions and metadata fields. The sidecar
//! refuses a component whose type is not here or whose metadata misses a required field or names
//! an unknown one; the operator reports the same verdict as a `Ready` condition.

/// One supported component type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComponentKind {
    /// `spec.type`, for example `state.redis`.
    pub type_: &'static str,
    /// Other names Dapr accepts for the same type.
    pub aliases: &'static [&'static str],
    /// Accepted `spec.version` values; an empty version means the first.
    pub versions: &'static [&'static str],
    /// Fields that must be present (one of each `|`-separated group).
    pub required: &'static [&'static str],
    /// Every other field the type understands, in groups (shared connection fields, then the
    /// type's own).
    pub optional: &'static [&'static [&'static str]],
}

/// Fields the runtime itself reads on every component (not passed to the implementation).
pub const RUNTIME_FIELDS: &[&str] = &[
    "keyPrefix",
    "actorStateStore",
    "outboxPublishPubsub",
    "outboxPublishTopic",
    "outboxPubsub",
    "outboxDiscardWhenMissingState",
];

const REDIS_CONNECTION: &[&str] = &[
    "redisPassword",
    "redisUsername",
    "enableTLS",
    "insecureSkipTLSVerify",
    "clientCert",
    "clientKey",
    "failover",
    "sentinelMasterName",
    "sentinelUsername",
    "sentinelPassword",
    "redisType",
    "redisDB",
    "redisMaxRetries",
    "redisMinRetryInterval",
    "redisMaxRetryInterval",
    "dialTimeout",
    "readTimeout",
    "writeTimeout",
    "poolSize",
    "poolTimeout",
    "maxConnAge",
    "minIdleConns",
    "idleCheckFrequency",
    "idleTimeout",
    "useEntraID",
];

const POSTGRES_CONNECTION: &[&str] = &[
    "timeout",
    "tableName",
    "tablePrefix",
    "metadataTableName",
    "cleanupInterval",
    "maxConns",
    "connectionMaxIdleTime",
    "queryExecMode",
    "host",
    "hostaddr",
    "port",
    "database",
    "user",
    "password",
    "sslRootCert",
    "useAzureAD",
    "useAWSIAM",
];

/// Fields the runtime reads on every binding: `direction` (`input`, `output` or both) and the
/// app `route` input events are POSTed to.
const BINDING_FIELDS: &[&str] = &["direction", "route"];

const MQTT_CONNECTION: &[&str] = &[
    "consumerID",
    "qos",
    "retain",
    "cleanSession",
    "caCert",
    "clientCert",
    "clientKey",
    "backOffMaxRetries",
];

/// Every component type Tandem supports.
pub const CATALOGUE: &[ComponentKind] = &[
    ComponentKind {
        type_: "pubsub.in-memory",
        aliases: &[],
        versions: &["v1"],
        required: &[],
        optional: &[&["consumerID"]],
    },
    ComponentKind {
        type_: "pubsub.redis",
        aliases: &[],
        versions: &["v1"],
        required: &["redisHost"],
        optional: &[
            REDIS_CONNECTION,
            &[
                "consumerID",
                "redeliverInterval",
                "processingTimeout",
                "queueDepth",
                "concurrency",
                "maxLenApprox",
                "streamTTL",
            ],
        ],
    },
    ComponentKind {
        type_: "pubsub.mqtt3",
        aliases: &["pubsub.mqtt"],
        versions: &["v1"],
        required: &["url"],
        optional: &[MQTT_CONNECTION],
    },
    ComponentKind {
        type_: "pubsub.rabbitmq",
        aliases: &[],
        versions: &["v1"],
        required: &["connectionString|hostname"],
        optional: &[&[
            "protocol",
            "username",
            "password",
            "consumerID",
            "durable",
            "deletedWhenUnused",
            "autoAck",
            "deliveryMode",
            "requeueInFailure",
            "prefetchCount",
            "reconnectWait",
            "reconnectWaitSeconds",
            "concurrency",
            "concurrencyMode",
            "enableDeadLetter",
            "maxLen",
            "maxLenBytes",
            "exchangeKind",
            "publisherConfirm",
            "ttlInSeconds",
            "caCert",
            "clientCert",
            "clientKey",
            "saslExternal",
            "clientName",
            "heartBeat",
            "publishMessagePropertiesToMetadata",
        ]],
    },
    ComponentKind {
        type_: "bindings.cron",
        aliases: &[],
        versions: &["v1"],
        required: &["schedule"],
        optional: &[BINDING_FIELDS],
    },
    ComponentKind {
        type_: "bindings.http",
        aliases: &[],
        versions: &["v1"],
        required: &["url"],
        optional: &[
            BINDING_FIELDS,
            &[
                "responseTimeout",
                "maxResponseBodySize",
                "MTLSRootCA",
                "MTLSClientCert",
                "MTLSClientKey",
                "MTLSRenegotiation",
                "securityToken",
                "securityTokenHeader",
                "errorIfNot2XX",
            ],
        ],
    },
    ComponentKind {
        type_: "bindings.redis",
        aliases: &[],
        versions: &["v1"],
        required: &["redisHost"],
        optional: &[BINDING_FIELDS, REDIS_CONNECTION],
    },
    ComponentKind {
        type_: "bindings.mqtt3",
        aliases: &["bindings.mqtt"],
        versions: &["v1"],
        required: &["url", "topic"],
        optional: &[BINDING_FIELDS, MQTT_CONNECTION],
    },
    ComponentKind {
        type_: "bindings.localstorage",
        aliases: &[],
        versions: &["v1"],
        required: &["rootPath"],
        optional: &[BINDING_FIELDS],
    },
    ComponentKind {
        type_: "bindings.postgresql",
        aliases: &["bindings.postgres"],
        versions: &["v1"],
        required: &["connectionString|host"],
        optional: &[BINDING_FIELDS, POSTGRES_CONNECTION],
    },
    ComponentKind {
        type_: "state.in-memory",
        aliases: &[],
        versions: &["v1"],
        required: &[],
        optional: &[],
    },
    ComponentKind {
        type_: "state.sqlite",
        aliases: &[],
        versions: &["v1"],
        required: &["connectionString"],
        optional: &[&[
            "tableName",
            "timeout",
            "cleanupInterval",
            "busyTimeout",
            "disableWAL",
        ]],
    },
    ComponentKind {
        type_: "state.redis",
        aliases: &[],
        versions: &["v1"],
        required: &["redisHost"],
        optional: &[REDIS_CONNECTION, &["ttlInSeconds", "queryIndexes"]],
    },
    ComponentKind {
        type_: "state.postgresql",
        aliases: &["state.postgres"],
        versions: &["v1"],
        required: &["connectionString|host"],
        optional: &[POSTGRES_CONNECTION],
    },
    ComponentKind {
        type_: "lock.redis",
        aliases: &[],
        versions: &["v1"],
        required: &["redisHost"],
        // Dapr's retry fields for this type are accepted (a try-lock is one attempt anyway).
        optional: &[
            REDIS_CONNECTION,
            &[
                "maxRetries",
                "maxRetryBackoff",
                "redeliverInterval",
                "processingTimeout",
            ],
        ],
    },
    ComponentKind {
        type_: "lock.in-memory",
        aliases: &[],
        versions: &["v1"],
        required: &[],
        optional: &[],
    },
    ComponentKind {
        type_: "secretstores.local.env",
        aliases: &[],
        versions: &["v1"],
        required: &[],
        optional: &[&["prefix"]],
    },
    ComponentKind {
        type_: "secretstores.local.file",
        aliases: &[],
        versions: &["v1"],
        required: &["secretsFile"],
        optional: &[&["nestedSeparator", "multiValued"]],
    },
];

impl ComponentKind {
    /// Looks a type up by its name or an alias.
    pub fn find(type_: &str) -> Option<&'static ComponentKind> {
        CATALOGUE
            .iter()
            .find(|k| k.type_ == type_ || k.aliases.contains(&type_))
    }

    /// The building block: `state`, `pubsub`, `bindings`, `secretstores`, ….
    pub fn block(&self) -> &'static str {
        self.type_.split('.').next().unwrap_or(self.type_)
    }

    /// Checks a version and the names of the metadata fields given. Field names compare
    /// case-insensitively, as Dapr's metadata decoder does.
    pub fn check<'a>(
        &self,
        version: &str,
        fields: impl IntoIterator<Item = &'a str> + Clone,
    ) -> Result<(), CatalogueError> {
        if !version.is_empty() && !self.versions.contains(&version) {
            return Err(CatalogueError::UnknownVersion {
                version: version.to_owned(),
                supported: self.versions.join(", "),
            });
        }
        for group in self.required {
            let present = group.split('|').any(|want| {
                fields
                    .clone()
                    .into_iter()
                    .any(|f| f.eq_ignore_ascii_case(want))
            });
            if !present {
                return Err(CatalogueError::MissingField((*group).replace('|', " or ")));
            }
        }
        for field in fields {
            let known = self
                .required
                .iter()
                .flat_map(|g| g.split('|'))
                .chain(self.optional.iter().flat_map(|group| group.iter()).copied())
                .chain(RUNTIME_FIELDS.iter().copied())
                .any(|k| k.eq_ignore_ascii_case(field));
            if !known {
                return Err(CatalogueError::UnknownField(field.to_owned()));
            }
        }
        Ok(())
    }
}

/// Why a component's type, version or metadata is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogueError {
    UnknownVersion { version: String, supported: String },
    MissingField(String),
    UnknownField(String),
}

impl std::fmt::Display for CatalogueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatalogueError::UnknownVersion { version, supported } => {
                write!(
                    f,
                    "spec.version {version:?} is not supported (supported: {supported})"
                )
            }
            CatalogueError::MissingField(name) => {
                write!(f, "required metadata field {name:?} is missing")
            }
            CatalogueError::UnknownField(name) => write!(f, "unknown metadata field {name:?}"),
        }
    }
}

impl std::error::Error for CatalogueError {}

#[cfg(test)]
mod tests;
