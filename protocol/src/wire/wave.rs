//! The WebAssembly Value Encoding (WAVE) of wire values: how people write and read
//! arguments and results (`lattice call`), e.g. `{sku: "ab", quantity: 2}`,
//! `ok(7)`, `[1, 2, 3]`, `out-of-stock("ab")`.
//!
//! The `wasm-wave` crate parses and prints; this module only maps [`WitType`] and
//! [`WitValue`] to its own type and value model. Parsing is typed: the text must be
//! a value of the given type, and the error says where it is not.

use super::types::{WitType, WitValue};
use std::borrow::Cow;
use wasm_wave::value::{Type, Value};
use wasm_wave::wasm::{WasmValue, WasmValueError};

/// Read `text` as a value of type `ty`.
pub fn parse(ty: &WitType, text: &str) -> Result<WitValue, String> {
    let wave_ty = wave_type(ty)?;
    let value: Value = wasm_wave::from_str(&wave_ty, text).map_err(|e| {
        let near = text
            .get(e.span().start..)
            .filter(|rest| !rest.is_empty())
            .map(|rest| format!(" at `{}`", rest.chars().take(24).collect::<String>()))
            .unwrap_or_default();
        format!("not a WAVE value of type {}: {e}{near}", describe(ty))
    })?;
    to_wit(ty, &value)
}

/// Write `value` (of type `ty`) as WAVE text.
pub fn print(ty: &WitType, value: &WitValue) -> Result<String, String> {
    let value = from_wit(ty, value)?;
    wasm_wave::to_string(&value).map_err(|e| e.to_string())
}

/// The type as a signature writes it, for messages.
fn describe(ty: &WitType) -> String {
    super::rpc::signature(std::slice::from_ref(ty), &[])
        .trim_start_matches("func(")
        .trim_end_matches(')')
        .to_owned()
}

fn wave_type(ty: &WitType) -> Result<Type, String> {
    let empty = |what: &str| format!("an empty {what} has no WAVE form");
    Ok(match ty {
        WitType::Bool => Type::BOOL,
        WitType::S8 => Type::S8,
        WitType::S16 => Type::S16,
        WitType::S32 => Type::S32,
        WitType::S64 => Type::S64,
        WitType::U8 => Type::U8,
        WitType::U16 => Type::U16,
        WitType::U32 => Type::U32,
        WitType::U64 => Type::U64,
        WitType::F32 => Type::F32,
        WitType::F64 => Type::F64,
        WitType::Char => Type::CHAR,
        WitType::String => Type::STRING,
        WitType::List(t) => Type::list(wave_type(t)?),
        WitType::Record(fields) => {
            let fields = fields
                .iter()
                .map(|(n, t)| Ok((n.as_str(), wave_type(t)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Type::record(fields).ok_or_else(|| empty("record"))?
        }
        WitType::Tuple(items) => {
            let items = items.iter().map(wave_type).collect::<Result<Vec<_>, _>>()?;
            Type::tuple(items).ok_or_else(|| empty("tuple"))?
        }
        WitType::Variant(cases) => {
            let cases = cases
                .iter()
                .map(|(n, t)| Ok((n.as_str(), t.as_ref().map(wave_type).transpose()?)))
                .collect::<Result<Vec<_>, String>>()?;
            Type::variant(cases).ok_or_else(|| empty("variant"))?
        }
        WitType::Enum(cases) => Type::enum_ty(cases.iter().map(String::as_str))
            .ok_or_else(|| empty("enum"))?,
        WitType::Option(t) => Type::option(wave_type(t)?),
        WitType::Result { ok, err } => Type::result(
            ok.as_deref().map(wave_type).transpose()?,
            err.as_deref().map(wave_type).transpose()?,
        ),
        WitType::Flags(names) => {
            Type::flags(names.iter().map(String::as_str)).ok_or_else(|| empty("flags"))?
        }
        WitType::Resource { interface, name } => {
            return Err(format!(
                "resource '{name}' of {interface} is a handle inside one instance and has no value to write"
            ))
        }
    })
}

/// A parsed value (checked against `wave_type(ty)` by the parser) in the wire model.
fn to_wit(ty: &WitType, v: &Value) -> Result<WitValue, String> {
    let payload = |t: Option<&WitType>, p: Option<Cow<'_, Value>>| match (t, p) {
        (Some(t), Some(p)) => to_wit(t, &p).map(|v| Some(Box::new(v))),
        (None, None) => Ok(None),
        _ => Err("a payload does not match its case".to_owned()),
    };
    Ok(match ty {
        WitType::Bool => WitValue::Bool(v.unwrap_bool()),
        WitType::S8 => WitValue::S8(v.unwrap_s8()),
        WitType::S16 => WitValue::S16(v.unwrap_s16()),
        WitType::S32 => WitValue::S32(v.unwrap_s32()),
        WitType::S64 => WitValue::S64(v.unwrap_s64()),
        WitType::U8 => WitValue::U8(v.unwrap_u8()),
        WitType::U16 => WitValue::U16(v.unwrap_u16()),
        WitType::U32 => WitValue::U32(v.unwrap_u32()),
        WitType::U64 => WitValue::U64(v.unwrap_u64()),
        WitType::F32 => WitValue::Float32(v.unwrap_f32()),
        WitType::F64 => WitValue::Float64(v.unwrap_f64()),
        WitType::Char => WitValue::Char(v.unwrap_char()),
        WitType::String => WitValue::String(v.unwrap_string().into_owned()),
        WitType::List(t) if **t == WitType::U8 => {
            WitValue::Bytes(v.unwrap_list().map(|x| x.unwrap_u8()).collect())
        }
        WitType::List(t) => WitValue::List(
            v.unwrap_list()
                .map(|x| to_wit(t, &x))
                .collect::<Result<_, _>>()?,
        ),
        WitType::Record(fields) => WitValue::Record(
            fields
                .iter()
                .zip(v.unwrap_record())
                .map(|((name, t), (_, x))| Ok((name.clone(), to_wit(t, &x)?)))
                .collect::<Result<_, String>>()?,
        ),
        WitType::Tuple(items) => WitValue::Tuple(
            items
                .iter()
                .zip(v.unwrap_tuple())
                .map(|(t, x)| to_wit(t, &x))
                .collect::<Result<_, _>>()?,
        ),
        WitType::Variant(cases) => {
            let (case, p) = v.unwrap_variant();
            let t = cases
                .iter()
                .find(|(n, _)| *n == case)
                .ok_or_else(|| format!("no case '{case}'"))?;
            WitValue::Variant(case.into_owned(), payload(t.1.as_ref(), p)?)
        }
        WitType::Enum(_) => WitValue::Enum(v.unwrap_enum().into_owned()),
        WitType::Option(t) => WitValue::Option(payload(
            v.unwrap_option().is_some().then_some(t.as_ref()),
            v.unwrap_option(),
        )?),
        WitType::Result { ok, err } => WitValue::Result(match v.unwrap_result() {
            Ok(p) => Ok(payload(ok.as_deref(), p)?),
            Err(p) => Err(payload(err.as_deref(), p)?),
        }),
        WitType::Flags(_) => WitValue::Flags(v.unwrap_flags().map(Cow::into_owned).collect()),
        WitType::Resource { .. } => return Err("a resource has no value".to_owned()),
    })
}

/// A wire value (of type `ty`) in WAVE's model.
fn from_wit(ty: &WitType, v: &WitValue) -> Result<Value, String> {
    let wrong = || format!("a value does not match its type {}", describe(ty));
    let e = |e: WasmValueError| e.to_string();
    let boxed = |t: Option<&WitType>, p: &Option<Box<WitValue>>| match (t, p) {
        (Some(t), Some(p)) => from_wit(t, p).map(Some),
        (None, None) => Ok(None),
        _ => Err(wrong()),
    };
    Ok(match (ty, v) {
        (WitType::Bool, WitValue::Bool(x)) => Value::make_bool(*x),
        (WitType::S8, WitValue::S8(x)) => Value::make_s8(*x),
        (WitType::S16, WitValue::S16(x)) => Value::make_s16(*x),
        (WitType::S32, WitValue::S32(x)) => Value::make_s32(*x),
        (WitType::S64, WitValue::S64(x)) => Value::make_s64(*x),
        (WitType::U8, WitValue::U8(x)) => Value::make_u8(*x),
        (WitType::U16, WitValue::U16(x)) => Value::make_u16(*x),
        (WitType::U32, WitValue::U32(x)) => Value::make_u32(*x),
        (WitType::U64, WitValue::U64(x)) => Value::make_u64(*x),
        (WitType::F32, WitValue::Float32(x)) => Value::make_f32(*x),
        (WitType::F64, WitValue::Float64(x)) => Value::make_f64(*x),
        (WitType::Char, WitValue::Char(x)) => Value::make_char(*x),
        (WitType::String, WitValue::String(x)) => Value::make_string(Cow::Borrowed(x)),
        (WitType::List(t), WitValue::Bytes(bytes)) if **t == WitType::U8 => {
            let items = bytes.iter().map(|b| Value::make_u8(*b)).collect::<Vec<_>>();
            Value::make_list(&wave_type(ty)?, items).map_err(e)?
        }
        (WitType::List(t), WitValue::List(items)) => {
            let items = items
                .iter()
                .map(|x| from_wit(t, x))
                .collect::<Result<Vec<_>, _>>()?;
            Value::make_list(&wave_type(ty)?, items).map_err(e)?
        }
        (WitType::Record(types), WitValue::Record(fields)) if types.len() == fields.len() => {
            let fields = types
                .iter()
                .zip(fields)
                .map(|((name, t), (_, x))| Ok((name.as_str(), from_wit(t, x)?)))
                .collect::<Result<Vec<_>, String>>()?;
            Value::make_record(&wave_type(ty)?, fields).map_err(e)?
        }
        (WitType::Tuple(types), WitValue::Tuple(items)) if types.len() == items.len() => {
            let items = types
                .iter()
                .zip(items)
                .map(|(t, x)| from_wit(t, x))
                .collect::<Result<Vec<_>, _>>()?;
            Value::make_tuple(&wave_type(ty)?, items).map_err(e)?
        }
        (WitType::Variant(cases), WitValue::Variant(case, p)) => {
            let (_, t) = cases.iter().find(|(n, _)| n == case).ok_or_else(wrong)?;
            Value::make_variant(&wave_type(ty)?, case, boxed(t.as_ref(), p)?).map_err(e)?
        }
        (WitType::Enum(_), WitValue::Enum(case)) => {
            Value::make_enum(&wave_type(ty)?, case).map_err(e)?
        }
        (WitType::Option(t), WitValue::Option(p)) => {
            let inner = p.as_deref().map(|x| from_wit(t, x)).transpose()?;
            Value::make_option(&wave_type(ty)?, inner).map_err(e)?
        }
        (WitType::Result { ok, err }, WitValue::Result(r)) => {
            let r = match r {
                Ok(p) => Ok(boxed(ok.as_deref(), p)?),
                Err(p) => Err(boxed(err.as_deref(), p)?),
            };
            Value::make_result(&wave_type(ty)?, r).map_err(e)?
        }
        (WitType::Flags(_), WitValue::Flags(set)) => {
            Value::make_flags(&wave_type(ty)?, set.iter().map(String::as_str)).map_err(e)?
        }
        _ => return Err(wrong()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> WitType {
        WitType::Record(vec![
            ("sku".into(), WitType::String),
            ("quantity".into(), WitType::U32),
        ])
    }

    fn outcome() -> WitType {
        WitType::Result {
            ok: Some(Box::new(WitType::U64)),
            err: Some(Box::new(WitType::Variant(vec![
                ("out-of-stock".into(), Some(WitType::String)),
                ("invalid".into(), None),
            ]))),
        }
    }

    #[test]
    fn records_variants_lists_and_results_round_trip() {
        let cases = [
            (order(), r#"{sku: "ab", quantity: 2}"#),
            (outcome(), "ok(7)"),
            (outcome(), r#"err(out-of-stock("ab"))"#),
            (outcome(), "err(invalid)"),
            (
                WitType::list(order()),
                r#"[{sku: "a", quantity: 1}, {sku: "b", quantity: 0}]"#,
            ),
            (WitType::Option(Box::new(WitType::S8)), "some(-3)"),
            (WitType::Option(Box::new(WitType::S8)), "none"),
            (
                WitType::Flags(vec!["read".into(), "write".into()]),
                "{write}",
            ),
            (WitType::Enum(vec!["red".into(), "blue".into()]), "blue"),
            (
                WitType::Tuple(vec![WitType::Bool, WitType::Char]),
                "(true, 'x')",
            ),
            (WitType::list(WitType::U8), "[1, 2, 255]"),
        ];
        for (ty, text) in cases {
            let value = parse(&ty, text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(print(&ty, &value).unwrap(), text);
            // And the wire encoding carries it unchanged.
            let bytes = crate::wire::encode(&ty, &value).unwrap();
            assert_eq!(crate::wire::decode(&ty, &bytes).unwrap(), value);
        }
        assert_eq!(
            parse(&order(), r#"{sku: "ab", quantity: 2}"#).unwrap(),
            WitValue::Record(vec![
                ("sku".into(), WitValue::String("ab".into())),
                ("quantity".into(), WitValue::U32(2)),
            ])
        );
    }

    #[test]
    fn text_of_another_type_is_refused_naming_the_type() {
        let e = parse(&order(), r#"{sku: "ab"}"#).unwrap_err();
        assert!(e.contains("record { sku: string, quantity: u32 }"), "{e}");
        let e = parse(&WitType::U8, "300").unwrap_err();
        assert!(e.contains("u8"), "{e}");
        let e = parse(&outcome(), "err(sold-out)").unwrap_err();
        assert!(e.contains("not a WAVE value"), "{e}");
    }

    #[test]
    fn resources_have_no_text() {
        let r = WitType::Resource {
            interface: "a:b/c".into(),
            name: "cart".into(),
        };
        assert!(parse(&r, "1").unwrap_err().contains("resource 'cart'"));
    }
}
