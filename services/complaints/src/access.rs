//! Who may call each RPC of the service (the roles are in `shequ_chassis::auth`).

use shequ_chassis::auth::{ANY_ROLE, Access, OPERATOR, Role, STAFF, STAFF_AND_SERVICES};

/// Who may read a complaint with its reporter's name and phone: the callers
/// of GetComplaint, and of a duplicate submission's full answer.
pub(crate) const READS_REPORTER: &[Role] = STAFF;

/// The table the chassis checks every call against.
pub(crate) fn access() -> Access {
    Access::new()
        .service(
            "shequ.complaints.v1.ComplaintService",
            &[
                // Residents' app, staff taking calls, pensioner-care filing from visits.
                ("SubmitComplaint", ANY_ROLE),
                // Shows the reporter's name and phone.
                ("GetComplaint", READS_REPORTER),
                ("ListComplaints", STAFF),
                ("AcceptComplaint", STAFF),
                ("StartComplaint", STAFF),
                ("ResolveComplaint", STAFF),
                ("RecordFollowUp", STAFF),
                ("RejectComplaint", STAFF),
                ("MergeComplaint", STAFF),
                ("ReclassifyComplaint", STAFF),
                ("GetFigures", STAFF),
            ],
        )
        .service(
            "shequ.complaints.v1.OrganisationService",
            &[
                ("LoadOrganisation", OPERATOR),
                // Pensioner-care asks for a community's grids (its figures).
                ("GetOrganisation", STAFF_AND_SERVICES),
            ],
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rpc_states_who_may_call_it() {
        let access = super::access();
        for service in [
            "shequ.complaints.v1.ComplaintService",
            "shequ.complaints.v1.OrganisationService",
        ] {
            let unlisted = access.unlisted(shequ_proto::FILE_DESCRIPTOR_SET, service);
            assert!(unlisted.is_empty(), "{unlisted:?}");
        }
    }
}
