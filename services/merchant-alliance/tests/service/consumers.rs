//! Events from other services, on the real stream: complaint outcomes move a
//! merchant's score once, however often they are delivered; a discounted elder
//! meal counts as a welfare activity once it is served (a booking alone counts
//! for nothing), once per booking.

use std::time::Duration;

use async_nats::HeaderMap;
use chrono::Utc;
use shequ_chassis::events::new_event;
use shequ_chassis::nats::{StreamSpec, ensure_stream, jetstream};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::events::{CloudEvent, EventData, care, complaints};
use shequ_tests::eventually;

use crate::support::{TestApp, dining};

shequ_tests::on_both_backends!(
    an_at_fault_resolution_lowers_the_score_once_even_when_redelivered,
    a_later_resolution_without_fault_gives_the_deduction_back,
    a_discounted_elder_meal_counts_as_welfare_once_served,
    a_meal_booked_but_not_served_credits_nothing,
    a_served_meal_announced_again_under_a_new_event_id_credits_once,
    a_resolution_announced_again_under_a_new_event_id_moves_the_score_once,
);

/// `event` as a bridge re-publishing it, or a producer restored from a
/// backup, would send it: the same fact under a new event id.
fn under_a_new_id(event: &CloudEvent) -> CloudEvent {
    CloudEvent {
        id: uuid::Uuid::now_v7().to_string(),
        ..event.clone()
    }
}

fn resolved(merchant_id: &str, complaint_id: &str, at_fault: bool) -> anyhow::Result<CloudEvent> {
    resolved_at(merchant_id, complaint_id, at_fault, Utc::now())
}

/// A resolution of `complaint_id` at `now` (a later resolution of the same
/// complaint, after a reopening, is at a later instant).
fn resolved_at(
    merchant_id: &str,
    complaint_id: &str,
    at_fault: bool,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<CloudEvent> {
    let mut data = shequ_tests::fixtures::resolved(
        complaint_id,
        complaints::Category::MerchantConduct,
        complaints::Channel::Hotline,
        now,
    );
    data.complaint.merchant_id = Some(merchant_id.into());
    data.merchant_at_fault = at_fault;
    Ok(new_event(complaints::SOURCE, complaint_id, now, &data)?)
}

/// `minutes` from now.
fn later(minutes: i64) -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::minutes(minutes)
}

/// Publishes `event` as its producer would; `msg_id` other than the event id
/// gets past JetStream's duplicate window, as a redelivery would.
async fn publish(
    app: &TestApp,
    stream: StreamSpec,
    event: &CloudEvent,
    msg_id: &str,
) -> anyhow::Result<()> {
    let client = async_nats::connect(app.nats.url()).await?;
    let js = jetstream(client, Duration::from_secs(5));
    ensure_stream(&js, stream).await?;
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", msg_id);
    // A stream created a moment ago may not take its subjects yet on a busy
    // server ("no stream found for given subject"): set-up, so try again.
    eventually(Duration::from_secs(10), || async {
        js.publish_with_headers(
            event.event_type.clone(),
            headers.clone(),
            serde_json::to_vec(event)?.into(),
        )
        .await?
        .await?;
        Ok(())
    })
    .await
}

const COMPLAINTS: StreamSpec = StreamSpec {
    name: complaints::STREAM,
    subjects: complaints::SUBJECTS,
};

const CARE: StreamSpec = StreamSpec {
    name: care::STREAM,
    subjects: care::SUBJECTS,
};

/// A meal served to an elder by `merchant_id`, at a discount or not.
fn meal_booking(
    merchant_id: &str,
    booking_id: &str,
    discounted: bool,
) -> anyhow::Result<CloudEvent> {
    let now = Utc::now();
    let data = care::BookingServed {
        booking_id: booking_id.into(),
        elder_id: "elder-1".into(),
        service: care::Service::MealAssistance,
        merchant_id: Some(merchant_id.into()),
        discounted,
        scheduled_for: now,
        served_at: now,
        actor: "worker-li".into(),
    };
    Ok(new_event(care::SOURCE, booking_id, now, &data)?)
}

/// A meal booked for an elder with `merchant_id`, at a discount, not (yet) served.
fn meal_booked(merchant_id: &str, booking_id: &str) -> anyhow::Result<CloudEvent> {
    let data = care::ServiceBooked {
        booking_id: booking_id.into(),
        elder_id: "elder-1".into(),
        service: care::Service::MealAssistance,
        merchant_id: Some(merchant_id.into()),
        discounted: true,
        booked_for: Utc::now(),
        actor: Some("worker-li".into()),
    };
    Ok(new_event(care::SOURCE, booking_id, Utc::now(), &data)?)
}

/// The ledger once it has at least `entries` entries.
async fn ledger_with(
    app: &TestApp,
    merchant_id: &str,
    entries: usize,
) -> anyhow::Result<pb::GetCreditLedgerResponse> {
    eventually(Duration::from_secs(20), || {
        let mut client = app.merchants.clone();
        async move {
            let ledger = client
                .get_credit_ledger(pb::GetCreditLedgerRequest {
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

async fn an_at_fault_resolution_lowers_the_score_once_even_when_redelivered(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let merchant = app.register("r-1", dining("店", 0.0, &[])).await?.id;
    let event = resolved(&merchant, "complaint-1", true)?;

    publish(&app, COMPLAINTS, &event, &event.id).await?;
    publish(&app, COMPLAINTS, &event, "redelivery-1").await?;
    // The same complaint resolved at fault again (after a reopening): no second deduction.
    let again = resolved_at(&merchant, "complaint-1", true, later(1))?;
    publish(&app, COMPLAINTS, &again, &again.id).await?;
    // A marker after them: once it is applied, the ones before it have been handled.
    let marker = resolved(&merchant, "complaint-2", true)?;
    publish(&app, COMPLAINTS, &marker, &marker.id).await?;

    let ledger = ledger_with(&app, &merchant, 2).await?;
    let moves: Vec<(i32, &str, &str)> = ledger
        .entries
        .iter()
        .map(|e| (e.delta, e.reason.as_str(), e.reference.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            (-10, "complaint_at_fault", "complaint-1"),
            (-10, "complaint_at_fault", "complaint-2")
        ]
    );
    assert_eq!(ledger.score, 80);
    assert_eq!(
        ledger.entries[0].source_event_id, event.id,
        "the entry names the event that caused it"
    );
    Ok(())
}

async fn a_later_resolution_without_fault_gives_the_deduction_back(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let merchant = app.register("r-1", dining("店", 0.0, &[])).await?.id;
    let at_fault = resolved(&merchant, "complaint-1", true)?;
    let cleared = resolved_at(&merchant, "complaint-1", false, later(1))?;
    let unknown_merchant = resolved("no-such-merchant", "complaint-9", true)?;

    publish(&app, COMPLAINTS, &at_fault, &at_fault.id).await?;
    publish(&app, COMPLAINTS, &unknown_merchant, &unknown_merchant.id).await?;
    publish(&app, COMPLAINTS, &cleared, &cleared.id).await?;

    let ledger = ledger_with(&app, &merchant, 2).await?;
    let moves: Vec<(i32, &str)> = ledger
        .entries
        .iter()
        .map(|e| (e.delta, e.reason.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            (-10, "complaint_at_fault"),
            (10, "complaint_fault_reversed")
        ]
    );
    assert_eq!(ledger.score, 100);
    Ok(())
}

async fn a_discounted_elder_meal_counts_as_welfare_once_served(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let merchant = app
        .register("r-1", dining("助老食堂", 0.0, &["elder_meals"]))
        .await?
        .id;
    let booking = |id: &str, discounted| meal_booking(&merchant, id, discounted);
    let care_stream = CARE;
    let full_price = booking("booking-1", false)?;
    let discounted = booking("booking-2", true)?;
    assert_eq!(discounted.event_type, care::BookingServed::TYPE);

    publish(&app, care_stream, &full_price, &full_price.id).await?;
    publish(&app, care_stream, &discounted, &discounted.id).await?;
    publish(&app, care_stream, &discounted, "redelivery").await?;

    let ledger = ledger_with(&app, &merchant, 1).await?;
    // Give a redelivery time to be (wrongly) applied before counting.
    let marker = booking("booking-3", true)?;
    publish(&app, care_stream, &marker, &marker.id).await?;
    let ledger_after = ledger_with(&app, &merchant, 2).await?;
    assert_eq!(ledger.entries[0].reason, "elder_meal_discount");
    assert_eq!(ledger.entries[0].reference, "booking-2");
    let references: Vec<&str> = ledger_after
        .entries
        .iter()
        .map(|e| e.reference.as_str())
        .collect();
    assert_eq!(
        references,
        ["booking-2", "booking-3"],
        "the full-price meal and the redelivery add nothing"
    );
    assert_eq!(ledger_after.score, 102);
    Ok(())
}

async fn a_meal_booked_but_not_served_credits_nothing(mut app: TestApp) -> anyhow::Result<()> {
    let merchant = app
        .register("r-1", dining("助老食堂", 0.0, &["elder_meals"]))
        .await?
        .id;
    // Booked over and over, never served: pumping the score by booking.
    for n in 0..3 {
        let booked = meal_booked(&merchant, &format!("booking-{n}"))?;
        publish(&app, CARE, &booked, &booked.id).await?;
    }
    // A marker after them: once it is applied, the ones before it have been handled.
    let served = meal_booking(&merchant, "booking-9", true)?;
    publish(&app, CARE, &served, &served.id).await?;

    let ledger = ledger_with(&app, &merchant, 1).await?;
    let references: Vec<&str> = ledger
        .entries
        .iter()
        .map(|e| e.reference.as_str())
        .collect();
    assert_eq!(references, ["booking-9"], "only the served meal counts");
    assert_eq!(ledger.score, 101);
    Ok(())
}

async fn a_served_meal_announced_again_under_a_new_event_id_credits_once(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let merchant = app
        .register("r-1", dining("助老食堂", 0.0, &["elder_meals"]))
        .await?
        .id;
    let booking = |id: &str| meal_booking(&merchant, id, true);
    let care_stream = CARE;
    let first = booking("booking-1")?;
    let twin = under_a_new_id(&first);
    publish(&app, care_stream, &first, &first.id).await?;
    publish(&app, care_stream, &twin, &twin.id).await?;
    let marker = booking("booking-2")?;
    publish(&app, care_stream, &marker, &marker.id).await?;

    let ledger = ledger_with(&app, &merchant, 2).await?;
    let references: Vec<&str> = ledger
        .entries
        .iter()
        .map(|e| e.reference.as_str())
        .collect();
    assert_eq!(
        references,
        ["booking-1", "booking-2"],
        "the twin credits nothing"
    );
    assert_eq!(ledger.score, 102, "as for two distinct bookings");
    Ok(())
}

async fn a_resolution_announced_again_under_a_new_event_id_moves_the_score_once(
    mut app: TestApp,
) -> anyhow::Result<()> {
    let merchant = app.register("r-1", dining("店", 0.0, &[])).await?.id;
    let at_fault = resolved(&merchant, "complaint-1", true)?;
    let cleared = resolved_at(&merchant, "complaint-1", false, later(1))?;
    publish(&app, COMPLAINTS, &at_fault, &at_fault.id).await?;
    publish(&app, COMPLAINTS, &cleared, &cleared.id).await?;
    // The at-fault resolution re-sent under a new id after the reversal.
    let twin = under_a_new_id(&at_fault);
    publish(&app, COMPLAINTS, &twin, &twin.id).await?;
    let marker = resolved(&merchant, "complaint-2", true)?;
    publish(&app, COMPLAINTS, &marker, &marker.id).await?;

    let ledger = ledger_with(&app, &merchant, 3).await?;
    let moves: Vec<(i32, &str)> = ledger
        .entries
        .iter()
        .map(|e| (e.delta, e.reference.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            (-10, "complaint-1"),
            (10, "complaint-1"),
            (-10, "complaint-2")
        ],
        "the twin of a resolution already applied (and reversed) deducts nothing"
    );
    Ok(())
}
