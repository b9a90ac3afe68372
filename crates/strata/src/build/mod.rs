//! `build`: images from a Dockerfile, as docker's legacy builder writes them (one image per
//! instruction, each with its parent), cached by its rules.
//!
//! - [`lex`]: words, quotes and `$` substitution by BuildKit's lexer rules.
//! - [`parser`]: the Dockerfile's lines as instructions, by BuildKit's parser rules.
//! - [`ignore`]: `.dockerignore`, by moby's patternmatcher rules.
//! - [`context`]: the files COPY reads, resolved inside the context, hashed as dockerd hashes them.
//! - [`paths`]: Go's `path.Clean`.

pub mod args;
pub mod context;
pub mod format;
pub mod ignore;
pub mod lex;
pub mod parser;
pub mod paths;
