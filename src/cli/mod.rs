//! Parts of the `utcp` command line that are more than argument parsing.

#[cfg(feature = "forward")]
pub mod forward;
pub mod plot;
pub mod polled;
pub mod progress;
pub mod ss;
