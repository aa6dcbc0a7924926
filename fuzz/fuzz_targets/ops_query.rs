#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keycard_fuzz::ops_query(data));
