//! The complaint (诉求) and its lifecycle:
//!
//! ```text
//! submitted → accepted → in_progress → resolved → closed        (follow-up: satisfied)
//!                                          ↘ reopened → …        (follow-up: 1-2 of 5, or it came back)
//! any open state → rejected (with a reason) | merged (into another open complaint)
//! ```
//!
//! Each method checks the transition against the current status, changes the
//! complaint and returns the [`Transition`] to record in the history. A refused
//! transition changes nothing.

use chrono::{DateTime, Duration, Utc};
/// A time limit that has passed: response or resolution.
pub use shequ_proto::kinds::complaints::Breach;

use super::classification::{Classification, is_pending};
use super::duplicates::PossibleDuplicate;
use super::kinds::{
    Category, Channel, Level, LevelExt, MerchantCheck, Priority, Status, StatusExt,
};
use super::organisation::Chain;
use super::reporter::Reporter;
use super::time_limits::TimeLimits;
use super::{BuildingId, CommunityId, ComplaintId, ElderId, FieldError, GridId, MerchantId};
use shequ_chassis::geo::Location;

#[derive(Debug, Clone, PartialEq)]
pub struct Complaint {
    pub id: ComplaintId,
    pub status: Status,
    pub text: String,
    pub channel: Channel,
    pub category: Category,
    /// "caller", "operator", or the classifier's decision naming its
    /// evidence: "model:…", or "review:…" for one sent to review (see
    /// `domain::classification`).
    pub classified_by: String,
    pub priority: Priority,
    pub reporter: Reporter,
    pub community_id: CommunityId,
    pub grid_id: GridId,
    pub building_id: Option<BuildingId>,
    pub location: Option<String>,
    /// Where on a map, as given.
    pub point: Option<Location>,
    /// Open complaints that may report the same thing, found at intake
    /// (see `domain::duplicates`).
    pub possible_duplicates: Vec<PossibleDuplicate>,
    pub merchant_id: Option<MerchantId>,
    /// What the alliance said of `merchant_id`; `None` without a merchant.
    pub merchant_check: Option<MerchantCheck>,
    pub elder_id: Option<ElderId>,
    pub level: Level,
    pub assignee: String,
    pub submitted_at: DateTime<Utc>,
    /// When the current resolution cycle began: submission, or the last reopening.
    pub cycle_started_at: DateTime<Utc>,
    pub response_due_at: DateTime<Utc>,
    pub resolution_due_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub follow_up_due_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub resolution_note: Option<String>,
    pub merchant_at_fault: bool,
    pub satisfaction: Option<Satisfaction>,
    pub reject_reason: Option<String>,
    pub merged_into: Option<ComplaintId>,
    pub reopen_count: u32,
}

/// What a resident says when taking in a complaint, already parsed.
#[derive(Debug, Clone)]
pub struct Intake {
    pub text: String,
    pub channel: Channel,
    /// The caller's category, or the classifier's proposal.
    pub classification: Classification,
    pub priority: Priority,
    pub reporter: Reporter,
    pub building_id: Option<BuildingId>,
    pub location: Option<String>,
    pub point: Option<Location>,
    pub merchant_id: Option<MerchantId>,
    pub merchant_check: Option<MerchantCheck>,
    pub elder_id: Option<ElderId>,
}

/// A follow-up score, 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Satisfaction(u8);

impl Satisfaction {
    pub fn parse(field: &str, value: u32) -> Result<Self, FieldError> {
        match u8::try_from(value) {
            Ok(score @ 1..=5) => Ok(Self(score)),
            _ => Err(FieldError::new(
                field,
                format!("must be 1 to 5, got {value}"),
            )),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }

    /// 4 or 5 of 5: counts as satisfied in the figures and closes the case.
    pub fn is_satisfied(self) -> bool {
        self.0 >= 4
    }

    /// 1 or 2 of 5: the case is reopened.
    pub fn is_dissatisfied(self) -> bool {
        self.0 <= 2
    }
}

/// What happened, as recorded in the history and named in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Submitted,
    Accepted,
    Started,
    Escalated,
    Resolved,
    Closed,
    Reopened,
    Rejected,
    Merged,
    Reclassified,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Submitted => "submitted",
            Action::Accepted => "accepted",
            Action::Started => "started",
            Action::Escalated => "escalated",
            Action::Resolved => "resolved",
            Action::Closed => "closed",
            Action::Reopened => "reopened",
            Action::Rejected => "rejected",
            Action::Merged => "merged",
            Action::Reclassified => "reclassified",
        }
    }
}

/// One recorded change of a complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub action: Action,
    pub from: Status,
    pub to: Status,
    /// Free text for the history (reason, note, what moved); never published.
    pub note: Option<String>,
    pub detail: Detail,
}

/// What some transitions need to say beyond the complaint's new state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Detail {
    #[default]
    None,
    Escalated {
        breach: Breach,
        from_level: Level,
        /// The limit that passed.
        due_at: DateTime<Utc>,
    },
    Reclassified {
        from_category: Category,
        from_priority: Priority,
    },
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a {status} complaint cannot be {action}", status = .status.as_str(), action = .action.as_str())]
    NotAllowed { action: Action, status: Status },
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Field(#[from] FieldError),
}

impl Complaint {
    /// Takes in a complaint: routes it to the grid worker of `chain`, or,
    /// when its classification went to review (分类待定), to the community's
    /// dispatcher (the committee's handler), and sets its time limits.
    pub fn submit(
        id: ComplaintId,
        intake: Intake,
        chain: &Chain,
        limits: &TimeLimits,
        now: DateTime<Utc>,
    ) -> (Self, Transition) {
        let Classification {
            category,
            pending,
            classified_by,
            ..
        } = intake.classification;
        let level = if pending {
            Level::CommunityCommittee
        } else {
            Level::GridWorker
        };
        let limit = limits.limit(category, intake.priority);
        let complaint = Self {
            id,
            status: Status::Submitted,
            text: intake.text,
            channel: intake.channel,
            category,
            classified_by,
            priority: intake.priority,
            reporter: intake.reporter,
            community_id: chain.community_id.clone(),
            grid_id: chain.grid_id.clone(),
            building_id: intake.building_id,
            location: intake.location,
            point: intake.point,
            possible_duplicates: Vec::new(),
            merchant_id: intake.merchant_id,
            merchant_check: intake.merchant_check,
            elder_id: intake.elder_id,
            level,
            assignee: chain.handler(level).to_owned(),
            submitted_at: now,
            cycle_started_at: now,
            response_due_at: limits.due(limit.response, now),
            resolution_due_at: limits.due(limit.resolution, now),
            accepted_at: None,
            resolved_at: None,
            follow_up_due_at: None,
            closed_at: None,
            resolution_note: None,
            merchant_at_fault: false,
            satisfaction: None,
            reject_reason: None,
            merged_into: None,
            reopen_count: 0,
        };
        let transition = Transition {
            action: Action::Submitted,
            from: Status::Submitted,
            to: Status::Submitted,
            note: None,
            detail: Detail::None,
        };
        (complaint, transition)
    }

    /// A handler acknowledges it; the response limit stops counting.
    pub fn accept(
        &mut self,
        assignee: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Transition, TransitionError> {
        self.require(Action::Accepted, &[Status::Submitted])?;
        self.accepted_at = Some(now);
        if let Some(assignee) = assignee {
            self.assignee = assignee;
        }
        Ok(self.move_to(
            Action::Accepted,
            Status::Accepted,
            Some(format!("assigned to {}", self.assignee)),
        ))
    }

    pub fn start(&mut self) -> Result<Transition, TransitionError> {
        self.require(Action::Started, &[Status::Accepted, Status::Reopened])?;
        Ok(self.move_to(Action::Started, Status::InProgress, None))
    }

    /// Resolved with a note; the follow-up visit becomes due.
    pub fn resolve(
        &mut self,
        note: String,
        merchant_at_fault: bool,
        follow_up: Duration,
        now: DateTime<Utc>,
    ) -> Result<Transition, TransitionError> {
        self.require(
            Action::Resolved,
            &[Status::Accepted, Status::InProgress, Status::Reopened],
        )?;
        if merchant_at_fault && self.merchant_id.is_none() {
            return Err(FieldError::new(
                "merchant_at_fault",
                "the complaint references no merchant",
            )
            .into());
        }
        self.accepted_at.get_or_insert(now);
        self.resolved_at = Some(now);
        self.follow_up_due_at = Some(now + follow_up);
        self.merchant_at_fault = merchant_at_fault;
        self.resolution_note = Some(note.clone());
        Ok(self.move_to(Action::Resolved, Status::Resolved, Some(note)))
    }

    /// Records the follow-up visit: satisfied enough closes the case; 1-2 of 5 or a
    /// problem that came back reopens it with a fresh resolution limit.
    pub fn follow_up(
        &mut self,
        satisfaction: Satisfaction,
        problem_recurred: bool,
        comment: Option<String>,
        limits: &TimeLimits,
        now: DateTime<Utc>,
    ) -> Result<Transition, TransitionError> {
        self.require(Action::Closed, &[Status::Resolved])?;
        let limit = limits.limit(self.category, self.priority);
        self.satisfaction = Some(satisfaction);
        if problem_recurred || satisfaction.is_dissatisfied() {
            self.reopen_count += 1;
            self.cycle_started_at = now;
            self.resolution_due_at = limits.due(limit.resolution, now);
            // The new cycle is unresolved; the last resolution stays in the
            // history. The follow-up limit met (or missed) stays until the
            // next resolution sets a new one.
            self.resolved_at = None;
            return Ok(self.move_to(Action::Reopened, Status::Reopened, comment));
        }
        self.closed_at = Some(now);
        Ok(self.move_to(Action::Closed, Status::Closed, comment))
    }

    pub fn reject(&mut self, reason: String) -> Result<Transition, TransitionError> {
        self.require_open(Action::Rejected)?;
        self.reject_reason = Some(reason.clone());
        Ok(self.move_to(Action::Rejected, Status::Rejected, Some(reason)))
    }

    /// Marks this complaint a duplicate of `target`, another open complaint of
    /// the same category in the same community.
    pub fn merge_into(&mut self, target: &Complaint) -> Result<Transition, TransitionError> {
        self.require_open(Action::Merged)?;
        if target.id == self.id {
            return Err(FieldError::new(
                "into_complaint_id",
                "a complaint cannot be merged into itself",
            )
            .into());
        }
        if !target.status.is_open() {
            return Err(TransitionError::Precondition(format!(
                "complaint {} is {}, not open",
                target.id,
                target.status.as_str()
            )));
        }
        if target.community_id != self.community_id {
            return Err(TransitionError::Precondition(format!(
                "complaint {} is in community {}, not {}: only a complaint of the same \
                 community can be a duplicate",
                target.id, target.community_id, self.community_id
            )));
        }
        if target.category != self.category {
            return Err(TransitionError::Precondition(format!(
                "complaint {} is {}, not {}",
                target.id,
                target.category.as_str(),
                self.category.as_str()
            )));
        }
        self.merged_into = Some(target.id.clone());
        Ok(self.move_to(
            Action::Merged,
            Status::Merged,
            Some(format!("duplicate of {}", target.id)),
        ))
    }

    /// An operator changes the category (and optionally the priority); the time
    /// limits of the current cycle still running are recomputed for the new
    /// class. A limit already met or missed stays the one in force then: an
    /// acknowledgement keeps its response limit, a resolution its resolution
    /// limit, so events and figures judge "on time" by one limit.
    pub fn reclassify(
        &mut self,
        category: Category,
        priority: Option<Priority>,
        limits: &TimeLimits,
    ) -> Result<Transition, TransitionError> {
        if self.status.is_final() {
            return Err(TransitionError::NotAllowed {
                action: Action::Reclassified,
                status: self.status,
            });
        }
        let note = format!(
            "{}/{} → {}/{}",
            self.category.as_str(),
            self.priority.as_str(),
            category.as_str(),
            priority.unwrap_or(self.priority).as_str()
        );
        let detail = Detail::Reclassified {
            from_category: self.category,
            from_priority: self.priority,
        };
        self.category = category;
        self.priority = priority.unwrap_or(self.priority);
        self.classified_by = "operator".into();
        let limit = limits.limit(self.category, self.priority);
        if self.accepted_at.is_none() {
            self.response_due_at = limits.due(limit.response, self.submitted_at);
        }
        if self.resolved_at.is_none() {
            self.resolution_due_at = limits.due(limit.resolution, self.cycle_started_at);
        }
        let mut transition = self.move_to(Action::Reclassified, self.status, Some(note));
        transition.detail = detail;
        Ok(transition)
    }

    /// Its classification went to review (分类待定) and no one has set a
    /// category since.
    pub fn classification_pending(&self) -> bool {
        is_pending(&self.classified_by)
    }

    /// The limits passed as of `now` that an escalation is owed for.
    pub fn breaches(&self, now: DateTime<Utc>) -> Vec<Breach> {
        let mut breaches = Vec::new();
        if self.status == Status::Submitted && now >= self.response_due_at {
            breaches.push(Breach::Response);
        }
        if self.status.is_open() && now >= self.resolution_due_at {
            breaches.push(Breach::Resolution);
        }
        if self.status == Status::Resolved && self.follow_up_due_at.is_some_and(|due| now >= due) {
            breaches.push(Breach::FollowUp);
        }
        breaches
    }

    /// Past a time limit now.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        !self.breaches(now).is_empty()
    }

    /// Moves the complaint one level up the organisation (once per breach; the
    /// caller's unique key sees to "once") and assigns it to that level's handler.
    /// Without a chain (the grid left the organisation) it goes to `fallback`.
    pub fn escalate(
        &mut self,
        breach: Breach,
        chain: Option<&Chain>,
        fallback: &str,
    ) -> Transition {
        let from = self.level;
        let due_at = match breach {
            Breach::Response => self.response_due_at,
            Breach::Resolution => self.resolution_due_at,
            Breach::FollowUp => self.follow_up_due_at.unwrap_or(self.resolution_due_at),
        };
        self.level = from.next();
        self.assignee = chain
            .map_or(fallback, |chain| chain.handler(self.level))
            .to_owned();
        let note = format!(
            "{} limit passed: {} → {}, assigned to {}",
            breach.as_str(),
            from.as_str(),
            self.level.as_str(),
            self.assignee
        );
        let mut transition = self.move_to(Action::Escalated, self.status, Some(note));
        transition.detail = Detail::Escalated {
            breach,
            from_level: from,
            due_at,
        };
        transition
    }

    /// Within the limit that applied when it was acknowledged.
    pub fn accepted_on_time(&self) -> bool {
        self.accepted_at
            .is_some_and(|at| at <= self.response_due_at)
    }

    /// When the last resolution's follow-up visit was made: at closing, or at
    /// the reopening it caused (until the complaint is resolved again).
    pub fn followed_up_at(&self) -> Option<DateTime<Utc>> {
        self.follow_up_due_at?;
        self.closed_at.or_else(|| {
            (self.resolved_at.is_none() && self.reopen_count > 0).then_some(self.cycle_started_at)
        })
    }

    pub fn resolved_on_time(&self) -> bool {
        self.resolved_at
            .is_some_and(|at| at <= self.resolution_due_at)
    }

    fn require(&self, action: Action, allowed: &[Status]) -> Result<(), TransitionError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed {
                action,
                status: self.status,
            })
        }
    }

    fn require_open(&self, action: Action) -> Result<(), TransitionError> {
        if self.status.is_open() {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed {
                action,
                status: self.status,
            })
        }
    }

    fn move_to(&mut self, action: Action, to: Status, note: Option<String>) -> Transition {
        let from = self.status;
        self.status = to;
        Transition {
            action,
            from,
            to,
            note,
            detail: Detail::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
    }

    fn chain() -> Chain {
        Chain {
            community_id: CommunityId::from_stored("xinyuan"),
            grid_id: GridId::from_stored("g1"),
            worker: "worker-li".into(),
            branch_handler: "branch-wang".into(),
            committee_handler: "committee".into(),
            district_handler: "district".into(),
        }
    }

    /// What the classifier says of a text about rubbish.
    fn rubbish() -> Classification {
        Classification {
            category: Category::EnvironmentSanitation,
            confidence: 0.9,
            pending: false,
            classified_by: "model:environment_sanitation 0.90 垃圾+3.0".into(),
        }
    }

    fn intake(text: &str, category: Option<Category>) -> Intake {
        Intake {
            text: text.into(),
            channel: Channel::Hotline,
            classification: category.map_or_else(rubbish, Classification::by_caller),
            priority: Priority::Normal,
            reporter: Reporter::default(),
            building_id: None,
            location: None,
            point: None,
            merchant_id: Some(MerchantId::from_stored("m-1")),
            merchant_check: Some(MerchantCheck::Verified),
            elder_id: None,
        }
    }

    fn submitted() -> Complaint {
        Complaint::submit(
            ComplaintId::from_stored("c-1"),
            intake("垃圾没人清运", None),
            &chain(),
            &TimeLimits::default(),
            now(),
        )
        .0
    }

    fn resolved() -> Complaint {
        let mut complaint = submitted();
        complaint.accept(None, now()).unwrap();
        complaint
            .resolve("已清运".into(), false, Duration::days(3), now())
            .unwrap();
        complaint
    }

    #[test]
    fn uncategorised_complaint_is_classified_routed_and_given_its_limits() {
        let complaint = submitted();
        assert_eq!(complaint.category, Category::EnvironmentSanitation);
        assert_eq!(
            complaint.classified_by,
            "model:environment_sanitation 0.90 垃圾+3.0"
        );
        assert!(!complaint.classification_pending());
        assert_eq!(complaint.assignee, "worker-li");
        assert_eq!(complaint.level, Level::GridWorker);
        assert_eq!(complaint.response_due_at, now() + Duration::hours(24));
        assert_eq!(complaint.resolution_due_at, now() + Duration::days(3));
    }

    #[test]
    fn a_classification_sent_to_review_goes_to_the_community_dispatcher_until_reclassified() {
        let mut unsure = intake("这个事咋办", None);
        unsure.classification = Classification {
            category: Category::Other,
            confidence: 0.3,
            pending: true,
            classified_by: "review:other 0.30".into(),
        };
        let (mut complaint, _) = Complaint::submit(
            ComplaintId::from_stored("c"),
            unsure,
            &chain(),
            &TimeLimits::default(),
            now(),
        );
        assert!(complaint.classification_pending());
        assert_eq!(
            (complaint.level, complaint.assignee.as_str()),
            (Level::CommunityCommittee, "committee")
        );
        complaint
            .reclassify(Category::MunicipalFacilities, None, &TimeLimits::default())
            .unwrap();
        assert!(!complaint.classification_pending());
    }

    #[test]
    fn category_given_by_the_caller_is_kept() {
        let (complaint, _) = Complaint::submit(
            ComplaintId::from_stored("c"),
            intake("垃圾", Some(Category::Other)),
            &chain(),
            &TimeLimits::default(),
            now(),
        );
        assert_eq!(
            (complaint.category, complaint.classified_by.as_str()),
            (Category::Other, "caller")
        );
    }

    #[test]
    fn lifecycle_runs_from_submission_to_closure() {
        let mut complaint = submitted();
        assert_eq!(
            complaint
                .accept(Some("worker-zhao".into()), now())
                .unwrap()
                .to,
            Status::Accepted
        );
        assert_eq!(complaint.assignee, "worker-zhao");
        assert_eq!(complaint.start().unwrap().to, Status::InProgress);
        let resolved = complaint
            .resolve("已处理".into(), true, Duration::days(3), now())
            .unwrap();
        assert_eq!(
            (resolved.from, resolved.to),
            (Status::InProgress, Status::Resolved)
        );
        assert!(complaint.merchant_at_fault);
        let five = Satisfaction::parse("satisfaction", 5).unwrap();
        let limits = TimeLimits::default();
        let closed = complaint
            .follow_up(five, false, None, &limits, now())
            .unwrap();
        assert_eq!((closed.action, closed.to), (Action::Closed, Status::Closed));
        assert!(complaint.status.is_final());
    }

    #[test]
    fn low_satisfaction_reopens_with_a_fresh_resolution_limit() {
        let mut complaint = resolved();
        let later = now() + Duration::days(5);
        let limits = TimeLimits::default();
        let two = Satisfaction::parse("satisfaction", 2).unwrap();
        let reopened = complaint
            .follow_up(two, false, None, &limits, later)
            .unwrap();
        assert_eq!(
            (reopened.action, reopened.to),
            (Action::Reopened, Status::Reopened)
        );
        assert_eq!(complaint.reopen_count, 1);
        assert_eq!(complaint.resolution_due_at, later + Duration::days(3));
        assert!(
            complaint.start().is_ok(),
            "a reopened complaint can be worked on again"
        );
    }

    #[test]
    fn a_problem_that_came_back_reopens_even_when_the_score_is_high() {
        let mut complaint = resolved();
        let limits = TimeLimits::default();
        let five = Satisfaction::parse("satisfaction", 5).unwrap();
        assert_eq!(
            complaint
                .follow_up(five, true, None, &limits, now())
                .unwrap()
                .to,
            Status::Reopened
        );
    }

    #[test]
    fn satisfaction_outside_one_to_five_is_refused() {
        assert!(Satisfaction::parse("satisfaction", 0).is_err());
        assert_eq!(
            Satisfaction::parse("satisfaction", 9).unwrap_err().field,
            "satisfaction"
        );
        assert!(
            Satisfaction::parse("satisfaction", 3)
                .is_ok_and(|s| !s.is_satisfied() && !s.is_dissatisfied())
        );
    }

    #[test]
    fn closing_an_unresolved_complaint_is_refused_and_changes_nothing() {
        let mut complaint = submitted();
        let before = complaint.clone();
        let limits = TimeLimits::default();
        let five = Satisfaction::parse("satisfaction", 5).unwrap();
        let refused = complaint.follow_up(five, false, None, &limits, now());
        assert!(matches!(refused, Err(TransitionError::NotAllowed { .. })));
        assert_eq!(complaint, before);
    }

    #[test]
    fn merchant_at_fault_needs_a_merchant() {
        let mut complaint = submitted();
        complaint.merchant_id = None;
        complaint.accept(None, now()).unwrap();
        let before = complaint.clone();
        let refused = complaint.resolve("x".into(), true, Duration::days(3), now());
        assert!(
            matches!(refused, Err(TransitionError::Field(ref e)) if e.field == "merchant_at_fault")
        );
        assert_eq!(complaint, before);
    }

    #[test]
    fn merge_needs_an_open_target_of_the_same_category() {
        let mut duplicate = submitted();
        let mut target = submitted();
        target.id = ComplaintId::from_stored("c-2");
        target.category = Category::PublicSafety;
        assert!(matches!(
            duplicate.merge_into(&target),
            Err(TransitionError::Precondition(_))
        ));
        target.category = duplicate.category;
        let merged = duplicate.merge_into(&target).unwrap();
        assert_eq!(merged.to, Status::Merged);
        assert_eq!(duplicate.merged_into, Some(target.id.clone()));
        let itself = duplicate.clone();
        assert!(
            submitted().merge_into(&submitted()).is_err(),
            "not into itself"
        );
        assert!(matches!(
            duplicate.merge_into(&itself),
            Err(TransitionError::NotAllowed { .. })
        ));
    }

    #[test]
    fn breaches_appear_when_limits_pass() {
        let complaint = submitted();
        assert!(complaint.breaches(now() + Duration::hours(23)).is_empty());
        assert_eq!(
            complaint.breaches(now() + Duration::hours(24)),
            [Breach::Response]
        );
        assert_eq!(
            complaint.breaches(now() + Duration::days(3)),
            [Breach::Response, Breach::Resolution]
        );
        let resolved = resolved();
        let follow_up_due = resolved.follow_up_due_at.expect("due at resolution");
        assert!(
            resolved
                .breaches(follow_up_due - Duration::seconds(1))
                .is_empty()
        );
        assert_eq!(
            resolved.breaches(follow_up_due),
            [Breach::FollowUp],
            "a missed follow-up visit"
        );
    }

    #[test]
    fn escalation_moves_one_level_up_to_that_levels_handler() {
        let mut complaint = submitted();
        let transition = complaint.escalate(Breach::Response, Some(&chain()), "district");
        assert_eq!(complaint.level, Level::GridBranch);
        assert!(matches!(
            transition.detail,
            Detail::Escalated {
                from_level: Level::GridWorker,
                ..
            }
        ));
        assert_eq!(complaint.assignee, "branch-wang");
        assert_eq!(
            transition.from, transition.to,
            "escalation keeps the status"
        );
        complaint.escalate(Breach::Resolution, None, "district-office");
        assert_eq!(
            (complaint.level, complaint.assignee.as_str()),
            (Level::CommunityCommittee, "district-office")
        );
    }

    #[test]
    fn reclassification_recomputes_limits_and_records_the_operator() {
        let mut complaint = submitted();
        let transition = complaint
            .reclassify(
                Category::PublicSafety,
                Some(Priority::Urgent),
                &TimeLimits::default(),
            )
            .unwrap();
        assert_eq!(complaint.classified_by, "operator");
        assert_eq!(complaint.response_due_at, now() + Duration::hours(2));
        assert_eq!(
            transition.note.as_deref(),
            Some("environment_sanitation/normal → public_safety/urgent")
        );
    }
}
