mod common;
use common::*;
use std::time::Duration;

#[test]
fn exit_code_passes_through() {
    for mode in MODES {
        let mut r = Reaper::start(
            mode,
            reaper_cmd(mode, ["sh", "-c", "exit 7"]).stdin(std::process::Stdio::null()),
        );
        assert_eq!(r.code(Duration::from_secs(10)), 7, "{mode:?}");
    }
}
