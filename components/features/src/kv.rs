//! `/kv/*`: the `wasi:keyvalue@0.2.0-draft` interfaces, on the bucket named by the
//! `bucket` query parameter (default `default`).

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use http_support::{Query, Reply};

pub fn route(operation: &str, query: &Query) -> Reply {
    let name = query.get("bucket").unwrap_or("default");
    let bucket = match store::open(name) {
        Ok(bucket) => bucket,
        Err(e) => return Reply::error(format!("open bucket {name:?}: {e:?}")),
    };
    let result = match operation {
        "get" => get(&bucket, query),
        "set" => set(&bucket, query),
        "del" => delete(&bucket, query),
        "exists" => exists(&bucket, query),
        "incr" => increment(&bucket, query),
        "keys" => keys(&bucket),
        "batch" => get_many(&bucket, query),
        _ => Err(Reply::not_found()),
    };
    result.unwrap_or_else(|reply| reply)
}

fn get(bucket: &store::Bucket, query: &Query) -> Result<Reply, Reply> {
    let key = query.required("key")?;
    match bucket.get(key).map_err(|e| failed("get", key, e))? {
        Some(value) => Ok(Reply::ok(value)),
        None => Ok(Reply::missing()),
    }
}

fn set(bucket: &store::Bucket, query: &Query) -> Result<Reply, Reply> {
    let key = query.required("key")?;
    let value = query.required("value")?;
    bucket
        .set(key, value.as_bytes())
        .map_err(|e| failed("set", key, e))?;
    Ok(Reply::ok("ok\n"))
}

fn delete(bucket: &store::Bucket, query: &Query) -> Result<Reply, Reply> {
    let key = query.required("key")?;
    bucket.delete(key).map_err(|e| failed("delete", key, e))?;
    Ok(Reply::ok("ok\n"))
}

fn exists(bucket: &store::Bucket, query: &Query) -> Result<Reply, Reply> {
    let key = query.required("key")?;
    let exists = bucket.exists(key).map_err(|e| failed("exists", key, e))?;
    Ok(Reply::ok(format!("{exists}\n")))
}

fn increment(bucket: &store::Bucket, query: &Query) -> Result<Reply, Reply> {
    let key = query.required("key")?;
    let by = match query.get("by") {
        None => 1,
        Some(by) => by
            .parse()
            .map_err(|_| Reply::bad_request(format!("`by` must be a u64, got {by:?}")))?,
    };
    let count = atomics::increment(bucket, key, by).map_err(|e| failed("increment", key, e))?;
    Ok(Reply::ok(format!("{count}\n")))
}

/// Every key, following the cursor through all pages, one per line and sorted.
fn keys(bucket: &store::Bucket) -> Result<Reply, Reply> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = bucket
            .list_keys(cursor)
            .map_err(|e| Reply::error(format!("list-keys: {e:?}")))?;
        keys.extend(page.keys);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    keys.sort();
    Ok(Reply::ok(
        keys.iter().map(|k| format!("{k}\n")).collect::<String>(),
    ))
}

/// `keys=a,b` answers `a=1,b=<none>`: values in request order, `<none>` when absent.
fn get_many(bucket: &store::Bucket, query: &Query) -> Result<Reply, Reply> {
    let keys: Vec<String> = query
        .required("keys")?
        .split(',')
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    let values =
        batch::get_many(bucket, &keys).map_err(|e| Reply::error(format!("get-many: {e:?}")))?;
    let answer: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| match values.get(i).cloned().flatten() {
            Some((_, value)) => format!("{key}={}", String::from_utf8_lossy(&value)),
            None => format!("{key}=<none>"),
        })
        .collect();
    Ok(Reply::ok(format!("{}\n", answer.join(","))))
}

fn failed(operation: &str, key: &str, error: store::Error) -> Reply {
    Reply::error(format!("{operation} {key:?}: {error:?}"))
}
