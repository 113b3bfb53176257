//! State-transition tests for the TCB: a segment in, the state and the segment out.

use super::*;
