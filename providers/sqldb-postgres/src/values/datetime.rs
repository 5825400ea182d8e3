//! `date`, `time`, `timestamp` and `timestamp-tz` between their WIT records and
//! PostgreSQL's binary forms: days since 2000-01-01 (`i32`), microseconds since
//! midnight (`i64`), microseconds since 2000-01-01 00:00 (`i64`, UTC for
//! `timestamptz`); the extreme values of the integers are `infinity` and
//! `-infinity`. Proleptic Gregorian calendar over PostgreSQL's whole range.

use lattice_provider::WitValue;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(month) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `variant date` of PostgreSQL's day number.
pub fn date(pg_days: i32) -> WitValue {
    match pg_days {
        i32::MAX => WitValue::Variant("positive-infinity".into(), None),
        i32::MIN => WitValue::Variant("negative-infinity".into(), None),
        days => {
            let (y, m, d) = civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
            let ymd = WitValue::Tuple(vec![
                WitValue::S32(y as i32),
                WitValue::U32(m),
                WitValue::U32(d),
            ]);
            WitValue::Variant("ymd".into(), Some(Box::new(ymd)))
        }
    }
}

/// PostgreSQL's day number of a `variant date`.
pub fn pg_date(value: &WitValue) -> Result<i32, String> {
    match value {
        WitValue::Variant(case, None) if case == "positive-infinity" => Ok(i32::MAX),
        WitValue::Variant(case, None) if case == "negative-infinity" => Ok(i32::MIN),
        WitValue::Variant(case, Some(ymd)) if case == "ymd" => match &**ymd {
            WitValue::Tuple(parts) => match parts[..] {
                [WitValue::S32(y), WitValue::U32(m), WitValue::U32(d)] => {
                    let y = i64::from(y);
                    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
                        return Err(format!("{y}-{m:02}-{d:02} is not a date"));
                    }
                    let days = days_from_civil(y, m, d) - PG_EPOCH_DAYS;
                    i32::try_from(days)
                        .ok()
                        .filter(|d| *d != i32::MAX && *d != i32::MIN)
                        .ok_or_else(|| format!("{y}-{m:02}-{d:02} is out of PostgreSQL's range"))
                }
                _ => Err("expected ymd(tuple<s32, u32, u32>)".into()),
            },
            other => Err(format!("expected a ymd tuple, got a {}", other.kind())),
        },
        other => Err(format!("expected a date variant, got {other:?}")),
    }
}

/// `record time` of microseconds since midnight.
pub fn time(micros: i64) -> WitValue {
    let secs = micros.div_euclid(1_000_000);
    let field = |n: i64| WitValue::U32(n as u32);
    WitValue::Record(vec![
        ("hour".into(), field(secs / 3600)),
        ("min".into(), field(secs / 60 % 60)),
        ("sec".into(), field(secs % 60)),
        ("micro".into(), field(micros.rem_euclid(1_000_000))),
    ])
}

/// Microseconds since midnight of a `record time` (24:00:00 is allowed, as
/// PostgreSQL allows it).
pub fn pg_time(value: &WitValue) -> Result<i64, String> {
    let [h, m, s, us] = u32_fields(value, ["hour", "min", "sec", "micro"])?;
    let valid = (h < 24 && m < 60 && s < 60 && us < 1_000_000) || (h == 24 && m + s + us == 0);
    if !valid {
        return Err(format!("{h:02}:{m:02}:{s:02}.{us:06} is not a time of day"));
    }
    Ok(((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + i64::from(us))
}

/// `record timestamp` of microseconds since 2000-01-01 00:00.
pub fn timestamp(micros: i64) -> WitValue {
    let (days, time_of_day) = match micros {
        i64::MAX => (i32::MAX, 0),
        i64::MIN => (i32::MIN, 0),
        m => (
            m.div_euclid(MICROS_PER_DAY) as i32,
            m.rem_euclid(MICROS_PER_DAY),
        ),
    };
    WitValue::Record(vec![
        ("date".into(), date(days)),
        ("time".into(), time(time_of_day)),
    ])
}

/// Microseconds since 2000-01-01 00:00 of a `record timestamp`.
pub fn pg_timestamp(value: &WitValue) -> Result<i64, String> {
    let date = pg_date(field(value, "date")?)?;
    let time = pg_time(field(value, "time")?)?;
    match date {
        i32::MAX => Ok(i64::MAX),
        i32::MIN => Ok(i64::MIN),
        days => i64::from(days)
            .checked_mul(MICROS_PER_DAY)
            .and_then(|m| m.checked_add(time))
            .filter(|m| *m != i64::MAX && *m != i64::MIN)
            .ok_or_else(|| "the timestamp is out of PostgreSQL's range".to_owned()),
    }
}

/// `record timestamp-tz` of UTC microseconds since 2000-01-01 00:00: the UTC
/// time, offset 0 (as wasmCloud's provider gives it).
pub fn timestamp_tz(micros: i64) -> WitValue {
    WitValue::Record(vec![
        ("timestamp".into(), timestamp(micros)),
        (
            "offset".into(),
            WitValue::Variant(
                "western-hemisphere-secs".into(),
                Some(Box::new(WitValue::S32(0))),
            ),
        ),
    ])
}

/// UTC microseconds since 2000-01-01 00:00 of a `record timestamp-tz`: its
/// `timestamp` is the local time at `offset` (east of UTC is ahead).
pub fn pg_timestamp_tz(value: &WitValue) -> Result<i64, String> {
    let local = pg_timestamp(field(value, "timestamp")?)?;
    let east_secs = match field(value, "offset")? {
        WitValue::Variant(case, Some(secs)) => match (case.as_str(), &**secs) {
            ("eastern-hemisphere-secs", WitValue::S32(s)) => i64::from(*s),
            ("western-hemisphere-secs", WitValue::S32(s)) => -i64::from(*s),
            _ => return Err(format!("unknown offset {case}")),
        },
        other => return Err(format!("expected an offset variant, got {other:?}")),
    };
    if local == i64::MAX || local == i64::MIN {
        return Ok(local);
    }
    local
        .checked_sub(east_secs * 1_000_000)
        .ok_or_else(|| "the timestamp is out of PostgreSQL's range".to_owned())
}

fn field<'a>(value: &'a WitValue, name: &str) -> Result<&'a WitValue, String> {
    match value {
        WitValue::Record(fields) => fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("the record has no field '{name}'")),
        other => Err(format!("expected a record, got a {}", other.kind())),
    }
}

fn u32_fields<const N: usize>(value: &WitValue, names: [&str; N]) -> Result<[u32; N], String> {
    let mut out = [0; N];
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = match field(value, name)? {
            WitValue::U32(n) => *n,
            other => return Err(format!("field '{name}' is a {}, not a u32", other.kind())),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_match_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), PG_EPOCH_DAYS);
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(1900, 3, 1) - days_from_civil(1900, 2, 28),
            1
        );
        for days in [-1_000_000, -719_468, -1, 0, 1, 10_957, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn dates_round_trip() {
        for days in [0, -1, 1, 9_000, -800_000, 2_000_000_000, i32::MAX, i32::MIN] {
            assert_eq!(pg_date(&date(days)), Ok(days), "{days}");
        }
        let ymd = |y, m, d| {
            WitValue::Variant(
                "ymd".into(),
                Some(Box::new(WitValue::Tuple(vec![
                    WitValue::S32(y),
                    WitValue::U32(m),
                    WitValue::U32(d),
                ]))),
            )
        };
        assert_eq!(pg_date(&ymd(2000, 1, 2)), Ok(1));
        assert_eq!(
            pg_date(&ymd(2023, 2, 29)),
            Err("2023-02-29 is not a date".into())
        );
        assert!(pg_date(&ymd(2024, 13, 1)).is_err());
    }

    #[test]
    fn times_and_timestamps_round_trip() {
        for micros in [0, 1, 3_600_000_000, MICROS_PER_DAY - 1, MICROS_PER_DAY] {
            assert_eq!(pg_time(&time(micros)), Ok(micros));
        }
        for micros in [
            0,
            -1,
            1,
            1_700_000_000_123_456,
            -60_000_000_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(pg_timestamp(&timestamp(micros)), Ok(micros), "{micros}");
            assert_eq!(pg_timestamp_tz(&timestamp_tz(micros)), Ok(micros));
        }
    }

    #[test]
    fn offsets_shift_to_utc() {
        let at = |case: &str, secs| {
            let WitValue::Record(mut fields) = timestamp_tz(7_200_000_000) else {
                panic!()
            };
            fields[1].1 = WitValue::Variant(case.into(), Some(Box::new(WitValue::S32(secs))));
            WitValue::Record(fields)
        };
        // 02:00 at UTC+1 is 01:00 UTC; 02:00 at UTC-1 is 03:00 UTC.
        assert_eq!(
            pg_timestamp_tz(&at("eastern-hemisphere-secs", 3600)),
            Ok(3_600_000_000)
        );
        assert_eq!(
            pg_timestamp_tz(&at("western-hemisphere-secs", 3600)),
            Ok(10_800_000_000)
        );
    }
}
