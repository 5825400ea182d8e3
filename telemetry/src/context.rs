//! W3C trace context: the `traceparent` header (version 00).

use std::fmt;

/// A trace id, the id of the span that made the current call, and whether the
/// trace is sampled (recorded and exported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    pub parent_span: u64,
    pub sampled: bool,
}

impl TraceContext {
    /// A new trace, sampled.
    pub fn new() -> Self {
        Self {
            trace_id: rand::random::<u128>().max(1),
            parent_span: rand::random::<u64>().max(1),
            sampled: true,
        }
    }

    /// This context as a `traceparent` header: the trace, `parent_span` as the
    /// caller's span, and the sampled flag.
    pub fn traceparent(&self) -> String {
        let flags = if self.sampled { "01" } else { "00" };
        format!(
            "00-{:032x}-{:016x}-{flags}",
            self.trace_id, self.parent_span
        )
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
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && parent_span != 0).then_some(Self {
            trace_id,
            parent_span,
            sampled: flags & 1 == 1,
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
    fn traceparent_round_trips_with_its_flag_and_rejects_junk() {
        let t = TraceContext::new();
        let header = t.traceparent();
        assert_eq!(TraceContext::parse(&header), Some(t));
        assert_eq!(header.len(), 55);
        let unsampled = TraceContext {
            sampled: false,
            ..t
        };
        assert!(unsampled.traceparent().ends_with("-00"));
        assert_eq!(
            TraceContext::parse(&unsampled.traceparent()),
            Some(unsampled)
        );
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-zzad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-zz",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
    }
}
