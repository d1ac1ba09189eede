//! The configuration file (`ipcamd::config::Config::parse`, what `Config::load` does with
//! the file's text): TOML decoding into the sections, then the checks. Whatever the text,
//! the answer is a configuration or an error naming the problem (a line, a key, a
//! section or a camera), never a panic; and every method the server calls on a loaded
//! configuration (the store, limits, metrics, WebRTC, auth and TLS options, the listen
//! addresses, each camera's backchannel, publish role and upstream URL) answers without
//! a panic too.
#![no_main]

use ipcamd::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::parse(text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.trim().is_empty(), "an empty error for {text:?}");
            return;
        }
    };
    let _ = config.store.options(&config.cameras);
    let _ = config.limits.limits();
    let _ = config.metrics.options();
    let _ = config.webrtc.options();
    let _ = config.anonymous_role();
    let _ = config.users_file();
    let _ = config.auth_options();
    let _ = config.tls_options();
    let _ = config.http_listen();
    for c in &config.cameras {
        let _ = c.backchannel();
        let _ = (c.is_proxied(), c.is_publish());
        let _ = c.publish_role();
        if c.is_proxied() {
            let _ = c.upstream_url();
        }
    }
});
