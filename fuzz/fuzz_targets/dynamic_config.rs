//! The dynamic configuration loader (YAML -> merged config -> compiled table): any file loads or
//! fails with problems (no panic, no runaway memory or time from chains or nesting), and a
//! table that loads routes like a linear scan of its routers.
#![no_main]

use bloud_proxy::RouteTable;
use bloud_proxy_fuzz::check_routing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RouteTable::from_yaml(&[("fuzz.yml", text)]) {
        Ok(table) => check_routing(&table, text),
        // What `check` prints and a reload logs: every problem renders with file and line.
        Err(problems) => drop(problems.to_string()),
    }
});
