//! The model: hyperparameters, weight handles and the transformer forward pass.

mod config;
mod forward;
mod weights;

pub use config::{Config, SUPPORTED_ARCHITECTURES};
pub use forward::{ModelCore, Transformer, WantLogits};
pub use weights::{LayerWeights, QWeight, Weights};
mod loaded;
mod options;

pub use loaded::Model;
pub use options::{BackendKind, ModelOptions, Progress, MAX_THREADS};
