//! The `talk` tool on its own, until `ipcamd talk` wires the same arguments:
//! `cargo run -p ipcamd-client --example talk -- rtsp://user:pass@camera/stream -i tone:440`.

use std::process::ExitCode;

use clap::Parser;
use ipcamd_client::talk::{run, TalkArgs};

#[derive(Parser)]
#[command(name = "talk", about = "Send audio to an ONVIF audio backchannel")]
struct Cli {
    #[command(flatten)]
    args: TalkArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse().args).await {
        Ok(r) => {
            eprintln!(
                "talk: done: {} (PT {}), {} packets, {} bytes, {:.2} s",
                r.codec, r.payload_type, r.packets, r.bytes, r.seconds
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("talk: {e}");
            ExitCode::FAILURE
        }
    }
}
