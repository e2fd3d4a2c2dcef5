//! Test support shared by the unit tests and the integration tests (feature `test-util`): real
//! sidecar processes on free loopback ports, stopped by PID on drop, and a small echo app. The
//! backend servers and the port helpers live in `tandem-testkit` and are re-exported here, so
//! `crate::testing::redis_server` and `tandem_sidecar::testing::free_port` keep working.

pub mod actor_app;
pub mod echo_app;
pub mod sidecar;

pub use tandem_testkit::{
    MosquittoServer, PostgresServer, RabbitServer, RedisServer, dns_server, free_port, fresh_dir,
    http_status, mosquitto_server, postgres_server, rabbitmq_server, redis_server,
};
