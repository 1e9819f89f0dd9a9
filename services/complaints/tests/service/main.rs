//! Integration tests of the complaints service: the real service on a real
//! `nats-server` with JetStream, on SQLite and on PostgreSQL when one answers.

mod api;
mod events;
mod faults;
mod startup;
mod support;

/// Generates one `#[tokio::test]` per backend for each `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    $crate::support::run($crate::support::Backend::Sqlite, super::$name).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    $crate::support::run($crate::support::Backend::Postgres, super::$name).await
                }
            )*
        }
    };
}
