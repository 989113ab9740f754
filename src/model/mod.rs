//! The model: hyperparameters, weight handles and the transformer forward pass.

pub mod arch;
mod config;
mod forward;
mod host_memory;
mod pooling;
pub mod prompt_cache;
mod weights;

pub use arch::{Arch, RopeMode};
pub use config::{Config, SwaConfig};
pub use forward::{ModelCore, Transformer, WantLogits};
pub use pooling::{normalize, Pooling};
pub use prompt_cache::PromptCache;
pub use weights::{LayerWeights, Proj, QWeight, Weights};
mod loaded;
mod options;

pub use loaded::Model;
pub use options::{BackendKind, ModelOptions, Progress, MAX_THREADS};
