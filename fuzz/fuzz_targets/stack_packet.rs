//! One stack with live connections in many states, fed packets, clock jumps
//! and application calls (`utcp::fuzzing::stack_packet`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| utcp::fuzzing::stack_packet(data));
