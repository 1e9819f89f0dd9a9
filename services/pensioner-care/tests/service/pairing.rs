//! Pairing (结对帮扶): a volunteer has at most two elders and an elder one
//! volunteer, with the elder's consent; the cap holds under concurrent requests.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::bail;
use shequ_proto::care::v1 as pb;
use shequ_proto::events::EventData;
use shequ_proto::events::care::{PairingCreated, PairingEnded};
use tokio::sync::Barrier;
use tonic::Code;

use crate::support::{TestApp, elder, of_type, pair, wang};

shequ_tests::on_both_backends!(
    a_volunteer_takes_at_most_two_elders,
    an_elder_has_at_most_one_volunteer,
    unpairing_frees_a_slot_that_can_be_taken_again,
    an_elder_without_consent_cannot_be_paired,
    the_cap_holds_when_eight_pairings_for_one_volunteer_race,
    of_two_volunteers_racing_for_one_elder_exactly_one_wins,
    a_retried_pair_or_unpair_with_its_request_id_changes_nothing,
);

/// Registers `count` elders (86, living alone), returning their ids.
async fn elders(app: &mut TestApp, count: usize) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let details = elder(
            &format!("老人{n}"),
            "1940-05-01",
            pb::LivingSituation::Alone,
        );
        ids.push(app.register(&format!("r-{n}"), details).await?.id);
    }
    Ok(ids)
}

async fn unpair(app: &mut TestApp, elder_id: &str) -> Result<pb::Pairing, tonic::Status> {
    app.care
        .unpair(pb::UnpairRequest {
            elder_id: elder_id.into(),
            reason: "志愿者搬离社区".into(),
            actor: "operator-1".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .pairing
        .ok_or_else(|| tonic::Status::internal("no pairing in the response"))
}

async fn a_volunteer_takes_at_most_two_elders(mut app: TestApp) -> anyhow::Result<()> {
    let ids = elders(&mut app, 3).await?;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;

    let first = app.pair(&volunteer, &ids[0]).await?;
    let second = app.pair(&volunteer, &ids[1]).await?;
    let third = app
        .pair(&volunteer, &ids[2])
        .await
        .expect_err("a third elder is refused");

    assert_eq!(first.volunteer_id, volunteer);
    assert_eq!(first.elder_id, ids[0]);
    assert!(first.started_at.is_some() && first.ended_at.is_none());
    assert_eq!(second.elder_id, ids[1]);
    assert_eq!(third.code(), Code::FailedPrecondition, "{third:?}");
    assert!(third.message().contains("2 elders"), "{third:?}");
    assert_eq!(
        app.listed_volunteer(&volunteer).await?.elder_ids,
        [ids[0].clone(), ids[1].clone()]
    );
    assert!(app.elder(&ids[2]).await?.volunteer_id.is_empty());
    Ok(())
}

async fn an_elder_has_at_most_one_volunteer(mut app: TestApp) -> anyhow::Result<()> {
    let id = app.register("r-wang", wang()).await?.id;
    let first = app.volunteer("v-1", "张志强").await?.id;
    let second = app.volunteer("v-2", "陈红").await?.id;
    app.pair(&first, &id).await?;

    let refused = app
        .pair(&second, &id)
        .await
        .expect_err("the elder has a volunteer");
    let again = app
        .pair(&first, &id)
        .await
        .expect_err("already paired with this one");

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("already has a volunteer"));
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
    assert_eq!(app.elder(&id).await?.volunteer_id, first);
    assert!(app.listed_volunteer(&second).await?.elder_ids.is_empty());
    assert_eq!(app.listed_volunteer(&first).await?.elder_ids, [id]);
    Ok(())
}

async fn unpairing_frees_a_slot_that_can_be_taken_again(mut app: TestApp) -> anyhow::Result<()> {
    let ids = elders(&mut app, 3).await?;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;
    let first = app.pair(&volunteer, &ids[0]).await?;
    app.pair(&volunteer, &ids[1]).await?;

    let ended = unpair(&mut app, &ids[0]).await?;
    let third = app.pair(&volunteer, &ids[2]).await?;

    assert_eq!(ended.id, first.id);
    assert!(ended.ended_at.is_some());
    assert_eq!(third.elder_id, ids[2]);
    let held: BTreeSet<String> = app
        .listed_volunteer(&volunteer)
        .await?
        .elder_ids
        .into_iter()
        .collect();
    assert_eq!(held, BTreeSet::from([ids[1].clone(), ids[2].clone()]));
    assert!(app.elder(&ids[0]).await?.volunteer_id.is_empty());
    // Full again: the freed slot was taken.
    let refused = app
        .pair(&volunteer, &ids[0])
        .await
        .expect_err("two elders again");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    // An elder without a volunteer has no pairing to end.
    let none = unpair(&mut app, &ids[0]).await.expect_err("nothing to end");
    assert_eq!(none.code(), Code::FailedPrecondition, "{none:?}");
    let events = app.wait_for_events(3 + 3 + 1).await?;
    assert_eq!(of_type(&events, PairingCreated::TYPE).len(), 3);
    assert_eq!(of_type(&events, PairingEnded::TYPE).len(), 1);
    Ok(())
}

async fn an_elder_without_consent_cannot_be_paired(mut app: TestApp) -> anyhow::Result<()> {
    let id = app
        .register(
            "r-wang",
            pb::ElderDetails {
                consents_to_visits: false,
                ..wang()
            },
        )
        .await?
        .id;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;

    let refused = app
        .pair(&volunteer, &id)
        .await
        .expect_err("no consent, no pairing");

    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("consented"), "{refused:?}");
    assert!(app.elder(&id).await?.volunteer_id.is_empty());
    assert!(app.listed_volunteer(&volunteer).await?.elder_ids.is_empty());
    Ok(())
}

/// Fires `(volunteer, elder)` pairings at once; returns the winners' pairings
/// and how many were refused with FailedPrecondition (anything else fails).
async fn race(
    app: &TestApp,
    pairings: Vec<(String, String)>,
) -> anyhow::Result<(Vec<pb::Pairing>, usize)> {
    let start = Arc::new(Barrier::new(pairings.len()));
    let calls: Vec<_> = pairings
        .into_iter()
        .map(|(volunteer, elder)| {
            let mut care = app.care.clone();
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                pair(&mut care, &volunteer, &elder).await
            })
        })
        .collect();
    let (mut won, mut refused) = (Vec::new(), 0);
    for call in calls {
        match call.await? {
            Ok(pairing) => won.push(pairing),
            Err(status) if status.code() == Code::FailedPrecondition => refused += 1,
            Err(status) => bail!("a racing pairing failed otherwise: {status:?}"),
        }
    }
    Ok((won, refused))
}

async fn the_cap_holds_when_eight_pairings_for_one_volunteer_race(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let ids = elders(&mut app, 8).await?;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;

    let (won, refused) = race(
        &app,
        ids.iter()
            .map(|elder| (volunteer.clone(), elder.clone()))
            .collect(),
    )
    .await?;

    assert_eq!(won.len(), 2, "{won:?}");
    assert_eq!(refused, 6);
    let winners: BTreeSet<String> = won.into_iter().map(|p| p.elder_id).collect();
    let held: BTreeSet<String> = app
        .listed_volunteer(&volunteer)
        .await?
        .elder_ids
        .into_iter()
        .collect();
    assert_eq!(held, winners);
    let unpaired = app
        .list_elders(pb::ListEldersRequest {
            unpaired_only: true,
            ..Default::default()
        })
        .await?;
    assert_eq!(unpaired.len(), 6);
    assert!(unpaired.iter().all(|e| !winners.contains(&e.id)));
    let events = app.wait_for_events(8 + 2).await?;
    assert_eq!(of_type(&events, PairingCreated::TYPE).len(), 2);
    Ok(())
}

async fn of_two_volunteers_racing_for_one_elder_exactly_one_wins(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let ids = elders(&mut app, 3).await?;
    let first = app.volunteer("v-1", "张志强").await?.id;
    let second = app.volunteer("v-2", "陈红").await?.id;

    for elder in &ids {
        let (won, refused) = race(
            &app,
            vec![
                (first.clone(), elder.clone()),
                (second.clone(), elder.clone()),
            ],
        )
        .await?;

        assert_eq!(won.len(), 1, "{won:?}");
        assert_eq!(refused, 1);
        assert_eq!(app.elder(elder).await?.volunteer_id, won[0].volunteer_id);
    }
    let held = app.listed_volunteer(&first).await?.elder_ids.len()
        + app.listed_volunteer(&second).await?.elder_ids.len();
    assert_eq!(held, 3, "one volunteer per elder, no pairing lost");
    Ok(())
}

async fn a_retried_pair_or_unpair_with_its_request_id_changes_nothing(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let ids = elders(&mut app, 1).await?;
    let volunteer = app.volunteer("v-1", "张志强").await?.id;
    let pair = pb::PairRequest {
        volunteer_id: volunteer.clone(),
        elder_id: ids[0].clone(),
        actor: "operator-1".into(),
        request_id: "pair-1".into(),
    };
    let unpair = pb::UnpairRequest {
        elder_id: ids[0].clone(),
        reason: "志愿者搬离社区".into(),
        actor: "operator-1".into(),
        request_id: "unpair-1".into(),
    };

    let first = app.care.pair(pair.clone()).await?.into_inner().pairing;
    let retried = app.care.pair(pair.clone()).await?.into_inner().pairing;
    let ended = app.care.unpair(unpair.clone()).await?.into_inner().pairing;
    let ended_again = app.care.unpair(unpair).await?.into_inner().pairing;

    assert_eq!(first, retried, "the retry answers with the first pairing");
    assert_eq!(ended, ended_again);
    assert!(ended.is_some_and(|p| p.ended_at.is_some()));
    // elder.registered, pairing.created, pairing.ended: nothing more.
    let events = app.wait_for_events(3).await?;
    let counts = (
        of_type(&events, PairingCreated::TYPE).len(),
        of_type(&events, PairingEnded::TYPE).len(),
    );
    assert_eq!((events.len(), counts), (3, (1, 1)), "one event each");
    Ok(())
}
