//! The model: hyperparameters, weight handles and the transformer forward pass.

mod config;
mod forward;
mod weights;

pub use config::{Config, SUPPORTED_ARCHITECTURES};
pub use forward::{ModelCore, Transformer, WantLogits};
pub use weights::{LayerWeights, QWeight, Weights};
mod loaded;

pub use loaded::{BackendKind, Model, ModelOptions, Progress, MAX_THREADS};
