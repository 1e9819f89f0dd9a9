//! The cases, each over [`Complaints`] only (and counts of what it stored).

use shequ_chassis::clock::Clock;

use anyhow::ensure;
use shequ_complaints::domain::complaint::Breach;
use shequ_complaints::domain::complaint::TransitionError;
use shequ_complaints::domain::figures::Figures;
use shequ_complaints::domain::kinds::{Category, Status};
use shequ_complaints::domain::{CommunityId, ComplaintId, GridId};
use shequ_complaints::store::{Complaints, ListFilter, Scope, StoreError};

use shequ_complaints::domain::time_limits::TimeLimits;

use crate::{CLERK, Harness, hours, intake, organisation, request, satisfaction, start};

async fn submitted(h: &Harness, key: &str, building: Option<&str>) -> anyhow::Result<ComplaintId> {
    let (complaint, duplicate) = h
        .store
        .submit(
            &request(key),
            CLERK,
            intake("路灯不亮", building),
            None,
            &TimeLimits::default(),
        )
        .await?;
    ensure!(!duplicate, "{key} is new");
    Ok(complaint.id)
}

pub(crate) async fn a_submission_reads_back_as_it_was_answered(h: Harness) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    // A clock reading with nanoseconds: what is stored is whole milliseconds.
    h.clock.advance(chrono::Duration::nanoseconds(123_456_789));
    let (answered, duplicate) = h
        .store
        .submit(
            &request("r-1"),
            CLERK,
            intake("楼道灯坏了", Some("b-3")),
            None,
            &TimeLimits::default(),
        )
        .await?;
    assert!(!duplicate);
    assert_eq!(answered.grid_id, "xinyuan-2", "routed by its building");
    assert_eq!(answered.assignee, "worker-zhao");
    assert_eq!(
        answered.submitted_at.timestamp_subsec_nanos() % 1_000_000,
        0
    );
    let (stored, history) = h.store.get(&answered.id).await?;
    assert_eq!(stored, answered, "every field as answered");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].to_status, Status::Submitted);
    assert_eq!(history[0].actor, CLERK, "the submitting caller");
    assert_eq!(history[0].at, answered.submitted_at);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);
    Ok(())
}

pub(crate) async fn a_repeated_request_id_returns_the_first_complaint(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let first = submitted(&h, "r-1", Some("b-1")).await?;
    h.clock.advance(hours(1));
    let (again, duplicate) = h
        .store
        .submit(
            &request("r-1"),
            CLERK,
            intake("另一件事", Some("b-3")),
            None,
            &TimeLimits::default(),
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, first);
    assert_eq!(again.text, "路灯不亮");
    assert_eq!(h.count("SELECT COUNT(*) FROM complaints").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM complaint_history").await?, 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);
    Ok(())
}

pub(crate) async fn concurrent_submissions_are_each_stored_once_with_their_history_and_event(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    // 60 submissions at once over 40 keys: batches share transactions, and a
    // key repeated within one batch is answered as the duplicate it is.
    let submissions = (0..60).map(|i| {
        let store = h.store.clone();
        let limits = TimeLimits::default();
        async move {
            let key = format!("r-{}", i % 40);
            store
                .submit(
                    &request(&key),
                    CLERK,
                    intake("噪音扰民", Some("b-1")),
                    None,
                    &limits,
                )
                .await
                .map(|(complaint, duplicate)| (key, complaint.id, duplicate))
        }
    });
    let answers = futures::future::try_join_all(submissions).await?;
    let fresh: Vec<_> = answers
        .iter()
        .filter(|(_, _, duplicate)| !duplicate)
        .collect();
    assert_eq!(fresh.len(), 40, "one new complaint per key");
    for (key, id, _) in &answers {
        let first = fresh.iter().find(|(k, _, _)| k == key);
        assert_eq!(first.map(|(_, id, _)| id), Some(id), "{key}");
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM complaints").await?, 40);
    assert_eq!(h.count("SELECT COUNT(*) FROM complaint_history").await?, 40);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 40);
    Ok(())
}

pub(crate) async fn a_submission_to_an_unknown_grid_or_building_stores_nothing(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let unknown_building = h
        .store
        .submit(
            &request("r-1"),
            CLERK,
            intake("路灯不亮", Some("b-404")),
            None,
            &TimeLimits::default(),
        )
        .await;
    assert!(
        matches!(&unknown_building, Err(StoreError::NotFound(what)) if what == "building b-404"),
        "{unknown_building:?}"
    );
    let unknown_grid = h
        .store
        .submit(
            &request("r-2"),
            CLERK,
            intake("路灯不亮", None),
            Some(&GridId::from_stored("nowhere-9")),
            &TimeLimits::default(),
        )
        .await;
    assert!(
        matches!(&unknown_grid, Err(StoreError::NotFound(what)) if what == "grid nowhere-9"),
        "{unknown_grid:?}"
    );
    let disagreeing = h
        .store
        .submit(
            &request("r-3"),
            CLERK,
            intake("路灯不亮", Some("b-1")),
            Some(&GridId::from_stored("yaozhai-1")),
            &TimeLimits::default(),
        )
        .await;
    assert!(
        matches!(&disagreeing, Err(StoreError::Field(error)) if error.field == "building_id"),
        "{disagreeing:?}"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM complaints").await?, 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 0);
    Ok(())
}

pub(crate) async fn a_transition_is_stored_with_its_history_and_event_and_its_request_id_once(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let id = submitted(&h, "r-1", Some("b-1")).await?;
    h.clock.advance(hours(2));
    let accepted = h
        .store
        .transition(
            &id,
            Some(&request("t-1")),
            "worker-li",
            None,
            |c, _, now| c.accept(Some("worker-li".into()), now),
        )
        .await?;
    assert_eq!(accepted.status, Status::Accepted);
    h.clock.advance(hours(1));
    let follow_up = TimeLimits::default().follow_up();
    let resolved = h
        .store
        .transition(
            &id,
            Some(&request("t-2")),
            "worker-li",
            None,
            move |c, _, now| c.resolve("换了灯泡".into(), true, follow_up, now),
        )
        .await?;
    // The same request again changes nothing and answers the complaint as it is.
    h.clock.advance(hours(1));
    let again = h
        .store
        .transition(
            &id,
            Some(&request("t-2")),
            "worker-li",
            None,
            move |c, _, now| c.resolve("又换了一次".into(), true, follow_up, now),
        )
        .await?;
    assert_eq!(again, resolved);
    // Reusing a request id on another complaint is refused.
    let other = submitted(&h, "r-2", Some("b-2")).await?;
    let reused = h
        .store
        .transition(
            &other,
            Some(&request("t-2")),
            "worker-li",
            None,
            |c, _, now| c.accept(None, now),
        )
        .await;
    assert!(
        matches!(&reused, Err(StoreError::Field(error)) if error.field == "request_id"),
        "{reused:?}"
    );

    let (stored, history) = h.store.get(&id).await?;
    assert_eq!(stored, resolved);
    assert!(stored.merchant_at_fault, "a flag reads back as stored");
    assert_eq!(stored.resolution_note.as_deref(), Some("换了灯泡"));
    let statuses: Vec<Status> = history.iter().map(|entry| entry.to_status).collect();
    assert_eq!(
        statuses,
        [Status::Submitted, Status::Accepted, Status::Resolved]
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 4);
    Ok(())
}

pub(crate) async fn a_refused_transition_changes_nothing(h: Harness) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let id = submitted(&h, "r-1", Some("b-1")).await?;
    let (before, _) = h.store.get(&id).await?;
    let refused = h
        .store
        .transition(&id, Some(&request("t-1")), "worker-li", None, |c, _, _| {
            c.start()
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Rule(TransitionError::NotAllowed { .. }))
        ),
        "{refused:?}"
    );
    let missing = h
        .store
        .transition(
            &ComplaintId::from_stored("c-404"),
            None,
            "worker-li",
            None,
            |c, _, now| c.accept(None, now),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
    let (after, history) = h.store.get(&id).await?;
    assert_eq!(after, before);
    assert_eq!(history.len(), 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox").await?, 1);
    // The refused request's id was not used up.
    let accepted = h
        .store
        .transition(
            &id,
            Some(&request("t-1")),
            "worker-li",
            None,
            |c, _, now| c.accept(None, now),
        )
        .await?;
    assert_eq!(accepted.status, Status::Accepted);
    Ok(())
}

pub(crate) async fn a_merge_reads_its_target_in_the_same_transaction(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let target = submitted(&h, "r-1", Some("b-1")).await?;
    let duplicate = submitted(&h, "r-2", Some("b-1")).await?;
    let merged = h
        .store
        .transition(
            &duplicate,
            None,
            "worker-li",
            Some(&target),
            |c, target, _| match target {
                Some(target) => c.merge_into(target),
                None => Err(TransitionError::Precondition("no target read".into())),
            },
        )
        .await?;
    assert_eq!(merged.status, Status::Merged);
    assert_eq!(merged.merged_into.as_ref(), Some(&target));
    let missing_target = h
        .store
        .transition(
            &target,
            None,
            "worker-li",
            Some(&ComplaintId::from_stored("c-404")),
            |c, target, _| match target {
                Some(target) => c.merge_into(target),
                None => Err(TransitionError::Precondition("no target read".into())),
            },
        )
        .await;
    assert!(
        matches!(&missing_target, Err(StoreError::NotFound(what)) if what == "complaint c-404"),
        "{missing_target:?}"
    );
    Ok(())
}

pub(crate) async fn escalations_are_owed_once_per_breach_and_cycle_and_paged_in_due_order(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(submitted(&h, &format!("r-{i}"), Some("b-1")).await?);
        h.clock.advance(chrono::Duration::minutes(1));
    }
    let now = h.clock.now() + hours(25);
    // Pages of two, in (due, id) order, each after the last one's final item.
    let mut owed = Vec::new();
    let mut after = None;
    loop {
        let page = h
            .store
            .escalations_owed(Breach::Response, now, after.as_ref(), 2)
            .await?;
        owed.extend(page.iter().map(|due| ComplaintId::from_stored(due.id())));
        if page.len() < 2 {
            break;
        }
        after = page.last().cloned();
    }
    assert_eq!(owed, ids, "every breach once, oldest first");
    h.clock.set(now);
    assert!(h.store.escalate(&ids[0], Breach::Response).await?);
    assert!(
        !h.store.escalate(&ids[0], Breach::Response).await?,
        "once per breach and cycle"
    );
    let still_owed = h
        .store
        .escalations_owed(Breach::Response, now, None, 10)
        .await?;
    assert_eq!(still_owed.len(), 4);
    assert!(still_owed.iter().all(|due| ids[0] != due.id()));
    // Not owed at all before its limit.
    let early = h
        .store
        .escalations_owed(Breach::Response, start(), None, 10)
        .await?;
    assert!(early.is_empty());
    let (escalated, history) = h.store.get(&ids[0]).await?;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].actor, "sweeper");
    assert_ne!(escalated.assignee, "worker-li", "moved up a level");
    assert_eq!(h.count("SELECT COUNT(*) FROM escalations").await?, 1);
    Ok(())
}

pub(crate) async fn the_list_filters_and_pages_without_gaps_or_repeats(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let mut all = Vec::new();
    for i in 0..7 {
        let building = if i % 2 == 0 { "b-1" } else { "b-3" };
        all.push(submitted(&h, &format!("r-{i}"), Some(building)).await?);
        // Two complaints in the same millisecond now and then.
        if i % 3 != 0 {
            h.clock.advance(chrono::Duration::seconds(1));
        }
    }
    let accepted = &all[2];
    h.store
        .transition(accepted, None, "worker-li", None, |c, _, now| {
            c.accept(None, now)
        })
        .await?;

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = h.store.list(&ListFilter::default(), 3, after).await?;
        seen.extend(page.iter().map(|c| c.id.clone()));
        match next {
            Some(cursor) => after = Some(cursor),
            None => break,
        }
    }
    // Newest first, ties in a millisecond by id: UUIDv7 ids made in order
    // sort as they were made.
    let mut newest_first = all.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first, "every complaint once, newest first");

    let in_grid = ListFilter {
        grid_id: Some(GridId::from_stored("xinyuan-2")),
        ..ListFilter::default()
    };
    let (page, _) = h.store.list(&in_grid, 50, None).await?;
    assert_eq!(page.len(), 3);
    assert!(page.iter().all(|c| c.grid_id == "xinyuan-2"));
    let accepted_only = ListFilter {
        status: Some(Status::Accepted),
        community_id: Some(CommunityId::from_stored("xinyuan")),
        category: Some(page_category(&h, accepted).await?),
        ..ListFilter::default()
    };
    let (page, _) = h.store.list(&accepted_only, 50, None).await?;
    assert_eq!(
        page.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [accepted.as_str()]
    );
    let overdue = ListFilter {
        overdue_only: true,
        ..ListFilter::default()
    };
    assert!(h.store.list(&overdue, 50, None).await?.0.is_empty());
    h.clock.advance(hours(25));
    let (late, _) = h.store.list(&overdue, 50, None).await?;
    assert_eq!(
        late.len(),
        all.len() - 1,
        "all but the accepted one missed the response limit"
    );
    Ok(())
}

async fn page_category(h: &Harness, id: &ComplaintId) -> anyhow::Result<Category> {
    Ok(h.store.get(id).await?.0.category)
}

pub(crate) async fn the_figures_counted_by_the_database_agree_with_the_rules(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let follow_up = TimeLimits::default().follow_up();
    for i in 0..12 {
        let building = ["b-1", "b-3", "b-2"][i % 3];
        let id = submitted(&h, &format!("r-{i}"), Some(building)).await?;
        h.clock.advance(hours(i as i64));
        if i % 4 != 0 {
            h.store
                .transition(&id, None, "worker", None, |c, _, now| c.accept(None, now))
                .await?;
        }
        if i % 4 == 2 || i % 4 == 3 {
            h.store
                .transition(&id, None, "worker", None, move |c, _, now| {
                    c.resolve("处理完毕".into(), false, follow_up, now)
                })
                .await?;
        }
        if i % 4 == 3 {
            let limits = TimeLimits::default();
            let score = satisfaction(if i % 8 == 3 { 5 } else { 2 });
            h.store
                .transition(&id, None, "visitor", None, move |c, _, now| {
                    c.follow_up(score, false, None, &limits, now)
                })
                .await?;
        }
    }
    let (from, to) = (start(), start() + hours(24 * 30));
    for now in [h.clock.now(), h.clock.now() + hours(24 * 9)] {
        for scope in [
            Scope::District,
            Scope::Community(CommunityId::from_stored("xinyuan")),
            Scope::Grid(GridId::from_stored("xinyuan-2")),
        ] {
            let counted = h.store.figures(&scope, from, to, now).await?;
            let (in_period, open) = h.store.figures_input(&scope, from, to).await?;
            assert_eq!(
                counted,
                Figures::compute(&in_period, &open, now),
                "{scope:?} at {now}"
            );
            assert!(counted.submitted > 0, "{scope:?}");
        }
    }
    let district = h
        .store
        .figures(&Scope::District, from, to, h.clock.now())
        .await?;
    assert_eq!(district.submitted, 12);
    assert_eq!(district.followed_up, 3);
    assert!(
        h.store
            .scope_exists(&Scope::Grid(GridId::from_stored("yaozhai-1")))
            .await?
    );
    assert!(
        !h.store
            .scope_exists(&Scope::Community(CommunityId::from_stored("nowhere")))
            .await?
    );
    Ok(())
}

pub(crate) async fn the_organisation_is_replaced_whole_and_reads_back_in_order(
    h: Harness,
) -> anyhow::Result<()> {
    let empty = h.store.organisation().await?;
    assert_eq!(
        empty.district_handler, "district",
        "the default before any is loaded"
    );
    assert!(empty.communities.is_empty());
    h.store.load_organisation(&organisation()).await?;
    assert_eq!(h.store.organisation().await?, organisation());
    let mut smaller = organisation();
    smaller.communities.truncate(1);
    smaller.communities[0].grids[0].building_ids = vec!["b-9".into()];
    smaller.district_handler = "new-office".into();
    h.store.load_organisation(&smaller).await?;
    assert_eq!(h.store.organisation().await?, smaller);
    assert_eq!(h.count("SELECT COUNT(*) FROM buildings").await?, 2);
    Ok(())
}

pub(crate) async fn a_stored_value_that_does_not_decode_is_an_error_not_a_default(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let id = submitted(&h, "r-1", Some("b-1")).await?;
    let other = submitted(&h, "r-2", Some("b-1")).await?;
    shequ_tests::db::execute(
        &h.url,
        "UPDATE complaints SET satisfaction = 9 WHERE id = $1",
        &[id.as_str()],
    )
    .await?;
    let broken = h.store.get(&id).await;
    assert!(
        matches!(&broken, Err(StoreError::Database(error)) if !error.is_unavailable()),
        "{broken:?}"
    );
    shequ_tests::db::execute(
        &h.url,
        "UPDATE complaints SET priority = 'whenever' WHERE id = $1",
        &[other.as_str()],
    )
    .await?;
    let listed = h.store.list(&ListFilter::default(), 10, None).await;
    assert!(
        matches!(&listed, Err(StoreError::Database(error)) if !error.is_unavailable()),
        "a page with a row that does not decode is an error: {listed:?}"
    );
    Ok(())
}

pub(crate) async fn a_submission_is_routed_by_the_organisation_as_it_stands(
    h: Harness,
) -> anyhow::Result<()> {
    h.store.load_organisation(&organisation()).await?;
    let (before, _) = h
        .store
        .submit(
            &request("r-1"),
            CLERK,
            intake("路灯不亮", Some("b-1")),
            None,
            &TimeLimits::default(),
        )
        .await?;
    assert_eq!(before.grid_id, "xinyuan-1");
    // Building b-1 moves to yaozhai-1, b-2 goes.
    let mut moved = organisation();
    moved.communities[0].grids[0].building_ids = vec![];
    moved.communities[1].grids[0].building_ids = vec!["b-1".into()];
    h.store.load_organisation(&moved).await?;
    let (after, _) = h
        .store
        .submit(
            &request("r-2"),
            CLERK,
            intake("路灯不亮", Some("b-1")),
            None,
            &TimeLimits::default(),
        )
        .await?;
    assert_eq!(after.grid_id, "yaozhai-1");
    assert_eq!(after.assignee, "worker-sun");
    let gone = h
        .store
        .submit(
            &request("r-3"),
            CLERK,
            intake("路灯不亮", Some("b-2")),
            None,
            &TimeLimits::default(),
        )
        .await;
    assert!(
        matches!(&gone, Err(StoreError::NotFound(what)) if what == "building b-2"),
        "{gone:?}"
    );
    // A retry of the first is still its duplicate, though its building moved.
    let (again, duplicate) = h
        .store
        .submit(
            &request("r-1"),
            CLERK,
            intake("路灯不亮", Some("b-2")),
            None,
            &TimeLimits::default(),
        )
        .await?;
    assert!(duplicate);
    assert_eq!(again.id, before.id);
    Ok(())
}
