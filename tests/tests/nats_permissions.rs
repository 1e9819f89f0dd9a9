//! `deploy/nats/nats.conf` against a real nats-server started with it: each
//! service may publish only its own events, the subscriber may replay every
//! stream but not publish, purge or delete, and a wrong password gets nobody in.
//! (That the services run under their users: `system.rs`.)

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use shequ_chassis::nats::{StreamSpec, ensure_stream};
use shequ_proto::events::{alliance, care, complaints};
use shequ_tests::NatsServer;

/// The user, its password, its stream, and a subject of its own.
const USERS: [(&str, &str, StreamSpec, &str); 3] = [
    (
        "complaints",
        "complaints-secret",
        StreamSpec {
            name: complaints::STREAM,
            subjects: complaints::SUBJECTS,
        },
        "shequ.complaints.complaint.submitted.v1",
    ),
    (
        "merchant-alliance",
        "alliance-secret",
        StreamSpec {
            name: alliance::STREAM,
            subjects: alliance::SUBJECTS,
        },
        "shequ.alliance.merchant.registered.v1",
    ),
    (
        "pensioner-care",
        "care-secret",
        StreamSpec {
            name: care::STREAM,
            subjects: care::SUBJECTS,
        },
        "shequ.care.elder.registered.v1",
    ),
];
const SUBSCRIBER: (&str, &str) = ("subscriber", "subscriber-secret");

fn config() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/nats/nats.conf")
}

/// A server with `deploy/nats/nats.conf`, and each service's stream created by
/// that service's user.
async fn server() -> anyhow::Result<NatsServer> {
    let server = NatsServer::start_with_config(
        &config(),
        &[
            ("SHEQU_NATS_COMPLAINTS_PASSWORD", USERS[0].1),
            ("SHEQU_NATS_ALLIANCE_PASSWORD", USERS[1].1),
            ("SHEQU_NATS_CARE_PASSWORD", USERS[2].1),
            ("SHEQU_NATS_SUBSCRIBER_PASSWORD", SUBSCRIBER.1),
        ],
    )
    .await?;
    for (user, password, stream, _) in USERS {
        ensure_stream(&as_user(&server, user, password).await?, stream).await?;
    }
    Ok(server)
}

async fn as_user(
    server: &NatsServer,
    user: &str,
    password: &str,
) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .user_and_password(user.into(), password.into())
        .connect(server.url())
        .await?;
    let mut js = jetstream::new(client);
    // A refused publish shows as a missing ack: do not wait long for it.
    js.set_timeout(Duration::from_millis(700));
    Ok(js)
}

/// Publishes and waits for the stream's ack.
async fn publish(js: &jetstream::Context, subject: &str) -> anyhow::Result<()> {
    js.publish(subject.to_owned(), "{}".into()).await?.await?;
    Ok(())
}

async fn messages(js: &jetstream::Context, stream: &str) -> anyhow::Result<u64> {
    Ok(js.get_stream(stream).await?.info().await?.state.messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_publishes_its_own_events_and_no_other() -> anyhow::Result<()> {
    let server = server().await?;
    for (user, password, stream, own_subject) in USERS {
        let js = as_user(&server, user, password).await?;
        publish(&js, own_subject).await?;
        assert_eq!(
            messages(&js, stream.name).await?,
            1,
            "{user} published its own"
        );

        for (_, _, other, other_subject) in USERS.iter().filter(|u| u.0 != user) {
            let before = messages(&js, other.name).await?;
            let forged = publish(&js, other_subject).await;
            assert!(forged.is_err(), "{user} published {other_subject}");
            assert_eq!(
                messages(&js, other.name).await?,
                before,
                "{user} into {}",
                other.name
            );
        }
        let deleted = js.delete_stream(stream.name).await;
        assert!(deleted.is_err(), "{user} deleted its stream");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscriber_replays_every_stream_but_cannot_publish_purge_or_delete()
-> anyhow::Result<()> {
    let server = server().await?;
    for (user, password, _, subject) in USERS {
        publish(&as_user(&server, user, password).await?, subject).await?;
    }
    let js = as_user(&server, SUBSCRIBER.0, SUBSCRIBER.1).await?;

    for (_, _, stream, subject) in USERS {
        let replayed = replay(&js, stream.name).await?;
        assert_eq!(
            replayed,
            vec![subject.to_owned()],
            "{} replayed",
            stream.name
        );

        let forged = publish(&js, subject).await;
        assert!(forged.is_err(), "the subscriber published {subject}");
        let handle = js.get_stream(stream.name).await?;
        assert!(
            handle.purge().await.is_err(),
            "the subscriber purged {}",
            stream.name
        );
        assert!(
            js.delete_stream(stream.name).await.is_err(),
            "the subscriber deleted {}",
            stream.name
        );
        assert_eq!(
            messages(&js, stream.name).await?,
            1,
            "{} unchanged",
            stream.name
        );
    }
    Ok(())
}

/// The subjects of every message in `stream`, read with an ephemeral consumer.
async fn replay(js: &jetstream::Context, stream: &str) -> anyhow::Result<Vec<String>> {
    use futures::StreamExt;
    let consumer = js
        .get_stream(stream)
        .await?
        .create_consumer(jetstream::consumer::pull::Config {
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut batch = consumer
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(1))
        .messages()
        .await?;
    let mut subjects = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.map_err(|error| anyhow::anyhow!("{error}"))?;
        message
            .ack()
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        subjects.push(message.subject.to_string());
    }
    Ok(subjects)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_no_user_is_refused() -> anyhow::Result<()> {
    let server = server().await?;
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password("complaints".into(), "guess".into())
        .connect(server.url())
        .await;
    assert!(wrong.is_err(), "connected with a wrong password");
    let anonymous = async_nats::connect(server.url()).await;
    assert!(anonymous.is_err(), "connected without a user");
    let right = as_user(&server, USERS[0].0, USERS[0].1).await?;
    assert_eq!(
        messages(&right, "COMPLAINTS").await?,
        0,
        "the right password gets in"
    );
    Ok(())
}
