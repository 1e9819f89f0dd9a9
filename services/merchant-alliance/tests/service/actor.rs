//! Who a change is recorded as: the authenticated caller (its token's name),
//! whatever the request's `actor` says; with authentication off, the
//! account the request names, or "anonymous". Never a free-text name.

use shequ_chassis::config::{AuthSettings, CommonConfig};
use shequ_merchant_alliance::Config;
use shequ_proto::alliance::v1 as pb;
use shequ_tests::{Backend, StoredEvent};
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::support::{TestApp, dining, run_with, violated_field};

shequ_tests::on_both_backends!(without_authentication_the_actor_is_the_named_account_or_anonymous);

const STAFF_TOKEN: &str = "staff-token-0123456789abcdef0123456789abcdef";
const OPERATOR_TOKEN: &str = "operator-token-0123456789abcdef0123456789abcd";

/// A client interceptor presenting one bearer token.
#[derive(Debug, Clone)]
struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Caller =
    pb::merchant_service_client::MerchantServiceClient<InterceptedService<Channel, Bearer>>;

async fn as_caller(app: &TestApp, token: &str) -> anyhow::Result<Caller> {
    let bearer = Bearer(format!("Bearer {token}").parse()?);
    Ok(Caller::new(InterceptedService::new(
        app.channel().await?,
        bearer,
    )))
}

/// The tests' config with authentication on: a staff token named
/// `district-staff` and an operator token named `ops-console`.
fn authenticated()
-> anyhow::Result<impl Fn(CommonConfig) -> anyhow::Result<Config> + Send + Sync + 'static> {
    let dir = tempfile::tempdir()?;
    let file = shequ_tests::auth::token_file(
        dir.path(),
        &[
            ("district-staff", "staff", STAFF_TOKEN),
            ("ops-console", "operator", OPERATOR_TOKEN),
        ],
    )?;
    Ok(move |mut common: CommonConfig| {
        // The token file lives as long as the service may restart.
        let _dir = &dir;
        common.auth = AuthSettings {
            tokens_file: Some(file.clone()),
            disabled: false,
            service_token_file: None,
        };
        Ok(Config::new(common))
    })
}

mod configured_on_sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_actor_of_every_change_is_the_authenticated_caller_whatever_the_request_says()
    -> anyhow::Result<()> {
        super::run_with(
            super::Backend::Sqlite,
            super::authenticated()?,
            super::the_actor_of_every_change_is_the_authenticated_caller_whatever_the_request_says,
        )
        .await
    }
}

mod configured_on_postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_actor_of_every_change_is_the_authenticated_caller_whatever_the_request_says()
    -> anyhow::Result<()> {
        super::run_with(
            super::Backend::Postgres,
            super::authenticated()?,
            super::the_actor_of_every_change_is_the_authenticated_caller_whatever_the_request_says,
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn building_points_are_loaded_by_operators_and_coverage_read_by_staff() -> anyhow::Result<()>
{
    run_with(
        Backend::Sqlite,
        authenticated()?,
        |app: TestApp| async move {
            let load = pb::LoadBuildingsRequest {
                buildings: vec![pb::Building {
                    building_id: "xinyuan-b1".into(),
                    grid_id: "xinyuan-1".into(),
                    point: dining("", 0.0, &[]).location,
                }],
            };
            let mut staff = as_caller(&app, STAFF_TOKEN).await?;
            let refused = staff
                .load_buildings(load.clone())
                .await
                .expect_err("staff may not replace the building points");
            assert_eq!(refused.code(), Code::PermissionDenied);
            let mut operator = as_caller(&app, OPERATOR_TOKEN).await?;
            operator.load_buildings(load).await?;
            let coverage = staff
                .get_circle_coverage(pb::GetCircleCoverageRequest::default())
                .await?
                .into_inner();
            assert_eq!(coverage.grids.len(), 1);
            Ok(())
        },
    )
    .await
}

/// The actor an alliance event records: its merchant's, or its own.
fn event_actor(event: &StoredEvent) -> Option<String> {
    let data = &event.event.data;
    data.pointer("/merchant/actor")
        .or_else(|| data.get("actor"))
        .and_then(|actor| actor.as_str())
        .map(str::to_owned)
}

async fn the_actor_of_every_change_is_the_authenticated_caller_whatever_the_request_says(
    app: TestApp,
) -> anyhow::Result<()> {
    let mut staff = as_caller(&app, STAFF_TOKEN).await?;
    let mut operator = as_caller(&app, OPERATOR_TOKEN).await?;
    // A person's name where an account belongs: ignored, never recorded.
    let claimed = "张三".to_owned();

    let id = staff
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-1".into(),
            details: Some(dining("模范店", 0.0, &[])),
            actor: claimed.clone(),
        })
        .await?
        .into_inner()
        .merchant
        .unwrap_or_default()
        .id;
    staff
        .update_merchant(pb::UpdateMerchantRequest {
            merchant_id: id.clone(),
            details: Some(dining("模范助老店", 0.0, &[])),
            actor: claimed.clone(),
        })
        .await?;
    let yesterday = shequ_proto::time::timestamp(app.clock_now() - chrono::Duration::days(1));
    for n in 0..2 {
        staff
            .record_activity(pb::RecordActivityRequest {
                request_id: format!("a-{n}"),
                merchant_id: id.clone(),
                kind: pb::ActivityKind::Welfare as i32,
                description: "为独居老人送餐".into(),
                happened_at: Some(yesterday),
                actor: claimed.clone(),
            })
            .await?;
    }
    operator
        .evaluate_model_merchants(pb::EvaluateModelMerchantsRequest {
            period: "2026-Q4".into(),
            award: true,
            actor: claimed.clone(),
        })
        .await?;
    staff
        .suspend_merchant(pb::SuspendMerchantRequest {
            merchant_id: id.clone(),
            reason: "整改".into(),
            actor: claimed.clone(),
        })
        .await?;
    staff
        .reinstate_merchant(pb::ReinstateMerchantRequest {
            merchant_id: id.clone(),
            actor: String::new(),
        })
        .await?;

    let ledger = staff
        .get_credit_ledger(pb::GetCreditLedgerRequest {
            merchant_id: id.clone(),
        })
        .await?
        .into_inner();
    let entry_actors: Vec<&str> = ledger.entries.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(entry_actors, ["district-staff", "district-staff"]);
    let events = app.wait_for_events(7).await?;
    let actors: Vec<(String, Option<String>)> = events
        .iter()
        .map(|e| (e.event.event_type.clone(), event_actor(e)))
        .collect();
    let by = |who: &str| Some(who.to_owned());
    assert_eq!(
        actors,
        [
            (
                "shequ.alliance.merchant.registered.v1".into(),
                by("district-staff")
            ),
            (
                "shequ.alliance.merchant.updated.v1".into(),
                by("district-staff")
            ),
            (
                "shequ.alliance.credit.changed.v1".into(),
                by("district-staff")
            ),
            (
                "shequ.alliance.credit.changed.v1".into(),
                by("district-staff")
            ),
            (
                "shequ.alliance.model_merchant.awarded.v1".into(),
                by("ops-console")
            ),
            (
                "shequ.alliance.merchant.suspended.v1".into(),
                by("district-staff")
            ),
            (
                "shequ.alliance.merchant.reinstated.v1".into(),
                by("district-staff")
            ),
        ]
    );
    for event in &events {
        assert!(
            !event.raw.to_string().contains(&claimed),
            "no event carries the claimed name: {}",
            event.raw
        );
    }
    Ok(())
}

async fn without_authentication_the_actor_is_the_named_account_or_anonymous(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let unnamed = app
        .merchants
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-1".into(),
            details: Some(dining("店", 0.0, &[])),
            actor: String::new(),
        })
        .await?
        .into_inner()
        .merchant
        .unwrap_or_default();
    let named = app.register("r-2", dining("另一家店", 10.0, &[])).await?;
    let a_name = app
        .merchants
        .register_merchant(pb::RegisterMerchantRequest {
            request_id: "r-3".into(),
            details: Some(dining("第三家店", 20.0, &[])),
            actor: "王 经理".into(),
        })
        .await
        .expect_err("a person's name is no account");
    let yesterday = shequ_proto::time::timestamp(app.clock_now() - chrono::Duration::days(1));
    app.merchants
        .record_activity(pb::RecordActivityRequest {
            request_id: "a-1".into(),
            merchant_id: unnamed.id.clone(),
            kind: pb::ActivityKind::Environment as i32,
            description: "清理楼道".into(),
            happened_at: Some(yesterday),
            actor: String::new(),
        })
        .await?;
    let refused_activity = app
        .merchants
        .record_activity(pb::RecordActivityRequest {
            request_id: "a-2".into(),
            merchant_id: named.id.clone(),
            kind: pb::ActivityKind::Environment as i32,
            description: "清理楼道".into(),
            happened_at: Some(yesterday),
            actor: "李四".into(),
        })
        .await
        .expect_err("a person's name is no account");

    for status in [&a_name, &refused_activity] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            violated_field(status).as_deref(),
            Some("actor"),
            "{status:?}"
        );
    }
    let ledger = app
        .merchants
        .get_credit_ledger(pb::GetCreditLedgerRequest {
            merchant_id: unnamed.id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(ledger.entries.len(), 1);
    assert_eq!(ledger.entries[0].actor, "anonymous");
    let named_ledger = app
        .merchants
        .get_credit_ledger(pb::GetCreditLedgerRequest {
            merchant_id: named.id.clone(),
        })
        .await?
        .into_inner();
    assert!(
        named_ledger.entries.is_empty(),
        "the refused activity wrote nothing"
    );
    let events = app.wait_for_events(3).await?;
    let actors: Vec<Option<String>> = events.iter().map(event_actor).collect();
    let by = |who: &str| Some(who.to_owned());
    assert_eq!(actors, [by("anonymous"), by("operator-1"), by("anonymous")]);
    let listed = app
        .merchants
        .list_merchants(pb::ListMerchantsRequest::default())
        .await?
        .into_inner();
    assert_eq!(
        listed.merchants.len(),
        2,
        "the refused registration wrote nothing"
    );
    Ok(())
}
