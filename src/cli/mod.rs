//! Parts of the `utcp` command line that are more than argument parsing.

pub mod polled;
