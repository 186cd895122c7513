//! Templates rendered as at run time (fuel, output and size limits apply): a result or an
//! error, never a panic, an abort or a stack overflow.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fuzz_target!(|data: &[u8]| {
    static TEMPLAR: OnceLock<prov::template::Templar> = OnceLock::new();
    let templar = TEMPLAR.get_or_init(|| {
        let vars = serde_json::json!({
            "x": "5", "n": 3, "items": ["a", "b", "c"], "m": {"k": "v"},
            "chain": "{{ x }}-{{ n }}", "loop_a": "{{ loop_b }}", "loop_b": "{{ loop_a }}"
        });
        let serde_json::Value::Object(m) = vars else { unreachable!() };
        prov::template::Vars::new()
            .push_data(Arc::new(m))
            .into_templar()
    });
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = templar.render_str(text);
    let _ = templar.eval_bool(text);
});
