//! `hashable-f64 = tuple<u64, s16, s8>`: a float as `integer_decode` gives it
//! (mantissa, exponent, sign; the value is `sign * mantissa * 2^exponent`), for
//! `float8` and, with `f32`'s decomposition, `float4`.

use lattice_provider::WitValue;

/// `f64::integer_decode` (as `num-traits` defines it).
pub fn decode64(f: f64) -> (u64, i16, i8) {
    let bits = f.to_bits();
    let sign = if bits >> 63 == 0 { 1 } else { -1 };
    let exponent = ((bits >> 52) & 0x7ff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0xf_ffff_ffff_ffff) << 1
    } else {
        (bits & 0xf_ffff_ffff_ffff) | 0x10_0000_0000_0000
    };
    (mantissa, exponent - (1023 + 52), sign)
}

/// `f32::integer_decode` (as `num-traits` defines it).
pub fn decode32(f: f32) -> (u64, i16, i8) {
    let bits = f.to_bits();
    let sign = if bits >> 31 == 0 { 1 } else { -1 };
    let exponent = ((bits >> 23) & 0xff) as i16;
    let mantissa = if exponent == 0 {
        (bits & 0x7f_ffff) << 1
    } else {
        (bits & 0x7f_ffff) | 0x80_0000
    };
    (u64::from(mantissa), exponent - (127 + 23), sign)
}

/// The value of a decomposition made by [`decode64`] (or by hand: any mantissa,
/// exponent and sign work). `NaN` comes back from its decomposition too.
pub fn encode64((mantissa, exponent, sign): (u64, i16, i8)) -> f64 {
    const IMPLICIT: u64 = 1 << 52;
    let nan = exponent == 2047 - 1075 && mantissa > IMPLICIT && mantissa < IMPLICIT << 1;
    signed(nan, mantissa, exponent, sign)
}

/// The value of a decomposition made by [`decode32`].
pub fn encode32((mantissa, exponent, sign): (u64, i16, i8)) -> f32 {
    const IMPLICIT: u64 = 1 << 23;
    let nan = exponent == 255 - 150 && mantissa > IMPLICIT && mantissa < IMPLICIT << 1;
    signed(nan, mantissa, exponent, sign) as f32
}

fn signed(nan: bool, mantissa: u64, exponent: i16, sign: i8) -> f64 {
    let magnitude = if nan {
        f64::NAN
    } else {
        ldexp(mantissa as f64, i32::from(exponent))
    };
    if sign < 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// `x * 2^e`, exact unless the result itself is not representable: steps of at
/// most 2^±1000 keep every intermediate value normal.
fn ldexp(mut x: f64, mut e: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((1023 + e) as u64) << 52);
    while e > 1000 && x.is_finite() {
        x *= pow2(1000);
        e -= 1000;
    }
    while e < -1000 && x != 0.0 {
        x *= pow2(-1000);
        e += 1000;
    }
    if e.abs() > 1000 {
        return x; // already infinite or zero
    }
    x * pow2(e)
}

/// The WIT value of a decomposition.
pub fn hashable((mantissa, exponent, sign): (u64, i16, i8)) -> WitValue {
    WitValue::Tuple(vec![
        WitValue::U64(mantissa),
        WitValue::S16(exponent),
        WitValue::S8(sign),
    ])
}

/// The decomposition in a WIT value.
pub fn from_hashable(value: &WitValue) -> Result<(u64, i16, i8), String> {
    match value {
        WitValue::Tuple(parts) => match parts[..] {
            [WitValue::U64(m), WitValue::S16(e), WitValue::S8(s)] => Ok((m, e, s)),
            _ => Err("expected a hashable-f64 tuple<u64, s16, s8>".to_owned()),
        },
        other => Err(format!(
            "expected a hashable-f64 tuple, got a {}",
            other.kind()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f64_round_trips_bit_for_bit() {
        for f in [
            0.0,
            -0.0,
            1.0,
            -2.5,
            0.1,
            std::f64::consts::PI,
            f64::MAX,
            f64::MIN_POSITIVE,
            5e-324,
            -1.5e-310,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
        ] {
            assert_eq!(encode64(decode64(f)).to_bits(), f.to_bits(), "{f}");
        }
        assert!(encode64(decode64(f64::NAN)).is_nan());
        // Hand-made decompositions work too.
        assert_eq!(encode64((3, 0, 1)), 3.0);
        assert_eq!(encode64((3, -1, -1)), -1.5);
    }

    #[test]
    fn f32_round_trips_bit_for_bit() {
        for f in [
            0.0f32,
            -0.0,
            1.0,
            0.1,
            f32::MAX,
            f32::MIN_POSITIVE,
            1e-45,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ] {
            assert_eq!(encode32(decode32(f)).to_bits(), f.to_bits(), "{f}");
        }
        assert!(encode32(decode32(f32::NAN)).is_nan());
    }

    #[test]
    fn wit_values() {
        let t = decode64(-0.75);
        assert_eq!(from_hashable(&hashable(t)), Ok(t));
        assert!(from_hashable(&WitValue::U8(1)).is_err());
    }
}
