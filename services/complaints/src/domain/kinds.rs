//! The fixed lists of the complaints domain, with their code names (used in the
//! database and in events) and Chinese labels. They are the contract's
//! vocabulary, declared once in shequ-proto (the events carry them); the rules
//! the domain attaches to them are here, as [`StatusExt`] and [`LevelExt`].

pub use shequ_proto::kinds::complaints::{
    Category, Channel, Level, MerchantCheck, Priority, ReopenReason, Status,
};

/// The lifecycle's rules on a status.
pub trait StatusExt: Copy {
    /// Still waiting for a resolution.
    fn is_open(self) -> bool;
    /// Nothing more can happen to it.
    fn is_final(self) -> bool;
}

impl StatusExt for Status {
    fn is_open(self) -> bool {
        matches!(
            self,
            Status::Submitted | Status::Accepted | Status::InProgress | Status::Reopened
        )
    }

    fn is_final(self) -> bool {
        matches!(self, Status::Closed | Status::Rejected | Status::Merged)
    }
}

/// Escalation's rule on a level.
pub trait LevelExt {
    /// The next level up; the district is the top.
    fn next(self) -> Level;
}

impl LevelExt for Level {
    fn next(self) -> Level {
        match self {
            Level::GridWorker => Level::GridBranch,
            Level::GridBranch => Level::CommunityCommittee,
            Level::CommunityCommittee | Level::District => Level::District,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_round_trip() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(*category));
        }
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(*status));
        }
        assert_eq!(Category::parse("weather"), None);
    }

    #[test]
    fn escalation_climbs_four_levels_and_stops_at_the_district() {
        assert_eq!(Level::GridWorker.next(), Level::GridBranch);
        assert_eq!(Level::GridBranch.next(), Level::CommunityCommittee);
        assert_eq!(Level::CommunityCommittee.next(), Level::District);
        assert_eq!(Level::District.next(), Level::District);
    }
}
