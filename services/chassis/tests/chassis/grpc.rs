//! The gRPC error helpers, the trace layer and the tracing client interceptor.

use shequ_chassis::grpc::{invalid_argument, violated_field};
use tonic::{Code, Status};

#[test]
fn invalid_argument_names_the_field_and_violated_field_reads_it_back() {
    let status = invalid_argument("text", "must not be empty");

    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "text: must not be empty");
    assert_eq!(violated_field(&status).as_deref(), Some("text"));
}

#[test]
fn violated_field_is_none_for_a_status_without_a_bad_request() {
    let status = Status::invalid_argument("text: must not be empty");

    assert_eq!(violated_field(&status), None);
}

mod tracing_calls {
    //! The trace layer every served call goes through, and the interceptor
    //! every client of another service is built with.

    use std::convert::Infallible;
    use std::io;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Context, Poll};

    use futures::future::BoxFuture;
    use shequ_chassis::config::LogFormat;
    use shequ_chassis::grpc::{OutgoingCall, TraceLayer};
    use shequ_chassis::telemetry;
    use shequ_chassis::trace::{self, TraceContext};
    use tonic::codegen::http;
    use tonic::service::Interceptor;
    use tower::{Layer, Service};
    use tracing_subscriber::EnvFilter;

    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const METHOD: &str = "/shequ.test.v1.TestService/Call";

    /// A handler that logs a line and answers with the context it ran in.
    #[derive(Debug, Clone)]
    struct Handler;

    impl Service<http::Request<()>> for Handler {
        type Response = http::Response<Option<TraceContext>>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: http::Request<()>) -> Self::Future {
            Box::pin(async {
                tokio::task::yield_now().await;
                tracing::info!(step = "handled", "handling the call");
                Ok(http::Response::new(trace::current()))
            })
        }
    }

    /// Log output kept in memory.
    #[derive(Debug, Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        /// The JSON line the handler wrote.
        fn handler_line(&self) -> serde_json::Value {
            let bytes = self
                .0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            let text = String::from_utf8(bytes).expect("utf-8 logs");
            let lines: Vec<serde_json::Value> = text
                .lines()
                .map(|line| serde_json::from_str(line).expect("every line is JSON"))
                .filter(|line: &serde_json::Value| line["step"] == "handled")
                .collect();
            assert_eq!(lines.len(), 1, "one handler line in {text}");
            lines[0].clone()
        }
    }

    /// Calls the handler through the trace layer, with `traceparent` when given,
    /// logging JSON as the services do in containers.
    async fn call(traceparent: Option<&str>) -> (Option<TraceContext>, serde_json::Value) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber =
            telemetry::subscriber(LogFormat::Json, EnvFilter::new("info"), false, move || {
                writer.clone()
            });
        let _default = tracing::subscriber::set_default(subscriber);
        let mut request = http::Request::builder().uri(METHOD);
        if let Some(value) = traceparent {
            request = request.header("traceparent", value);
        }
        let request = request.body(()).expect("request");
        let mut service = TraceLayer.layer(Handler);
        std::future::poll_fn(|cx| service.poll_ready(cx))
            .await
            .expect("ready");
        let response = service.call(request).await.expect("infallible");
        (response.into_body(), captured.handler_line())
    }

    #[tokio::test]
    async fn a_call_continues_the_callers_trace_and_its_log_lines_carry_the_trace_id() {
        let caller = TraceContext::parse(CALLER).expect("valid");

        let (current, line) = call(Some(CALLER)).await;

        let current = current.expect("the handler runs in a trace");
        assert_eq!(current.trace_id, caller.trace_id, "the caller's trace");
        assert_ne!(
            current.parent_id, caller.parent_id,
            "a span of its own in that trace"
        );
        assert_eq!(line["span"]["name"], "rpc", "{line}");
        assert_eq!(line["span"]["trace_id"], CALLER_TRACE, "{line}");
        assert_eq!(line["span"]["method"], METHOD, "{line}");
        assert_eq!(line["spans"][0]["trace_id"], CALLER_TRACE, "{line}");
        assert_eq!(
            line["message"], "handling the call",
            "event fields flattened"
        );
    }

    #[tokio::test]
    async fn a_malformed_traceparent_starts_a_new_trace_and_the_call_still_runs() {
        let (current, line) = call(Some("00-not-a-trace-01")).await;

        let current = current.expect("the handler runs in a new trace");
        assert_ne!(current.trace_id, [0; 16]);
        assert_eq!(line["span"]["trace_id"], current.trace_id_hex(), "{line}");
    }

    #[tokio::test]
    async fn a_call_without_traceparent_starts_a_new_trace() {
        let (first, _) = call(None).await;
        let (second, line) = call(None).await;

        let (first, second) = (first.expect("a trace"), second.expect("a trace"));
        assert_ne!(first.trace_id, second.trace_id, "each call its own trace");
        assert_eq!(line["span"]["trace_id"], second.trace_id_hex(), "{line}");
    }

    fn outgoing(request: tonic::Request<()>) -> Option<String> {
        let request = OutgoingCall::default()
            .call(request)
            .expect("never refuses");
        request
            .metadata()
            .get("traceparent")
            .map(|value| value.to_str().expect("ascii").to_owned())
    }

    /// The callee's parent is the span of the work making the call (the one
    /// exported when spans are), so its own span links to it.
    #[tokio::test]
    async fn a_client_call_names_the_current_work_as_its_parent() {
        let current = TraceContext::new_root();

        let sent = trace::scope(current, async { outgoing(tonic::Request::new(())) }).await;

        let sent = sent.expect("traceparent added");
        let sent = TraceContext::parse(&sent).expect("a valid traceparent");
        assert_eq!(sent, current);
    }

    #[test]
    fn a_client_call_outside_any_trace_carries_none() {
        assert_eq!(outgoing(tonic::Request::new(())), None);
    }

    #[tokio::test]
    async fn a_client_call_keeps_a_traceparent_set_by_hand() {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert("traceparent", CALLER.parse().expect("ascii"));

        let sent = trace::scope(TraceContext::new_root(), async { outgoing(request) }).await;

        assert_eq!(sent.as_deref(), Some(CALLER));
    }
}
