//! YAML with positions (`prov::yaml::load_str`): any text gives a node or an error with a
//! position; never a panic, and aliases cannot blow memory up.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match prov::yaml::load_str(text, "fuzz.yml") {
        Ok(node) => {
            let _ = node.to_json();
        }
        Err(e) => assert!(e.span.is_some() || !e.msg.is_empty()),
    }
});
