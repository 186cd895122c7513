//! `k=v` module arguments and free-form command lines, split as Ansible splits them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for command_line in [false, true] {
        let _ = prov::playbook::kv::parse(text, command_line);
    }
});
