//! INI inventories as Ansible writes them: loaded from a file, as prov loads them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let path = dir.path().join("hosts.ini");
    std::fs::write(&path, data).expect("write");
    if let Ok(inv) = prov::inventory::Inventory::load(&[path.display().to_string()], None) {
        for h in inv.host_names() {
            let _ = inv.host_vars(&h);
        }
        let _ = inv.to_list_json();
    }
});
