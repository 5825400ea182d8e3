//! The cache's line protocol, without I/O. A client sends one command per line (`\n`,
//! optionally `\r\n`, ends a line) and gets one reply line per command, in order:
//!
//! | command               | reply |
//! |-----------------------|-------|
//! | `SET <key> <value>`   | `OK` (the value is everything after the key's space, spaces included, possibly empty) |
//! | `GET <key>`           | `VALUE <value>`, or `NONE` when the key is not set |
//! | `DEL <key>`           | `DELETED`, or `NONE` when the key was not set |
//! | `COUNT`               | `COUNT <number of keys>` |
//! | anything else         | `ERR <message>` |
//!
//! Command words are upper case and separated from their arguments by one space; keys
//! are non-empty and contain no space. Bytes that are not UTF-8 are replaced with
//! U+FFFD. A last line without its `\n` when the client closes is not run.

use std::collections::BTreeMap;

use service_support::Service;

/// The store, shared by every connection.
#[derive(Default)]
pub struct Cache {
    entries: BTreeMap<String, String>,
}

/// Per connection: the bytes of a line whose `\n` has not arrived yet.
#[derive(Default)]
pub struct PartialLine(Vec<u8>);

impl Service for Cache {
    type Connection = PartialLine;

    fn received(&mut self, partial: &mut PartialLine, data: &[u8], reply: &mut Vec<u8>) {
        partial.0.extend_from_slice(data);
        let mut start = 0;
        while let Some(end) = partial.0[start..].iter().position(|&b| b == b'\n') {
            let line = &partial.0[start..start + end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            reply.extend_from_slice(self.execute(&String::from_utf8_lossy(line)).as_bytes());
            reply.push(b'\n');
            start += end + 1;
        }
        partial.0.drain(..start);
    }
}

impl Cache {
    /// Runs one command line (without its `\n`) and returns the reply line (without
    /// its `\n`).
    pub fn execute(&mut self, line: &str) -> String {
        let (command, arguments) = match line.split_once(' ') {
            Some((command, arguments)) => (command, Some(arguments)),
            None => (line, None),
        };
        match (command, arguments) {
            ("SET", Some(arguments)) => match arguments.split_once(' ') {
                Some((key, value)) if !key.is_empty() => {
                    self.entries.insert(key.to_string(), value.to_string());
                    "OK".to_string()
                }
                _ => usage("SET <key> <value>"),
            },
            ("GET", Some(key)) if is_key(key) => match self.entries.get(key) {
                Some(value) => format!("VALUE {value}"),
                None => "NONE".to_string(),
            },
            ("DEL", Some(key)) if is_key(key) => match self.entries.remove(key) {
                Some(_) => "DELETED".to_string(),
                None => "NONE".to_string(),
            },
            ("COUNT", None) => format!("COUNT {}", self.entries.len()),
            ("SET", _) => usage("SET <key> <value>"),
            ("GET", _) => usage("GET <key>"),
            ("DEL", _) => usage("DEL <key>"),
            ("COUNT", _) => usage("COUNT"),
            ("", None) => "ERR empty command; use SET, GET, DEL or COUNT".to_string(),
            (other, _) => format!("ERR unknown command '{other}'; use SET, GET, DEL or COUNT"),
        }
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty() && !key.contains(' ')
}

fn usage(form: &str) -> String {
    format!("ERR usage: {form}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_replies() {
        let mut cache = Cache::default();
        let table = [
            ("COUNT", "COUNT 0"),
            ("GET a", "NONE"),
            ("SET a 1", "OK"),
            ("SET b two words ", "OK"),
            ("GET b", "VALUE two words "),
            ("SET a", "ERR usage: SET <key> <value>"),
            ("SET c ", "OK"),
            ("GET c", "VALUE "),
            ("SET  x", "ERR usage: SET <key> <value>"),
            ("COUNT", "COUNT 3"),
            ("DEL a", "DELETED"),
            ("DEL a", "NONE"),
            ("GET a", "NONE"),
            ("GET a b", "ERR usage: GET <key>"),
            ("GET", "ERR usage: GET <key>"),
            ("DEL", "ERR usage: DEL <key>"),
            ("COUNT now", "ERR usage: COUNT"),
            (
                "get b",
                "ERR unknown command 'get'; use SET, GET, DEL or COUNT",
            ),
            ("", "ERR empty command; use SET, GET, DEL or COUNT"),
            ("COUNT", "COUNT 2"),
        ];
        for (command, expected) in table {
            assert_eq!(cache.execute(command), expected, "command {command:?}");
        }
    }

    #[test]
    fn replies_per_complete_line_across_reads() {
        let mut cache = Cache::default();
        let mut partial = PartialLine::default();
        let mut reply = Vec::new();
        cache.received(&mut partial, b"SET k v\r\nGE", &mut reply);
        assert_eq!(reply, b"OK\n");
        cache.received(&mut partial, b"T k\nCOUNT\nDEL", &mut reply);
        assert_eq!(reply, b"OK\nVALUE v\nCOUNT 1\n");
        assert_eq!(partial.0, b"DEL");
    }
}
