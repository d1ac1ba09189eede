//! The library side of the `ipcamd` binary: the configuration file ([`config`]), which
//! the binary reads at start and the `config` fuzz target (fuzz/) feeds arbitrary text.
//! Everything else of the binary (the command line, wiring the server together) stays in
//! `main.rs`.

pub mod config;
