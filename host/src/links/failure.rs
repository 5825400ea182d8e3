//! A linked call that failed in transport ([`CallError`], the transport's), and
//! how the caller sees it.

use crate::telemetry::trace::TraceContext;
use lattice_protocol::messages::FailedCall;
use lattice_protocol::wire::WitType;
use wasmtime::component::Val;

pub use lattice_rpc::CallError;

/// `failure` of `call` (`ns:pkg/iface.function`) made by `component` of `app` in
/// `trace`, as a host report keeps it.
pub fn report(
    failure: &CallError,
    app: &str,
    component: &str,
    call: String,
    trace: &TraceContext,
) -> FailedCall {
    FailedCall {
        at_ms: lattice_protocol::now_ms(),
        app: app.to_owned(),
        component: component.to_owned(),
        call,
        kind: failure.kind.as_str().to_owned(),
        message: failure.message.clone(),
        trace_id: trace.trace_id().to_string(),
    }
}

/// Where a function's result type has room for a transport failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCase {
    /// The function returns `result<_, string>`: the message is the error.
    String,
    /// The function returns `result<_, V>` where variant `V` has this case with a
    /// `string` payload (the first of [`ERROR_CASES`] it has).
    VariantCase(String),
    /// No room: the caller traps with the message.
    Trap,
}

/// Variant cases, in order of preference, that take a transport failure's message.
pub const ERROR_CASES: [&str; 6] = [
    "unavailable",
    "transport",
    "lattice",
    "internal",
    "error",
    "other",
];

impl ErrorCase {
    /// Where failures of a function with these `results` go.
    pub fn of(results: &[WitType]) -> Self {
        let [WitType::Result { err: Some(err), .. }] = results else {
            return ErrorCase::Trap;
        };
        match &**err {
            WitType::String => ErrorCase::String,
            WitType::Variant(cases) => ERROR_CASES
                .iter()
                .find(|want| {
                    cases
                        .iter()
                        .any(|(name, ty)| name == *want && ty == &Some(WitType::String))
                })
                .map_or(ErrorCase::Trap, |c| ErrorCase::VariantCase((*c).to_owned())),
            _ => ErrorCase::Trap,
        }
    }

    /// Hand `failure` to the caller: as its error value in `results`, or as a trap.
    pub fn deliver(&self, failure: &CallError, results: &mut [Val]) -> wasmtime::Result<()> {
        let text = failure.message.clone();
        let err = match self {
            ErrorCase::String => Val::String(text),
            ErrorCase::VariantCase(case) => {
                Val::Variant(case.clone(), Some(Box::new(Val::String(text))))
            }
            ErrorCase::Trap => return Err(wasmtime::format_err!("{failure}")),
        };
        match results.first_mut() {
            Some(slot) => {
                *slot = Val::Result(Err(Some(Box::new(err))));
                Ok(())
            }
            None => Err(wasmtime::format_err!("{failure}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_protocol::wire::CallErrorKind;

    #[test]
    fn failures_go_where_the_result_type_has_room() {
        let string_err = WitType::result(Some(WitType::U32), Some(WitType::String));
        assert_eq!(ErrorCase::of(&[string_err]), ErrorCase::String);
        let rejection = WitType::variant([
            ("empty-order", None),
            ("unavailable", Some(WitType::String)),
        ]);
        assert_eq!(
            ErrorCase::of(&[WitType::result(None, Some(rejection))]),
            ErrorCase::VariantCase("unavailable".into())
        );
        let no_room = WitType::variant([("unavailable", None)]);
        assert_eq!(
            ErrorCase::of(&[WitType::result(None, Some(no_room))]),
            ErrorCase::Trap
        );
        assert_eq!(ErrorCase::of(&[WitType::U8]), ErrorCase::Trap);
        assert_eq!(ErrorCase::of(&[]), ErrorCase::Trap);

        let failure = CallError::new(CallErrorKind::Timeout, "no answer in 1s");
        let mut results = [Val::Bool(false)];
        ErrorCase::VariantCase("unavailable".into())
            .deliver(&failure, &mut results)
            .unwrap();
        assert_eq!(
            results[0],
            Val::Result(Err(Some(Box::new(Val::Variant(
                "unavailable".into(),
                Some(Box::new(Val::String("no answer in 1s".into())))
            )))))
        );
        let trap = ErrorCase::Trap.deliver(&failure, &mut results).unwrap_err();
        assert_eq!(trap.to_string(), "no answer in 1s (timeout)");
    }
}
