#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rsp_tests::fuzz::saml_post(data));
