#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keycard_fuzz::native_event(data));
