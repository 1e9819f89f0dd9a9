//! `shequctl complaints`: submit, show, list, every lifecycle transition, figures.

use anyhow::Context;
use chrono::Utc;
use serde_json::{Value, json};
use shequ_proto::common::v1 as common;
use shequ_proto::complaints::v1 as pb;
use shequ_proto::complaints::v1::complaint_service_client::ComplaintServiceClient;

use super::{
    Connection, DUPLICATE, Listing, Target, connect, non_empty, page_request, percent, request_id,
    text,
};
use crate::cli::{Change, ComplaintsCommand, FiguresArgs, ListArgs, SubmitArgs};
use crate::codes::name_of;
use crate::failure::Usage;
use crate::output::Output;
use crate::table::Table;
use crate::time;

type Client = ComplaintServiceClient<Connection>;

pub(super) async fn run(
    command: &ComplaintsCommand,
    target: &Target,
    output: Output,
) -> anyhow::Result<()> {
    if let ComplaintsCommand::Figures(args) = command {
        let period = time::period(args.from, args.to, Utc::now()).map_err(Usage)?;
        return figures(
            &mut Client::new(connect(target).await?),
            args,
            period,
            output,
        )
        .await;
    }
    let client = &mut Client::new(connect(target).await?);
    match command {
        ComplaintsCommand::Submit(args) => submit(client, args, output).await,
        ComplaintsCommand::Show { id } => show(client, id, output).await,
        ComplaintsCommand::List(args) => list(client, args, output).await,
        transition => {
            let complaint = change(client, transition).await?;
            print_changed(&complaint, output)
        }
    }
}

async fn submit(client: &mut Client, args: &SubmitArgs, output: Output) -> anyhow::Result<()> {
    let reporter =
        (args.reporter_name.is_some() || args.reporter_phone.is_some()).then(|| pb::Reporter {
            name: text(&args.reporter_name),
            phone: text(&args.reporter_phone),
        });
    let request = pb::SubmitComplaintRequest {
        request_id: request_id(&args.request_id),
        text: args.text.clone(),
        channel: args.channel.into(),
        category: args.category.map_or(0, Into::into),
        priority: args.priority.map_or(0, Into::into),
        reporter,
        grid_id: text(&args.grid),
        building_id: text(&args.building),
        location: text(&args.location),
        merchant_id: text(&args.merchant),
        elder_id: text(&args.elder),
        point: args.point.to_proto(),
    };
    let response = client
        .submit_complaint(request)
        .await
        .context("submitting the complaint")?
        .into_inner();
    let complaint = response.complaint.unwrap_or_default();
    output.print(
        || json!({"complaint": complaint_json(&complaint), "duplicate": response.duplicate}),
        || {
            let mut table = Table::plain();
            table
                .row(["id", complaint.id.as_str()])
                .row(["status", &name_of::<pb::Status>(complaint.status)])
                .row(["category", &category(&complaint)])
                .row(["classified by", complaint.classified_by.as_str()])
                .row(["priority", &name_of::<pb::Priority>(complaint.priority)])
                .row(["grid", &place(&complaint)])
                .row(["assignee", complaint.assignee.as_str()])
                .row([
                    "response due",
                    &time::local(complaint.response_due_at.as_ref()),
                ])
                .row([
                    "resolution due",
                    &time::local(complaint.resolution_due_at.as_ref()),
                ]);
            if !complaint.possible_duplicates.is_empty() {
                table.row(["possible duplicates", &possible_duplicates(&complaint)]);
            }
            if response.duplicate {
                table.row(DUPLICATE);
            }
            table.to_string()
        },
    )
}

async fn show(client: &mut Client, id: &str, output: Output) -> anyhow::Result<()> {
    let complaint = client
        .get_complaint(pb::GetComplaintRequest {
            complaint_id: id.to_owned(),
        })
        .await
        .with_context(|| format!("reading complaint {id}"))?
        .into_inner()
        .complaint
        .unwrap_or_default();
    output.print(
        || json!({"complaint": complaint_json(&complaint)}),
        || {
            let mut history = Table::new(["time", "actor", "action", "from → to", "note"]);
            for entry in &complaint.history {
                history.row([
                    time::local(entry.at.as_ref()),
                    entry.actor.clone(),
                    entry.action.clone(),
                    format!(
                        "{} → {}",
                        name_of::<pb::Status>(entry.from_status),
                        name_of::<pb::Status>(entry.to_status)
                    ),
                    match entry.satisfaction {
                        0 => entry.note.clone(),
                        score => format!("satisfaction {score} of 5 {}", entry.note)
                            .trim_end()
                            .to_owned(),
                    },
                ]);
            }
            format!("{}\nhistory\n{history}", details(&complaint))
        },
    )
}

async fn list(client: &mut Client, args: &ListArgs, output: Output) -> anyhow::Result<()> {
    let request = pb::ListComplaintsRequest {
        status: args.status.map_or(0, Into::into),
        grid_id: text(&args.grid),
        community_id: text(&args.community),
        category: args.category.map_or(0, Into::into),
        overdue_only: args.overdue,
        page: Some(page_request(&args.page)),
    };
    let response = client
        .list_complaints(request)
        .await
        .context("listing complaints")?
        .into_inner();
    Listing {
        key: "complaints",
        items: &response.complaints,
        page: response.page,
        none: "no complaints",
        json: complaint_json,
        header: [
            "id",
            "status",
            "category",
            "grid",
            "assignee",
            "submitted",
            "overdue",
        ],
        row: |c| {
            [
                c.id.clone(),
                name_of::<pb::Status>(c.status),
                name_of::<pb::Category>(c.category),
                c.grid_id.clone(),
                c.assignee.clone(),
                time::local(c.submitted_at.as_ref()),
                if c.overdue { "overdue" } else { "" }.to_owned(),
            ]
        },
    }
    .print(output)
}

/// Performs one lifecycle transition; returns the complaint as it now stands.
async fn change(client: &mut Client, command: &ComplaintsCommand) -> anyhow::Result<pb::Complaint> {
    let ids = |change: &Change| {
        (
            change.id.clone(),
            change.actor.clone(),
            text(&change.request_id),
        )
    };
    let (verb, complaint) = match command {
        ComplaintsCommand::Accept { change, assignee } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::AcceptComplaintRequest {
                complaint_id,
                actor,
                assignee: text(assignee),
                request_id,
            };
            (
                "accepting",
                client
                    .accept_complaint(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::Start { change } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::StartComplaintRequest {
                complaint_id,
                actor,
                request_id,
            };
            (
                "starting",
                client
                    .start_complaint(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::Resolve {
            change,
            note,
            merchant_at_fault,
        } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::ResolveComplaintRequest {
                complaint_id,
                actor,
                note: note.clone(),
                merchant_at_fault: *merchant_at_fault,
                request_id,
            };
            (
                "resolving",
                client
                    .resolve_complaint(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::FollowUp {
            change,
            satisfaction,
            recurred,
            comment,
        } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::RecordFollowUpRequest {
                complaint_id,
                actor,
                satisfaction: *satisfaction,
                problem_recurred: *recurred,
                comment: text(comment),
                request_id,
            };
            (
                "recording the follow-up of",
                client
                    .record_follow_up(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::Reject { change, reason } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::RejectComplaintRequest {
                complaint_id,
                actor,
                reason: reason.clone(),
                request_id,
            };
            (
                "rejecting",
                client
                    .reject_complaint(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::Merge { change, into } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::MergeComplaintRequest {
                complaint_id,
                into_complaint_id: into.clone(),
                actor,
                request_id,
            };
            (
                "merging",
                client
                    .merge_complaint(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::Reclassify {
            change,
            category,
            priority,
        } => {
            let (complaint_id, actor, request_id) = ids(change);
            let request = pb::ReclassifyComplaintRequest {
                complaint_id,
                category: (*category).into(),
                priority: priority.map_or(0, Into::into),
                actor,
                request_id,
            };
            (
                "reclassifying",
                client
                    .reclassify_complaint(request)
                    .await
                    .map(|r| r.into_inner().complaint),
            )
        }
        ComplaintsCommand::Submit(_)
        | ComplaintsCommand::Show { .. }
        | ComplaintsCommand::List(_)
        | ComplaintsCommand::Figures(_) => anyhow::bail!("not a lifecycle transition"),
    };
    let complaint = complaint.with_context(|| format!("{verb} the complaint"))?;
    complaint.context("the service answered without the complaint")
}

fn print_changed(complaint: &pb::Complaint, output: Output) -> anyhow::Result<()> {
    output.print(
        || json!({"complaint": complaint_json(complaint)}),
        || {
            let mut line = format!(
                "{}  {}",
                complaint.id,
                name_of::<pb::Status>(complaint.status)
            );
            if !complaint.assignee.is_empty() {
                line.push_str(&format!("  assignee {}", complaint.assignee));
            }
            if !complaint.merged_into.is_empty() {
                line.push_str(&format!("  merged into {}", complaint.merged_into));
            }
            line + "\n"
        },
    )
}

async fn figures(
    client: &mut Client,
    args: &FiguresArgs,
    period: time::Period,
    output: Output,
) -> anyhow::Result<()> {
    let request = pb::GetFiguresRequest {
        community_id: text(&args.community),
        grid_id: text(&args.grid),
        period: Some(common::Period {
            from: Some(time::timestamp(period.from)),
            to: Some(time::timestamp(period.to)),
        }),
    };
    let figures = client
        .get_figures(request)
        .await
        .context("reading the figures")?
        .into_inner()
        .figures
        .unwrap_or_default();
    output.print(|| figures_json(&figures), || figures_text(&figures))
}

/// The measures `figures` prints: name, counted part, whole, rate.
fn measures(f: &pb::Figures) -> [(&'static str, u32, u32, Option<f64>); 5] {
    [
        (
            "response",
            f.responded_on_time,
            f.response_counted,
            f.response_rate,
        ),
        (
            "on_time_resolution",
            f.resolved_on_time,
            f.resolution_counted,
            f.on_time_resolution_rate,
        ),
        (
            "satisfaction",
            f.satisfied,
            f.followed_up,
            f.satisfaction_rate,
        ),
        ("reopen", f.reopened, f.resolved, f.reopen_rate),
        (
            "follow_up",
            f.followed_up_on_time,
            f.follow_up_counted,
            f.follow_up_rate,
        ),
    ]
}

fn figures_text(f: &pb::Figures) -> String {
    let period = f.period.unwrap_or_default();
    let mut summary = Table::plain();
    summary
        .row(["scope", f.scope.as_str()])
        .row([
            "period".to_owned(),
            format!(
                "{} to {} (UTC+8)",
                time::local(period.from.as_ref()),
                time::local(period.to.as_ref())
            ),
        ])
        .row(["as of".to_owned(), time::local(f.as_of.as_ref())])
        .row(["submitted".to_owned(), f.submitted.to_string()])
        .row([
            "cases".to_owned(),
            format!("{} ({} merged into another)", f.cases, f.merged),
        ]);
    let what = [
        "accepted on time, of accepted or past the limit",
        "resolved on time, of resolved or past the limit",
        "satisfied (4-5), of followed up",
        "reopened, of resolved",
        "visited on time, of visited or past the limit",
    ];
    let mut rates = Table::new(["measure", "count", "of", "rate", ""]);
    for ((name, part, whole, rate), what) in measures(f).into_iter().zip(what) {
        rates.row([
            name.replace('_', " "),
            part.to_string(),
            whole.to_string(),
            percent(rate),
            what.to_owned(),
        ]);
    }
    let backlog = f.backlog.unwrap_or_default();
    let mut open = Table::new(["under 1 day", "1-3 days", "3-7 days", "over 7 days"]);
    open.row(
        [
            backlog.under_1_day,
            backlog.from_1_to_3_days,
            backlog.from_3_to_7_days,
            backlog.over_7_days,
        ]
        .map(|n| n.to_string()),
    );
    format!("{summary}\n{rates}\nbacklog (open now, by age)\n{open}")
}

fn figures_json(f: &pb::Figures) -> Value {
    let period = f.period.unwrap_or_default();
    let backlog = f.backlog.unwrap_or_default();
    let mut value = json!({
        "scope": f.scope,
        "period": {
            "from": time::json(period.from.as_ref()),
            "to": time::json(period.to.as_ref()),
        },
        "as_of": time::json(f.as_of.as_ref()),
        "submitted": f.submitted,
        "merged": f.merged,
        "cases": f.cases,
        "backlog": {
            "under_1_day": backlog.under_1_day,
            "from_1_to_3_days": backlog.from_1_to_3_days,
            "from_3_to_7_days": backlog.from_3_to_7_days,
            "over_7_days": backlog.over_7_days,
        },
    });
    for (name, part, whole, rate) in measures(f) {
        value[name] = json!({"count": part, "of": whole, "rate": rate});
    }
    value
}

/// `87.5%`, or `n/a` when nothing was counted.
/// Every field of a complaint worth showing, one per row; empty ones left out.
fn details(c: &pb::Complaint) -> Table {
    let reporter = c
        .reporter
        .as_ref()
        .map(|r| r.name.as_str())
        .filter(|name| !name.is_empty());
    let reporter = match (reporter, c.reporter_phone_masked.as_str()) {
        (None, "") => String::new(),
        (Some(name), "") => name.to_owned(),
        (None, phone) => phone.to_owned(),
        (Some(name), phone) => format!("{name} {phone}"),
    };
    let satisfaction = if c.satisfaction == 0 {
        String::new()
    } else {
        format!("{} of 5", c.satisfaction)
    };
    let rows = [
        ("id", c.id.clone()),
        ("status", name_of::<pb::Status>(c.status)),
        ("text", c.text.clone()),
        ("channel", name_of::<pb::Channel>(c.channel)),
        (
            "category",
            format!("{} (by {})", category(c), c.classified_by),
        ),
        ("priority", name_of::<pb::Priority>(c.priority)),
        ("reporter", reporter),
        ("community", c.community_id.clone()),
        ("grid", place(c)),
        ("location", c.location.clone()),
        ("point", point(c)),
        ("possible duplicates", possible_duplicates(c)),
        ("merchant", c.merchant_id.clone()),
        ("elder", c.elder_id.clone()),
        ("level", name_of::<pb::Level>(c.level)),
        ("assignee", c.assignee.clone()),
        ("submitted", time::local(c.submitted_at.as_ref())),
        ("response due", time::local(c.response_due_at.as_ref())),
        ("accepted", time::local(c.accepted_at.as_ref())),
        ("resolution due", time::local(c.resolution_due_at.as_ref())),
        ("resolved", time::local(c.resolved_at.as_ref())),
        ("resolution note", c.resolution_note.clone()),
        (
            "merchant at fault",
            if c.merchant_at_fault {
                "yes".into()
            } else {
                String::new()
            },
        ),
        ("follow-up due", time::local(c.follow_up_due_at.as_ref())),
        ("satisfaction", satisfaction),
        ("closed", time::local(c.closed_at.as_ref())),
        ("reject reason", c.reject_reason.clone()),
        ("merged into", c.merged_into.clone()),
        (
            "reopened",
            if c.reopen_count == 0 {
                String::new()
            } else {
                format!("{} times", c.reopen_count)
            },
        ),
        (
            "overdue",
            if c.overdue { "yes".into() } else { "no".into() },
        ),
    ];
    let mut table = Table::plain();
    for (label, value) in rows {
        if !value.is_empty() && value != "-" {
            table.row([label.to_owned(), value]);
        }
    }
    table
}

/// `xinyuan-1` or `xinyuan-1 / building xinyuan-b2`.
/// The map point and its datum, e.g. `34.80100, 113.66200 (gcj02)`.
fn point(c: &pb::Complaint) -> String {
    c.point.as_ref().map_or_else(String::new, |p| {
        format!(
            "{:.5}, {:.5} ({})",
            p.latitude,
            p.longitude,
            name_of::<common::Datum>(p.datum)
        )
    })
}

/// The possible duplicates, e.g. `cmp-1 (12.0 m), cmp-2 (same building)`;
/// `shequctl complaints merge` folds one into another.
fn possible_duplicates(c: &pb::Complaint) -> String {
    c.possible_duplicates
        .iter()
        .map(|d| match d.distance_metres {
            Some(metres) => format!("{} ({metres:.1} m)", d.complaint_id),
            None => format!("{} (same building)", d.complaint_id),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn place(c: &pb::Complaint) -> String {
    if c.building_id.is_empty() {
        c.grid_id.clone()
    } else {
        format!("{} / building {}", c.grid_id, c.building_id)
    }
}

/// A complaint for `--json`: enums by code name, times in RFC 3339 UTC, the
/// reporter's phone masked only.
fn complaint_json(c: &pb::Complaint) -> Value {
    let history: Vec<Value> = c
        .history
        .iter()
        .map(|entry| {
            json!({
                "at": time::json(entry.at.as_ref()),
                "actor": entry.actor,
                "action": entry.action,
                "from_status": name_of::<pb::Status>(entry.from_status),
                "to_status": name_of::<pb::Status>(entry.to_status),
                "note": entry.note,
                "satisfaction": (entry.satisfaction != 0).then_some(entry.satisfaction),
            })
        })
        .collect();
    json!({
        "id": c.id,
        "status": name_of::<pb::Status>(c.status),
        "text": c.text,
        "channel": name_of::<pb::Channel>(c.channel),
        "category": name_of::<pb::Category>(c.category),
        "classified_by": c.classified_by,
        "classification_pending": c.classification_pending,
        "priority": name_of::<pb::Priority>(c.priority),
        "reporter_name": c.reporter.as_ref().map(|r| r.name.as_str()).filter(|n| !n.is_empty()),
        "reporter_phone_masked": non_empty(&c.reporter_phone_masked),
        "community_id": c.community_id,
        "grid_id": c.grid_id,
        "building_id": non_empty(&c.building_id),
        "location": non_empty(&c.location),
        "point": c.point.as_ref().map(|p| json!({
            "latitude": p.latitude,
            "longitude": p.longitude,
            "datum": name_of::<common::Datum>(p.datum),
        })),
        "possible_duplicates": c.possible_duplicates.iter().map(|d| json!({
            "complaint_id": d.complaint_id,
            "distance_metres": d.distance_metres,
            "same_building": d.same_building,
        })).collect::<Vec<_>>(),
        "merchant_id": non_empty(&c.merchant_id),
        "elder_id": non_empty(&c.elder_id),
        "level": name_of::<pb::Level>(c.level),
        "assignee": c.assignee,
        "submitted_at": time::json(c.submitted_at.as_ref()),
        "response_due_at": time::json(c.response_due_at.as_ref()),
        "resolution_due_at": time::json(c.resolution_due_at.as_ref()),
        "accepted_at": time::json(c.accepted_at.as_ref()),
        "resolved_at": time::json(c.resolved_at.as_ref()),
        "follow_up_due_at": time::json(c.follow_up_due_at.as_ref()),
        "closed_at": time::json(c.closed_at.as_ref()),
        "resolution_note": non_empty(&c.resolution_note),
        "merchant_at_fault": c.merchant_at_fault,
        "satisfaction": (c.satisfaction != 0).then_some(c.satisfaction),
        "reject_reason": non_empty(&c.reject_reason),
        "merged_into": non_empty(&c.merged_into),
        "reopen_count": c.reopen_count,
        "overdue": c.overdue,
        "history": history,
    })
}

/// The category, marked 分类待定 while it waits for the dispatcher.
fn category(c: &pb::Complaint) -> String {
    let name = name_of::<pb::Category>(c.category);
    if c.classification_pending {
        format!("{name}, 分类待定 (for review)")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_percentages_and_absent_rates_are_na() {
        assert_eq!(percent(Some(0.875)), "87.5%");
        assert_eq!(percent(Some(1.0)), "100.0%");
        assert_eq!(percent(None), "n/a");
    }

    #[test]
    fn figures_json_keeps_absent_rates_null() {
        let figures = pb::Figures {
            scope: "district".into(),
            submitted: 2,
            responded_on_time: 1,
            response_counted: 2,
            response_rate: Some(0.5),
            ..Default::default()
        };
        let value = figures_json(&figures);
        assert_eq!(value["response"], json!({"count": 1, "of": 2, "rate": 0.5}));
        assert_eq!(value["satisfaction"]["rate"], Value::Null);
        assert_eq!(value["backlog"]["over_7_days"], json!(0));
    }

    #[test]
    fn a_complaint_in_json_uses_code_names() {
        let complaint = pb::Complaint {
            id: "c-1".into(),
            status: pb::Status::InProgress.into(),
            category: pb::Category::EnvironmentSanitation.into(),
            ..Default::default()
        };
        let value = complaint_json(&complaint);
        assert_eq!(value["status"], "in_progress");
        assert_eq!(value["category"], "environment_sanitation");
        assert_eq!(value["resolved_at"], Value::Null);
    }
}
