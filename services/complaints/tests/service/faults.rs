//! Faults: NATS down for a while, the service killed with SIGKILL and restarted,
//! SIGTERM. No accepted complaint and no event may be lost or duplicated.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use shequ_proto::complaints::v1 as pb;
use shequ_tests::{NatsServer, StoredEvent, eventually, free_port, stream_events};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::support::{Complaints, OrganisationClient, TestApp, sample_organisation, submission};

shequ_tests::on_both_backends!(submissions_while_nats_is_down_reach_the_stream_once_it_returns);

async fn submissions_while_nats_is_down_reach_the_stream_once_it_returns(
    mut app: TestApp,
) -> anyhow::Result<()> {
    app.load_organisation().await?;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(app.submit(&format!("before-{n}"), "路灯不亮").await?.id);
    }
    app.wait_for_events(3).await?;

    app.nats.stop().await?;
    for n in 0..10 {
        ids.push(app.submit(&format!("during-{n}"), "垃圾没人清运").await?.id);
    }
    app.nats.restart().await?;
    let events = app.wait_for_events(ids.len()).await?;

    assert_exactly_one_submitted_event_each(&ids, &events);
    Ok(())
}

fn assert_exactly_one_submitted_event_each(ids: &[String], events: &[StoredEvent]) {
    assert_eq!(
        events.len(),
        ids.len(),
        "one event per accepted complaint, none lost, none doubled"
    );
    let event_ids: HashSet<&str> = events.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(event_ids.len(), events.len(), "no event id twice");
    let mut per_complaint: HashMap<&str, usize> = HashMap::new();
    for event in events {
        assert_eq!(
            event.event.event_type,
            "shequ.complaints.complaint.submitted.v1"
        );
        *per_complaint
            .entry(event.event.subject.as_str())
            .or_default() += 1;
    }
    for id in ids {
        assert_eq!(per_complaint.get(id.as_str()), Some(&1), "complaint {id}");
    }
}

/// The `complaints` binary as a separate process.
struct ServiceProcess {
    child: Child,
    port: u16,
}

impl ServiceProcess {
    async fn start(nats_url: &str, data_dir: &Path, port: u16) -> anyhow::Result<Self> {
        let verbose = std::env::var_os("TEST_LOG").is_some();
        let child = Command::new(env!("CARGO_BIN_EXE_complaints"))
            .env("SHEQU_NATS_URL", nats_url)
            .env("SHEQU_DATA_DIR", data_dir)
            .env("SHEQU_GRPC_ADDR", format!("127.0.0.1:{port}"))
            .env("SHEQU_AUTH_DISABLED", "true")
            .env("SHEQU_ADMIN_ADDR", "127.0.0.1:0")
            .env_remove("SHEQU_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(if verbose {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .kill_on_drop(true)
            .spawn()
            .context("starting the complaints binary")?;
        let process = Self { child, port };
        eventually(Duration::from_secs(20), || async {
            process.channel().await.map(|_| ())
        })
        .await?;
        Ok(process)
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        Ok(
            Channel::from_shared(format!("http://127.0.0.1:{}", self.port))?
                .connect()
                .await?,
        )
    }

    async fn complaints(&self) -> anyhow::Result<Complaints> {
        Ok(Complaints::new(self.channel().await?))
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the process has exited")
    }
}

async fn submit(client: &mut Complaints, request_id: &str) -> anyhow::Result<String> {
    let response = client
        .submit_complaint(submission(request_id, "路灯不亮"))
        .await?
        .into_inner();
    Ok(response.complaint.context("no complaint")?.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_service_loses_no_accepted_complaint_and_no_pending_event() -> anyhow::Result<()> {
    let mut nats = NatsServer::start().await?;
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let mut service = ServiceProcess::start(&nats.url(), data.path(), port).await?;
    OrganisationClient::new(service.channel().await?)
        .load_organisation(pb::LoadOrganisationRequest {
            organisation: Some(sample_organisation()),
        })
        .await?;
    let mut client = service.complaints().await?;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(submit(&mut client, &format!("before-{n}")).await?);
    }
    eventually(Duration::from_secs(20), || async {
        anyhow::ensure!(stream_events(&nats.url(), "COMPLAINTS").await?.len() == 3);
        Ok(())
    })
    .await?;

    // NATS goes down; complaints are still accepted, then the service is killed
    // with their events still in its outbox.
    nats.stop().await?;
    for n in 0..5 {
        ids.push(submit(&mut client, &format!("pending-{n}")).await?);
    }
    service.child.kill().await?;
    service = ServiceProcess::start(&nats.url(), data.path(), port).await?;
    let mut client = service.complaints().await?;
    for n in 0..2 {
        ids.push(submit(&mut client, &format!("after-restart-{n}")).await?);
    }
    nats.restart().await?;

    let events = eventually(Duration::from_secs(30), || async {
        let events = stream_events(&nats.url(), "COMPLAINTS").await?;
        anyhow::ensure!(
            events.len() >= ids.len(),
            "{} of {} events",
            events.len(),
            ids.len()
        );
        Ok(events)
    })
    .await?;
    assert_exactly_one_submitted_event_each(&ids, &events);
    for id in &ids {
        let found = client
            .get_complaint(pb::GetComplaintRequest {
                complaint_id: id.clone(),
            })
            .await?;
        assert_eq!(found.into_inner().complaint.map(|c| c.id), Some(id.clone()));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_service_cleanly_after_publishing_its_outbox() -> anyhow::Result<()> {
    let nats = NatsServer::start().await?;
    let data = tempfile::tempdir()?;
    let mut service = ServiceProcess::start(&nats.url(), data.path(), free_port()?).await?;
    OrganisationClient::new(service.channel().await?)
        .load_organisation(pb::LoadOrganisationRequest {
            organisation: Some(sample_organisation()),
        })
        .await?;
    let mut client = service.complaints().await?;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(submit(&mut client, &format!("r-{n}")).await?);
    }

    let term = Command::new("kill")
        .args(["-TERM", &service.pid()?.to_string()])
        .status()
        .await?;
    let exit = tokio::time::timeout(Duration::from_secs(15), service.child.wait()).await??;

    assert!(term.success());
    assert!(exit.success(), "exit status {exit:?}");
    let events = stream_events(&nats.url(), "COMPLAINTS").await?;
    assert_exactly_one_submitted_event_each(&ids, &events);
    Ok(())
}
