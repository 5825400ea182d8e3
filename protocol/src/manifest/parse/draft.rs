//! What the parser knows of a component and its links while it reads them: plain
//! data shared by [`super::component`], [`super::traits`] and [`super::links`],
//! importing none of them.

use super::walk::Path;
use crate::manifest::{
    Builtin, Component, ComponentKind, Config, ConfigLayer, Image, Link, Restart, Scaler,
    SecretRef, Warm,
};
use std::collections::BTreeMap;

/// A component as far as it could be read; turned into a [`Component`] only when the
/// whole manifest is free of problems.
#[derive(Debug)]
pub(super) struct Draft {
    pub path: Path,
    /// The name as written, even if it breaks the naming rule, so that links to it
    /// still resolve.
    pub name: Option<String>,
    pub kind: Option<ComponentKind>,
    pub image: Option<Image>,
    pub config: Config,
    pub config_layers: Vec<ConfigLayer>,
    pub secrets: Vec<SecretRef>,
    pub scaler: Option<Scaler>,
    pub links: Vec<LinkDraft>,
    pub restart: Option<Restart>,
    pub warm: Option<Warm>,
}

impl Draft {
    pub fn builtin(&self) -> Option<Builtin> {
        match self.image {
            Some(Image::Builtin(b)) => Some(b),
            _ => None,
        }
    }

    pub fn build(self) -> Option<Component> {
        Some(Component {
            name: self.name?,
            kind: self.kind?,
            image: self.image?,
            config: self.config,
            config_layers: self.config_layers,
            secrets: self.secrets,
            scaler: self.scaler,
            links: self.links.into_iter().map(|l| l.link).collect(),
            restart: self.restart,
            warm: self.warm,
        })
    }
}

/// A parsed link and where it was written.
#[derive(Debug)]
pub(super) struct LinkDraft {
    pub link: Link,
    /// The link trait's `properties`.
    pub path: Path,
    /// Where the target's name was written: `properties.target` or `.target.name`.
    pub target_path: Path,
    /// Where each key of the source config was set.
    pub source_paths: BTreeMap<String, Path>,
    /// Where each key of the target config was set.
    pub target_paths: BTreeMap<String, Path>,
}
