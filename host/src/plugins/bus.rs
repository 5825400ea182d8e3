//! `wasmcloud:bus/lattice` versions 1.0.0 and 2.0.0: `set-link-name` picks, for the
//! rest of the invocation, which named link the listed interfaces resolve through.

use crate::capability::Capability;
use crate::ctx::Ctx;
use bindings::wasmcloud::{bus1_0_0, bus2_0_0};
use wasmtime::component::{HasSelf, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "lattice:host/bus-imports",
        imports: { default: async | trappable },
        with: {
            "wasmcloud:bus/lattice@1.0.0.call-target-interface": crate::plugins::bus::CallTarget,
            "wasmcloud:bus/lattice@2.0.0.call-target-interface": crate::plugins::bus::CallTarget,
        },
    });
}

/// The capability (no settings: it works on the links the component has).
pub struct Bus;

impl Capability for Bus {
    fn name(&self) -> &'static str {
        "bus"
    }

    fn add_to_linker(&self, linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
        bus1_0_0::lattice::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)?;
        bus2_0_0::lattice::add_to_linker::<Ctx, HasSelf<Ctx>>(linker, |c| c)
    }
}

/// The host side of a `call-target-interface` resource.
#[derive(Debug, Clone)]
pub struct CallTarget {
    namespace: String,
    package: String,
    interface: String,
}

impl CallTarget {
    fn key(&self) -> String {
        format!("{}:{}/{}", self.namespace, self.package, self.interface)
    }
}

impl Ctx {
    fn new_call_target(
        &mut self,
        namespace: String,
        package: String,
        interface: String,
    ) -> wasmtime::Result<Resource<CallTarget>> {
        Ok(self.table.push(CallTarget {
            namespace,
            package,
            interface,
        })?)
    }

    /// Point every listed interface at link `name`. Unknown names are accepted here
    /// and reported when an interface is used, as wasmCloud does.
    fn set_link_name_for(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<()> {
        for handle in interfaces {
            let target = self.table.delete(handle)?;
            self.link_names.insert(target.key(), name.clone());
        }
        Ok(())
    }
}

impl bus1_0_0::lattice::Host for Ctx {
    async fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<()> {
        self.set_link_name_for(name, interfaces)
    }
}

impl bus1_0_0::lattice::HostCallTargetInterface for Ctx {
    async fn new(
        &mut self,
        namespace: String,
        package: String,
        interface: String,
    ) -> wasmtime::Result<Resource<CallTarget>> {
        self.new_call_target(namespace, package, interface)
    }

    async fn drop(&mut self, rep: Resource<CallTarget>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}

impl bus2_0_0::lattice::Host for Ctx {
    /// As wasmCloud's host: an interface with no link of that name is an error,
    /// and then no interface is switched.
    async fn set_link_name(
        &mut self,
        name: String,
        interfaces: Vec<Resource<CallTarget>>,
    ) -> wasmtime::Result<Result<(), String>> {
        let mut missing = None;
        for handle in &interfaces {
            let key = self.table.get(handle)?.key();
            if !self.env.link_names.contains(&(key.clone(), name.clone())) {
                missing = Some(key);
                break;
            }
        }
        if let Some(key) = missing {
            for handle in interfaces {
                self.table.delete(handle)?;
            }
            return Ok(Err(format!(
                "interface `{key}` does not have an existing link with name `{name}`"
            )));
        }
        self.set_link_name_for(name, interfaces)?;
        Ok(Ok(()))
    }
}

impl bus2_0_0::lattice::HostCallTargetInterface for Ctx {
    async fn new(
        &mut self,
        namespace: String,
        package: String,
        interface: String,
    ) -> wasmtime::Result<Resource<CallTarget>> {
        self.new_call_target(namespace, package, interface)
    }

    async fn drop(&mut self, rep: Resource<CallTarget>) -> wasmtime::Result<()> {
        self.table.delete(rep)?;
        Ok(())
    }
}
