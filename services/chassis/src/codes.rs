//! Enumerations with code names (stored in databases, published in events) and
//! Chinese labels (shown to people): `named_enum!` lives in shequ-proto
//! ([`shequ_proto::codes`]), beside the vocabulary the services share; this
//! forwards to it, so `shequ_chassis::named_enum!` keeps working.

pub use shequ_proto::codes::{NamedEnum, ProtoEnum, ProtoMapped};

#[doc(hidden)]
pub use shequ_proto as __proto;

/// [`shequ_proto::named_enum!`], forwarded.
#[macro_export]
macro_rules! named_enum {
    ($($tokens:tt)*) => {
        $crate::codes::__proto::named_enum!($($tokens)*);
    };
}
