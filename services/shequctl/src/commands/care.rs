//! `shequctl care`: pensioner care (党员助老结对帮扶): register, show and list
//! elders; register and list volunteers; pair and unpair; record visits (and
//! see the complaint a concern files); overdue visits; visits requested after
//! a major event; service bookings; each elder's timeline; the month's care
//! figures.

use anyhow::Context;
use serde_json::{Value, json};
use shequ_proto::care::v1 as pb;
use shequ_proto::care::v1::care_service_client::CareServiceClient;
use shequ_proto::common::v1 as common;

use super::{
    Connection, DUPLICATE, Listing, Target, answered, connect, location, location_json, non_empty,
    page_request, percent, request_id, text, yes_no,
};
use crate::cli::{
    BookArgs, CareCommand, ElderArgs, ElderListArgs, EldersCommand, PageArgs, Settlement,
    VisitArgs, VolunteersCommand,
};
use crate::codes::name_of;
use crate::output::Output;
use crate::table::Table;
use crate::time;

type Client = CareServiceClient<Connection>;

pub(super) async fn run(
    command: &CareCommand,
    target: &Target,
    output: Output,
) -> anyhow::Result<()> {
    let client = &mut Client::new(connect(target).await?);
    match command {
        CareCommand::Elders(EldersCommand::Register(args)) => {
            register_elder(client, args, output).await
        }
        CareCommand::Elders(EldersCommand::Show { id }) => show_elder(client, id, output).await,
        CareCommand::Elders(EldersCommand::List(args)) => list_elders(client, args, output).await,
        CareCommand::Volunteers(VolunteersCommand::Register {
            name,
            phone,
            grid,
            party_member,
            request_id: given_request_id,
            actor,
        }) => {
            let request = pb::RegisterVolunteerRequest {
                request_id: request_id(given_request_id),
                name: name.clone(),
                phone: phone.clone(),
                grid_id: grid.clone(),
                party_member: *party_member,
                actor: actor.clone(),
            };
            let response = client
                .register_volunteer(request)
                .await
                .context("registering the volunteer")?
                .into_inner();
            let volunteer = answered(response.volunteer)?;
            output.print(
                || json!({"volunteer": volunteer_json(&volunteer), "duplicate": response.duplicate}),
                || {
                    let mut table = Table::plain();
                    table
                        .row(["id", volunteer.id.as_str()])
                        .row(["name", volunteer.name.as_str()])
                        .row(["phone", volunteer.phone.as_str()])
                        .row(["grid", volunteer.grid_id.as_str()])
                        .row(["party member".to_owned(), yes_no(volunteer.party_member)]);
                    if response.duplicate {
                        table.row(DUPLICATE);
                    }
                    table.to_string()
                },
            )
        }
        CareCommand::Volunteers(VolunteersCommand::List { grid, page }) => {
            list_volunteers(client, grid, page, output).await
        }
        CareCommand::Pair {
            volunteer,
            elder,
            actor,
            request_id,
        } => {
            let request = pb::PairRequest {
                volunteer_id: volunteer.clone(),
                elder_id: elder.clone(),
                actor: actor.clone(),
                request_id: text(request_id),
            };
            let pairing = client
                .pair(request)
                .await
                .with_context(|| format!("pairing volunteer {volunteer} with elder {elder}"))?
                .into_inner()
                .pairing;
            print_pairing(answered(pairing)?, output)
        }
        CareCommand::Unpair {
            elder,
            reason,
            actor,
            request_id,
        } => {
            let request = pb::UnpairRequest {
                elder_id: elder.clone(),
                reason: reason.clone(),
                actor: actor.clone(),
                request_id: text(request_id),
            };
            let pairing = client
                .unpair(request)
                .await
                .with_context(|| format!("ending the pairing of elder {elder}"))?
                .into_inner()
                .pairing;
            print_pairing(answered(pairing)?, output)
        }
        CareCommand::Visit(args) => visit(client, args, output).await,
        CareCommand::Overdue { grid, page } => overdue(client, grid, page, output).await,
        CareCommand::Book(args) => book(client, args, output).await,
        CareCommand::Settle {
            booking,
            outcome,
            actor,
            request_id: key,
        } => {
            let (booking_id, actor, request_id) = (booking.clone(), actor.clone(), request_id(key));
            let context = || format!("settling booking {booking}");
            // The three RPCs take and answer the same fields.
            macro_rules! settle {
                ($rpc:ident, $request:ident) => {{
                    let request = pb::$request {
                        request_id,
                        booking_id,
                        actor,
                    };
                    let r = client
                        .$rpc(request)
                        .await
                        .with_context(context)?
                        .into_inner();
                    (r.booking, r.duplicate)
                }};
            }
            let (booking, duplicate) = match outcome {
                Settlement::Served => settle!(mark_booking_served, MarkBookingServedRequest),
                Settlement::Cancelled => settle!(cancel_booking, CancelBookingRequest),
                Settlement::NoShow => settle!(mark_booking_no_show, MarkBookingNoShowRequest),
            };
            print_booking(&answered(booking)?, duplicate, output)
        }
        CareCommand::Timeline { elder } => timeline(client, elder, output).await,
        CareCommand::Figures {
            community,
            grid,
            month,
        } => {
            let request = pb::GetCareFiguresRequest {
                grid_id: text(grid),
                community_id: text(community),
                month: text(month),
            };
            let figures = client
                .get_care_figures(request)
                .await
                .context("reading the care figures")?
                .into_inner()
                .figures
                .unwrap_or_default();
            output.print(|| figures_json(&figures), || figures_text(&figures))
        }
        CareCommand::RequestVisit {
            elder,
            hours,
            note,
            request_id: key,
            actor,
        } => {
            let request = pb::RequestVisitRequest {
                request_id: request_id(key),
                elder_id: elder.clone(),
                hours: hours.unwrap_or(0),
                note: text(note),
                actor: actor.clone(),
            };
            let response = client
                .request_visit(request)
                .await
                .with_context(|| format!("requesting a visit to elder {elder}"))?
                .into_inner();
            let request = answered(response.request)?;
            output.print(
                || json!({"request": request_json(&request), "duplicate": response.duplicate}),
                || {
                    let mut table = Table::plain();
                    table
                        .row(["id", request.id.as_str()])
                        .row(["elder", request.elder_id.as_str()])
                        .row(["grid", request.grid_id.as_str()])
                        .row(["due".to_owned(), time::local(request.due_at.as_ref())]);
                    if response.duplicate {
                        table.row(DUPLICATE);
                    }
                    table.to_string()
                },
            )
        }
        CareCommand::VisitRequests { grid, open, page } => {
            let request = pb::ListVisitRequestsRequest {
                grid_id: text(grid),
                open_only: *open,
                page: Some(page_request(page)),
            };
            let response = client
                .list_visit_requests(request)
                .await
                .context("listing visit requests")?
                .into_inner();
            Listing {
                key: "requests",
                items: &response.requests,
                page: response.page,
                none: "no visit requests",
                json: request_json,
                header: ["elder", "grid", "reason", "raised", "due", "state", "id"],
                row: |r| {
                    [
                        r.elder_id.clone(),
                        r.grid_id.clone(),
                        name_of::<pb::VisitRequestReason>(r.reason),
                        time::local(r.raised_at.as_ref()),
                        time::local(r.due_at.as_ref()),
                        request_state(r),
                        r.id.clone(),
                    ]
                },
            }
            .print(output)
        }
    }
}

/// `made (visit …)`, `made late`, `overdue` or `open`.
fn request_state(r: &pb::VisitRequest) -> String {
    match (r.met_by_visit_id.is_empty(), r.overdue_at.is_some()) {
        (false, false) => format!("made ({})", r.met_by_visit_id),
        (false, true) => format!("made late ({})", r.met_by_visit_id),
        (true, true) => "overdue: escalated to the grid".to_owned(),
        (true, false) => "open".to_owned(),
    }
}

fn request_json(r: &pb::VisitRequest) -> Value {
    json!({
        "id": r.id,
        "elder_id": r.elder_id,
        "grid_id": r.grid_id,
        "reason": name_of::<pb::VisitRequestReason>(r.reason),
        "reference": non_empty(&r.reference),
        "note": non_empty(&r.note),
        "raised_by": r.raised_by,
        "raised_at": time::json(r.raised_at.as_ref()),
        "due_at": time::json(r.due_at.as_ref()),
        "met_by_visit_id": non_empty(&r.met_by_visit_id),
        "met_at": time::json(r.met_at.as_ref()),
        "overdue_at": time::json(r.overdue_at.as_ref()),
    })
}

/// The figures' rates: name, counted part, whole, rate, what they count.
fn care_measures(f: &pb::CareFigures) -> [(&'static str, u32, u32, Option<f64>, &'static str); 2] {
    [
        (
            "monthly visit rate",
            f.due_visited,
            f.due,
            f.monthly_visit_rate,
            "visited in the month, of the elders due (target 100 %)",
        ),
        (
            "on-time visits",
            f.visits_on_time,
            f.visits,
            f.on_time_visit_rate,
            "within the elder's interval of the visit before, of the visits",
        ),
    ]
}

fn figures_text(f: &pb::CareFigures) -> String {
    let by_risk = |c: Option<pb::RiskCounts>| {
        let c = c.unwrap_or_default();
        format!(
            "{} (high {}, medium {}, low {})",
            c.high + c.medium + c.low,
            c.high,
            c.medium,
            c.low
        )
    };
    let ratio = |r: Option<f64>| r.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}"));
    let overdue = f.overdue.unwrap_or_default();
    let c = f.complaints.unwrap_or_default();
    let mut summary = Table::plain();
    summary
        .row(["scope", f.scope.as_str()])
        .row(["month", f.month.as_str()])
        .row(["as of".to_owned(), time::local(f.as_of.as_ref())])
        .row(["elders".to_owned(), by_risk(f.elders)]);
    let mut rates = Table::new(["measure", "count", "of", "rate", ""]);
    for (name, part, whole, rate, what) in care_measures(f) {
        rates.row([
            name.to_owned(),
            part.to_string(),
            whole.to_string(),
            percent(rate),
            what.to_owned(),
        ]);
    }
    let mut detail = Table::plain();
    detail
        .row([
            "visits".to_owned(),
            format!(
                "{} (home visits {}, phone calls {}; home visits recorded far from home {})",
                f.visits, f.home_visits, f.phone_calls, f.far_from_home
            ),
        ])
        .row([
            "overdue now".to_owned(),
            format!(
                "{} (under 7 days {}, 7-30 days {}, over 30 days {})",
                overdue.under_7_days + overdue.from_7_to_30_days + overdue.over_30_days,
                overdue.under_7_days,
                overdue.from_7_to_30_days,
                overdue.over_30_days
            ),
        ])
        .row(["unpaired".to_owned(), by_risk(f.unpaired)])
        .row([
            "volunteers".to_owned(),
            format!(
                "{} ({} elders paired, {} per volunteer; {} at the cap of two, {} with none)",
                f.volunteers,
                f.paired_elders,
                ratio(f.elders_per_volunteer),
                f.volunteers_at_cap,
                f.volunteers_without_elders
            ),
        ])
        .row([
            "volunteer visits".to_owned(),
            format!("{} ({} per volunteer)", f.volunteer_visits, ratio(f.visits_per_volunteer)),
        ])
        .row([
            "concern / urgent".to_owned(),
            format!("{} / {}", f.concern_visits, f.urgent_visits),
        ])
        .row([
            "their complaints".to_owned(),
            format!(
                "{} filed ({} open, {} resolved, {} closed, {} reopened, {} rejected); {} pending, {} failed",
                c.filed, c.open, c.resolved, c.closed, c.reopened, c.rejected, c.pending, c.failed
            ),
        ]);
    format!("{summary}\n{rates}\n{detail}")
}

fn figures_json(f: &pb::CareFigures) -> Value {
    let risk = |c: Option<pb::RiskCounts>| {
        let c = c.unwrap_or_default();
        json!({"high": c.high, "medium": c.medium, "low": c.low})
    };
    let overdue = f.overdue.unwrap_or_default();
    let c = f.complaints.unwrap_or_default();
    let rates: serde_json::Map<String, Value> = care_measures(f)
        .into_iter()
        .map(|(name, part, whole, rate, _)| {
            (
                name.replace([' ', '-'], "_"),
                json!({"count": part, "of": whole, "rate": rate}),
            )
        })
        .collect();
    json!({
        "scope": f.scope,
        "month": f.month,
        "as_of": time::json(f.as_of.as_ref()),
        "elders": risk(f.elders),
        "rates": rates,
        "visits": f.visits,
        "home_visits": f.home_visits,
        "phone_calls": f.phone_calls,
        "far_from_home": f.far_from_home,
        "overdue": {
            "under_7_days": overdue.under_7_days,
            "from_7_to_30_days": overdue.from_7_to_30_days,
            "over_30_days": overdue.over_30_days,
        },
        "unpaired": risk(f.unpaired),
        "volunteers": f.volunteers,
        "paired_elders": f.paired_elders,
        "elders_per_volunteer": f.elders_per_volunteer,
        "volunteers_at_cap": f.volunteers_at_cap,
        "volunteers_without_elders": f.volunteers_without_elders,
        "volunteer_visits": f.volunteer_visits,
        "visits_per_volunteer": f.visits_per_volunteer,
        "concern_visits": f.concern_visits,
        "urgent_visits": f.urgent_visits,
        "complaints": {
            "filed": c.filed, "pending": c.pending, "failed": c.failed, "open": c.open,
            "resolved": c.resolved, "closed": c.closed, "reopened": c.reopened,
            "rejected": c.rejected,
        },
    })
}

async fn register_elder(
    client: &mut Client,
    args: &ElderArgs,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::RegisterElderRequest {
        request_id: request_id(&args.request_id),
        details: Some(details_message(args)),
        actor: args.actor.clone(),
    };
    let response = client
        .register_elder(request)
        .await
        .context("registering the elder")?
        .into_inner();
    let elder = answered(response.elder)?;
    output.print(
        || json!({"elder": elder_json(&elder), "duplicate": response.duplicate}),
        || {
            let mut table = elder_details(&elder);
            if response.duplicate {
                table.row(DUPLICATE);
            }
            table.to_string()
        },
    )
}

async fn show_elder(client: &mut Client, id: &str, output: Output) -> anyhow::Result<()> {
    let elder = client
        .get_elder(pb::GetElderRequest {
            elder_id: id.to_owned(),
        })
        .await
        .with_context(|| format!("reading elder {id}"))?
        .into_inner()
        .elder;
    let elder = answered(elder)?;
    output.print(
        || json!({"elder": elder_json(&elder)}),
        || elder_details(&elder).to_string(),
    )
}

async fn list_elders(
    client: &mut Client,
    args: &ElderListArgs,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::ListEldersRequest {
        risk: args.risk.map_or(0, Into::into),
        grid_id: text(&args.grid),
        unpaired_only: args.unpaired,
        page: Some(page_request(&args.page)),
    };
    let response = client
        .list_elders(request)
        .await
        .context("listing elders")?
        .into_inner();
    print_summaries(&response.elders, response.page, "no elders", output)
}

async fn overdue(
    client: &mut Client,
    grid: &Option<String>,
    page: &PageArgs,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::ListOverdueVisitsRequest {
        grid_id: text(grid),
        page: Some(page_request(page)),
    };
    let response = client
        .list_overdue_visits(request)
        .await
        .context("listing overdue visits")?
        .into_inner();
    print_summaries(&response.elders, response.page, "no overdue visits", output)
}

/// Elders in a list (no personal data beyond name and age), with the next
/// page's token.
fn print_summaries(
    elders: &[pb::ElderSummary],
    page: Option<common::PageResponse>,
    none: &str,
    output: Output,
) -> anyhow::Result<()> {
    Listing {
        key: "elders",
        items: elders,
        page,
        none,
        json: summary_json,
        header: [
            "name",
            "age",
            "risk",
            "grid",
            "volunteer",
            "visit due",
            "overdue",
            "id",
        ],
        row: |e| {
            [
                e.name.clone(),
                e.age.to_string(),
                name_of::<pb::RiskLevel>(e.risk),
                e.grid_id.clone(),
                or_dash(&e.volunteer_id),
                time::local(e.next_visit_due_at.as_ref()),
                if e.overdue { "overdue" } else { "" }.to_owned(),
                e.id.clone(),
            ]
        },
    }
    .print(output)
}

async fn list_volunteers(
    client: &mut Client,
    grid: &Option<String>,
    page: &PageArgs,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::ListVolunteersRequest {
        grid_id: text(grid),
        page: Some(page_request(page)),
    };
    let response = client
        .list_volunteers(request)
        .await
        .context("listing volunteers")?
        .into_inner();
    Listing {
        key: "volunteers",
        items: &response.volunteers,
        page: response.page,
        none: "no volunteers",
        json: volunteer_json,
        header: ["id", "name", "phone", "grid", "party member", "elders"],
        row: |v| {
            [
                v.id.clone(),
                v.name.clone(),
                v.phone.clone(),
                v.grid_id.clone(),
                yes_no(v.party_member),
                v.elder_ids.join(", "),
            ]
        },
    }
    .print(output)
}

/// After pairing or unpairing: who with whom, since and until when.
fn print_pairing(pairing: pb::Pairing, output: Output) -> anyhow::Result<()> {
    output.print(
        || json!({"pairing": pairing_json(&pairing)}),
        || {
            let mut table = Table::plain();
            table
                .row(["pairing", pairing.id.as_str()])
                .row(["volunteer", pairing.volunteer_id.as_str()])
                .row(["elder", pairing.elder_id.as_str()])
                .row([
                    "started".to_owned(),
                    time::local(pairing.started_at.as_ref()),
                ]);
            if pairing.ended_at.is_some() {
                table.row(["ended".to_owned(), time::local(pairing.ended_at.as_ref())]);
            }
            table.to_string()
        },
    )
}

async fn visit(client: &mut Client, args: &VisitArgs, output: Output) -> anyhow::Result<()> {
    let request = pb::RecordVisitRequest {
        request_id: request_id(&args.request_id),
        elder_id: args.elder.clone(),
        visitor: args.visitor.clone(),
        kind: args.kind.into(),
        visited_at: args.at.map(time::timestamp),
        wellbeing: args.wellbeing.into(),
        needs: args.needs.clone(),
        notes: text(&args.notes),
        recorded_at: args.recorded_at.to_proto(),
    };
    let response = client
        .record_visit(request)
        .await
        .with_context(|| format!("recording a visit to elder {}", args.elder))?
        .into_inner();
    let visit = answered(response.visit)?;
    output.print(
        || json!({"visit": visit_json(&visit), "duplicate": response.duplicate}),
        || {
            let mut table = Table::plain();
            table
                .row(["id", visit.id.as_str()])
                .row(["elder", visit.elder_id.as_str()])
                .row(["visitor", visit.visitor.as_str()])
                .row(["kind".to_owned(), name_of::<pb::VisitKind>(visit.kind)])
                .row(["time".to_owned(), time::local(visit.visited_at.as_ref())])
                .row([
                    "wellbeing".to_owned(),
                    name_of::<pb::Wellbeing>(visit.wellbeing),
                ]);
            for (index, need) in visit.needs.iter().enumerate() {
                table.row([if index == 0 { "needs" } else { "" }, need.as_str()]);
            }
            if !visit.notes.is_empty() {
                table.row(["notes", visit.notes.as_str()]);
            }
            if let Some(metres) = visit.distance_from_home_metres {
                let far = if visit.far_from_home {
                    ": far from home (flagged)"
                } else {
                    ""
                };
                table.row([
                    "recorded".to_owned(),
                    format!("{metres:.0} m from home{far}"),
                ]);
            }
            table.row(["complaint filing".to_owned(), filing(&visit)]);
            if !visit.complaint_id.is_empty() {
                table.row(["complaint", visit.complaint_id.as_str()]);
            }
            if response.duplicate {
                table.row(DUPLICATE);
            }
            table.to_string()
        },
    )
}

/// `pending: …`, `filed`, `failed: why`, or that there was nothing to file.
fn filing(visit: &pb::Visit) -> String {
    match pb::FilingStatus::try_from(visit.filing) {
        Ok(pb::FilingStatus::Unspecified) => "none: nothing to file".to_owned(),
        Ok(pb::FilingStatus::Pending) => {
            "pending: the complaint will be filed with the complaints service".to_owned()
        }
        Ok(pb::FilingStatus::Failed) if !visit.filing_error.is_empty() => {
            format!("failed: {}", visit.filing_error)
        }
        _ => name_of::<pb::FilingStatus>(visit.filing),
    }
}

async fn book(client: &mut Client, args: &BookArgs, output: Output) -> anyhow::Result<()> {
    let request = pb::BookServiceRequest {
        request_id: request_id(&args.request_id),
        elder_id: args.elder.clone(),
        service: args.service.into(),
        scheduled_for: Some(time::timestamp(args.at)),
        actor: args.actor.clone(),
    };
    let response = client
        .book_service(request)
        .await
        .with_context(|| format!("booking a service for elder {}", args.elder))?
        .into_inner();
    print_booking(&answered(response.booking)?, response.duplicate, output)
}

/// A booking as `book` and `settle` print it.
fn print_booking(booking: &pb::Booking, duplicate: bool, output: Output) -> anyhow::Result<()> {
    output.print(
        || json!({"booking": booking_json(booking), "duplicate": duplicate}),
        || {
            let mut table = Table::plain();
            table
                .row(["id", booking.id.as_str()])
                .row(["elder", booking.elder_id.as_str()])
                .row([
                    "service".to_owned(),
                    name_of::<pb::Service>(booking.service),
                ])
                .row([
                    "scheduled for".to_owned(),
                    time::local(booking.scheduled_for.as_ref()),
                ])
                .row([
                    "status".to_owned(),
                    name_of::<pb::BookingStatus>(booking.status),
                ]);
            if !booking.merchant_id.is_empty() {
                table
                    .row([
                        "merchant".to_owned(),
                        format!("{} ({})", booking.merchant_name, booking.merchant_id),
                    ])
                    .row([
                        "distance".to_owned(),
                        format!("{:.0} m", booking.distance_metres),
                    ]);
            }
            if !booking.note.is_empty() {
                table.row(["note", booking.note.as_str()]);
            }
            if duplicate {
                table.row(DUPLICATE);
            }
            table.to_string()
        },
    )
}

async fn timeline(client: &mut Client, elder: &str, output: Output) -> anyhow::Result<()> {
    let entries = client
        .get_timeline(pb::GetTimelineRequest {
            elder_id: elder.to_owned(),
        })
        .await
        .with_context(|| format!("reading the timeline of elder {elder}"))?
        .into_inner()
        .entries;
    output.print(
        || {
            let entries: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "at": time::json(e.at.as_ref()),
                        "kind": e.kind,
                        "summary": e.summary,
                        "reference": non_empty(&e.reference),
                    })
                })
                .collect();
            json!({"elder_id": elder, "entries": entries})
        },
        || {
            if entries.is_empty() {
                return format!("elder {elder}: nothing recorded yet\n");
            }
            let mut table = Table::new(["time", "kind", "summary", "reference"]);
            for e in &entries {
                table.row([
                    time::local(e.at.as_ref()),
                    e.kind.clone(),
                    e.summary.clone(),
                    e.reference.clone(),
                ]);
            }
            table.to_string()
        },
    )
}

fn or_dash(text: &str) -> String {
    non_empty(text).unwrap_or("-").to_owned()
}

/// What an operator typed, as the proto message.
fn details_message(args: &ElderArgs) -> pb::ElderDetails {
    let location = args.point.to_proto();
    pb::ElderDetails {
        name: args.name.clone(),
        birth_date: args.birth_date.format("%Y-%m-%d").to_string(),
        gender: args.gender.into(),
        grid_id: args.grid.clone(),
        building_id: text(&args.building),
        address: text(&args.address),
        location,
        living_situation: args.living.into(),
        has_disability: args.disability,
        has_chronic_illness: args.chronic_illness,
        health_notes: text(&args.health_notes),
        disability_notes: text(&args.disability_notes),
        emergency_contacts: args.contacts.clone(),
        consents_to_visits: args.consent,
    }
}

/// Every field of an elder worth showing, one per row; empty ones left out.
fn elder_details(e: &pb::Elder) -> Table {
    let d = e.details.clone().unwrap_or_default();
    let place = if d.building_id.is_empty() {
        d.grid_id.clone()
    } else {
        format!("{} / building {}", d.grid_id, d.building_id)
    };
    let flag = |on: bool, notes: &str| match (on, notes) {
        (false, "") => String::new(),
        (false, notes) => format!("no: {notes}"),
        (true, "") => "yes".to_owned(),
        (true, notes) => format!("yes: {notes}"),
    };
    let mut rows = vec![
        ("id", e.id.clone()),
        ("name", d.name.clone()),
        ("birth date", d.birth_date.clone()),
        ("gender", name_of::<pb::Gender>(d.gender)),
        ("grid", place),
        ("address", d.address.clone()),
        (
            "location",
            d.location.as_ref().map(location).unwrap_or_default(),
        ),
        ("living", name_of::<pb::LivingSituation>(d.living_situation)),
        ("disability", flag(d.has_disability, &d.disability_notes)),
        ("chronic illness", flag(d.has_chronic_illness, "")),
        ("health notes", d.health_notes.clone()),
    ];
    for (index, c) in d.emergency_contacts.iter().enumerate() {
        rows.push((
            if index == 0 { "contacts" } else { "" },
            format!("{} {} ({})", c.name, c.phone, c.relation),
        ));
    }
    rows.extend([
        ("consents to visits", yes_no(d.consents_to_visits)),
        ("risk", name_of::<pb::RiskLevel>(e.risk)),
        ("risk reasons", e.risk_reasons.join("; ")),
        (
            "visit interval",
            format!("every {} days", e.visit_interval_days),
        ),
        ("last visit", time::local(e.last_visit_at.as_ref())),
        ("next visit due", time::local(e.next_visit_due_at.as_ref())),
        ("volunteer", e.volunteer_id.clone()),
        ("registered", time::local(e.registered_at.as_ref())),
    ]);
    let mut table = Table::plain();
    for (label, value) in rows {
        if !value.is_empty() && value != "-" {
            table.row([label.to_owned(), value]);
        }
    }
    table
}

/// An elder with personal data for `--json`: enums by code name, times in
/// RFC 3339 UTC.
fn elder_json(e: &pb::Elder) -> Value {
    let d = e.details.clone().unwrap_or_default();
    let contacts: Vec<Value> = d
        .emergency_contacts
        .iter()
        .map(|c| json!({"name": c.name, "phone": c.phone, "relation": c.relation}))
        .collect();
    json!({
        "id": e.id,
        "name": d.name,
        "birth_date": d.birth_date,
        "gender": name_of::<pb::Gender>(d.gender),
        "grid_id": d.grid_id,
        "building_id": non_empty(&d.building_id),
        "address": non_empty(&d.address),
        "location": d.location.as_ref().map(location_json),
        "living_situation": name_of::<pb::LivingSituation>(d.living_situation),
        "has_disability": d.has_disability,
        "has_chronic_illness": d.has_chronic_illness,
        "health_notes": non_empty(&d.health_notes),
        "disability_notes": non_empty(&d.disability_notes),
        "emergency_contacts": contacts,
        "consents_to_visits": d.consents_to_visits,
        "risk": name_of::<pb::RiskLevel>(e.risk),
        "risk_reasons": e.risk_reasons,
        "visit_interval_days": e.visit_interval_days,
        "last_visit_at": time::json(e.last_visit_at.as_ref()),
        "next_visit_due_at": time::json(e.next_visit_due_at.as_ref()),
        "volunteer_id": non_empty(&e.volunteer_id),
        "registered_at": time::json(e.registered_at.as_ref()),
    })
}

/// An elder in a list: what the service's summary carries, no personal data.
fn summary_json(e: &pb::ElderSummary) -> Value {
    json!({
        "id": e.id,
        "name": e.name,
        "age": e.age,
        "grid_id": e.grid_id,
        "risk": name_of::<pb::RiskLevel>(e.risk),
        "volunteer_id": non_empty(&e.volunteer_id),
        "next_visit_due_at": time::json(e.next_visit_due_at.as_ref()),
        "overdue": e.overdue,
    })
}

fn volunteer_json(v: &pb::Volunteer) -> Value {
    json!({
        "id": v.id,
        "name": v.name,
        "phone": v.phone,
        "grid_id": v.grid_id,
        "party_member": v.party_member,
        "elder_ids": v.elder_ids,
    })
}

fn pairing_json(p: &pb::Pairing) -> Value {
    json!({
        "id": p.id,
        "volunteer_id": p.volunteer_id,
        "elder_id": p.elder_id,
        "started_at": time::json(p.started_at.as_ref()),
        "ended_at": time::json(p.ended_at.as_ref()),
    })
}

/// A visit for `--json`; `filing` is `null` when there was nothing to file.
fn visit_json(v: &pb::Visit) -> Value {
    let filing = (v.filing != i32::from(pb::FilingStatus::Unspecified))
        .then(|| name_of::<pb::FilingStatus>(v.filing));
    json!({
        "id": v.id,
        "elder_id": v.elder_id,
        "visitor": v.visitor,
        "kind": name_of::<pb::VisitKind>(v.kind),
        "visited_at": time::json(v.visited_at.as_ref()),
        "wellbeing": name_of::<pb::Wellbeing>(v.wellbeing),
        "needs": v.needs,
        "notes": non_empty(&v.notes),
        "filing": filing,
        "complaint_id": non_empty(&v.complaint_id),
        "filing_error": non_empty(&v.filing_error),
        "distance_from_home_metres": v.distance_from_home_metres,
        "far_from_home": v.far_from_home,
    })
}

fn booking_json(b: &pb::Booking) -> Value {
    let meal = !b.merchant_id.is_empty();
    json!({
        "id": b.id,
        "elder_id": b.elder_id,
        "service": name_of::<pb::Service>(b.service),
        "scheduled_for": time::json(b.scheduled_for.as_ref()),
        "status": name_of::<pb::BookingStatus>(b.status),
        "merchant_id": non_empty(&b.merchant_id),
        "merchant_name": non_empty(&b.merchant_name),
        "distance_metres": meal.then_some(b.distance_metres),
        "note": non_empty(&b.note),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elder() -> pb::Elder {
        pb::Elder {
            id: "e-1".into(),
            details: Some(pb::ElderDetails {
                name: "王秀英".into(),
                birth_date: "1943-05-01".into(),
                gender: pb::Gender::Female.into(),
                grid_id: "xinyuan-1".into(),
                building_id: "xinyuan-b2".into(),
                living_situation: pb::LivingSituation::Alone.into(),
                has_chronic_illness: true,
                health_notes: "高血压".into(),
                emergency_contacts: vec![pb::EmergencyContact {
                    name: "李梅".into(),
                    phone: "13812345678".into(),
                    relation: "女儿".into(),
                }],
                consents_to_visits: true,
                ..Default::default()
            }),
            risk: pb::RiskLevel::High.into(),
            risk_reasons: vec!["80岁以上 (80+)".into(), "独居 (living alone)".into()],
            visit_interval_days: 7,
            ..Default::default()
        }
    }

    #[test]
    fn an_elder_in_json_uses_code_names_and_keeps_personal_data() {
        let value = elder_json(&elder());
        assert_eq!(value["gender"], "female");
        assert_eq!(value["living_situation"], "alone");
        assert_eq!(value["risk"], "high");
        assert_eq!(value["visit_interval_days"], 7);
        assert_eq!(value["emergency_contacts"][0]["relation"], "女儿");
        assert_eq!(value["location"], Value::Null);
        assert_eq!(value["volunteer_id"], Value::Null);
    }

    #[test]
    fn the_details_show_risk_reasons_schedule_and_contacts() {
        let text = elder_details(&elder()).to_string();
        assert!(text.contains("xinyuan-1 / building xinyuan-b2"), "{text}");
        assert!(
            text.contains("80岁以上 (80+); 独居 (living alone)"),
            "{text}"
        );
        assert!(text.contains("every 7 days"), "{text}");
        assert!(text.contains("李梅 13812345678 (女儿)"), "{text}");
        assert!(
            text.lines()
                .any(|line| line.starts_with("chronic illness") && line.ends_with(" yes")),
            "{text}"
        );
        assert!(!text.contains("disability"), "{text}");
    }

    #[test]
    fn a_visit_shows_what_became_of_its_complaint() {
        let mut visit = pb::Visit::default();
        assert_eq!(filing(&visit), "none: nothing to file");
        assert_eq!(visit_json(&visit)["filing"], Value::Null);
        visit.filing = pb::FilingStatus::Pending.into();
        assert!(filing(&visit).starts_with("pending"));
        assert_eq!(visit_json(&visit)["filing"], "pending");
        visit.filing = pb::FilingStatus::Failed.into();
        visit.filing_error = "grid unknown".into();
        assert_eq!(filing(&visit), "failed: grid unknown");
        visit.filing = pb::FilingStatus::Filed.into();
        visit.complaint_id = "c-1".into();
        assert_eq!(filing(&visit), "filed");
        assert_eq!(visit_json(&visit)["complaint_id"], "c-1");
    }

    #[test]
    fn a_booking_without_a_merchant_has_no_distance() {
        let booking = pb::Booking {
            status: pb::BookingStatus::NoMerchantNearby.into(),
            service: pb::Service::MealAssistance.into(),
            ..Default::default()
        };
        let value = booking_json(&booking);
        assert_eq!(value["status"], "no_merchant_nearby");
        assert_eq!(value["service"], "meal_assistance");
        assert_eq!(value["distance_metres"], Value::Null);
    }
}
