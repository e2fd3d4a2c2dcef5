//! The catalogue's lookups and field checks.

use super::*;

#[test]
fn finds_types_and_aliases() {
    assert_eq!(
        ComponentKind::find("state.postgres").map(|k| k.type_),
        Some("state.postgresql")
    );
    assert!(ComponentKind::find("state.nope").is_none());
    assert_eq!(
        ComponentKind::find("secretstores.local.env").map(|k| k.block()),
        Some("secretstores")
    );
}

#[test]
fn checks_versions_and_fields() {
    let redis = ComponentKind::find("state.redis").expect("redis");
    assert_eq!(
        redis.check("v1", ["redisHost", "redisDB", "keyPrefix"]),
        Ok(())
    );
    assert_eq!(redis.check("", ["REDISHOST"]), Ok(()));
    assert_eq!(
        redis.check("v1", ["redisDB"]),
        Err(CatalogueError::MissingField("redisHost".into()))
    );
    assert_eq!(
        redis.check("v1", ["redisHost", "redisHots"]),
        Err(CatalogueError::UnknownField("redisHots".into()))
    );
    assert!(matches!(
        redis.check("v9", ["redisHost"]),
        Err(CatalogueError::UnknownVersion { .. })
    ));
    let pg = ComponentKind::find("state.postgresql").expect("pg");
    assert_eq!(pg.check("v1", ["host"]), Ok(()));
    assert_eq!(
        pg.check("v1", ["timeout"]),
        Err(CatalogueError::MissingField(
            "connectionString or host".into()
        ))
    );
}

#[test]
fn lock_stores_take_redis_connection_fields_and_daprs_retry_fields() {
    let redis = ComponentKind::find("lock.redis").expect("lock.redis");
    assert_eq!(redis.block(), "lock");
    assert_eq!(
        redis.check(
            "v1",
            ["redisHost", "redisPassword", "maxRetries", "keyPrefix"]
        ),
        Ok(())
    );
    assert_eq!(
        redis.check("v1", ["redisDB"]),
        Err(CatalogueError::MissingField("redisHost".into()))
    );
    let memory = ComponentKind::find("lock.in-memory").expect("lock.in-memory");
    assert_eq!(memory.check("", std::iter::empty()), Ok(()));
}
