//! W3C trace context for linked calls: every call carries a `traceparent`, and a
//! callee's own calls continue the caller's trace, so one id follows a request
//! through every component and host it touches (and every log line about it).

use std::fmt;

/// A trace id and the id of the span that made the current call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub parent_span: u64,
}

impl TraceContext {
    /// A new trace.
    pub fn new() -> Self {
        Self {
            trace_id: rand::random::<u128>().max(1),
            parent_span: rand::random::<u64>().max(1),
        }
    }

    /// A child span of this trace, for one outgoing call: its `traceparent` header.
    pub fn child_traceparent(&self) -> String {
        let span = rand::random::<u64>().max(1);
        format!("00-{:032x}-{span:016x}-01", self.trace_id)
    }

    /// Read a `traceparent` header (version 00); `None` when malformed or all-zero.
    pub fn parse(header: &str) -> Option<Self> {
        let mut parts = header.trim().split('-');
        let (Some(version), Some(trace), Some(span), Some(flags)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if version.len() != 2 || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let parent_span = u64::from_str_radix(span, 16).ok()?;
        (trace_id != 0 && parent_span != 0).then_some(Self {
            trace_id,
            parent_span,
        })
    }

    /// The trace id as 32 hex digits, for logs.
    pub fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }
}

impl Default for TraceContext {
    fn default() -> Self {
        Self::new()
    }
}

/// A trace id, displayed as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(pub u128);

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_junk() {
        let t = TraceContext::new();
        let header = t.child_traceparent();
        let back = TraceContext::parse(&header).unwrap();
        assert_eq!(back.trace_id, t.trace_id);
        assert_eq!(header.len(), 55);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-zzad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
