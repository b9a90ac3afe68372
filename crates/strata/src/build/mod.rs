//! `build`: images from a Dockerfile, as docker's legacy builder writes them (one image per
//! instruction, each with its parent, `#(nop)` history), cached by its rules, so that dockerd
//! and strata use each other's builds as cache. Multi-stage builds build only the stages the
//! target needs, as BuildKit does; heredocs work as in BuildKit.
//!
//! - [`lex`]: words, quotes and `$` substitution by BuildKit's lexer rules.
//! - [`parser`]: the Dockerfile's lines as instructions, by BuildKit's parser rules.
//! - [`ignore`]: `.dockerignore`, by moby's patternmatcher rules.
//! - [`context`]: the files COPY reads, resolved inside the context, hashed as dockerd hashes them.
//! - [`args`]: build arguments and their scopes.
//! - [`format`]: dockerd's history texts and cache comparison.
//! - `builder`, `dispatch`, `copy`, `files`: the stages, each instruction's step, COPY and ADD
//!   and what they bring besides the context (heredocs, archives, downloads).
//! - `leftovers`: the step containers of builds that were killed, removed by the next build.

pub mod args;
mod builder;
pub mod context;
mod copy;
mod dispatch;
mod files;
pub mod format;
pub mod ignore;
mod leftovers;
pub mod lex;
pub mod parser;

pub use builder::build;

use crate::container::Network;
use crate::image::Reference;
use context::Context;

/// What to build and how.
#[derive(Debug)]
pub struct BuildOptions {
    /// The Dockerfile's text.
    pub dockerfile: String,
    /// Its name, for messages (`Dockerfile`).
    pub dockerfile_name: String,
    /// The files COPY and ADD read.
    pub context: Context,
    /// Names for the result.
    pub tags: Vec<Reference>,
    /// `--build-arg K=V` (`None`: `K` given with no value).
    pub build_args: Vec<(String, Option<String>)>,
    /// Build up to this stage.
    pub target: Option<String>,
    /// Use no cached step.
    pub no_cache: bool,
    /// `--label K=V`, added to the result.
    pub labels: Vec<(String, String)>,
    /// RUN's network.
    pub network: Network,
    /// The OCI runtime (`runc` if empty).
    pub runtime: String,
    /// Keep each step's container (docker's `--rm=false`); a failed step's too.
    pub keep_containers: bool,
    /// `--pull`: pull every base image named by a FROM line first, from these registries (a
    /// stage or `scratch` is not pulled). `None`: bases must be in the store.
    pub pull: Option<crate::registry::RegistryOptions>,
    /// `SOURCE_DATE_EPOCH`: every time in the images and their layers is this one at most,
    /// and no step names a container, so the same context gives the same image ID.
    pub source_date_epoch: Option<i64>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            dockerfile: String::new(),
            dockerfile_name: "Dockerfile".into(),
            context: Context::none(),
            tags: Vec::new(),
            build_args: Vec::new(),
            target: None,
            no_cache: false,
            labels: Vec::new(),
            network: Network::None,
            runtime: String::new(),
            keep_containers: false,
            pull: None,
            source_date_epoch: None,
        }
    }
}

/// What a build made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image.
    pub id: crate::image::ImageId,
    /// Steps run and steps taken from the cache.
    pub steps_run: usize,
    /// Steps taken from the cache.
    pub cached: usize,
    /// Warnings (empty continuation lines, unused build args).
    pub warnings: Vec<String>,
}
