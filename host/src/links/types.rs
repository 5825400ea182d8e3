//! Between wasmtime's dynamic component values and the wire model: `Type` to
//! [`WitType`], and `Val` to and from [`WitValue`].
//!
//! Everything a link can carry converts; what cannot cross a host boundary (resource
//! handles, futures, streams, maps) is reported with the function it appears in, so
//! the host refuses such a link when the workload is applied, never at call time.

use lattice_protocol::wire::{WitType, WitValue};
use wasmtime::component::types::{ComponentFunc, ComponentInstance, ComponentItem};
use wasmtime::component::{ResourceType, Type, Val};
use wasmtime::Engine;

/// The parameter and result types of one function, in the wire model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub params: Vec<WitType>,
    /// The parameters' names, in order (for people: `lattice call`).
    pub param_names: Vec<String>,
    pub results: Vec<WitType>,
    /// [`signature_fingerprint`](lattice_protocol::wire::signature_fingerprint).
    pub fingerprint: String,
}

impl Signature {
    /// The signature of `func`, a function of `interface` (whose type is
    /// `instance`). Refused with a sentence when a type cannot travel.
    pub fn of(
        engine: &Engine,
        interface: &str,
        instance: &ComponentInstance,
        function: &str,
        func: &ComponentFunc,
    ) -> Result<Self, String> {
        let resources: Vec<(String, ResourceType)> = instance
            .exports(engine)
            .filter_map(|(name, item)| match item.ty {
                ComponentItem::Resource(r) => Some((name.to_owned(), r)),
                _ => None,
            })
            .collect();
        let convert = |ty: &Type| wit_type(ty, interface, &resources);
        let param_names = func.params().map(|(name, _)| name.to_owned()).collect();
        let params: Vec<WitType> = func
            .params()
            .map(|(_, ty)| convert(&ty))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("function '{function}' of {interface}: {e}"))?;
        let results: Vec<WitType> = func
            .results()
            .map(|ty| convert(&ty))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("function '{function}' of {interface}: {e}"))?;
        if let Some((iface, name)) = params
            .iter()
            .chain(&results)
            .find_map(WitType::find_resource)
        {
            return Err(format!(
                "function '{function}' of {interface} passes a handle to resource '{name}' of {iface}; \
                 resources cannot be linked between components (a handle only means something \
                 inside one instance), so pass plain data instead"
            ));
        }
        let fingerprint = lattice_protocol::wire::signature_fingerprint(&params, &results);
        Ok(Self {
            params,
            param_names,
            results,
            fingerprint,
        })
    }
}

/// `ty` in the wire model. Resource handles become [`WitType::Resource`] named after
/// the export of `interface` they are; kinds the wire has no encoding for are an
/// error.
fn wit_type(
    ty: &Type,
    interface: &str,
    resources: &[(String, ResourceType)],
) -> Result<WitType, String> {
    let rec = |t: &Type| wit_type(t, interface, resources);
    Ok(match ty {
        Type::Bool => WitType::Bool,
        Type::S8 => WitType::S8,
        Type::U8 => WitType::U8,
        Type::S16 => WitType::S16,
        Type::U16 => WitType::U16,
        Type::S32 => WitType::S32,
        Type::U32 => WitType::U32,
        Type::S64 => WitType::S64,
        Type::U64 => WitType::U64,
        Type::Float32 => WitType::F32,
        Type::Float64 => WitType::F64,
        Type::Char => WitType::Char,
        Type::String => WitType::String,
        Type::List(l) => WitType::list(rec(&l.ty())?),
        Type::Record(r) => WitType::Record(
            r.fields()
                .map(|f| Ok((f.name.to_owned(), rec(&f.ty)?)))
                .collect::<Result<_, String>>()?,
        ),
        Type::Tuple(t) => WitType::Tuple(t.types().map(|t| rec(&t)).collect::<Result<_, _>>()?),
        Type::Variant(v) => WitType::Variant(
            v.cases()
                .map(|c| Ok((c.name.to_owned(), c.ty.as_ref().map(rec).transpose()?)))
                .collect::<Result<_, String>>()?,
        ),
        Type::Enum(e) => WitType::Enum(e.names().map(str::to_owned).collect()),
        Type::Option(o) => WitType::option(rec(&o.ty())?),
        Type::Result(r) => WitType::result(
            r.ok().as_ref().map(rec).transpose()?,
            r.err().as_ref().map(rec).transpose()?,
        ),
        Type::Flags(f) => WitType::Flags(f.names().map(str::to_owned).collect()),
        Type::Own(r) | Type::Borrow(r) => {
            let name = resources
                .iter()
                .find(|(_, t)| t == r)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| "(imported)".to_owned());
            WitType::Resource {
                interface: interface.to_owned(),
                name,
            }
        }
        Type::Map(_) => return Err("maps cannot be linked yet".to_owned()),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err("async futures, streams and error contexts cannot be linked".to_owned())
        }
        Type::FixedLengthList(_) => {
            return Err("fixed-length lists cannot be linked yet".to_owned())
        }
    })
}

/// `val` in the wire model. Only kinds [`Signature::of`] accepted reach here, so
/// the error is a host bug surfacing as a clear message, never a panic.
pub fn to_wire(val: &Val) -> Result<WitValue, String> {
    let boxed = |v: &Option<Box<Val>>| -> Result<Option<Box<WitValue>>, String> {
        v.as_deref().map(|v| to_wire(v).map(Box::new)).transpose()
    };
    Ok(match val {
        Val::Bool(v) => WitValue::Bool(*v),
        Val::S8(v) => WitValue::S8(*v),
        Val::U8(v) => WitValue::U8(*v),
        Val::S16(v) => WitValue::S16(*v),
        Val::U16(v) => WitValue::U16(*v),
        Val::S32(v) => WitValue::S32(*v),
        Val::U32(v) => WitValue::U32(*v),
        Val::S64(v) => WitValue::S64(*v),
        Val::U64(v) => WitValue::U64(*v),
        Val::Float32(v) => WitValue::Float32(*v),
        Val::Float64(v) => WitValue::Float64(*v),
        Val::Char(v) => WitValue::Char(*v),
        Val::String(v) => WitValue::String(v.clone()),
        // A `list<u8>` (its elements are all `u8`) travels as bytes.
        Val::List(v) if matches!(v.first(), Some(Val::U8(_))) => WitValue::Bytes(
            v.iter()
                .map(|b| match b {
                    Val::U8(b) => Ok(*b),
                    other => Err(format!("a list of u8 holds a {other:?}")),
                })
                .collect::<Result<_, _>>()?,
        ),
        Val::List(v) => WitValue::List(v.iter().map(to_wire).collect::<Result<_, _>>()?),
        Val::Record(fields) => WitValue::Record(
            fields
                .iter()
                .map(|(n, v)| Ok((n.clone(), to_wire(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        Val::Tuple(v) => WitValue::Tuple(v.iter().map(to_wire).collect::<Result<_, _>>()?),
        Val::Variant(case, payload) => WitValue::Variant(case.clone(), boxed(payload)?),
        Val::Enum(case) => WitValue::Enum(case.clone()),
        Val::Option(v) => WitValue::Option(boxed(v)?),
        Val::Result(Ok(v)) => WitValue::Result(Ok(boxed(v)?)),
        Val::Result(Err(v)) => WitValue::Result(Err(boxed(v)?)),
        Val::Flags(names) => WitValue::Flags(names.clone()),
        other => return Err(format!("a {other:?} value cannot cross hosts")),
    })
}

/// The wasmtime value of a decoded wire value.
pub fn from_wire(value: WitValue) -> Val {
    let boxed = |v: Option<Box<WitValue>>| v.map(|v| Box::new(from_wire(*v)));
    match value {
        WitValue::Bool(v) => Val::Bool(v),
        WitValue::S8(v) => Val::S8(v),
        WitValue::U8(v) => Val::U8(v),
        WitValue::S16(v) => Val::S16(v),
        WitValue::U16(v) => Val::U16(v),
        WitValue::S32(v) => Val::S32(v),
        WitValue::U32(v) => Val::U32(v),
        WitValue::S64(v) => Val::S64(v),
        WitValue::U64(v) => Val::U64(v),
        WitValue::Float32(v) => Val::Float32(v),
        WitValue::Float64(v) => Val::Float64(v),
        WitValue::Char(v) => Val::Char(v),
        WitValue::String(v) => Val::String(v),
        WitValue::List(v) => Val::List(v.into_iter().map(from_wire).collect()),
        WitValue::Bytes(v) => Val::List(v.into_iter().map(Val::U8).collect()),
        WitValue::Record(fields) => {
            Val::Record(fields.into_iter().map(|(n, v)| (n, from_wire(v))).collect())
        }
        WitValue::Tuple(v) => Val::Tuple(v.into_iter().map(from_wire).collect()),
        WitValue::Variant(case, payload) => Val::Variant(case, boxed(payload)),
        WitValue::Enum(case) => Val::Enum(case),
        WitValue::Option(v) => Val::Option(boxed(v)),
        WitValue::Result(Ok(v)) => Val::Result(Ok(boxed(v))),
        WitValue::Result(Err(v)) => Val::Result(Err(boxed(v))),
        WitValue::Flags(names) => Val::Flags(names),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways() {
        let val = Val::Record(vec![
            ("a".into(), Val::List(vec![Val::U8(1), Val::U8(2)])),
            (
                "b".into(),
                Val::Variant("x".into(), Some(Box::new(Val::Float64(1.5)))),
            ),
            (
                "c".into(),
                Val::Result(Err(Some(Box::new(Val::Enum("e".into()))))),
            ),
            ("d".into(), Val::Option(None)),
            ("e".into(), Val::Flags(vec!["r".into()])),
            (
                "f".into(),
                Val::Tuple(vec![Val::Char('ü'), Val::String("s".into())]),
            ),
        ]);
        let wire = to_wire(&val).unwrap();
        assert_eq!(from_wire(wire), val);
    }
}
