//! Code names: how a value of a fixed list is stored in databases, published in
//! events, typed on the command line and named in proto (`CATEGORY_OTHER` ↔
//! `other`), each list declared once.
//!
//! - [`named_enum!`] declares a vocabulary enum: each variant with its code name
//!   and Chinese label (shown to people), serde and JSON Schema by code name,
//!   and, given its proto enum, the mapping to and from it by name.
//! - [`ProtoEnum`]: the code names of every proto enum, generated from the
//!   `.proto` files by `build.rs`, for code that holds prost enums (shequctl).
//! - [`NamedEnum`] and [`ProtoMapped`]: the same as traits, for generic code and
//!   for [`check_mapping`], which tests that a vocabulary enum and its proto
//!   enum list the same values under the same names.

use std::fmt;

/// A prost enum with the code names of its values: the value's proto name
/// without the enum's prefix, in lower case (`LIVING_SITUATION_EMPTY_NEST` ↔
/// `empty_nest`). Implemented for every proto enum by `build.rs`.
pub trait ProtoEnum: Copy + fmt::Debug + Into<i32> + TryFrom<i32> + Send + Sync + 'static {
    /// The prefix of the enum's value names: `CATEGORY_` for `Category`.
    const PREFIX: &'static str;
    /// Every value but UNSPECIFIED, as its number and code name, in proto order.
    const CODES: &'static [(i32, &'static str)];

    /// The code name; `None` for UNSPECIFIED.
    fn code(self) -> Option<&'static str> {
        let number: i32 = self.into();
        Self::CODES
            .iter()
            .find(|(n, _)| *n == number)
            .map(|(_, code)| *code)
    }

    /// The value with this code name; UNSPECIFIED has none.
    fn from_code(code: &str) -> Option<Self> {
        Self::CODES
            .iter()
            .find(|(_, c)| *c == code)
            .and_then(|(n, _)| Self::try_from(*n).ok())
    }

    /// A number from a message as a value; `None` when this build does not know it.
    fn from_number(number: i32) -> Option<Self> {
        Self::try_from(number).ok()
    }
}

include!(concat!(env!("OUT_DIR"), "/proto_enums.rs"));

/// An enum declared with [`named_enum!`].
pub trait NamedEnum: Copy + fmt::Debug + Eq + Send + Sync + 'static {
    /// Every value, in declaration order.
    const ALL: &'static [Self];
    /// The code name, as stored and published.
    fn as_str(self) -> &'static str;
    /// The label shown to people.
    fn label(self) -> &'static str;
    /// The value with this code name.
    fn parse(code: &str) -> Option<Self>;
}

/// A [`NamedEnum`] with a proto enum, mapped by name (`CATEGORY_OTHER` ↔ `other`).
pub trait ProtoMapped: NamedEnum {
    type Proto: ProtoEnum;
    fn to_proto(self) -> Self::Proto;
    /// `None` for UNSPECIFIED.
    fn from_proto(value: Self::Proto) -> Option<Self>;
}

/// Whether `T` and its proto enum list the same values under the same code
/// names: every proto value but UNSPECIFIED has a domain value and the other way
/// round. The mapping itself is a `match` on the variant names, so a value added
/// to one side only does not compile; this catches a code name that differs
/// from the proto name (`Heating = "heat"` beside `CATEGORY_HEATING`), which
/// would make the command line and the events disagree.
pub fn check_mapping<T: ProtoMapped>() -> Result<(), String> {
    let name = std::any::type_name::<T>();
    for value in T::ALL {
        let proto = value.to_proto();
        if proto.code() != Some(value.as_str()) {
            return Err(format!(
                "{name}::{value:?} is {:?} but maps to {proto:?}, whose code name is {:?}",
                value.as_str(),
                proto.code()
            ));
        }
        if T::from_proto(proto) != Some(*value) {
            return Err(format!(
                "{name}::{value:?} does not come back from {proto:?}"
            ));
        }
    }
    for (number, code) in <T::Proto as ProtoEnum>::CODES {
        let proto = <T::Proto as ProtoEnum>::from_number(*number)
            .ok_or_else(|| format!("{name}: proto number {number} is not a value"))?;
        match T::from_proto(proto) {
            Some(value) if value.as_str() == *code => {}
            Some(value) => {
                return Err(format!(
                    "{name}: {proto:?} ({code}) maps to {value:?} ({})",
                    value.as_str()
                ));
            }
            None => return Err(format!("{name}: {proto:?} ({code}) has no domain value")),
        }
    }
    let unspecified = <T::Proto as ProtoEnum>::from_number(0);
    if let Some(value) = unspecified.and_then(T::from_proto) {
        return Err(format!("{name}: UNSPECIFIED maps to {value:?}"));
    }
    Ok(())
}

/// What [`named_enum!`] expands to needs, reached through `$crate` so the
/// crates that declare enums need not depend on serde or schemars themselves.
#[doc(hidden)]
pub mod __private {
    use std::borrow::Cow;

    pub use schemars;
    pub use serde;

    /// The JSON Schema of a named enum: a string enum of its code names, described
    /// by its doc comment and then every code name with its label.
    pub fn enum_schema(doc: &[&str], codes: &[(&str, &str)]) -> schemars::Schema {
        let values: Vec<String> = codes
            .iter()
            .map(|(code, label)| format!("{code} ({label})"))
            .collect();
        let doc = crate::schemas::doc_text(&doc.join("\n"));
        let description = format!("{doc} Values: {}.", values.join(", "));
        let codes: Vec<&str> = codes.iter().map(|(code, _)| *code).collect();
        schemars::json_schema!({
            "description": description,
            "type": "string",
            "enum": codes,
        })
    }

    /// Deserializes a code name with `parse`; an unknown one is an error naming
    /// the known ones.
    pub fn deserialize_code<'de, D, T>(
        deserializer: D,
        parse: fn(&str) -> Option<T>,
        codes: &'static [&'static str],
    ) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        struct Visitor<T> {
            parse: fn(&str) -> Option<T>,
            codes: &'static [&'static str],
        }
        impl<T> serde::de::Visitor<'_> for Visitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "one of {}", self.codes.join(", "))
            }

            fn visit_str<E: serde::de::Error>(self, code: &str) -> Result<T, E> {
                (self.parse)(code).ok_or_else(|| E::unknown_variant(code, self.codes))
            }
        }
        deserializer.deserialize_str(Visitor { parse, codes })
    }

    /// The schema's name: the enum's, e.g. `Category`.
    pub fn name(name: &'static str) -> Cow<'static, str> {
        Cow::Borrowed(name)
    }
}

/// Declares an enum whose variants each have a code name and a label, with
/// `ALL`, `as_str`, `label` and `parse` (and [`NamedEnum`]), serde
/// Serialize/Deserialize by code name, and a `schemars::JsonSchema` (a string
/// enum of the code names, described by the doc comment):
///
/// ```
/// shequ_proto::named_enum!(
///     /// How fast a complaint must be handled.
///     Priority {
///         Urgent = "urgent" / "紧急",
///         Normal = "normal" / "一般",
///     }
/// );
/// assert_eq!(Priority::parse("urgent"), Some(Priority::Urgent));
/// ```
///
/// With `in` and the path of its prost enum, the enum is also mapped to it by
/// variant name ([`ProtoMapped`], and `to_proto`, `from_proto`, `proto_number`
/// and `from_proto_number`); the `match` is exhaustive both ways, so a value
/// added on one side only does not compile:
///
/// ```
/// shequ_proto::named_enum!(
///     /// Whether a merchant is trading in the alliance.
///     MerchantStatus in shequ_proto::alliance::v1::MerchantStatus {
///         Active = "active" / "正常",
///         Suspended = "suspended" / "暂停",
///     }
/// );
/// assert_eq!(MerchantStatus::from_proto_number(2), Some(Some(MerchantStatus::Suspended)));
/// assert_eq!(MerchantStatus::from_proto_number(0), Some(None));
/// assert_eq!(MerchantStatus::from_proto_number(9), None);
/// ```
#[macro_export]
macro_rules! named_enum {
    (
        $(#[doc = $doc:literal])*
        $name:ident in $proto:path {
            $($(#[$vdoc:meta])* $variant:ident = $code:literal / $label:literal,)*
        }
    ) => {
        $crate::named_enum!(
            $(#[doc = $doc])*
            $name { $($(#[$vdoc])* $variant = $code / $label,)* }
        );

        impl $name {
            /// The proto value of the same name.
            pub fn to_proto(self) -> $proto {
                type Proto = $proto;
                match self {
                    $($name::$variant => Proto::$variant,)*
                }
            }

            /// The value of the same name; `None` for UNSPECIFIED.
            pub fn from_proto(value: $proto) -> ::core::option::Option<Self> {
                type Proto = $proto;
                match value {
                    Proto::Unspecified => ::core::option::Option::None,
                    $(Proto::$variant => ::core::option::Option::Some($name::$variant),)*
                }
            }

            /// The number of the proto value, as a message field holds it.
            pub fn proto_number(self) -> i32 {
                self.to_proto().into()
            }

            /// A message field's number as a value: `None` for a number this
            /// build does not know, `Some(None)` for UNSPECIFIED.
            pub fn from_proto_number(
                number: i32,
            ) -> ::core::option::Option<::core::option::Option<Self>> {
                <$proto>::try_from(number).ok().map(Self::from_proto)
            }
        }

        impl $crate::codes::ProtoMapped for $name {
            type Proto = $proto;

            fn to_proto(self) -> $proto {
                $name::to_proto(self)
            }

            fn from_proto(value: $proto) -> ::core::option::Option<Self> {
                $name::from_proto(value)
            }
        }
    };
    (
        $(#[doc = $doc:literal])*
        $name:ident {
            $($(#[$vdoc:meta])* $variant:ident = $code:literal / $label:literal,)*
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The code names, in declaration order.
            pub const CODES: &'static [&'static str] = &[$($code,)*];

            /// The code name, as stored and published.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }

            /// The label shown to people.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label,)* }
            }

            pub fn parse(code: &str) -> ::core::option::Option<Self> {
                match code {
                    $($code => ::core::option::Option::Some($name::$variant),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        impl $crate::codes::NamedEnum for $name {
            const ALL: &'static [Self] = $name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }

            fn label(self) -> &'static str {
                $name::label(self)
            }

            fn parse(code: &str) -> ::core::option::Option<Self> {
                $name::parse(code)
            }
        }

        impl $crate::codes::__private::serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> ::core::result::Result<S::Ok, S::Error>
            where
                S: $crate::codes::__private::serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::codes::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
            where
                D: $crate::codes::__private::serde::Deserializer<'de>,
            {
                $crate::codes::__private::deserialize_code(deserializer, $name::parse, $name::CODES)
            }
        }

        impl $crate::codes::__private::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                $crate::codes::__private::name(stringify!($name))
            }

            fn schema_id() -> ::std::borrow::Cow<'static, str> {
                $crate::codes::__private::name(concat!(module_path!(), "::", stringify!($name)))
            }

            fn json_schema(
                _: &mut $crate::codes::__private::schemars::SchemaGenerator,
            ) -> $crate::codes::__private::schemars::Schema {
                $crate::codes::__private::enum_schema(
                    &[$($doc,)*],
                    &[$(($code, $label),)*],
                )
            }
        }
    };
}
