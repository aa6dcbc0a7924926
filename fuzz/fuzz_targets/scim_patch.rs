#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keycard_fuzz::scim_patch(data));
