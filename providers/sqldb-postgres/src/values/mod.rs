//! `pg-value`s in and out: parameters from WIT values to PostgreSQL's binary
//! forms ([`params`]), result rows from PostgreSQL to typed WIT values ([`rows`]),
//! and the conversions they share.

mod datetime;
mod floats;
mod numeric;
pub mod params;
pub mod read;
pub mod rows;
