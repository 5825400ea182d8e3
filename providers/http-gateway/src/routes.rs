//! Which link a request goes to.

use lattice_provider::ProviderLink;

/// The most specific route for `host` and `path`: among links from the gateway
/// (`to_provider: false`), those whose `host` (if set) equals the request's and
/// whose `path_prefix` (default `/`) starts the path; a `host` match first, then the
/// longest prefix.
pub fn pick<'a>(
    links: &'a [ProviderLink],
    host: Option<&str>,
    path: &str,
) -> Option<&'a ProviderLink> {
    links
        .iter()
        .filter(|l| !l.to_provider)
        .filter_map(|l| {
            let want_host = l.config.get("host");
            if let Some(h) = want_host {
                if Some(h.as_str()) != host {
                    return None;
                }
            }
            let prefix = l
                .config
                .get("path_prefix")
                .map(String::as_str)
                .unwrap_or("/");
            path.starts_with(prefix)
                .then_some(((want_host.is_some(), prefix.len()), l))
        })
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(component: &str, config: &[(&str, &str)]) -> ProviderLink {
        ProviderLink {
            component: component.into(),
            to_provider: false,
            name: "default".into(),
            namespace: "wasi".into(),
            package: "http".into(),
            interfaces: vec!["incoming-handler".into()],
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            secrets: Default::default(),
        }
    }

    #[test]
    fn host_then_longest_prefix_wins() {
        let links = [
            link("any", &[]),
            link("api", &[("path_prefix", "/api")]),
            link("shop", &[("host", "shop.example")]),
            link(
                "shop-api",
                &[("host", "shop.example"), ("path_prefix", "/api")],
            ),
        ];
        let at = |host, path| pick(&links, host, path).map(|l| l.component.as_str());
        assert_eq!(at(None, "/x"), Some("any"));
        assert_eq!(at(None, "/api/v1"), Some("api"));
        assert_eq!(at(Some("shop.example"), "/x"), Some("shop"));
        assert_eq!(at(Some("shop.example"), "/api/x"), Some("shop-api"));
        assert_eq!(at(Some("other.example"), "/api"), Some("api"));
        assert_eq!(pick(&links[1..2], None, "/x"), None);
    }
}
