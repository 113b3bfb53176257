//! Two stacks over the simulated link, driven by a program of application
//! calls, clock advances, link impairments and injected packets
//! (`utcp::fuzzing::two_stacks`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| utcp::fuzzing::two_stacks(data));
