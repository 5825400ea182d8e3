//! Typed settings from `wasi:config/store@0.2.0-draft`, which the host gives services
//! from the manifest's `config`.

use std::fmt::Display;
use std::str::FromStr;

mod bindings {
    #![allow(missing_docs, clippy::all)]
    wit_bindgen::generate!({
        path: "../../wit/deps/config",
        world: "wasi:config/imports",
    });
}

use bindings::wasi::config::store;

/// The value of config key `key` parsed as `T`, or `default` when the key is not set.
///
/// A service cannot run on a setting it does not understand, so a value that does not
/// parse, or a config store that fails, ends the process with exit code 1 after saying
/// which key was wrong on stderr.
pub fn setting<T>(key: &str, default: T) -> T
where
    T: FromStr + Display,
    T::Err: Display,
{
    match store::get(key) {
        Ok(None) => default,
        Ok(Some(raw)) => parse(key, &raw).unwrap_or_else(|message| exit(&message)),
        Err(e) => exit(&format!("cannot read config key `{key}`: {e:?}")),
    }
}

/// `raw` parsed as `T`, or a message naming the key, the value and the problem.
pub fn parse<T>(key: &str, raw: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    raw.trim()
        .parse()
        .map_err(|e| format!("config key `{key}` = {raw:?} is not valid ({e}); fix the value in the manifest's config"))
}

fn exit(message: &str) -> ! {
    eprintln!("{message}");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trimmed_values() {
        assert_eq!(parse::<u16>("port", " 7070\n"), Ok(7070));
    }

    #[test]
    fn names_the_key_and_value_when_a_value_is_bad() {
        let message = parse::<u16>("port", "70000").unwrap_err();
        assert!(
            message.starts_with("config key `port` = \"70000\" is not valid ("),
            "{message}"
        );
    }
}
