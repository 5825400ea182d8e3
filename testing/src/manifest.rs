//! Test manifests, built instead of written out: the `apiVersion` / `kind` /
//! `metadata` header, the components, capabilities and services, their config and
//! their links, rendered as the YAML a person would write and read back by the real
//! parser, so every test that deploys something goes through it too.
//!
//! ```no_run
//! use lattice_testing::manifest::{App, Component, Link};
//!
//! let manifest = App::new("counter")
//!     .with(Component::wasm("counter", "counter").link(Link::to("kv", "wasi:keyvalue", &["store"])))
//!     .with(Component::capability("kv", "bundled://keyvalue-redis"))
//!     .http_server("counter", 8080)
//!     .manifest();
//! let spec = lattice_testing::manifest::placed(manifest, &["counter"], 4);
//! ```

use crate::components::component;
use lattice_protocol::manifest::{parse, ComponentKind, Manifest};
use lattice_protocol::messages::WorkloadSpec;
use std::fmt::Write;

/// An application: a name, a version and its components in order.
#[derive(Debug, Clone)]
pub struct App {
    name: String,
    version: String,
    components: Vec<Component>,
}

/// One entry of `spec.components`.
#[derive(Debug, Clone)]
pub struct Component {
    name: String,
    kind: &'static str,
    image: String,
    config: Vec<Config>,
    restart: Vec<(String, String)>,
    /// `properties.warm`: `pool`, `max_invocations` and `idle` (as written).
    warm: Option<(u32, u32, String)>,
    instances: Option<u32>,
    /// `daemonscaler` rather than `spreadscaler`: `instances` on every host.
    daemon: bool,
    links: Vec<Link>,
}

/// A `link` trait: from the component that carries it to `target`.
#[derive(Debug, Clone)]
pub struct Link {
    target: String,
    target_config: Vec<Config>,
    name: Option<String>,
    namespace: String,
    package: String,
    interfaces: Vec<String>,
    source_config: Vec<Config>,
}

/// A named `{name, properties}` config block.
#[derive(Debug, Clone)]
struct Config {
    name: String,
    values: Vec<(String, String)>,
}

impl Config {
    fn new(name: &str, values: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl App {
    /// App `name`, version `v1`, no components yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: "v1".to_owned(),
            components: Vec::new(),
        }
    }

    /// Another `metadata.annotations.version`.
    pub fn version(mut self, version: &str) -> Self {
        self.version = version.to_owned();
        self
    }

    /// Add `component` after those already there.
    pub fn with(mut self, component: Component) -> Self {
        self.components.push(component);
        self
    }

    /// Add the `httpserver` capability (`builtin://http-server`) serving `target`'s
    /// `wasi:http/incoming-handler` on `127.0.0.1:port`.
    pub fn http_server(self, target: &str, port: u16) -> Self {
        self.with(
            Component::capability("httpserver", "builtin://http-server").link(
                Link::to(target, "wasi:http", &["incoming-handler"])
                    .source_config("listen", &[("address", &format!("127.0.0.1:{port}"))]),
            ),
        )
    }

    /// The manifest as YAML text.
    pub fn yaml(&self) -> String {
        let mut out = format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: {}\n  annotations:\n    version: {}\nspec:\n  components:\n",
            self.name, self.version
        );
        for c in &self.components {
            c.render(&mut out);
        }
        out
    }

    /// The manifest, parsed; a panic showing the text if the parser refuses it.
    pub fn manifest(&self) -> Manifest {
        let yaml = self.yaml();
        parse(&yaml).unwrap_or_else(|e| panic!("test manifest is invalid: {e}\n{yaml}"))
    }
}

impl Component {
    /// A Wasm component running the guest `package` built from `components/`.
    pub fn wasm(name: &str, package: &str) -> Self {
        Self::image(name, &format!("file://{}", component(package).display()))
    }

    /// A Wasm component with any `image` (`file://...`).
    pub fn image(name: &str, image: &str) -> Self {
        Self::new(name, "component", image)
    }

    /// A capability: `builtin://NAME` or a provider's `file://...`.
    pub fn capability(name: &str, image: &str) -> Self {
        Self::new(name, "capability", image)
    }

    /// A service running the guest `package` built from `components/`.
    pub fn service(name: &str, package: &str) -> Self {
        let image = format!("file://{}", component(package).display());
        Self::new(name, "service", &image)
    }

    fn new(name: &str, kind: &'static str, image: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            image: image.to_owned(),
            config: Vec::new(),
            restart: Vec::new(),
            warm: None,
            instances: None,
            daemon: false,
            links: Vec::new(),
        }
    }

    /// A `properties.config` block `name` with `values` (each written as a string).
    pub fn config(mut self, name: &str, values: &[(&str, &str)]) -> Self {
        self.config.push(Config::new(name, values));
        self
    }

    /// A service's `properties.restart` (`max_restarts`, `backoff`, `max_backoff`),
    /// each value written as given.
    pub fn restart(mut self, values: &[(&str, &str)]) -> Self {
        self.restart = values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// A component's `properties.warm`: keep `pool` idle instances, each serving
    /// at most `max_invocations`.
    pub fn warm(mut self, pool: u32, max_invocations: u32) -> Self {
        self.warm = Some((pool, max_invocations, "60s".into()));
        self
    }

    /// [`Component::warm`] with instances dropped after `idle` unused (`200ms`).
    pub fn warm_for(mut self, pool: u32, max_invocations: u32, idle: &str) -> Self {
        self.warm = Some((pool, max_invocations, idle.into()));
        self
    }

    /// A `spreadscaler` trait with `instances`.
    pub fn instances(mut self, instances: u32) -> Self {
        self.instances = Some(instances);
        self
    }

    /// A `daemonscaler` trait: `instances` on every host.
    pub fn on_every_host(mut self, instances: u32) -> Self {
        self.instances = Some(instances);
        self.daemon = true;
        self
    }

    /// A `link` trait.
    pub fn link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    fn render(&self, out: &mut String) {
        let _ = write!(
            out,
            "    - name: {}\n      type: {}\n      properties:\n        image: {}\n",
            self.name, self.kind, self.image
        );
        if !self.config.is_empty() {
            out.push_str("        config:\n");
            render_configs(out, &self.config, 10);
        }
        if !self.restart.is_empty() {
            out.push_str("        restart:\n");
            for (k, v) in &self.restart {
                let _ = writeln!(out, "          {k}: {v}");
            }
        }
        if let Some((pool, max, idle)) = &self.warm {
            let _ = writeln!(
                out,
                "        warm: {{pool: {pool}, max_invocations: {max}, idle: {idle}}}"
            );
        }
        if self.instances.is_none() && self.links.is_empty() {
            return;
        }
        out.push_str("      traits:\n");
        if let Some(n) = self.instances {
            let scaler = if self.daemon {
                "daemonscaler"
            } else {
                "spreadscaler"
            };
            let _ = write!(
                out,
                "        - type: {scaler}\n          properties:\n            instances: {n}\n"
            );
        }
        for link in &self.links {
            link.render(out);
        }
    }
}

impl Link {
    /// A link to `target` carrying `package` (`namespace:package`) and its
    /// `interfaces`.
    pub fn to(target: &str, package: &str, interfaces: &[&str]) -> Self {
        let (namespace, package) = package
            .split_once(':')
            .unwrap_or_else(|| panic!("{package}: expected namespace:package"));
        Self {
            target: target.to_owned(),
            target_config: Vec::new(),
            name: None,
            namespace: namespace.to_owned(),
            package: package.to_owned(),
            interfaces: interfaces.iter().map(|i| i.to_string()).collect(),
            source_config: Vec::new(),
        }
    }

    /// The link's `name` (when not `default`).
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// A config block `name` on the target side (`target.config`).
    pub fn target_config(mut self, name: &str, values: &[(&str, &str)]) -> Self {
        self.target_config.push(Config::new(name, values));
        self
    }

    /// A config block `name` on the source side (`source.config`).
    pub fn source_config(mut self, name: &str, values: &[(&str, &str)]) -> Self {
        self.source_config.push(Config::new(name, values));
        self
    }

    fn render(&self, out: &mut String) {
        out.push_str("        - type: link\n          properties:\n");
        if self.target_config.is_empty() {
            let _ = writeln!(out, "            target: {}", self.target);
        } else {
            let _ = write!(
                out,
                "            target:\n              name: {}\n              config:\n",
                self.target
            );
            render_configs(out, &self.target_config, 16);
        }
        if let Some(name) = &self.name {
            let _ = writeln!(out, "            name: {name}");
        }
        let _ = write!(
            out,
            "            namespace: {}\n            package: {}\n            interfaces: [{}]\n",
            self.namespace,
            self.package,
            self.interfaces.join(", ")
        );
        if !self.source_config.is_empty() {
            out.push_str("            source:\n              config:\n");
            render_configs(out, &self.source_config, 16);
        }
    }
}

/// Config blocks as a YAML list indented by `indent` spaces.
fn render_configs(out: &mut String, configs: &[Config], indent: usize) {
    let pad = " ".repeat(indent);
    for c in configs {
        let _ = write!(out, "{pad}- name: {}\n{pad}  properties:\n", c.name);
        for (k, v) in &c.values {
            let _ = writeln!(out, "{pad}    {k}: {}", quote(v));
        }
    }
}

/// `text` as a double-quoted YAML scalar.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `manifest` with each of `components` placed with `instances`.
pub fn placed(manifest: Manifest, components: &[&str], instances: u32) -> WorkloadSpec {
    WorkloadSpec {
        manifest,
        placements: components
            .iter()
            .map(|c| (c.to_string(), instances))
            .collect(),
        secrets: None,
    }
}

/// Every Wasm component of `manifest` placed with its scaler's instances (one
/// without a scaler).
pub fn spec(manifest: Manifest) -> WorkloadSpec {
    let placements = manifest
        .components
        .iter()
        .filter(|c| c.kind == ComponentKind::Component)
        .map(|c| {
            (
                c.name.clone(),
                c.scaler.as_ref().map_or(1, |s| s.instances()),
            )
        })
        .collect();
    WorkloadSpec {
        manifest,
        placements,
        secrets: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_yaml_a_person_would_write() {
        let yaml = App::new("shop")
            .with(
                Component::image("web", "file:///web.wasm")
                    .config("settings", &[("greeting", "hi")])
                    .instances(2)
                    .link(
                        Link::to("kv", "wasi:keyvalue", &["store", "atomics"])
                            .named("other")
                            .target_config("redis", &[("url", "redis://x")]),
                    ),
            )
            .with(Component::capability("kv", "bundled://keyvalue-redis"))
            .http_server("web", 8080)
            .yaml();
        let expected = r#"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  annotations:
    version: v1
spec:
  components:
    - name: web
      type: component
      properties:
        image: file:///web.wasm
        config:
          - name: settings
            properties:
              greeting: "hi"
      traits:
        - type: spreadscaler
          properties:
            instances: 2
        - type: link
          properties:
            target:
              name: kv
              config:
                - name: redis
                  properties:
                    url: "redis://x"
            name: other
            namespace: wasi
            package: keyvalue
            interfaces: [store, atomics]
    - name: kv
      type: capability
      properties:
        image: bundled://keyvalue-redis
    - name: httpserver
      type: capability
      properties:
        image: builtin://http-server
      traits:
        - type: link
          properties:
            target: web
            namespace: wasi
            package: http
            interfaces: [incoming-handler]
            source:
              config:
                - name: listen
                  properties:
                    address: "127.0.0.1:8080"
"#;
        assert_eq!(yaml, expected);
        let manifest = parse(&yaml).unwrap();
        assert_eq!(spec(manifest).placements, [("web".to_string(), 2)].into());
    }
}
