//! Linked functions whose parameters and results are byte strings, called through
//! wasmtime's typed API instead of its dynamic values.
//!
//! wasmtime's dynamic API lifts and lowers a `list<u8>` as one `Val` (40 bytes)
//! per byte, at tens of nanoseconds a byte; its typed API copies the list as one
//! block. A function whose signature is one of [`SHAPES`] never becomes `Val`s:
//! each parameter and result is a [`Leaf`] (`list<u8>`, `string`, an `option`
//! or `result<_, string>` of one, `result<_, string>` with no value, and
//! `wasmcloud:messaging`'s [`BrokerMessage`]). Its import is a typed host
//! function, its export is called as a `TypedFunc`, and between them its values
//! travel in the wire model ([`WitValue::Bytes`], [`WitValue::String`], ...),
//! moved, not copied. Every other signature takes the dynamic path, with the
//! same results and failures (a transport failure becomes the error value of a
//! `result<_, string>` and a trap otherwise, as [`ErrorCase`] decides; a test
//! holds every shape to it). Adding a line to [`SHAPES`] gives another
//! signature the fast path.
//!
//! [`ErrorCase`]: super::ErrorCase

use super::failure::CallError;
use crate::ctx::Ctx;
use lattice_protocol::wire::{WitType, WitValue};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use wasmtime::component::{ComponentNamedList, ComponentType, Func, Lift, LinkerInstance, Lower};
use wasmtime::Store;

/// A value the typed API lifts and lowers whole, and that converts to and from
/// the wire model by moving.
pub trait Leaf: Sized + Send + Sync + 'static {
    /// Its type in the wire model.
    fn wit() -> WitType;
    fn into_wire(self) -> WitValue;
    /// `None` when `value` is not of this type.
    fn from_wire(value: WitValue) -> Option<Self>;
    /// The value a transport failure becomes, when the type has room for one
    /// (`result<_, string>`: the message is the error), as
    /// [`ErrorCase::String`](super::ErrorCase::String) delivers it.
    fn failure(_message: &str) -> Option<Self> {
        None
    }
}

impl Leaf for Vec<u8> {
    fn wit() -> WitType {
        WitType::list(WitType::U8)
    }
    fn into_wire(self) -> WitValue {
        WitValue::Bytes(self)
    }
    fn from_wire(value: WitValue) -> Option<Self> {
        value.into_bytes()
    }
}

impl Leaf for String {
    fn wit() -> WitType {
        WitType::String
    }
    fn into_wire(self) -> WitValue {
        WitValue::String(self)
    }
    fn from_wire(value: WitValue) -> Option<Self> {
        match value {
            WitValue::String(s) => Some(s),
            _ => None,
        }
    }
}

impl<T: Leaf> Leaf for Option<T> {
    fn wit() -> WitType {
        WitType::option(T::wit())
    }
    fn into_wire(self) -> WitValue {
        WitValue::Option(self.map(|v| Box::new(v.into_wire())))
    }
    fn from_wire(value: WitValue) -> Option<Self> {
        match value {
            WitValue::Option(None) => Some(None),
            WitValue::Option(Some(v)) => T::from_wire(*v).map(Some),
            _ => None,
        }
    }
}

impl<T: Leaf> Leaf for Result<T, String> {
    fn wit() -> WitType {
        WitType::result(Some(T::wit()), Some(WitType::String))
    }
    fn into_wire(self) -> WitValue {
        WitValue::Result(match self {
            Ok(v) => Ok(Some(Box::new(v.into_wire()))),
            Err(e) => Err(Some(Box::new(WitValue::String(e)))),
        })
    }
    fn from_wire(value: WitValue) -> Option<Self> {
        match value {
            WitValue::Result(Ok(Some(v))) => T::from_wire(*v).map(Ok),
            WitValue::Result(Err(Some(e))) => String::from_wire(*e).map(Err),
            _ => None,
        }
    }
    fn failure(message: &str) -> Option<Self> {
        Some(Err(message.to_owned()))
    }
}

impl Leaf for Result<(), String> {
    fn wit() -> WitType {
        WitType::result(None, Some(WitType::String))
    }
    fn into_wire(self) -> WitValue {
        WitValue::Result(match self {
            Ok(()) => Ok(None),
            Err(e) => Err(Some(Box::new(WitValue::String(e)))),
        })
    }
    fn from_wire(value: WitValue) -> Option<Self> {
        match value {
            WitValue::Result(Ok(None)) => Some(Ok(())),
            WitValue::Result(Err(Some(e))) => String::from_wire(*e).map(Err),
            _ => None,
        }
    }
    fn failure(message: &str) -> Option<Self> {
        Some(Err(message.to_owned()))
    }
}

/// `wasmcloud:messaging/types.broker-message`: what a messaging handler takes
/// (`handle-message`), so a message's body is copied into the guest whole.
#[derive(ComponentType, Lift, Lower, Debug, Clone, PartialEq, Eq)]
#[component(record)]
pub struct BrokerMessage {
    pub subject: String,
    pub body: Vec<u8>,
    #[component(name = "reply-to")]
    pub reply_to: Option<String>,
}

impl Leaf for BrokerMessage {
    fn wit() -> WitType {
        WitType::record([
            ("subject", WitType::String),
            ("body", WitType::list(WitType::U8)),
            ("reply-to", WitType::option(WitType::String)),
        ])
    }
    fn into_wire(self) -> WitValue {
        WitValue::Record(vec![
            ("subject".to_owned(), self.subject.into_wire()),
            ("body".to_owned(), self.body.into_wire()),
            ("reply-to".to_owned(), self.reply_to.into_wire()),
        ])
    }
    fn from_wire(value: WitValue) -> Option<Self> {
        let WitValue::Record(fields) = value else {
            return None;
        };
        let [(s, subject), (b, body), (r, reply_to)] =
            <[(String, WitValue); 3]>::try_from(fields).ok()?;
        if (s.as_str(), b.as_str(), r.as_str()) != ("subject", "body", "reply-to") {
            return None;
        }
        Some(Self {
            subject: String::from_wire(subject)?,
            body: Vec::from_wire(body)?,
            reply_to: Option::from_wire(reply_to)?,
        })
    }
}

/// The parameters or the results of a function: a tuple of [`Leaf`]s.
pub trait Values: ComponentNamedList + Lift + Lower + Send + Sync + 'static {
    fn wit() -> Vec<WitType>;
    fn into_wire(self) -> Vec<WitValue>;
    /// `None` when `values` are not of these types.
    fn from_wire(values: Vec<WitValue>) -> Option<Self>;
    /// The results a transport failure becomes, when they have room for one.
    fn failure(message: &str) -> Option<Self>;
}

impl Values for () {
    fn wit() -> Vec<WitType> {
        Vec::new()
    }
    fn into_wire(self) -> Vec<WitValue> {
        Vec::new()
    }
    fn from_wire(values: Vec<WitValue>) -> Option<Self> {
        values.is_empty().then_some(())
    }
    fn failure(_message: &str) -> Option<Self> {
        None
    }
}

impl<A: Leaf + Lift + Lower> Values for (A,) {
    fn wit() -> Vec<WitType> {
        vec![A::wit()]
    }
    fn into_wire(self) -> Vec<WitValue> {
        vec![self.0.into_wire()]
    }
    fn from_wire(values: Vec<WitValue>) -> Option<Self> {
        let [a] = <[WitValue; 1]>::try_from(values).ok()?;
        Some((A::from_wire(a)?,))
    }
    fn failure(message: &str) -> Option<Self> {
        A::failure(message).map(|a| (a,))
    }
}

impl<A: Leaf + Lift + Lower, B: Leaf + Lift + Lower> Values for (A, B) {
    fn wit() -> Vec<WitType> {
        vec![A::wit(), B::wit()]
    }
    fn into_wire(self) -> Vec<WitValue> {
        vec![self.0.into_wire(), self.1.into_wire()]
    }
    fn from_wire(values: Vec<WitValue>) -> Option<Self> {
        let [a, b] = <[WitValue; 2]>::try_from(values).ok()?;
        Some((A::from_wire(a)?, B::from_wire(b)?))
    }
    fn failure(_message: &str) -> Option<Self> {
        None
    }
}

/// The future of one typed call: the results, or the guest's failure.
pub type Called<'a> = Pin<Box<dyn Future<Output = wasmtime::Result<Vec<WitValue>>> + Send + 'a>>;

/// The future of one routed call.
pub type Routed = Pin<Box<dyn Future<Output = Result<Vec<WitValue>, CallError>> + Send>>;

/// Where an import's calls go (`imports::LinkedImport`), for its typed host
/// function.
pub trait Route: Send + Sync + 'static {
    /// Route a call made from the instance whose store data is `ctx`; what the
    /// call needs of the store is read before the future starts.
    fn route(self: Arc<Self>, ctx: &mut Ctx, args: Vec<WitValue>) -> Routed;
    /// `ns:pkg/iface.function`, for messages.
    fn display(&self) -> String;
}

/// A signature the host calls with wasmtime's typed API.
pub trait Shape: Send + Sync + std::fmt::Debug {
    /// The parameter and result types of functions of this shape.
    fn types(&self) -> (Vec<WitType>, Vec<WitType>);

    /// The results a transport failure with `message` becomes, in the wire
    /// model; `None` when the caller traps instead.
    fn failure(&self, message: &str) -> Option<Vec<WitValue>>;

    /// Call `func` (an export of an instance in `store`, of this shape) with
    /// `args`; `Err` (the host's mistake, before the guest runs) when `args` or
    /// `func` are not of this shape.
    fn call<'a>(
        &self,
        store: &'a mut Store<Ctx>,
        func: Func,
        args: Vec<WitValue>,
    ) -> Result<Called<'a>, String>;

    /// Define import function `name` in `inst` as a typed host function that
    /// sends each call to `route`.
    fn link(
        &self,
        inst: &mut LinkerInstance<'_, Ctx>,
        name: &str,
        route: Arc<dyn Route>,
    ) -> wasmtime::Result<()>;
}

/// The [`Shape`] of functions taking `P` and returning `R`.
struct Typed<P, R>(PhantomData<fn(P) -> R>);

impl<P, R> std::fmt::Debug for Typed<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", std::any::type_name::<fn(P) -> R>())
    }
}

impl<P: Values, R: Values> Shape for Typed<P, R> {
    fn types(&self) -> (Vec<WitType>, Vec<WitType>) {
        (P::wit(), R::wit())
    }

    fn failure(&self, message: &str) -> Option<Vec<WitValue>> {
        R::failure(message).map(Values::into_wire)
    }

    fn call<'a>(
        &self,
        store: &'a mut Store<Ctx>,
        func: Func,
        args: Vec<WitValue>,
    ) -> Result<Called<'a>, String> {
        let params = P::from_wire(args).ok_or("the arguments are not of its types")?;
        let typed = func.typed::<P, R>(&*store).map_err(|e| e.to_string())?;
        Ok(Box::pin(async move {
            let results = typed.call_async(&mut *store, params).await?;
            Ok(results.into_wire())
        }))
    }

    fn link(
        &self,
        inst: &mut LinkerInstance<'_, Ctx>,
        name: &str,
        route: Arc<dyn Route>,
    ) -> wasmtime::Result<()> {
        inst.func_wrap_async(name, move |mut store, params: P| {
            let routed = route.clone().route(store.data_mut(), params.into_wire());
            let route = route.clone();
            Box::new(async move {
                match routed.await {
                    Ok(values) => R::from_wire(values).ok_or_else(|| {
                        wasmtime::format_err!(
                            "the results of {} are not of its types",
                            route.display()
                        )
                    }),
                    Err(failure) => R::failure(&failure.message)
                        .ok_or_else(|| wasmtime::format_err!("{failure}")),
                }
            })
        })
    }
}

/// The signatures with a typed path. `(list<u8>) -> list<u8>` first: the
/// shape of a byte-handling function; then the same with `string`, the
/// `option`/`result<_, string>` forms a function that may fail or find nothing
/// returns, and a messaging handler's.
pub static SHAPES: &[&dyn Shape] = &[
    &Typed::<(Vec<u8>,), (Vec<u8>,)>(PhantomData),
    &Typed::<(String,), (String,)>(PhantomData),
    &Typed::<(Vec<u8>,), (Result<Vec<u8>, String>,)>(PhantomData),
    &Typed::<(String,), (Result<String, String>,)>(PhantomData),
    &Typed::<(String,), (Vec<u8>,)>(PhantomData),
    &Typed::<(String,), (Option<Vec<u8>>,)>(PhantomData),
    &Typed::<(String,), (Result<Vec<u8>, String>,)>(PhantomData),
    &Typed::<(String,), (Result<Option<Vec<u8>>, String>,)>(PhantomData),
    &Typed::<(Vec<u8>,), (String,)>(PhantomData),
    &Typed::<(String, Vec<u8>), ()>(PhantomData),
    &Typed::<(Vec<u8>,), ()>(PhantomData),
    &Typed::<(String,), ()>(PhantomData),
    &Typed::<(String, Vec<u8>), (Result<(), String>,)>(PhantomData),
    // `wasmcloud:messaging/handler.handle-message`.
    &Typed::<(BrokerMessage,), (Result<(), String>,)>(PhantomData),
];

/// The typed path for a function with these types, if it has one.
pub fn shape_of(params: &[WitType], results: &[WitType]) -> Option<&'static dyn Shape> {
    SHAPES.iter().copied().find(|s| {
        let (p, r) = s.types();
        p == params && r == results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes() -> WitType {
        WitType::list(WitType::U8)
    }

    #[test]
    fn byte_string_signatures_have_a_shape_and_others_do_not() {
        let result = |ok| WitType::result(Some(ok), Some(WitType::String));
        for (params, results) in [
            (vec![bytes()], vec![bytes()]),
            (vec![WitType::String], vec![WitType::String]),
            (vec![bytes()], vec![result(bytes())]),
            (vec![WitType::String], vec![WitType::option(bytes())]),
            (vec![WitType::String, bytes()], vec![]),
            (
                vec![BrokerMessage::wit()],
                vec![WitType::result(None, Some(WitType::String))],
            ),
        ] {
            assert!(
                shape_of(&params, &results).is_some(),
                "{params:?} -> {results:?}"
            );
        }
        for (params, results) in [
            // Other element types, other error types, other arities.
            (vec![WitType::list(WitType::U32)], vec![bytes()]),
            (
                vec![bytes()],
                vec![WitType::result(Some(bytes()), Some(WitType::U32))],
            ),
            (vec![bytes(), bytes(), bytes()], vec![]),
            (vec![], vec![bytes()]),
            (vec![WitType::record([("b", bytes())])], vec![bytes()]),
        ] {
            assert!(
                shape_of(&params, &results).is_none(),
                "{params:?} -> {results:?}"
            );
        }
    }

    #[test]
    fn no_two_shapes_share_a_signature() {
        let all: Vec<_> = SHAPES.iter().map(|s| s.types()).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!all[i + 1..].contains(a), "{a:?} is listed twice");
        }
    }

    #[test]
    fn values_move_to_the_wire_and_back() {
        type Out = (Result<Option<Vec<u8>>, String>,);
        for value in [
            (Ok(Some(vec![1, 2, 3])),),
            (Ok(None),),
            (Err("gone".to_owned()),),
        ] {
            let wire = <Out as Values>::into_wire(value.clone());
            for (ty, v) in <Out as Values>::wit().iter().zip(&wire) {
                lattice_protocol::wire::typecheck(ty, v).unwrap();
            }
            assert_eq!(<Out as Values>::from_wire(wire), Some(value));
        }
        let two = ("k".to_owned(), vec![9u8]);
        assert_eq!(
            <(String, Vec<u8>) as Values>::from_wire(two.clone().into_wire()),
            Some(two)
        );
        // The wrong kind or count of values is refused, never misread.
        let refused = <(Vec<u8>,) as Values>::from_wire(vec![WitValue::String("x".into())]);
        assert_eq!(refused, None);
        assert_eq!(<(Vec<u8>,) as Values>::from_wire(vec![]), None);
        assert_eq!(<() as Values>::from_wire(vec![WitValue::U8(1)]), None);
        // A list of `u8` values reads as bytes too.
        assert_eq!(
            <(Vec<u8>,) as Values>::from_wire(vec![WitValue::List(vec![WitValue::U8(4)])]),
            Some((vec![4],))
        );
    }

    #[test]
    fn a_broker_message_moves_to_the_wire_and_back() {
        let msg = BrokerMessage {
            subject: "orders.new".to_owned(),
            body: vec![0, 255, 7],
            reply_to: Some("_INBOX.x".to_owned()),
        };
        let wire = msg.clone().into_wire();
        lattice_protocol::wire::typecheck(&BrokerMessage::wit(), &wire).unwrap();
        assert_eq!(BrokerMessage::from_wire(wire), Some(msg));
        // Fields under other names, or in another order, are not a broker message.
        let renamed = WitValue::Record(vec![
            ("topic".to_owned(), WitValue::String("a".to_owned())),
            ("body".to_owned(), WitValue::Bytes(vec![])),
            ("reply-to".to_owned(), WitValue::Option(None)),
        ]);
        assert_eq!(BrokerMessage::from_wire(renamed), None);
        let done = <(Result<(), String>,) as Values>::into_wire((Ok(()),));
        assert_eq!(done, vec![WitValue::Result(Ok(None))]);
        assert_eq!(
            <(Result<(), String>,) as Values>::failure("down"),
            Some((Err("down".to_owned()),))
        );
    }

    #[test]
    fn every_shape_delivers_failures_as_the_dynamic_path_does() {
        use super::super::ErrorCase;
        for shape in SHAPES {
            let (_, results) = shape.types();
            // Only a `result<_, string>` has room; the typed results then carry
            // the message where `ErrorCase::String` puts it.
            let room = ErrorCase::of(&results);
            assert!(
                matches!(room, ErrorCase::String | ErrorCase::Trap),
                "{shape:?}: a typed path for {room:?} would need its own delivery"
            );
            let delivered = shape.failure("down");
            match room {
                ErrorCase::String => assert_eq!(
                    delivered,
                    Some(vec![WitValue::Result(Err(Some(Box::new(
                        WitValue::String("down".to_owned())
                    ))))]),
                    "{shape:?}"
                ),
                _ => assert_eq!(delivered, None, "{shape:?}"),
            }
        }
    }

    #[test]
    fn only_a_string_error_takes_a_transport_failure() {
        assert_eq!(
            <(Result<Vec<u8>, String>,) as Values>::failure("down"),
            Some((Err("down".to_owned()),))
        );
        assert_eq!(<(Vec<u8>,) as Values>::failure("down"), None);
        assert_eq!(<(Option<Vec<u8>>,) as Values>::failure("down"), None);
        assert_eq!(<() as Values>::failure("down"), None);
    }
}
