//! The ids of the district's entities as types: a `ComplaintId` is not a
//! `GridId`, though both are text. An id is parsed once, where it comes in (a
//! request field, an event's payload, a stored row), and is an id from then
//! on: nothing downstream checks it again, and a function that wants an elder
//! cannot be handed a merchant.
//!
//! [`id!`] declares one; the ids the services share are declared here, once.

/// Declares an id type: `parse` (a request field, trimmed, required, at most
/// [`crate::fields::ID`] characters, errors naming the field),
/// `parse_optional` (the same, `None` when blank), `from_stored`
/// (a value the service wrote itself), `generate` (a new UUIDv7), `as_str`,
/// `Display`, and conversions to text.
#[macro_export]
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The id in request field `field`.
            pub fn parse(field: &str, raw: &str) -> Result<Self, $crate::fields::FieldError> {
                $crate::fields::required(field, raw, $crate::fields::ID).map(Self)
            }

            /// The id in optional request field `field`: `None` when it is
            /// empty or blank, else [`Self::parse`]d.
            pub fn parse_optional(
                field: &str,
                raw: &str,
            ) -> Result<Option<Self>, $crate::fields::FieldError> {
                if raw.trim().is_empty() {
                    return Ok(None);
                }
                Self::parse(field, raw).map(Some)
            }

            /// An id as the service stored or published it.
            pub fn from_stored(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }

            /// A new id: a UUIDv7 (time-ordered).
            pub fn generate() -> Self {
                Self($crate::ids::__new_v7())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Tests and logs compare an id with the text it should be.
        impl ::std::cmp::PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl ::std::convert::From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

#[doc(hidden)]
pub fn __new_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

id!(
    /// A complaint (诉求).
    ComplaintId
);
id!(
    /// A community (社区) of the grid organisation.
    CommunityId
);
id!(
    /// A grid (网格) of a community.
    GridId
);
id!(
    /// A building in a grid.
    BuildingId
);
id!(
    /// A merchant of the alliance (商户).
    MerchantId
);
id!(
    /// An elder in pensioner care (老人).
    ElderId
);
id!(
    /// A party-member volunteer (党员志愿者).
    VolunteerId
);
id!(
    /// A volunteer paired with an elder (结对).
    PairingId
);
id!(
    /// A visit to an elder (走访).
    VisitId
);
id!(
    /// A care service booked for an elder.
    BookingId
);
id!(
    /// A visit requested after a major event (重大事件后探访).
    VisitRequestId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_parsed_trimmed_and_bounded_naming_the_field() {
        assert_eq!(
            GridId::parse("grid_id", " xinyuan-1 ").map(|g| g.to_string()),
            Ok("xinyuan-1".into())
        );
        let empty = GridId::parse("grid_id", "  ").map_err(|e| e.field);
        assert_eq!(empty, Err("grid_id".into()));
        let long = ElderId::parse("elder_id", &"x".repeat(65)).map_err(|e| e.field);
        assert_eq!(long, Err("elder_id".into()));
    }

    #[test]
    fn an_optional_id_is_absent_when_blank_and_parsed_otherwise() {
        assert_eq!(GridId::parse_optional("grid_id", "  "), Ok(None));
        assert_eq!(
            GridId::parse_optional("grid_id", "g-1").map(|g| g.map(String::from)),
            Ok(Some("g-1".into()))
        );
        let long = GridId::parse_optional("grid_id", &"x".repeat(65)).map_err(|e| e.field);
        assert_eq!(long, Err("grid_id".into()));
    }

    #[test]
    fn generated_ids_are_distinct_uuids() {
        let (first, second) = (ComplaintId::generate(), ComplaintId::generate());
        assert_ne!(first, second);
        assert!(uuid::Uuid::parse_str(first.as_str()).is_ok(), "{first}");
    }
}
