//! Complaints and merchant-alliance together, in-process on one real NATS: a
//! complaint about a merchant found at fault moves that merchant's score exactly
//! once, even when the event is delivered again; the merchant check at
//! submission says what the alliance knows, and a down alliance refuses nobody;
//! the trace of the call that resolves a complaint follows its events into the
//! alliance and out again.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use shequ_chassis::clock::SystemClock;
use shequ_chassis::config::CommonConfig;
use shequ_chassis::trace::TraceContext;
use shequ_proto::alliance::v1 as alliance;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as complaints;
use shequ_tests::service::TestService;
use shequ_tests::{NatsServer, eventually, stream_events};
use tonic::transport::Channel;

type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;
type Complaints = complaints::complaint_service_client::ComplaintServiceClient<Channel>;

/// Both services, each on its own SQLite file, stopped when dropped.
struct District {
    nats: NatsServer,
    merchants: Merchants,
    complaints: Complaints,
    alliance: Option<TestService<shequ_merchant_alliance::Application>>,
    _complaints: TestService<shequ_complaints::Application>,
    _data: tempfile::TempDir,
}

impl District {
    async fn start() -> anyhow::Result<Self> {
        let nats = NatsServer::start().await?;
        let data = tempfile::tempdir()?;
        let common = |name: &str| {
            let mut common = CommonConfig::new(nats.url(), data.path().join(name));
            common.grpc_addr = Some(([127, 0, 0, 1], 0).into());
            common
        };
        let alliance = TestService::<shequ_merchant_alliance::Application>::start(
            shequ_merchant_alliance::Config::new(common("alliance")),
            Arc::new(SystemClock),
        )
        .await?;

        let mut config = shequ_complaints::Config::new(common("complaints"));
        config.alliance_url = alliance.url();
        let complaints =
            TestService::<shequ_complaints::Application>::start(config, Arc::new(SystemClock))
                .await?;

        let mut organisation =
            complaints::organisation_service_client::OrganisationServiceClient::new(
                complaints.channel().await?,
            );
        organisation
            .load_organisation(complaints::LoadOrganisationRequest {
                organisation: Some(complaints::Organisation {
                    district_handler: "jinshui-office".into(),
                    communities: vec![complaints::Community {
                        id: "xililu".into(),
                        name: "西里路社区".into(),
                        committee_handler: "xililu-committee".into(),
                        grids: vec![complaints::Grid {
                            id: "xililu-1".into(),
                            name: "第一网格".into(),
                            worker: "worker-li".into(),
                            branch_handler: "branch-wang".into(),
                            building_ids: vec![],
                        }],
                    }],
                }),
            })
            .await?;
        Ok(Self {
            merchants: Merchants::new(alliance.channel().await?),
            complaints: Complaints::new(complaints.channel().await?),
            alliance: Some(alliance),
            _complaints: complaints,
            nats,
            _data: data,
        })
    }

    async fn register_merchant(&mut self, name: &str) -> anyhow::Result<String> {
        let merchant = self
            .merchants
            .register_merchant(alliance::RegisterMerchantRequest {
                request_id: format!("register-{name}"),
                details: Some(alliance::MerchantDetails {
                    name: name.into(),
                    category: alliance::Category::Dining as i32,
                    location: Some(common::GeoPoint {
                        latitude: 34.78,
                        longitude: 113.68,
                        datum: common::Datum::Gcj02 as i32,
                    }),
                    grid_id: "xililu-1".into(),
                    party_member_owner: true,
                    ..Default::default()
                }),
                actor: "operator-1".into(),
            })
            .await?
            .into_inner();
        Ok(merchant.merchant.unwrap_or_default().id)
    }

    async fn submit_about(
        &mut self,
        request_id: &str,
        merchant_id: &str,
    ) -> anyhow::Result<complaints::Complaint> {
        let response = self
            .complaints
            .submit_complaint(complaints::SubmitComplaintRequest {
                request_id: request_id.into(),
                text: "饭店占道经营".into(),
                channel: complaints::Channel::Hotline as i32,
                grid_id: "xililu-1".into(),
                merchant_id: merchant_id.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(response.complaint.unwrap_or_default())
    }

    /// Accepts and resolves a complaint, finding the merchant at fault or not.
    async fn resolve(&mut self, complaint_id: &str, at_fault: bool) -> anyhow::Result<()> {
        self.resolve_traced(complaint_id, at_fault, None).await
    }

    /// [`Self::resolve`], the resolution sent with a `traceparent` when one is given.
    async fn resolve_traced(
        &mut self,
        complaint_id: &str,
        at_fault: bool,
        traceparent: Option<&str>,
    ) -> anyhow::Result<()> {
        self.complaints
            .accept_complaint(complaints::AcceptComplaintRequest {
                complaint_id: complaint_id.into(),
                actor: "worker-li".into(),
                ..Default::default()
            })
            .await?;
        let mut request = tonic::Request::new(complaints::ResolveComplaintRequest {
            complaint_id: complaint_id.into(),
            actor: "worker-li".into(),
            note: "已核实并整改".into(),
            merchant_at_fault: at_fault,
            ..Default::default()
        });
        if let Some(value) = traceparent {
            request.metadata_mut().insert("traceparent", value.parse()?);
        }
        self.complaints.resolve_complaint(request).await?;
        Ok(())
    }

    /// The merchant's ledger once it has `entries` entries.
    async fn ledger(
        &self,
        merchant_id: &str,
        entries: usize,
    ) -> anyhow::Result<alliance::GetCreditLedgerResponse> {
        eventually(Duration::from_secs(20), || {
            let mut merchants = self.merchants.clone();
            async move {
                let ledger = merchants
                    .get_credit_ledger(alliance::GetCreditLedgerRequest {
                        merchant_id: merchant_id.into(),
                    })
                    .await?
                    .into_inner();
                anyhow::ensure!(
                    ledger.entries.len() >= entries,
                    "{} entries",
                    ledger.entries.len()
                );
                Ok(ledger)
            }
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complaint_resolved_at_fault_moves_the_merchants_score_exactly_once() -> anyhow::Result<()>
{
    let mut district = District::start().await?;
    let merchant = district.register_merchant("老王面馆").await?;
    let complaint = district.submit_about("c-1", &merchant).await?;
    assert_eq!(
        complaint.merchant_check(),
        complaints::MerchantCheck::Verified
    );

    district.resolve(&complaint.id, true).await?;
    let after_one = district.ledger(&merchant, 1).await?;

    // The resolved event delivered again (past JetStream's duplicate window, as
    // after an outage): read it back from the stream and publish it anew.
    let resolved = stream_events(&district.nats.url(), "COMPLAINTS")
        .await?
        .into_iter()
        .find(|e| e.event.event_type == "shequ.complaints.complaint.resolved.v1")
        .ok_or_else(|| anyhow::anyhow!("no resolved event in the stream"))?;
    let client = async_nats::connect(district.nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", "redelivered-resolved-event");
    js.publish_with_headers(
        resolved.event.event_type.clone(),
        headers,
        resolved.raw.to_string().into(),
    )
    .await?
    .await?;
    // A second complaint after it: once its deduction shows, the redelivery has been handled.
    let second = district.submit_about("c-2", &merchant).await?;
    district.resolve(&second.id, true).await?;
    let after_two = district.ledger(&merchant, 2).await?;

    assert_eq!(after_one.score, 90);
    assert_eq!(after_one.entries[0].reason, "complaint_at_fault");
    assert_eq!(after_one.entries[0].reference, complaint.id);
    assert_eq!(after_one.entries[0].source_event_id, resolved.event.id);
    let references: Vec<&str> = after_two
        .entries
        .iter()
        .map(|e| e.reference.as_str())
        .collect();
    assert_eq!(
        references,
        [complaint.id.as_str(), second.id.as_str()],
        "the redelivery changed nothing"
    );
    assert_eq!(after_two.score, 80);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_check_reports_members_strangers_and_a_down_alliance() -> anyhow::Result<()> {
    let mut district = District::start().await?;
    let merchant = district.register_merchant("小李超市").await?;

    let member = district.submit_about("c-1", &merchant).await?;
    let stranger = district.submit_about("c-2", "not-in-the-alliance").await?;
    district.alliance.take();
    let unverified = eventually(Duration::from_secs(20), || {
        let mut complaints = district.complaints.clone();
        let merchant = merchant.clone();
        async move {
            let request_id = format!("c-3-{}", uuid::Uuid::now_v7());
            let complaint = complaints
                .submit_complaint(complaints::SubmitComplaintRequest {
                    request_id,
                    text: "超市过期食品".into(),
                    channel: complaints::Channel::MiniProgram as i32,
                    grid_id: "xililu-1".into(),
                    merchant_id: merchant,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .complaint
                .unwrap_or_default();
            anyhow::ensure!(
                complaint.merchant_check() == complaints::MerchantCheck::Unverified,
                "alliance still answering"
            );
            Ok(complaint)
        }
    })
    .await?;

    assert_eq!(member.merchant_check(), complaints::MerchantCheck::Verified);
    assert_eq!(
        stranger.merchant_check(),
        complaints::MerchantCheck::NotAMember
    );
    assert_eq!(
        unverified.status(),
        complaints::Status::Submitted,
        "accepted although the alliance is down"
    );
    Ok(())
}

/// The one event of `event_type` in `stream`, once it is there.
async fn the_event(
    nats_url: &str,
    stream: &str,
    event_type: &str,
) -> anyhow::Result<shequ_tests::StoredEvent> {
    eventually(Duration::from_secs(20), || async {
        let mut found: Vec<_> = stream_events(nats_url, stream)
            .await?
            .into_iter()
            .filter(|e| e.event.event_type == event_type)
            .collect();
        anyhow::ensure!(found.len() == 1, "{} {event_type} events", found.len());
        Ok(found.remove(0))
    })
    .await
}

/// The trace id of an event's `traceparent` header, which must be valid.
fn trace_of(event: &shequ_tests::StoredEvent) -> anyhow::Result<TraceContext> {
    let header = event
        .traceparent
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("{} has no traceparent header", event.event.event_type))?;
    TraceContext::parse(header).ok_or_else(|| {
        anyhow::anyhow!(
            "{} has a malformed traceparent {header:?}",
            event.event.event_type
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_of_a_resolution_follows_its_event_and_the_credit_change_it_causes()
-> anyhow::Result<()> {
    // Arrange
    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut district = District::start().await?;
    let merchant = district.register_merchant("老张烧烤").await?;
    let complaint = district.submit_about("c-1", &merchant).await?;

    // Act
    district
        .resolve_traced(&complaint.id, true, Some(CALLER))
        .await?;

    // Assert
    let nats = district.nats.url();
    let resolved = the_event(
        &nats,
        "COMPLAINTS",
        "shequ.complaints.complaint.resolved.v1",
    )
    .await?;
    let credit = the_event(&nats, "ALLIANCE", "shequ.alliance.credit.changed.v1").await?;
    let resolved_trace = trace_of(&resolved)?;
    let credit_trace = trace_of(&credit)?;
    assert_eq!(
        resolved_trace.trace_id_hex(),
        TRACE,
        "the resolved event carries the caller's trace"
    );
    assert_ne!(
        resolved.traceparent.as_deref(),
        Some(CALLER),
        "from the complaints service's own span, not the caller's"
    );
    assert_eq!(
        credit_trace.trace_id_hex(),
        TRACE,
        "the credit change it caused carries it on"
    );
    assert_eq!(credit.event.subject, merchant);
    // Work the call did not cause is in other traces.
    let accepted = the_event(
        &nats,
        "COMPLAINTS",
        "shequ.complaints.complaint.accepted.v1",
    )
    .await?;
    assert_ne!(trace_of(&accepted)?.trace_id_hex(), TRACE);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_traceparent_fails_no_call_and_starts_a_new_trace() -> anyhow::Result<()> {
    let mut district = District::start().await?;
    let merchant = district.register_merchant("小赵水果").await?;
    let complaint = district.submit_about("c-1", &merchant).await?;

    district
        .resolve_traced(&complaint.id, true, Some("00-garbage-01"))
        .await?;

    let nats = district.nats.url();
    let resolved = the_event(
        &nats,
        "COMPLAINTS",
        "shequ.complaints.complaint.resolved.v1",
    )
    .await?;
    let credit = the_event(&nats, "ALLIANCE", "shequ.alliance.credit.changed.v1").await?;
    assert_eq!(
        trace_of(&credit)?.trace_id,
        trace_of(&resolved)?.trace_id,
        "the new trace is followed all the same"
    );
    Ok(())
}
