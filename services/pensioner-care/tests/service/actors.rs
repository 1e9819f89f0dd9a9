//! Who acted, in history and events: the authenticated caller whatever the
//! request says; with authentication off an account id, never a name. A
//! visitor is a registered volunteer's id or the staff member recording the
//! visit, and no event carries a person's name. A change of an elder's
//! details is published without the details.

use anyhow::Context;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::care::{
    AlertRaised, ElderRegistered, ElderUpdated, PairingCreated, ServiceBooked, VisitRecorded,
};
use shequ_tests::{Backend, EventSchemas};
use tonic::Code;

use crate::support::{
    CONTACT_NAME, CONTACT_PHONE, TestApp, WANG_ADDRESS, WANG_BIRTH, WANG_HEALTH, WANG_NAME,
    as_worker_li, of_type, run_with_auth, violated_field, visit, wang, zhao,
};

shequ_tests::on_both_backends!(
    with_authentication_off_an_actor_that_is_a_name_is_refused_naming_actor,
    a_visitor_that_is_a_name_or_names_no_volunteer_is_refused_naming_visitor_and_changes_nothing,
    a_visit_by_a_registered_volunteer_publishes_their_id_as_visitor_and_raiser,
    updating_an_elder_publishes_elder_updated_with_no_personal_data,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_of_every_change_is_the_authenticated_caller_on_sqlite() -> anyhow::Result<()> {
    run_with_auth(
        Backend::Sqlite,
        the_actor_of_every_change_is_the_authenticated_caller,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actor_of_every_change_is_the_authenticated_caller_on_postgres() -> anyhow::Result<()> {
    run_with_auth(
        Backend::Postgres,
        the_actor_of_every_change_is_the_authenticated_caller,
    )
    .await
}

/// Staff member `worker-li` calls with their token, each request naming
/// someone else (or a person) as its actor: the timeline and the events name
/// `worker-li`, and a visit with no volunteer is theirs.
async fn the_actor_of_every_change_is_the_authenticated_caller(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let unauthenticated = app
        .care
        .register_elder(pb::RegisterElderRequest {
            request_id: "r-0".into(),
            details: Some(wang()),
            actor: "worker-li".into(),
        })
        .await
        .expect_err("no token");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);

    let elder = app
        .care
        .register_elder(as_worker_li(pb::RegisterElderRequest {
            request_id: "r-wang".into(),
            details: Some(wang()),
            actor: "张主任".into(),
        })?)
        .await?
        .into_inner()
        .elder
        .context("no elder")?
        .id;
    let volunteer = app
        .care
        .register_volunteer(as_worker_li(pb::RegisterVolunteerRequest {
            request_id: "v-1".into(),
            name: "张志强".into(),
            phone: "13900001111".into(),
            grid_id: "xinyuan-1".into(),
            party_member: true,
            actor: String::new(),
        })?)
        .await?
        .into_inner()
        .volunteer
        .context("no volunteer")?
        .id;
    app.care
        .pair(as_worker_li(pb::PairRequest {
            volunteer_id: volunteer,
            elder_id: elder.clone(),
            actor: "operator-9".into(),
            ..Default::default()
        })?)
        .await?;
    let recorded = app
        .care
        .record_visit(as_worker_li(visit(
            "visit-1",
            &elder,
            pb::Wellbeing::Urgent,
        ))?)
        .await?
        .into_inner()
        .visit
        .context("no visit")?;
    app.care
        .book_service(as_worker_li(pb::BookServiceRequest {
            request_id: "b-day".into(),
            elder_id: elder.clone(),
            service: pb::Service::DayCare as i32,
            scheduled_for: Some(shequ_chassis::grpc::timestamp(
                app.now() + chrono::Duration::days(1),
            )),
            actor: "李四".into(),
        })?)
        .await?;

    assert_eq!(
        recorded.visitor, "worker-li",
        "no volunteer named: the caller"
    );
    let timeline = app
        .care
        .get_timeline(as_worker_li(pb::GetTimelineRequest {
            elder_id: elder.clone(),
        })?)
        .await?
        .into_inner()
        .entries;
    let summaries: Vec<&str> = timeline.iter().map(|e| e.summary.as_str()).collect();
    for summary in &summaries {
        assert!(
            !summary.contains("张主任")
                && !summary.contains("李四")
                && !summary.contains("operator-9"),
            "{summaries:?}"
        );
    }
    assert!(
        summaries[0].contains("registered by worker-li"),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("home_visit by worker-li")),
        "{summaries:?}"
    );
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("day_care by worker-li")),
        "{summaries:?}"
    );

    // registered, paired, visit recorded, alert, booked.
    let events = app.wait_for_events(5).await?;
    let data = |event_type: &str| -> anyhow::Result<serde_json::Value> {
        Ok(of_type(&events, event_type)
            .first()
            .with_context(|| format!("no {event_type}"))?
            .event
            .data
            .clone())
    };
    assert_eq!(data(ElderRegistered::TYPE)?["actor"], "worker-li");
    assert_eq!(data(PairingCreated::TYPE)?["actor"], "worker-li");
    assert_eq!(data(VisitRecorded::TYPE)?["actor"], "worker-li");
    assert_eq!(data(VisitRecorded::TYPE)?["visitor"], "worker-li");
    assert_eq!(data(AlertRaised::TYPE)?["raised_by"], "worker-li");
    assert_eq!(data(ServiceBooked::TYPE)?["actor"], "worker-li");
    Ok(())
}

async fn with_authentication_off_an_actor_that_is_a_name_is_refused_naming_actor(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let named = app
        .care
        .register_elder(pb::RegisterElderRequest {
            request_id: "r-wang".into(),
            details: Some(wang()),
            actor: "张主任".into(),
        })
        .await
        .expect_err("a name is not an account id");
    assert_eq!(named.code(), Code::InvalidArgument, "{named:?}");
    assert_eq!(violated_field(&named).as_deref(), Some("actor"));
    assert!(
        app.list_elders(Default::default()).await?.is_empty(),
        "nothing written"
    );

    // An account id is taken as it is; none is "anonymous", no longer refused.
    let elder = app.register("r-wang", wang()).await?.id;
    let response = app
        .care
        .update_elder(pb::UpdateElderRequest {
            elder_id: elder.clone(),
            details: Some(wang()),
            actor: String::new(),
        })
        .await?;
    assert!(response.into_inner().elder.is_some());
    let summaries: Vec<String> = app
        .timeline(&elder)
        .await?
        .into_iter()
        .map(|e| e.summary)
        .collect();
    assert!(
        summaries[0].contains("registered by operator-1"),
        "{summaries:?}"
    );
    assert!(
        summaries[1].contains("updated by anonymous"),
        "{summaries:?}"
    );
    Ok(())
}

async fn a_visitor_that_is_a_name_or_names_no_volunteer_is_refused_naming_visitor_and_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;

    for (key, visitor) in [("visit-1", "王建国"), ("visit-2", "volunteer-9")] {
        let status = app
            .care
            .record_visit(pb::RecordVisitRequest {
                visitor: visitor.into(),
                ..visit(key, &elder, pb::Wellbeing::Urgent)
            })
            .await
            .expect_err("no such volunteer");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{visitor}: {status:?}"
        );
        assert_eq!(violated_field(&status).as_deref(), Some("visitor"));
        assert!(
            status.message().contains("registered volunteer"),
            "{status:?}"
        );
    }

    let stored = app.elder(&elder).await?;
    assert!(stored.last_visit_at.is_none(), "no visit recorded");
    let kinds: Vec<String> = app
        .timeline(&elder)
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["registered"]);
    // By the time a later event is out, a visit's would be too.
    app.register("r-zhao", zhao()).await?;
    let events = app.wait_for_events(2).await?;
    assert!(
        of_type(&events, VisitRecorded::TYPE).is_empty(),
        "{events:?}"
    );
    assert!(of_type(&events, AlertRaised::TYPE).is_empty(), "{events:?}");
    assert!(
        events.iter().all(|e| !e.raw.to_string().contains("王建国")),
        "the name was published: {events:?}"
    );
    // The refused keys are free.
    let recorded = app.visit("visit-1", &elder, pb::Wellbeing::Good).await?;
    assert!(!recorded.duplicate);
    Ok(())
}

async fn a_visit_by_a_registered_volunteer_publishes_their_id_as_visitor_and_raiser(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;

    let recorded = app
        .care
        .record_visit(pb::RecordVisitRequest {
            visitor: volunteer.clone(),
            ..visit("visit-1", &elder, pb::Wellbeing::Urgent)
        })
        .await?
        .into_inner()
        .visit
        .context("no visit")?;

    assert_eq!(recorded.visitor, volunteer);
    let events = app.wait_for_events(3).await?;
    let visited: VisitRecorded = of_type(&events, VisitRecorded::TYPE)
        .first()
        .context("no visit.recorded")?
        .event
        .data_as()?;
    let alert: AlertRaised = of_type(&events, AlertRaised::TYPE)
        .first()
        .context("no alert.raised")?
        .event
        .data_as()?;
    assert_eq!(visited.visitor, volunteer);
    assert_eq!(visited.actor.as_deref(), Some("anonymous"), "auth is off");
    assert_eq!(alert.raised_by, volunteer);
    for event in &events {
        assert!(!event.raw.to_string().contains("张志强"), "{}", event.raw);
    }
    Ok(())
}

async fn updating_an_elder_publishes_elder_updated_with_no_personal_data(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let elder = app.register("r-wang", wang()).await?.id;
    let moved = pb::ElderDetails {
        living_situation: pb::LivingSituation::WithFamily as i32,
        grid_id: "xinyuan-2".into(),
        consents_to_visits: false,
        ..wang()
    };

    let updated = app
        .care
        .update_elder(pb::UpdateElderRequest {
            elder_id: elder.clone(),
            details: Some(moved),
            actor: "worker-li".into(),
        })
        .await?
        .into_inner()
        .elder
        .context("no elder")?;

    let events = app.wait_for_events(2).await?;
    let published = of_type(&events, ElderUpdated::TYPE);
    assert_eq!(published.len(), 1, "{events:?}");
    EventSchemas::load()?.check(published[0])?;
    assert_eq!(published[0].event.subject, elder);
    let data: ElderUpdated = published[0].event.data_as()?;
    assert_eq!(data.elder_id, elder);
    assert_eq!(data.grid_id, "xinyuan-2");
    assert_eq!(data.risk, shequ_proto::events::care::RiskLevel::Medium);
    assert_eq!(data.visit_interval_days, updated.visit_interval_days);
    assert!(!data.consents_to_visits);
    assert_eq!(
        Some(shequ_chassis::grpc::timestamp(data.next_visit_due_at)),
        updated.next_visit_due_at
    );
    assert_eq!(data.actor, "worker-li");
    let raw = published[0].raw.to_string();
    for personal in [
        WANG_NAME,
        WANG_BIRTH,
        WANG_ADDRESS,
        WANG_HEALTH,
        CONTACT_NAME,
        CONTACT_PHONE,
        "xinyuan-b3",
        "34.8",
    ] {
        assert!(!raw.contains(personal), "{personal} published: {raw}");
    }
    Ok(())
}
