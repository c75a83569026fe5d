#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fedproxy_fuzz_targets::conn::mid_stream(data));
