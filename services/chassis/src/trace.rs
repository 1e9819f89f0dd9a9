//! One trace id across services: the W3C Trace Context `traceparent` value,
//! and the context of the work a task is doing now.
//!
//! A request or event that arrives with a `traceparent` continues that trace
//! (a child context: same trace id, a span id of its own); one without, or with
//! a malformed value, starts a new root. The context is a tokio task-local
//! ([`scope`], [`current`]) set by the adapters that receive work: the gRPC
//! layer ([`crate::grpc::TraceLayer`]) and the inbox; the adapters that send
//! work on read it: gRPC clients ([`crate::grpc::OutgoingCall`], on every [`crate::grpc::PeerChannel`]) and the
//! outbox, whose relay sets the `traceparent` NATS header. Those adapters also
//! open a `tracing` span with a `trace_id` field, so every log line of the work
//! names its trace. Background work started by no request (sweeps, retries)
//! runs in a [`job`], a new root or a trace it stored.
//!
//! The format (<https://www.w3.org/TR/trace-context/#traceparent-header>) is
//! `00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>`, lowercase, with
//! neither id all zeros. This module writes version `00`; it reads a higher
//! version as the spec asks (its first 55 characters, followed by the end or a
//! `-`), and never version `ff`. The ids are this module's; [`crate::otel`]
//! exports spans with them when an OTLP endpoint is set.

use std::fmt;
use std::future::Future;

use tokio::task::futures::TaskLocalFuture;
use tracing::Instrument;

/// The name of the header (gRPC metadata, NATS header) carrying the context.
pub const HEADER: &str = "traceparent";

/// Length of a version-00 `traceparent` value.
const LEN: usize = 55;

/// The position in a trace of one unit of work: the trace it belongs to, the
/// span that caused it (or, for the current work, its own span), and the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub parent_id: [u8; 8],
    pub flags: u8,
}

impl TraceContext {
    /// The `sampled` flag, set on the roots started here.
    pub const SAMPLED: u8 = 0x01;

    /// Reads a `traceparent` value; `None` when it is malformed or names an
    /// all-zero id. Surrounding spaces and tabs (HTTP's optional whitespace)
    /// are ignored.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']).as_bytes();
        if value.len() < LEN {
            return None;
        }
        let version = hex_byte(&value[0..2])?;
        let well_ended = match version {
            0xff => false,
            0x00 => value.len() == LEN,
            // A later version may append fields after a dash.
            _ => value.len() == LEN || value[LEN] == b'-',
        };
        if !well_ended || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
            return None;
        }
        let context = Self {
            trace_id: hex_array(&value[3..35])?,
            parent_id: hex_array(&value[36..52])?,
            flags: hex_byte(&value[53..55])?,
        };
        let valid = context.trace_id != [0; 16] && context.parent_id != [0; 8];
        valid.then_some(context)
    }

    /// The `traceparent` value, version `00`.
    pub fn to_header(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.parent_id),
            self.flags
        )
    }

    /// The trace id as 32 lowercase hex digits, as logs show it.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The start of a new trace: random ids, sampled.
    pub fn new_root() -> Self {
        Self {
            trace_id: random_id(),
            parent_id: random_id(),
            flags: Self::SAMPLED,
        }
    }

    /// A new span of the same trace: same trace id and flags, a new span id.
    pub fn child(&self) -> Self {
        Self {
            parent_id: random_id(),
            ..*self
        }
    }

    /// The context of work caused by a message whose `traceparent` is
    /// `incoming`: a child of it, or a new root when it is absent or malformed.
    pub fn continue_from(incoming: Option<&str>) -> Self {
        incoming
            .and_then(Self::parse)
            .map_or_else(Self::new_root, |parent| parent.child())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header())
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Two lowercase hex digits as a byte.
fn hex_byte(digits: &[u8]) -> Option<u8> {
    fn nibble(digit: u8) -> Option<u8> {
        match digit {
            b'0'..=b'9' => Some(digit - b'0'),
            b'a'..=b'f' => Some(digit - b'a' + 10),
            _ => None,
        }
    }
    match digits {
        [high, low] => Some(nibble(*high)? << 4 | nibble(*low)?),
        _ => None,
    }
}

fn hex_array<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = hex_byte(pair)?;
    }
    Some(out)
}

/// `N` (at most 16) random bytes: the tail of a random UUID, whose fixed
/// version and variant bits also keep it from being all zeros.
fn random_id<const N: usize>() -> [u8; N] {
    let uuid = uuid::Uuid::new_v4();
    let bytes = uuid.as_bytes();
    let mut id = [0; N];
    id.copy_from_slice(&bytes[bytes.len() - N..]);
    id
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// The context of the work the current task is doing, if it was given one
/// ([`scope`]).
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|context| *context).ok()
}

/// Runs `future` with `context` as [`current`]. Tasks it spawns do not inherit it.
pub fn scope<F: Future>(context: TraceContext, future: F) -> TaskLocalFuture<TraceContext, F> {
    CURRENT.scope(context, future)
}

/// Runs `f` with `context` as [`current`].
pub fn sync_scope<R>(context: TraceContext, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(context, f)
}

/// Runs `future` as one unit of background work (a sweep, a retry) in `context`:
/// with it as [`current`] and inside a `tracing` span `job` with the fields
/// `job` (what kind of work) and `trace_id` (exported as a span of its own,
/// without a parent, when [`crate::otel`] exports).
pub async fn job<F: Future>(job: &'static str, context: TraceContext, future: F) -> F::Output {
    run_job(job, context, None, future).await
}

/// [`job`] continuing the work of `cause` (stored with the job's item, such
/// as the visit a filing comes from): a child of it, in its trace.
pub async fn job_after<F: Future>(job: &'static str, cause: TraceContext, future: F) -> F::Output {
    run_job(job, cause.child(), Some(cause), future).await
}

async fn run_job<F: Future>(
    job: &'static str,
    context: TraceContext,
    cause: Option<TraceContext>,
    future: F,
) -> F::Output {
    let span = tracing::info_span!("job", job, trace_id = %context.trace_id_hex());
    let exported = crate::otel::start(job, crate::otel::Kind::Job, &context, cause.as_ref());
    let output = scope(context, future).instrument(span).await;
    drop(exported);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_the_spec_example_and_writes_it_back() {
        let context = TraceContext::parse(VALID).expect("valid");

        assert_eq!(
            context.trace_id,
            [
                0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
                0x47, 0x36
            ]
        );
        assert_eq!(
            context.parent_id,
            [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]
        );
        assert_eq!(context.flags, 0x01);
        assert_eq!(context.to_header(), VALID);
        assert_eq!(context.to_string(), VALID);
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn keeps_the_flags_byte() {
        let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let other = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-a3";

        assert_eq!(TraceContext::parse(unsampled).map(|c| c.flags), Some(0));
        assert_eq!(
            TraceContext::parse(other).map(|c| c.to_header()).as_deref(),
            Some(other)
        );
    }

    #[test]
    fn ignores_surrounding_optional_whitespace() {
        let padded = format!(" \t{VALID} ");

        assert_eq!(
            TraceContext::parse(&padded)
                .map(|c| c.to_header())
                .as_deref(),
            Some(VALID)
        );
    }

    #[test]
    fn rejects_malformed_values() {
        let cases = [
            ("empty", ""),
            ("garbage", "not a traceparent"),
            (
                "all-zero trace id",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            ),
            (
                "all-zero parent id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            ),
            (
                "uppercase hex",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            ),
            (
                "non-hex in trace id",
                "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            ),
            (
                "non-hex in parent id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            ),
            (
                "non-hex flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            ),
            (
                "short trace id",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            ),
            (
                "long trace id",
                "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            ),
            (
                "short parent id",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            ),
            (
                "one-digit flags",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            ),
            (
                "version 00 with more fields",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what",
            ),
            (
                "version ff",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "non-hex version",
                "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            (
                "underscores for dashes",
                "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            ),
            (
                "later version glued to more",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            ),
            (
                "multi-byte characters",
                "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01",
            ),
        ];
        for (case, value) in cases {
            assert_eq!(TraceContext::parse(value), None, "{case}: {value:?}");
        }
    }

    #[test]
    fn reads_a_later_version_by_its_version_00_prefix() {
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future";

        let context = TraceContext::parse(later).expect("a later version");

        assert_eq!(context.to_header(), VALID, "written back as version 00");
        assert!(TraceContext::parse(&later[..LEN]).is_some());
    }

    #[test]
    fn a_root_has_fresh_non_zero_ids_and_is_sampled() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();

        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.parent_id, b.parent_id);
        assert_eq!(a.flags, TraceContext::SAMPLED);
        assert_eq!(TraceContext::parse(&a.to_header()), Some(a), "round trip");
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_a_new_span_id() {
        let parent = TraceContext::parse(VALID).expect("valid");

        let child = parent.child();

        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, parent.flags);
        assert_ne!(child.parent_id, parent.parent_id);
        assert_ne!(child.parent_id, [0; 8]);
    }

    #[test]
    fn continuing_a_valid_value_makes_a_child_and_anything_else_a_new_root() {
        let parent = TraceContext::parse(VALID).expect("valid");

        let continued = TraceContext::continue_from(Some(VALID));
        let malformed = TraceContext::continue_from(Some("00-zz"));
        let absent = TraceContext::continue_from(None);

        assert_eq!(continued.trace_id, parent.trace_id);
        assert_ne!(continued.parent_id, parent.parent_id);
        assert_ne!(malformed.trace_id, parent.trace_id);
        assert_ne!(absent.trace_id, malformed.trace_id);
    }

    #[tokio::test]
    async fn current_is_the_scoped_context_and_none_outside() {
        let context = TraceContext::new_root();

        let inside = scope(context, async {
            tokio::task::yield_now().await;
            current()
        })
        .await;

        assert_eq!(inside, Some(context));
        assert_eq!(current(), None);
        assert_eq!(sync_scope(context, current), Some(context));
    }
}
