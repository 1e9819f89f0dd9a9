//! Who may call each RPC of the service (the roles are in `shequ_chassis::auth`).
//! Everything here concerns elders' personal data or care: staff and operators only.

use shequ_chassis::auth::{Access, STAFF};

/// The table the chassis checks every call against.
pub(crate) fn access() -> Access {
    Access::new().service(
        "shequ.care.v1.CareService",
        &[
            ("RegisterElder", STAFF),
            ("UpdateElder", STAFF),
            ("GetElder", STAFF),
            ("ListElders", STAFF),
            ("RegisterVolunteer", STAFF),
            ("ListVolunteers", STAFF),
            ("Pair", STAFF),
            ("Unpair", STAFF),
            ("RecordVisit", STAFF),
            ("ListOverdueVisits", STAFF),
            ("BookService", STAFF),
            ("MarkBookingServed", STAFF),
            ("CancelBooking", STAFF),
            ("MarkBookingNoShow", STAFF),
            ("GetTimeline", STAFF),
            ("GetCareFigures", STAFF),
            ("RequestVisit", STAFF),
            ("ListVisitRequests", STAFF),
        ],
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rpc_states_who_may_call_it() {
        let unlisted = super::access().unlisted(
            shequ_proto::FILE_DESCRIPTOR_SET,
            "shequ.care.v1.CareService",
        );
        assert!(unlisted.is_empty(), "{unlisted:?}");
    }
}
