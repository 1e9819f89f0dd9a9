//! What the process-level tests share: a one-grid organisation, a complaint
//! and a merchant to register, a complaint resolved at the merchant's fault
//! and the deductions it made, a `complaint.resolved` payload for consumers'
//! tests, and reading a service's metrics.

use shequ_proto::alliance::v1 as alliance;
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as complaints;
use tonic::transport::Channel;

use crate::system::ServiceProcess;

type Complaints = complaints::complaint_service_client::ComplaintServiceClient<Channel>;
type Organisation = complaints::organisation_service_client::OrganisationServiceClient<Channel>;
type Merchants = alliance::merchant_service_client::MerchantServiceClient<Channel>;

/// The sum of a metric's samples whose labels include each of `labels`
/// (`name="value"`).
pub fn sample_sum(metrics: &str, name: &str, labels: &[&str]) -> u64 {
    metrics
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A metric of a running replica, summed over the samples with `labels`.
pub async fn metric(process: &ServiceProcess, name: &str, labels: &[&str]) -> anyhow::Result<u64> {
    Ok(sample_sum(&process.metrics().await?, name, labels))
}

/// One community with one grid, `xinyuan-1`, whose worker is `worker-li`.
pub fn organisation() -> complaints::Organisation {
    complaints::Organisation {
        district_handler: "jinshui-office".into(),
        communities: vec![complaints::Community {
            id: "xinyuan".into(),
            name: "信缘社区".into(),
            committee_handler: "xinyuan-committee".into(),
            grids: vec![complaints::Grid {
                id: "xinyuan-1".into(),
                name: "第一网格".into(),
                worker: "worker-li".into(),
                branch_handler: "branch-wang".into(),
                building_ids: vec![],
            }],
        }],
    }
}

/// Loads [`organisation`] into the complaints service `process`.
pub async fn load_organisation(process: &ServiceProcess) -> anyhow::Result<()> {
    Organisation::new(process.channel()?)
        .load_organisation(complaints::LoadOrganisationRequest {
            organisation: Some(organisation()),
        })
        .await?;
    Ok(())
}

/// A mini-program complaint in grid `xinyuan-1`, about `merchant` unless empty.
pub fn complaint(
    request_id: &str,
    category: complaints::Category,
    merchant: &str,
) -> complaints::SubmitComplaintRequest {
    complaints::SubmitComplaintRequest {
        request_id: request_id.into(),
        text: "楼道堆物，影响通行".into(),
        channel: complaints::Channel::MiniProgram as i32,
        category: category as i32,
        priority: complaints::Priority::Normal as i32,
        grid_id: "xinyuan-1".into(),
        merchant_id: merchant.into(),
        ..Default::default()
    }
}

/// Submits `request`; the new (or the earlier) complaint's id.
pub async fn submit(
    process: &ServiceProcess,
    request: complaints::SubmitComplaintRequest,
) -> anyhow::Result<String> {
    let response = Complaints::new(process.channel()?)
        .submit_complaint(request)
        .await?
        .into_inner();
    Ok(response.complaint.unwrap_or_default().id)
}

/// A dining merchant in grid `xinyuan-1` to register.
pub fn merchant(name: &str) -> alliance::RegisterMerchantRequest {
    alliance::RegisterMerchantRequest {
        request_id: format!("merchant-{name}"),
        details: Some(alliance::MerchantDetails {
            name: name.into(),
            category: alliance::Category::Dining as i32,
            location: Some(common::GeoPoint {
                latitude: 34.77,
                longitude: 113.67,
                datum: common::Datum::Gcj02 as i32,
            }),
            grid_id: "xinyuan-1".into(),
            ..Default::default()
        }),
        actor: "operator-1".into(),
    }
}

/// Accepts and resolves `complaint_id` with the merchant at fault.
pub async fn resolve_at_fault(process: &ServiceProcess, complaint_id: &str) -> anyhow::Result<()> {
    let mut client = Complaints::new(process.channel()?);
    client
        .accept_complaint(complaints::AcceptComplaintRequest {
            complaint_id: complaint_id.into(),
            actor: "worker-li".into(),
            request_id: format!("accept-{complaint_id}"),
            ..Default::default()
        })
        .await?;
    client
        .resolve_complaint(complaints::ResolveComplaintRequest {
            complaint_id: complaint_id.into(),
            actor: "worker-li".into(),
            note: "已处理".into(),
            merchant_at_fault: true,
            request_id: format!("resolve-{complaint_id}"),
        })
        .await?;
    Ok(())
}

/// The complaints `merchant_id` was found at fault for, as its credit ledger
/// on `process` lists the deductions (one entry each, in ledger order).
pub async fn at_fault_deductions(
    process: &ServiceProcess,
    merchant_id: &str,
) -> anyhow::Result<Vec<String>> {
    let ledger = Merchants::new(process.channel()?)
        .get_credit_ledger(alliance::GetCreditLedgerRequest {
            merchant_id: merchant_id.into(),
        })
        .await?
        .into_inner();
    Ok(ledger
        .entries
        .into_iter()
        .filter(|entry| entry.reason == "complaint_at_fault")
        .map(|entry| entry.reference)
        .collect())
}

/// Waits until the service whose admin port is `admin_port` has finished a
/// pass of its sweeper `sweeper` (`shequ_sweeper_runs_total` counts finished
/// passes): a test that runs passes itself first lets the one at start end.
pub async fn first_sweep_done(admin_port: u16, sweeper: &str) -> anyhow::Result<()> {
    let label = format!("sweeper=\"{sweeper}\"");
    crate::eventually(std::time::Duration::from_secs(20), || async {
        let (status, body) = crate::system::http_get(admin_port, "/metrics").await?;
        anyhow::ensure!(status == 200, "/metrics answered {status}");
        let passes = sample_sum(&body, "shequ_sweeper_runs_total", &[&label]);
        anyhow::ensure!(passes >= 1, "the {sweeper} sweeper has not finished a pass");
        Ok(())
    })
    .await
}

/// The `complaint.resolved` payload of complaint `complaint_id` about
/// `category`, come in by `channel`, in grid xinyuan-1 of Xinyuan, resolved
/// by worker-li at `at`: on time, about no merchant or elder, no one at fault.
/// Consumers' tests set what they are about (a merchant, an elder, the fault).
pub fn resolved(
    complaint_id: &str,
    category: shequ_proto::events::complaints::Category,
    channel: shequ_proto::events::complaints::Channel,
    at: chrono::DateTime<chrono::Utc>,
) -> shequ_proto::events::complaints::Resolved {
    use shequ_proto::events::complaints::{ComplaintState, Level, Priority, Resolved, Status};
    Resolved {
        complaint: ComplaintState {
            complaint_id: complaint_id.into(),
            status: Status::Resolved,
            category,
            priority: Priority::Normal,
            channel,
            community_id: "xinyuan".into(),
            grid_id: "xinyuan-1".into(),
            level: Level::GridWorker,
            merchant_id: None,
            elder_id: None,
            actor: "worker-li".into(),
        },
        resolved_at: at,
        on_time: true,
        merchant_at_fault: false,
        follow_up_due_at: at,
    }
}
