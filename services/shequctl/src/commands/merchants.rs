//! `shequctl merchants`: register, show, list, update, suspend and reinstate
//! merchants; the convenience circle (便民服务圈); activities, the credit
//! ledger (诚信分) and model-merchant awards (党员示范商户).

use std::path::Path;

use anyhow::Context;
use chrono::Utc;
use serde_json::{Value, json};
use shequ_proto::alliance::v1 as pb;
use shequ_proto::alliance::v1::merchant_service_client::MerchantServiceClient;
use shequ_proto::common::v1 as common;

use super::{
    Connection, DUPLICATE, Listing, Target, answered, connect, location, location_json, non_empty,
    page_request, request_id, text, yes_no,
};
use crate::buildings;
use crate::cli::{ActivityArgs, DetailsArgs, MerchantListArgs, MerchantsCommand, NearbyArgs};
use crate::codes::{code, name_of};
use crate::hours;
use crate::output::Output;
use crate::table::Table;
use crate::time;

type Client = MerchantServiceClient<Connection>;

pub(super) async fn run(
    command: &MerchantsCommand,
    target: &Target,
    output: Output,
) -> anyhow::Result<()> {
    let client = &mut Client::new(connect(target).await?);
    match command {
        MerchantsCommand::Register {
            details,
            request_id,
            actor,
        } => register(client, details, request_id, actor, output).await,
        MerchantsCommand::Show { id, datum } => show(client, id, *datum, output).await,
        MerchantsCommand::List(args) => list(client, args, output).await,
        MerchantsCommand::Update { id, details, actor } => {
            update(client, id, details, actor, output).await
        }
        MerchantsCommand::Suspend { id, reason, actor } => {
            let request = pb::SuspendMerchantRequest {
                merchant_id: id.clone(),
                reason: reason.clone(),
                actor: actor.clone(),
            };
            let merchant = client
                .suspend_merchant(request)
                .await
                .with_context(|| format!("suspending merchant {id}"))?
                .into_inner()
                .merchant;
            print_changed(merchant, output)
        }
        MerchantsCommand::Reinstate { id, actor } => {
            let request = pb::ReinstateMerchantRequest {
                merchant_id: id.clone(),
                actor: actor.clone(),
            };
            let merchant = client
                .reinstate_merchant(request)
                .await
                .with_context(|| format!("reinstating merchant {id}"))?
                .into_inner()
                .merchant;
            print_changed(merchant, output)
        }
        MerchantsCommand::Nearby(args) => nearby(client, args, output).await,
        MerchantsCommand::Activity(args) => activity(client, args, output).await,
        MerchantsCommand::Ledger { id } => ledger(client, id, output).await,
        MerchantsCommand::Evaluate {
            period,
            award,
            actor,
        } => evaluate(client, period, *award, actor, output).await,
        MerchantsCommand::Coverage {
            grid,
            building,
            buildings,
        } => coverage(client, grid, building, *buildings, output).await,
        MerchantsCommand::LoadBuildings { file } => load_buildings(client, file, output).await,
    }
}

async fn load_buildings(client: &mut Client, path: &Path, output: Output) -> anyhow::Result<()> {
    let buildings = buildings::read(path)?;
    let loaded = client
        .load_buildings(pb::LoadBuildingsRequest { buildings })
        .await
        .context("loading the building points")?
        .into_inner();
    output.print(
        || json!({"buildings": loaded.buildings, "grids": loaded.grids}),
        || {
            format!(
                "building points loaded from {}: {} buildings in {} grids (coverage is recomputed \
                 and its changes published)\n",
                path.display(),
                loaded.buildings,
                loaded.grids
            )
        },
    )
}

/// The most a whole district's coverage may take on the wire (a few hundred
/// bytes a building).
const COVERAGE_BYTES: usize = 64 * 1024 * 1024;

async fn coverage(
    client: &mut Client,
    grid: &Option<String>,
    building: &Option<String>,
    per_building: bool,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::GetCircleCoverageRequest {
        grid_id: text(grid),
        building_id: text(building),
    };
    let response = client
        .clone()
        .max_decoding_message_size(COVERAGE_BYTES)
        .get_circle_coverage(request)
        .await
        .context("reading the circle coverage")?
        .into_inner();
    output.print(
        || coverage_json(&response),
        || coverage_text(&response, per_building),
    )
}

/// `reached/buildings`, with the longest walk to the service when reached.
fn kind_cell(kind: &pb::KindCoverage, buildings: u32) -> String {
    let reached = format!("{}/{buildings}", kind.buildings_reached);
    match &kind.longest_walk {
        Some(longest) => format!("{reached} ≤{:.1}′", longest.walk_minutes),
        None => reached,
    }
}

fn coverage_text(response: &pb::GetCircleCoverageResponse, per_building: bool) -> String {
    let heading = format!(
        "circle coverage: an active merchant within a {}-minute walk ({:.0} m) of each building; \
         reached/buildings ≤ the longest walk in minutes; grids with a gap first\n",
        response.walk_minutes, response.radius_metres
    );
    if response.grids.is_empty() {
        return format!(
            "{heading}no building points loaded (shequctl merchants load-buildings FILE)\n"
        );
    }
    let kinds: Vec<String> = response
        .grids
        .first()
        .map(|g| {
            g.kinds
                .iter()
                .map(|k| name_of::<pb::BasicService>(k.kind))
                .collect()
        })
        .unwrap_or_default();
    let mut header = vec!["grid".to_owned(), "buildings".to_owned()];
    header.extend(kinds.iter().cloned());
    header.push("gap".to_owned());
    let mut table = Table::new(header);
    for grid in &response.grids {
        let mut row = vec![grid.grid_id.clone(), grid.building_count.to_string()];
        row.extend(grid.kinds.iter().map(|k| kind_cell(k, grid.building_count)));
        row.push(yes_no(grid.has_gap));
        table.row(row);
    }
    let mut text = format!("{heading}\n{table}");
    if per_building {
        for grid in &response.grids {
            let mut header = vec!["building".to_owned()];
            header.extend(kinds.iter().cloned());
            let mut buildings = Table::new(header);
            for building in &grid.buildings {
                let mut row = vec![building.building_id.clone()];
                row.extend(building.kinds.iter().map(|k| match &k.nearest {
                    Some(n) => format!("{} {:.1}′", n.merchant_name, n.walk_minutes),
                    None => "-".to_owned(),
                }));
                buildings.row(row);
            }
            text.push_str(&format!(
                "\n{}: nearest of each service\n{buildings}",
                grid.grid_id
            ));
        }
    }
    text
}

fn nearest_json(n: &pb::NearestMerchant) -> Value {
    json!({
        "merchant_id": n.merchant_id,
        "merchant_name": n.merchant_name,
        "distance_metres": n.distance_metres,
        "walk_minutes": n.walk_minutes,
    })
}

fn coverage_json(response: &pb::GetCircleCoverageResponse) -> Value {
    let grids: Vec<Value> = response
        .grids
        .iter()
        .map(|grid| {
            json!({
                "grid_id": grid.grid_id,
                "building_count": grid.building_count,
                "has_gap": grid.has_gap,
                "kinds": grid.kinds.iter().map(|k| json!({
                    "kind": name_of::<pb::BasicService>(k.kind),
                    "buildings_reached": k.buildings_reached,
                    "covered": k.covered,
                    "longest_walk": k.longest_walk.as_ref().map(nearest_json),
                    "longest_walk_building_id": non_empty(&k.longest_walk_building_id),
                })).collect::<Vec<_>>(),
                "buildings": grid.buildings.iter().map(|b| json!({
                    "building_id": b.building_id,
                    "kinds": b.kinds.iter().map(|k| json!({
                        "kind": name_of::<pb::BasicService>(k.kind),
                        "nearest": k.nearest.as_ref().map(nearest_json),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "walk_minutes": response.walk_minutes,
        "radius_metres": response.radius_metres,
        "grids": grids,
    })
}

async fn register(
    client: &mut Client,
    details_args: &DetailsArgs,
    given_request_id: &Option<String>,
    actor: &str,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::RegisterMerchantRequest {
        request_id: request_id(given_request_id),
        details: Some(details_message(details_args)),
        actor: actor.to_owned(),
    };
    let response = client
        .register_merchant(request)
        .await
        .context("registering the merchant")?
        .into_inner();
    let merchant = answered(response.merchant)?;
    output.print(
        || json!({"merchant": merchant_json(&merchant), "duplicate": response.duplicate}),
        || {
            let mut table = details(&merchant);
            if response.duplicate {
                table.row(DUPLICATE);
            }
            table.to_string()
        },
    )
}

async fn show(
    client: &mut Client,
    id: &str,
    datum: Option<common::Datum>,
    output: Output,
) -> anyhow::Result<()> {
    let merchant = client
        .get_merchant(pb::GetMerchantRequest {
            merchant_id: id.to_owned(),
            datum: datum.map_or(0, Into::into),
        })
        .await
        .with_context(|| format!("reading merchant {id}"))?
        .into_inner()
        .merchant;
    let merchant = answered(merchant)?;
    output.print(
        || json!({"merchant": merchant_json(&merchant)}),
        || details(&merchant).to_string(),
    )
}

async fn list(client: &mut Client, args: &MerchantListArgs, output: Output) -> anyhow::Result<()> {
    let request = pb::ListMerchantsRequest {
        grid_id: text(&args.grid),
        category: args.category.map_or(0, Into::into),
        status: args.status.map_or(0, Into::into),
        page: Some(page_request(&args.page)),
    };
    let response = client
        .list_merchants(request)
        .await
        .context("listing merchants")?
        .into_inner();
    Listing {
        key: "merchants",
        items: &response.merchants,
        page: response.page,
        none: "no merchants",
        json: merchant_json,
        header: ["id", "name", "category", "grid", "status", "score", "tags"],
        row: |m| {
            [
                m.id.clone(),
                m.name.clone(),
                name_of::<pb::Category>(m.category),
                m.grid_id.clone(),
                name_of::<pb::MerchantStatus>(m.status),
                m.credit_score.to_string(),
                m.service_tags.join(", "),
            ]
        },
    }
    .print(output)
}

async fn update(
    client: &mut Client,
    id: &str,
    details_args: &DetailsArgs,
    actor: &str,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::UpdateMerchantRequest {
        merchant_id: id.to_owned(),
        details: Some(details_message(details_args)),
        actor: actor.to_owned(),
    };
    let merchant = client
        .update_merchant(request)
        .await
        .with_context(|| format!("updating merchant {id}"))?
        .into_inner()
        .merchant;
    let merchant = answered(merchant)?;
    output.print(
        || json!({"merchant": merchant_json(&merchant)}),
        || details(&merchant).to_string(),
    )
}

/// After a suspension or reinstatement: the merchant's id, name and status.
fn print_changed(merchant: Option<pb::Merchant>, output: Output) -> anyhow::Result<()> {
    let merchant = answered(merchant)?;
    output.print(
        || json!({"merchant": merchant_json(&merchant)}),
        || {
            format!(
                "{}  {}  {}\n",
                merchant.id,
                merchant.name,
                status(&merchant)
            )
        },
    )
}

async fn nearby(client: &mut Client, args: &NearbyArgs, output: Output) -> anyhow::Result<()> {
    let point = common::GeoPoint {
        latitude: args.lat,
        longitude: args.lng,
        datum: args.datum.into(),
    };
    let request = pb::FindNearbyRequest {
        point: Some(point),
        category: args.category.into(),
        service_tag: text(&args.tag),
        walk_minutes: args.minutes,
        open_now: args.open_now,
        limit: args.limit.unwrap_or(0),
    };
    let response = client
        .find_nearby(request)
        .await
        .context("searching the convenience circle")?
        .into_inner();
    output.print(
        || {
            let merchants: Vec<Value> = response
                .merchants
                .iter()
                .map(|found| {
                    json!({
                        "merchant": found.merchant.as_ref().map(merchant_json),
                        "distance_metres": found.distance_metres,
                        "walk_minutes": found.walk_minutes,
                    })
                })
                .collect();
            json!({"radius_metres": response.radius_metres, "merchants": merchants})
        },
        || {
            let mut searched = format!(
                "{} merchants within {:.0} m ({}-minute walk) of {}",
                code(args.category),
                response.radius_metres,
                args.minutes,
                location(&point),
            );
            if let Some(tag) = &args.tag {
                searched.push_str(&format!(", offering {tag}"));
            }
            if args.open_now {
                searched.push_str(", open now");
            }
            if response.merchants.is_empty() {
                return format!("no {searched}\n");
            }
            let mut table = Table::new([
                "name",
                "distance (m)",
                "walk (min)",
                "tags",
                "hours",
                "score",
                "id",
            ]);
            for found in &response.merchants {
                let m = found.merchant.clone().unwrap_or_default();
                table.row([
                    m.name.clone(),
                    format!("{:.0}", found.distance_metres),
                    format!("{:.1}", found.walk_minutes),
                    m.service_tags.join(", "),
                    hours::texts(&m.opening_hours),
                    m.credit_score.to_string(),
                    m.id.clone(),
                ]);
            }
            format!("{searched}\n{table}")
        },
    )
}

async fn activity(client: &mut Client, args: &ActivityArgs, output: Output) -> anyhow::Result<()> {
    let at = args.at.unwrap_or_else(|| time::this_minute(Utc::now()));
    let request = pb::RecordActivityRequest {
        request_id: request_id(&args.request_id),
        merchant_id: args.id.clone(),
        kind: args.kind.into(),
        description: args.description.clone(),
        happened_at: Some(time::timestamp(at)),
        actor: args.actor.clone(),
    };
    let response = client
        .record_activity(request)
        .await
        .with_context(|| format!("recording an activity of merchant {}", args.id))?
        .into_inner();
    let entry = answered(response.entry)?;
    output.print(
        || {
            json!({
                "merchant_id": args.id,
                "entry": entry_json(&entry),
                "duplicate": response.duplicate,
            })
        },
        || {
            let mut table = Table::plain();
            table
                .row(["merchant", args.id.as_str()])
                .row(["seq", &entry.seq.to_string()])
                .row(["time", &time::local(entry.at.as_ref())])
                .row(["delta", &delta(entry.delta)])
                .row(["score after", &entry.score_after.to_string()])
                .row(["reason", entry.reason.as_str()])
                .row(["reference", entry.reference.as_str()])
                .row(["actor", entry.actor.as_str()]);
            if response.duplicate {
                table.row(DUPLICATE);
            }
            table.to_string()
        },
    )
}

async fn ledger(client: &mut Client, id: &str, output: Output) -> anyhow::Result<()> {
    let ledger = client
        .get_credit_ledger(pb::GetCreditLedgerRequest {
            merchant_id: id.to_owned(),
        })
        .await
        .with_context(|| format!("reading the credit ledger of merchant {id}"))?
        .into_inner();
    output.print(
        || {
            json!({
                "merchant_id": id,
                "score": ledger.score,
                "entries": ledger.entries.iter().map(entry_json).collect::<Vec<_>>(),
            })
        },
        || {
            let score = format!("merchant {id}: credit score {}\n", ledger.score);
            if ledger.entries.is_empty() {
                return format!("{score}no changes yet: the starting score\n");
            }
            let mut table = Table::new([
                "seq",
                "time",
                "delta",
                "score after",
                "reason",
                "reference",
                "source event / actor",
            ]);
            for entry in &ledger.entries {
                let source = [entry.source_event_id.as_str(), entry.actor.as_str()]
                    .into_iter()
                    .filter(|part| !part.is_empty())
                    .collect::<Vec<_>>()
                    .join(" / ");
                table.row([
                    entry.seq.to_string(),
                    time::local(entry.at.as_ref()),
                    delta(entry.delta),
                    entry.score_after.to_string(),
                    entry.reason.clone(),
                    entry.reference.clone(),
                    source,
                ]);
            }
            format!("{score}\n{table}")
        },
    )
}

async fn evaluate(
    client: &mut Client,
    period: &str,
    award: bool,
    actor: &Option<String>,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::EvaluateModelMerchantsRequest {
        period: period.to_owned(),
        award,
        actor: if award { text(actor) } else { String::new() },
    };
    let response = client
        .evaluate_model_merchants(request)
        .await
        .with_context(|| format!("evaluating model merchants for {period}"))?
        .into_inner();
    output.print(
        || {
            let evaluations: Vec<Value> = response
                .evaluations
                .iter()
                .map(|e| {
                    json!({
                        "merchant_id": e.merchant_id,
                        "merchant_name": e.merchant_name,
                        "qualified": e.qualified,
                        "awarded": e.awarded,
                        "reasons": e.reasons,
                    })
                })
                .collect();
            json!({"period": response.period, "award": award, "evaluations": evaluations})
        },
        || {
            let what = if award {
                "awards recorded"
            } else {
                "report only: --award records the awards"
            };
            let heading = format!("model merchants, {} ({what})\n", response.period);
            if response.evaluations.is_empty() {
                return format!("{heading}no merchants to evaluate\n");
            }
            let mut table = Table::new(["merchant", "id", "qualified", "awarded", "reasons"]);
            for e in &response.evaluations {
                table.row([
                    e.merchant_name.clone(),
                    e.merchant_id.clone(),
                    yes_no(e.qualified),
                    yes_no(e.awarded),
                    e.reasons.join("; "),
                ]);
            }
            format!("{heading}\n{table}")
        },
    )
}

/// What an operator typed, as the proto message.
fn details_message(args: &DetailsArgs) -> pb::MerchantDetails {
    pb::MerchantDetails {
        name: args.name.clone(),
        category: args.category.into(),
        service_tags: args.tags.clone(),
        location: Some(common::GeoPoint {
            latitude: args.lat,
            longitude: args.lng,
            datum: args.datum.into(),
        }),
        address: text(&args.address),
        grid_id: args.grid.clone(),
        opening_hours: args.hours.clone(),
        party_member_owner: args.party_member_owner,
    }
}

/// Every field of a merchant worth showing, one per row; empty ones left out.
fn details(m: &pb::Merchant) -> Table {
    let mut rows = vec![
        ("id", m.id.clone()),
        ("name", m.name.clone()),
        ("category", name_of::<pb::Category>(m.category)),
        ("tags", m.service_tags.join(", ")),
        (
            "location",
            m.location.as_ref().map(location).unwrap_or_default(),
        ),
        ("address", m.address.clone()),
        ("grid", m.grid_id.clone()),
    ];
    for (index, hours) in m.opening_hours.iter().enumerate() {
        rows.push((if index == 0 { "hours" } else { "" }, hours::text(hours)));
    }
    rows.extend([
        (
            "party member owner",
            if m.party_member_owner {
                "yes".into()
            } else {
                String::new()
            },
        ),
        ("status", status(m)),
        ("credit score", m.credit_score.to_string()),
        ("registered", time::local(m.registered_at.as_ref())),
        ("updated", time::local(m.updated_at.as_ref())),
    ]);
    let mut table = Table::plain();
    for (label, value) in rows {
        if !value.is_empty() && value != "-" {
            table.row([label.to_owned(), value]);
        }
    }
    table
}

/// `active`, or `suspended: why`.
fn status(m: &pb::Merchant) -> String {
    let status = name_of::<pb::MerchantStatus>(m.status);
    if m.suspended_reason.is_empty() {
        status
    } else {
        format!("{status}: {}", m.suspended_reason)
    }
}

/// `+2`, `-10`.
fn delta(delta: i32) -> String {
    format!("{delta:+}")
}

/// A merchant for `--json`: enums by code name, times in RFC 3339 UTC.
fn merchant_json(m: &pb::Merchant) -> Value {
    let hours: Vec<Value> = m
        .opening_hours
        .iter()
        .map(|h| {
            json!({
                "days": h.days.iter().map(|day| name_of::<pb::Weekday>(*day)).collect::<Vec<_>>(),
                "opens": h.opens,
                "closes": h.closes,
            })
        })
        .collect();
    let location = m.location.as_ref().map(location_json);
    json!({
        "id": m.id,
        "name": m.name,
        "category": name_of::<pb::Category>(m.category),
        "service_tags": m.service_tags,
        "location": location,
        "address": non_empty(&m.address),
        "grid_id": m.grid_id,
        "opening_hours": hours,
        "party_member_owner": m.party_member_owner,
        "status": name_of::<pb::MerchantStatus>(m.status),
        "suspended_reason": non_empty(&m.suspended_reason),
        "credit_score": m.credit_score,
        "registered_at": time::json(m.registered_at.as_ref()),
        "updated_at": time::json(m.updated_at.as_ref()),
    })
}

fn entry_json(e: &pb::CreditEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": time::json(e.at.as_ref()),
        "delta": e.delta,
        "score_after": e.score_after,
        "reason": e.reason,
        "reference": non_empty(&e.reference),
        "source_event_id": non_empty(&e.source_event_id),
        "actor": non_empty(&e.actor),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant() -> pb::Merchant {
        pb::Merchant {
            id: "m-1".into(),
            name: "老张家常菜".into(),
            category: pb::Category::Dining.into(),
            service_tags: vec!["elder_meals".into()],
            location: Some(common::GeoPoint {
                latitude: 34.8,
                longitude: 113.66,
                datum: common::Datum::Gcj02.into(),
            }),
            grid_id: "xinyuan-1".into(),
            opening_hours: vec![crate::hours::parse("mon-fri 08:00-20:00").unwrap_or_default()],
            status: pb::MerchantStatus::Suspended.into(),
            suspended_reason: "health inspection".into(),
            credit_score: 98,
            ..Default::default()
        }
    }

    #[test]
    fn a_merchant_in_json_uses_code_names() {
        let value = merchant_json(&merchant());
        assert_eq!(value["category"], "dining");
        assert_eq!(value["status"], "suspended");
        assert_eq!(value["location"]["datum"], "gcj02");
        assert_eq!(value["opening_hours"][0]["days"][4], "friday");
        assert_eq!(value["opening_hours"][0]["opens"], "08:00");
        assert_eq!(value["address"], Value::Null);
    }

    #[test]
    fn the_details_show_datum_hours_and_why_suspended() {
        let text = details(&merchant()).to_string();
        assert!(text.contains("34.800000, 113.660000 (gcj02)"), "{text}");
        assert!(text.contains("mon-fri 08:00-20:00"), "{text}");
        assert!(text.contains("suspended: health inspection"), "{text}");
        assert!(!text.contains("address"), "{text}");
    }

    fn walk(name: &str, minutes: f64) -> pb::NearestMerchant {
        pb::NearestMerchant {
            merchant_id: format!("m-{name}"),
            merchant_name: name.into(),
            distance_metres: minutes * 80.0,
            walk_minutes: minutes,
        }
    }

    fn coverage_answer() -> pb::GetCircleCoverageResponse {
        let kinds = |reached: u32| {
            [pb::BasicService::BreakfastDining, pb::BasicService::Repair]
                .into_iter()
                .enumerate()
                .map(|(i, kind)| pb::KindCoverage {
                    kind: kind.into(),
                    buildings_reached: if i == 0 { reached } else { 0 },
                    covered: i == 0 && reached == 2,
                    longest_walk: (i == 0 && reached > 0).then(|| walk("老王面馆", 3.8)),
                    longest_walk_building_id: if i == 0 { "b-2".into() } else { String::new() },
                })
                .collect()
        };
        pb::GetCircleCoverageResponse {
            walk_minutes: 15,
            radius_metres: 1200.0,
            grids: vec![pb::GridCoverage {
                grid_id: "xinyuan-1".into(),
                building_count: 2,
                kinds: kinds(2),
                buildings: vec![pb::BuildingCoverage {
                    building_id: "b-1".into(),
                    kinds: vec![
                        pb::BuildingKind {
                            kind: pb::BasicService::BreakfastDining.into(),
                            nearest: Some(walk("老王面馆", 1.3)),
                        },
                        pb::BuildingKind {
                            kind: pb::BasicService::Repair.into(),
                            nearest: None,
                        },
                    ],
                }],
                has_gap: true,
            }],
        }
    }

    #[test]
    fn coverage_shows_reached_over_buildings_with_the_longest_walk() {
        let text = coverage_text(&coverage_answer(), true);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("15-minute walk (1200 m)"), "{text}");
        assert!(
            lines[2].contains("breakfast_dining") && lines[2].contains("repair"),
            "{text}"
        );
        assert!(lines[3].starts_with("xinyuan-1"), "{text}");
        assert!(
            lines[3].contains("2/2 ≤3.8′") && lines[3].contains("0/2"),
            "{text}"
        );
        assert!(lines[3].trim_end().ends_with("yes"), "{text}");
        assert!(
            text.contains("b-1") && text.contains("老王面馆 1.3′"),
            "{text}"
        );
        let empty = pb::GetCircleCoverageResponse::default();
        assert!(coverage_text(&empty, false).contains("load-buildings"));
    }

    #[test]
    fn coverage_in_json_uses_code_names() {
        let value = coverage_json(&coverage_answer());
        let grid = &value["grids"][0];
        assert_eq!(grid["kinds"][0]["kind"], "breakfast_dining");
        assert_eq!(grid["kinds"][0]["longest_walk"]["walk_minutes"], 3.8);
        assert_eq!(grid["kinds"][1]["longest_walk"], Value::Null);
        assert_eq!(grid["buildings"][0]["kinds"][1]["nearest"], Value::Null);
    }

    #[test]
    fn deltas_carry_their_sign() {
        assert_eq!(delta(2), "+2");
        assert_eq!(delta(-10), "-10");
        assert_eq!(delta(0), "+0");
    }
}
