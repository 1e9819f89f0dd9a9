//! Pairing (结对帮扶): a volunteer looks after at most two elders, and an elder
//! has one volunteer, who visits only with the elder's consent.
//!
//! The cap must hold when two operators pair the same volunteer at once, which a
//! count checked before an insert cannot promise. So each active pairing takes a
//! numbered slot (1 or 2) of its volunteer, and the database keeps the pair
//! (volunteer, slot) unique among active pairings: of two concurrent pairings
//! that both chose the last free slot, one insert fails and is refused.

use chrono::{DateTime, Utc};
use shequ_chassis::personal::Phone;

use super::{ElderId, GridId, PairingId, VolunteerId};

/// A volunteer (usually a party member) and the elders they are paired with,
/// in slot order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volunteer {
    pub id: VolunteerId,
    pub name: String,
    pub phone: Phone,
    pub grid_id: GridId,
    pub party_member: bool,
    pub elder_ids: Vec<ElderId>,
}

/// A volunteer paired with an elder, from its start to its end (if it ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    pub id: PairingId,
    pub volunteer_id: VolunteerId,
    pub elder_id: ElderId,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

/// A stored slot number, if it is one (1..=MAX).
pub fn slot(value: i64) -> Option<u8> {
    u8::try_from(value)
        .ok()
        .filter(|slot| (1..=MAX_ELDERS_PER_VOLUNTEER).contains(slot))
}

/// The source says 1-2 elders per volunteer (结对帮扶 1-2 名).
pub const MAX_ELDERS_PER_VOLUNTEER: u8 = 2;

/// Why a pairing is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairingError {
    #[error("volunteer {0} already has 2 elders")]
    VolunteerFull(VolunteerId),
    #[error("elder {0} already has a volunteer")]
    ElderAlreadyPaired(ElderId),
    #[error("elder {0} has not consented to visits")]
    NoConsent(ElderId),
    /// Ending a pairing the elder does not have.
    #[error("elder {0} has no volunteer")]
    NoVolunteer(ElderId),
    /// Concurrent pairings kept taking the slot this one was to take.
    #[error("the pairing collided with concurrent pairings; try again")]
    Collided,
}

/// The slot (1..=MAX) the new pairing takes: the lowest one not in `occupied`
/// (the slots of the volunteer's active pairings), so a slot freed by an ended
/// pairing is taken again.
pub fn free_slot(volunteer_id: &VolunteerId, occupied: &[u8]) -> Result<u8, PairingError> {
    (1..=MAX_ELDERS_PER_VOLUNTEER)
        .find(|slot| !occupied.contains(slot))
        .ok_or_else(|| PairingError::VolunteerFull(volunteer_id.clone()))
}

/// All the checks of a new pairing, the elder's first (consent, then an
/// existing volunteer) because they hold whichever volunteer is chosen; returns
/// the slot the pairing takes.
pub fn check(
    volunteer_id: &VolunteerId,
    elder_id: &ElderId,
    elder_paired: bool,
    elder_consents: bool,
    occupied: &[u8],
) -> Result<u8, PairingError> {
    if !elder_consents {
        return Err(PairingError::NoConsent(elder_id.clone()));
    }
    if elder_paired {
        return Err(PairingError::ElderAlreadyPaired(elder_id.clone()));
    }
    free_slot(volunteer_id, occupied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volunteer() -> VolunteerId {
        VolunteerId::from_stored("v1")
    }

    #[test]
    fn first_pairing_takes_slot_one() {
        let elder = ElderId::from_stored("e1");
        assert_eq!(check(&volunteer(), &elder, false, true, &[]), Ok(1));
    }

    #[test]
    fn second_pairing_takes_slot_two() {
        let elder = ElderId::from_stored("e2");
        assert_eq!(check(&volunteer(), &elder, false, true, &[1]), Ok(2));
    }

    #[test]
    fn third_pairing_for_a_volunteer_is_refused() {
        let elder = ElderId::from_stored("e3");
        assert_eq!(
            check(&volunteer(), &elder, false, true, &[1, 2]),
            Err(PairingError::VolunteerFull(volunteer()))
        );
        assert_eq!(
            check(&volunteer(), &elder, false, true, &[2, 1])
                .unwrap_err()
                .to_string(),
            "volunteer v1 already has 2 elders"
        );
    }

    #[test]
    fn freed_slot_one_is_taken_again() {
        assert_eq!(free_slot(&volunteer(), &[2]), Ok(1));
    }

    #[test]
    fn elder_with_a_volunteer_is_refused() {
        let elder = ElderId::from_stored("e1");
        assert_eq!(
            check(&volunteer(), &elder, true, true, &[]),
            Err(PairingError::ElderAlreadyPaired(elder))
        );
    }

    #[test]
    fn elder_without_consent_is_refused() {
        let elder = ElderId::from_stored("e1");
        assert_eq!(
            check(&volunteer(), &elder, false, false, &[]),
            Err(PairingError::NoConsent(elder))
        );
    }

    #[test]
    fn elder_checks_come_before_the_volunteer_cap() {
        let elder = ElderId::from_stored("e1");
        assert_eq!(
            check(&volunteer(), &elder, true, true, &[1, 2]),
            Err(PairingError::ElderAlreadyPaired(elder))
        );
    }
}
