//! Who may call each RPC of the service (the roles are in `shequ_chassis::auth`).

use shequ_chassis::auth::{ANY_ROLE, Access, OPERATOR, STAFF, STAFF_AND_SERVICES};

/// The table the chassis checks every call against.
pub(crate) fn access() -> Access {
    Access::new().service(
        "shequ.alliance.v1.MerchantService",
        &[
            ("RegisterMerchant", STAFF),
            ("UpdateMerchant", STAFF),
            ("SuspendMerchant", STAFF),
            ("ReinstateMerchant", STAFF),
            // complaints checks a complaint's merchant.
            ("GetMerchant", STAFF_AND_SERVICES),
            ("ListMerchants", STAFF),
            // The convenience circle: residents' app, and pensioner-care's meal bookings.
            ("FindNearby", ANY_ROLE),
            ("RecordActivity", STAFF),
            ("GetCreditLedger", STAFF),
            // Records awards, which are published.
            ("EvaluateModelMerchants", OPERATOR),
            // Replaces every building point of the district (coverage is recomputed and published).
            ("LoadBuildings", OPERATOR),
            // Coverage of the circle per grid: a read like the circle itself.
            ("GetCircleCoverage", ANY_ROLE),
        ],
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rpc_states_who_may_call_it() {
        let unlisted = super::access().unlisted(
            shequ_proto::FILE_DESCRIPTOR_SET,
            "shequ.alliance.v1.MerchantService",
        );
        assert!(unlisted.is_empty(), "{unlisted:?}");
    }
}
