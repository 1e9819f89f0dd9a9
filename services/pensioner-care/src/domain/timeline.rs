//! An elder's timeline: what happened to them, in order — registration,
//! pairings, visits and alerts, overdue visits, bookings, complaints filed
//! from visits and what became of them (learned from complaint events). The
//! entries' kinds and wording are stated here once; the store only writes them.

use chrono::{DateTime, Utc};

use super::elder::{Elder, district_time_text};
use super::pairing::Pairing;
use super::requests::VisitRequest;
use super::services::{Booking, Settlement};
use super::visits::NewVisit;
use super::{ComplaintId, ElderId, VisitId};

/// One line of an elder's timeline, as read back. `reference` is the id of
/// what the line is about (the elder, a pairing, a visit, a booking, a
/// complaint), whichever kind it is, so it stays text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
    pub reference: String,
}

/// A line to add to elder `elder_id`'s timeline. `fact` is the identity of
/// the fact it records, for entries learned from other services' events: the
/// timeline holds one entry per fact, however many events announce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub elder_id: ElderId,
    pub at: DateTime<Utc>,
    pub kind: &'static str,
    pub summary: String,
    pub reference: String,
    pub fact: Option<String>,
}

impl Entry {
    /// `reference`: the id of what the entry is about.
    fn new(
        elder_id: &ElderId,
        at: DateTime<Utc>,
        kind: &'static str,
        summary: String,
        reference: impl AsRef<str>,
    ) -> Self {
        Self {
            elder_id: elder_id.clone(),
            at,
            kind,
            summary,
            reference: reference.as_ref().to_owned(),
            fact: None,
        }
    }
}

pub fn registered(elder: &Elder, actor: &str) -> Entry {
    let summary = format!(
        "registered by {actor}; risk {}",
        elder.assessment.level.as_str()
    );
    Entry::new(
        &elder.id,
        elder.registered_at,
        "registered",
        summary,
        &elder.id,
    )
}

pub fn updated(elder: &Elder, actor: &str, at: DateTime<Utc>) -> Entry {
    let summary = format!(
        "details updated by {actor}; risk {}",
        elder.assessment.level.as_str()
    );
    Entry::new(&elder.id, at, "updated", summary, &elder.id)
}

pub fn paired(pairing: &Pairing, actor: &str) -> Entry {
    let summary = format!("paired with volunteer {} by {actor}", pairing.volunteer_id);
    Entry::new(
        &pairing.elder_id,
        pairing.started_at,
        "paired",
        summary,
        &pairing.id,
    )
}

pub fn unpaired(pairing: &Pairing, actor: &str, reason: &str, at: DateTime<Utc>) -> Entry {
    let summary = format!(
        "pairing with {} ended by {actor}: {reason}",
        pairing.volunteer_id
    );
    Entry::new(&pairing.elder_id, at, "unpaired", summary, &pairing.id)
}

/// The visit itself, at the time it took place; who recorded it when that
/// is not the visitor (a volunteer's visit entered by staff); a home visit
/// recorded far from home says so.
pub fn visited(visit_id: &VisitId, visit: &NewVisit, far_from_home: bool) -> Entry {
    let visitor = visit.visitor.id();
    let recorded = if visitor == visit.actor {
        String::new()
    } else {
        format!(" (recorded by {})", visit.actor)
    };
    let far = if far_from_home {
        " (recorded far from home)"
    } else {
        ""
    };
    let summary = format!(
        "{} by {visitor}{recorded}: {}{far}",
        visit.kind.as_str(),
        visit.wellbeing.as_str()
    );
    Entry::new(
        &visit.elder_id,
        visit.visited_at,
        "visit",
        summary,
        visit_id,
    )
}

/// The alert an urgent visit raises, when it is recorded.
pub fn alert(visit_id: &VisitId, visit: &NewVisit, at: DateTime<Utc>) -> Entry {
    let summary = format!("urgent: alert raised by {}", visit.visitor.id());
    Entry::new(&visit.elder_id, at, "alert", summary, visit_id)
}

pub fn overdue(elder_id: &ElderId, period: u32, due_at: DateTime<Utc>, at: DateTime<Utc>) -> Entry {
    let summary = format!(
        "visit overdue (period {period}, due {})",
        district_time_text(due_at)
    );
    Entry::new(elder_id, at, "visit_overdue", summary, elder_id)
}

/// A booking made by `actor`, or its outcome found again on a retry.
pub fn booked(booking: &Booking, actor: &str, at: DateTime<Utc>) -> Entry {
    let summary = match &booking.merchant_name {
        Some(merchant) => format!(
            "{} booked with {merchant} by {actor}: {}",
            booking.service.as_str(),
            booking.status.as_str()
        ),
        None => format!(
            "{} by {actor}: {}",
            booking.service.as_str(),
            booking.status.as_str()
        ),
    };
    Entry::new(&booking.elder_id, at, "booking", summary, &booking.id)
}

/// A booking settled (served, cancelled, missed) by `actor` at `at`.
pub fn settled(booking: &Booking, to: Settlement, actor: &str, at: DateTime<Utc>) -> Entry {
    let summary = format!(
        "{} for {} {} (recorded by {actor})",
        booking.service.as_str(),
        district_time_text(booking.scheduled_for),
        to.status().as_str()
    );
    Entry::new(
        &booking.elder_id,
        at,
        to.timeline_kind(),
        summary,
        &booking.id,
    )
}

/// A visit requested, when it was raised.
pub fn visit_requested(request: &VisitRequest) -> Entry {
    let note = request
        .note
        .as_deref()
        .map_or_else(String::new, |note| format!(": {note}"));
    let summary = format!(
        "visit requested ({}) by {}, due {}{note}",
        request.reason.as_str(),
        request.raised_by,
        district_time_text(request.due_at)
    );
    Entry::new(
        &request.elder_id,
        request.raised_at,
        "visit_requested",
        summary,
        &request.id,
    )
}

/// A requested visit made.
pub fn visit_request_met(request: &VisitRequest, at: DateTime<Utc>) -> Entry {
    let summary = format!("requested visit ({}) made", request.reason.as_str());
    Entry::new(
        &request.elder_id,
        at,
        "visit_request_met",
        summary,
        &request.id,
    )
}

/// A requested visit not made in time, escalated to the grid's staff.
pub fn visit_request_overdue(request: &VisitRequest, at: DateTime<Utc>) -> Entry {
    let summary = format!(
        "requested visit ({}) overdue since {}: escalated to grid {}",
        request.reason.as_str(),
        district_time_text(request.due_at),
        request.grid_id
    );
    Entry::new(
        &request.elder_id,
        at,
        "visit_request_overdue",
        summary,
        &request.id,
    )
}

pub fn complaint_filed(elder_id: &ElderId, complaint_id: &ComplaintId, at: DateTime<Utc>) -> Entry {
    let summary = format!("complaint {complaint_id} filed from the visit");
    Entry::new(elder_id, at, "complaint_filed", summary, complaint_id)
}

/// What became of complaint `complaint_id` filed for elder `elder_id`
/// (`kind` e.g. `complaint_resolved`, `outcome` e.g. "resolved"), once per
/// `fact` of that complaint (e.g. its resolution instant).
pub fn complaint_outcome(
    elder_id: &ElderId,
    at: DateTime<Utc>,
    kind: &'static str,
    complaint_id: &ComplaintId,
    outcome: &str,
    fact: &str,
) -> Entry {
    let mut entry = Entry::new(
        elder_id,
        at,
        kind,
        format!("complaint {complaint_id} {outcome}"),
        complaint_id,
    );
    entry.fact = Some(format!("{complaint_id}/{fact}"));
    entry
}
