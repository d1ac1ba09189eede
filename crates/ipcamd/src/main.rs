//! ipcamd: an ONVIF IP-camera and recorder server in one binary.
//!
//! `ipcamd` (or `ipcamd serve`) starts the server; with no configuration file it serves
//! one synthetic camera at rtsp://HOST:8554/cam1.

mod discover;
mod encoder;
mod users;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipcamd_audio::g726::G726Packing;
use ipcamd_media::file::FileSource;
use ipcamd_media::pacer::{LiveSource, SourceFactory};
use ipcamd_media::synthetic::{SyntheticCamera, SyntheticConfig, SyntheticVideo};
use ipcamd_media::Source;
use ipcamd_proto::rtsp::server::PublishView;
use ipcamd_server::publish::PublishPoint;
use ipcamd_server::talk::{AudioOut, BackchannelConfig, OutputTarget, TalkPolicy};
use ipcamd_server::upstream::relay::Relay;
use ipcamd_server::upstream::{OnvifSource, UpstreamConfig, UpstreamTransport};
use ipcamd_server::{Camera, Server, ServerOptions};
use std::sync::Arc;

use ipcamd::config::{CameraConfig, Config, SourceKind, VideoCodec};

#[derive(Parser)]
#[command(name = "ipcamd", version, about = "ONVIF IP-camera and recorder server (RTSP live streaming)", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (the default when no command is given).
    ///
    /// Without --config it serves one synthetic camera (moving picture with the UTC time,
    /// H.264 640x360 25 fps, PCMU audio with a beep every second) at
    /// rtsp://HOST:8554/cam1, and RTSP-over-HTTP tunnelling on port 8080.
    Serve(ServeArgs),
    /// Send audio to an ONVIF backchannel (this server's or any camera's).
    ///
    /// DESCRIBE with `Require: www.onvif.org/ver20/backchannel`, SETUP of the a=sendonly
    /// section only, PLAY, then RTP in real time, then TEARDOWN. Input: a generated tone
    /// (default), a WAV file, raw s16le on stdin ("-"), or for AAC/Opus a pre-encoded ADTS
    /// or Ogg Opus file. Credentials go in the URL: rtsp://user:pass@host/path.
    Talk(ipcamd_client::talk::TalkArgs),
    /// Play a recording from an ONVIF replay URL (Profile G: ours at
    /// rtsp://HOST:8554/replay/NAME, or any device's GetReplayUri). Prints what the server
    /// applied and a summary; --verbose prints each access unit's capture time and C/E/D/T
    /// flags; --save writes an MP4.
    Replay(ipcamd_client::replay::ReplayArgs),
    /// Add footage to a camera's recording: an MP4/MOV file, or synthetic footage
    /// generated faster than real time. Works while the server runs on the same data
    /// folder, into any camera the server is not recording.
    Import(ImportArgs),
    /// Write a time range of a camera's recording as an MP4 file (starts at the keyframe at
    /// or before --from). Works while the server runs (read-only). Also available over
    /// HTTP: /api/recordings/NAME/export.mp4.
    Export(ExportArgs),
    /// Manage the users file (default <data_dir>/users.toml): add, list, remove.
    User(users::UserArgs),
    /// Make a TLS certificate and key for RTSPS/HTTPS.
    Cert(users::CertArgs),
    /// Find the ONVIF cameras on the network (WS-Discovery), list their profiles, stream
    /// URIs and backchannels, and print a ready-to-paste [[camera]] block for each.
    Discover(discover::DiscoverArgs),
}

#[derive(clap::Args)]
struct ImportArgs {
    /// MP4/MOV file to import (omit with --synthetic).
    file: Option<PathBuf>,
    /// Camera (recording) name.
    #[arg(long)]
    camera: String,
    /// UTC start of the footage, e.g. 2026-11-21T08:00:00Z (default: now minus its length).
    #[arg(long)]
    start: Option<String>,
    /// Generate footage with the synthetic camera instead of reading a file.
    #[arg(long)]
    synthetic: bool,
    /// Length: for --synthetic (required), or to cut a file short. E.g. 90s, 10m, 2h.
    #[arg(long)]
    duration: Option<String>,
    #[arg(short, long, env = "IPCAMD_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ExportArgs {
    #[arg(long)]
    camera: String,
    /// UTC start, e.g. 2026-11-21T08:00:00Z.
    #[arg(long)]
    from: String,
    /// UTC end.
    #[arg(long)]
    to: String,
    /// Output MP4 file.
    out: PathBuf,
    /// Write a fragmented MP4 (moof+mdat every 2 s at most) instead of a progressive one.
    #[arg(long)]
    fragmented: bool,
    #[arg(short, long, env = "IPCAMD_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// Configuration file (TOML); see README.md "Configuration". Default: built-in
    /// configuration with one synthetic camera "cam1".
    #[arg(short, long, env = "IPCAMD_CONFIG")]
    config: Option<PathBuf>,
    /// RTSP listen address, overriding [server] rtsp_listen (e.g. 0.0.0.0:8554).
    #[arg(long)]
    rtsp_listen: Option<std::net::SocketAddr>,
    /// HTTP listen address, overriding [server] http_listen ("off" disables HTTP).
    #[arg(long)]
    http_listen: Option<String>,
    /// Log filter (tracing EnvFilter syntax: error, warn, info, debug, trace, or per
    /// module, e.g. "info,ipcamd_server=debug"). RUST_LOG overrides it.
    #[arg(long, default_value = "info")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(a)) => a,
        Some(Command::Talk(t)) => return talk(t),
        Some(Command::Replay(r)) => return replay(r),
        Some(Command::Import(a)) => return report(import(a)),
        Some(Command::Export(a)) => return report(export(a)),
        Some(Command::User(a)) => return report(users::user(a)),
        Some(Command::Cert(a)) => return report(users::cert(a)),
        Some(Command::Discover(a)) => return discover::run(a),
        None => ServeArgs {
            log: "info".into(),
            ..ServeArgs::default()
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&args.log))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ipcamd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn report(r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipcamd: {e}");
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn load_config(path: &Option<PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p),
        None => Ok(Config::default()),
    }
}

fn open_store(config: &Config) -> Result<ipcamd_store::Store, String> {
    let root = config.server.data_dir.join("recordings");
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("{}: cannot create: {e}", root.display()))?;
    ipcamd_store::Store::open(&root, config.store.options(&config.cameras))
        .map_err(|e| format!("recording store {}: {e}", root.display()))
}

/// The store for `import`: its primary opener if no server runs, else a shared writer
/// next to the server (docs/store.md "Several processes").
fn open_store_for_import(config: &Config) -> Result<ipcamd_store::Store, String> {
    let root = config.server.data_dir.join("recordings");
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("{}: cannot create: {e}", root.display()))?;
    let opts = config.store.options(&config.cameras);
    match ipcamd_store::Store::open(&root, opts.clone()) {
        Err(ipcamd_store::StoreError::Locked(_)) => {
            eprintln!("the server (or another command) has the store open: importing next to it");
            ipcamd_store::Store::open_shared(&root, opts)
        }
        other => other,
    }
    .map_err(|e| format!("recording store {}: {e}", root.display()))
}

/// "90s", "10m", "2h", "1d" or plain seconds, in microseconds.
fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?}: expected e.g. 90s, 10m, 2h"))?;
    let mult = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("duration {s:?}: unit must be s, m, h or d")),
    };
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok((n * mult * 1e6) as u64)
}

fn utc(s: &str, what: &str) -> Result<i64, String> {
    ipcamd_proto::time::parse_utc(s)
        .ok_or_else(|| format!("{what} = {s:?}: not a UTC time like 2026-11-21T08:00:00Z"))
}

fn import(a: ImportArgs) -> Result<(), String> {
    let config = load_config(&a.config)?;
    let duration = a.duration.as_deref().map(parse_duration).transpose()?;
    let start_or = |len: u64| -> Result<i64, String> {
        match &a.start {
            Some(s) => utc(s, "--start"),
            None => Ok(ipcamd_media::pacer::now_micros() - len as i64),
        }
    };
    let (source, until): (Box<dyn Source>, i64) = match (&a.file, a.synthetic) {
        (None, true) => {
            let d = duration.ok_or("--synthetic needs --duration, e.g. --duration 10m")?;
            let start = start_or(d)?;
            // The configured camera of that name sets the picture, else the defaults.
            let cam = config
                .cameras
                .iter()
                .find(|c| c.name == a.camera)
                .cloned()
                .unwrap_or_else(|| CameraConfig {
                    name: a.camera.clone(),
                    ..CameraConfig::default()
                });
            let s = source_factory(&cam, Views::default())(start).map_err(|e| e.to_string())?;
            (s, start + d as i64)
        }
        (Some(path), false) => {
            let probe = FileSource::open(path, 0).map_err(|e| e.to_string())?;
            let len = duration.unwrap_or(probe.duration_us());
            let start = start_or(len)?;
            let s = FileSource::open(path, start).map_err(|e| e.to_string())?;
            (Box::new(s), start + len as i64)
        }
        _ => return Err("give either a FILE or --synthetic".into()),
    };
    let store = open_store_for_import(&config)?;
    import_run(&store, &a.camera, source, until)
}

fn import_run(
    store: &ipcamd_store::Store,
    camera: &str,
    mut source: Box<dyn Source>,
    until: i64,
) -> Result<(), String> {
    use std::io::Write as _;
    let mut last_pct = u64::MAX;
    let mut progress = |done: u64, total: u64| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct != last_pct {
            last_pct = pct;
            eprint!("\rimporting {camera}: {pct:3}%");
            let _ = std::io::stderr().flush();
        }
    };
    let r = store
        .import_source(camera, source.as_mut(), until, &mut progress)
        .map_err(|e| e.to_string())?;
    if r.dropped > 0 {
        eprintln!();
        return Err(format!(
            "import of {camera} incomplete: {} of {} frames were not stored because the disk \
             under the recordings folder ({}) was full; the {} stored are kept, with a gap \
             where the others belong. Free space, then import the file again under another \
             --camera name",
            r.dropped,
            r.frames + r.dropped,
            store.root().display(),
            r.frames
        ));
    }
    eprintln!(
        "\rimported {camera}: {} frames, {} bytes, {} .. {}",
        r.frames,
        r.bytes,
        ipcamd_proto::time::format_iso8601(r.start),
        ipcamd_proto::time::format_iso8601(r.end)
    );
    Ok(())
}

fn export(a: ExportArgs) -> Result<(), String> {
    use std::io::Write as _;
    let config = load_config(&a.config)?;
    // Read-only: no lock, so the server may go on recording (docs/store.md "Several
    // processes").
    let root = config.server.data_dir.join("recordings");
    let store = ipcamd_store::Store::open_read_only(&root)
        .map_err(|e| format!("recording store {}: {e}", root.display()))?;
    let (from, to) = (utc(&a.from, "--from")?, utc(&a.to, "--to")?);
    let file = if a.fragmented {
        store.export_fragmented(&a.camera, from, to)
    } else {
        store.export_file(&a.camera, from, to)
    }
    .map_err(|e| e.to_string())?;
    let out = std::fs::File::create(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(ipcamd_store::READ_WINDOW, out);
    file.write_range(0, file.len(), &mut w)
        .map_err(|e| format!("{}: {e}", a.out.display()))?;
    w.flush().map_err(|e| format!("{}: {e}", a.out.display()))?;
    let r = file.report();
    eprintln!(
        "exported {} frames of {} to {} ({} bytes, {} .. {})",
        r.frames,
        a.camera,
        a.out.display(),
        file.len(),
        ipcamd_proto::time::format_iso8601(r.start),
        ipcamd_proto::time::format_iso8601(r.end)
    );
    for note in &r.notes {
        eprintln!("note: {note}");
    }
    Ok(())
}

fn replay(args: ipcamd_client::replay::ReplayArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipcamd replay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = std::io::stdout();
    match runtime.block_on(ipcamd_client::replay::run(args, &mut out)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ipcamd replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn talk(args: ipcamd_client::talk::TalkArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipcamd talk: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ipcamd_client::talk::run(args)) {
        Ok(r) => {
            eprintln!(
                "ipcamd talk: sent {:.2} s of {} (payload type {}): {} packets, {} bytes",
                r.seconds, r.codec, r.payload_type, r.packets, r.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipcamd talk: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(a) = args.rtsp_listen {
        config.server.rtsp_listen = a;
    }
    if let Some(h) = &args.http_listen {
        config.server.http_listen = h.clone();
    }
    // Every synthetic camera has a virtual PTZ head, moved through the ONVIF PTZ service.
    let ptz: HashMap<String, ipcamd_media::ptz::PtzHandle> = config
        .cameras
        .iter()
        .filter(|c| c.source == SourceKind::Synthetic)
        .map(|c| (c.name.clone(), ipcamd_media::ptz::new_handle()))
        .collect();
    // What ONVIF clients set, on top of the configuration (README "ONVIF services").
    let state_file = config
        .server
        .data_dir
        .join(ipcamd_server::onvif::state::FILE_NAME);
    let state = ipcamd_server::onvif::state::DeviceState::load(&state_file)?;
    apply_state(&mut config, &state, &state_file);
    // Every synthetic camera's picture may be adjusted through the ONVIF Imaging service;
    // the settings kept with ForcePersistence come back.
    let imaging = imaging_handles(&config, &state, &state_file);
    let mut onvif = onvif_options(&config, &ptz);
    onvif.imaging = imaging.clone();
    onvif.state_file = Some(state_file);
    onvif.state = state;
    let options = ServerOptions {
        rtsp_listen: config.server.rtsp_listen,
        http_listen: config.http_listen()?,
        rtp_port: config.server.rtp_port,
        udp_gso: config.server.udp_gso,
        replay_blocksize: config.server.replay_blocksize,
        session_timeout: Duration::from_secs(config.server.session_timeout_s),
        auth: Arc::new(ipcamd_server::auth::Authorizer::load(
            config.auth_options()?,
        )?),
        tls: config.tls_options()?,
        limits: config.limits.limits(),
        onvif,
        metrics: config.metrics.options()?,
        webrtc: config.webrtc.options()?,
        ..ServerOptions::default()
    };
    let mut live = Vec::new();
    let mut cameras = Vec::new();
    for c in &config.cameras {
        let mut relay = None;
        let mut publish = None;
        let mut encoder: Option<Arc<dyn ipcamd_server::cameras::Encoder>> = None;
        let (stream, upstream) = match c.source {
            SourceKind::Rtsp | SourceKind::Onvif => {
                let transport = match c.transport.as_str() {
                    "udp" => UpstreamTransport::Udp,
                    "http" => UpstreamTransport::Http,
                    "auto" => UpstreamTransport::Auto,
                    _ => UpstreamTransport::Tcp,
                };
                let onvif = (c.source == SourceKind::Onvif).then(|| OnvifSource {
                    device_url: c.url.clone().unwrap_or_default(),
                    username: c.username.clone(),
                    password: c.password.clone(),
                    profile: c.profile.clone(),
                });
                let url = match &onvif {
                    Some(_) => String::new(), // asked of the device at each connection
                    None => c.upstream_url()?,
                };
                let relays = c
                    .backchannel()
                    .is_some_and(|b| b.outputs.iter().any(|o| o == "relay"));
                let tls = ipcamd_client::ClientTls {
                    ca_file: c.tls_ca.clone(),
                    insecure: c.tls_insecure,
                };
                relay =
                    relays.then(|| Relay::new(&c.name, &url, transport.for_relay(), tls.clone()));
                let up = UpstreamConfig {
                    on_demand: c.on_demand.then(Default::default),
                    url,
                    onvif,
                    transport,
                    tls,
                    relay: relay.clone(),
                };
                // Its tracks are known once the camera answers.
                (
                    ipcamd_media::fanout::Stream::new(&c.name, Vec::new()),
                    Some(up),
                )
            }
            SourceKind::Publish | SourceKind::Exec => {
                // Like a proxied camera: no tracks until a publisher's RECORD says them.
                let stream = ipcamd_media::fanout::Stream::new(&c.name, Vec::new());
                let rules = PublishView {
                    role: c.publish_role()?,
                    replace: c.publish_override,
                };
                let exec = c.command.clone().filter(|_| c.source == SourceKind::Exec);
                publish = Some(PublishPoint::new(stream.clone(), rules, exec));
                (stream, None)
            }
            SourceKind::Synthetic | SourceKind::File => {
                let views = Views {
                    ptz: ptz.get(&c.name).cloned(),
                    imaging: imaging.get(&c.name).cloned(),
                };
                let src = LiveSource::start(&c.name, source_factory(c, views.clone()))
                    .map_err(|e| format!("camera {:?}: {e}", c.name))?;
                let stream = src.stream.clone();
                if c.source == SourceKind::Synthetic {
                    encoder = Some(Arc::new(encoder::SyntheticEncoder::new(
                        c.clone(),
                        src.switch(),
                        stream.clone(),
                        views,
                    )));
                }
                live.push(src);
                (stream, None)
            }
        };
        cameras.push(Camera {
            name: c.name.clone(),
            stream,
            backchannel: backchannel_output(c, &config.server.data_dir, relay),
            record: c.record,
            upstream,
            publish,
            encoder,
        });
    }
    // The store is opened when a camera records, or when recordings exist (imported
    // footage is replayable without recording anything new).
    let has_recordings = config.server.data_dir.join("recordings").is_dir();
    let store = if has_recordings || config.cameras.iter().any(|c| c.record) {
        Some(open_store(&config)?)
    } else {
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let server = Server::start(options, cameras, store)
            .await
            .map_err(|e| e.to_string())?;
        log_bound(&server);
        print_urls(&server, &config);
        wait_for_shutdown().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        Ok::<(), String>(())
    })?;
    // Work still running on the blocking pool (a read stuck on a stalled disk) must not
    // hold the exit: the shutdown above waited what it should.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    for mut l in live {
        l.stop();
    }
    Ok(())
}

/// The encoder settings ONVIF clients set (the state file) replace the configuration's, for
/// the synthetic cameras that still exist; others are ignored with a warning.
fn apply_state(
    config: &mut Config,
    state: &ipcamd_server::onvif::state::DeviceState,
    path: &std::path::Path,
) {
    for (name, cam) in &state.cameras {
        let Some(v) = cam.video else { continue };
        match config.cameras.iter_mut().find(|c| c.name == *name) {
            Some(c) if c.source == SourceKind::Synthetic => {
                let s = ipcamd_server::cameras::VideoSettings {
                    width: v.width,
                    height: v.height,
                    fps: v.fps,
                    bitrate_kbps: v.bitrate_kbps,
                    gov_length: v.gov_length,
                };
                *c = encoder::with_settings(c, &s);
                tracing::info!(camera = %name, width = v.width, height = v.height, fps = v.fps, bitrate_kbps = v.bitrate_kbps, gov_length = v.gov_length, file = %path.display(), "encoder settings set over ONVIF replace the configuration's");
            }
            _ => {
                tracing::warn!(camera = %name, file = %path.display(), "encoder settings for a camera that is not a synthetic camera of the configuration: ignored")
            }
        }
    }
}

/// The picture adjustments of the synthetic cameras: neutral, or what SetImagingSettings
/// kept with ForcePersistence (the state file); settings for other cameras are ignored
/// with a warning.
fn imaging_handles(
    config: &Config,
    state: &ipcamd_server::onvif::state::DeviceState,
    path: &std::path::Path,
) -> HashMap<String, ipcamd_media::imaging::ImagingHandle> {
    let handles: HashMap<String, ipcamd_media::imaging::ImagingHandle> = config
        .cameras
        .iter()
        .filter(|c| c.source == SourceKind::Synthetic)
        .map(|c| (c.name.clone(), ipcamd_media::imaging::new_handle()))
        .collect();
    for (name, cam) in &state.cameras {
        let Some(i) = cam.imaging else { continue };
        match handles.get(name) {
            Some(h) => {
                let a = ipcamd_media::imaging::Adjustments {
                    brightness: i.brightness,
                    saturation: i.color_saturation,
                    contrast: i.contrast,
                }
                .clamped();
                *h.lock().unwrap_or_else(|e| e.into_inner()) = a;
                tracing::info!(camera = %name, brightness = a.brightness, color_saturation = a.saturation, contrast = a.contrast, file = %path.display(), "imaging settings set over ONVIF (ForcePersistence) restored");
            }
            None => {
                tracing::warn!(camera = %name, file = %path.display(), "imaging settings for a camera that is not a synthetic camera of the configuration: ignored")
            }
        }
    }
    handles
}

/// What a synthetic camera's picture is seen through: its virtual PTZ head and its
/// picture adjustments.
#[derive(Clone, Default)]
struct Views {
    ptz: Option<ipcamd_media::ptz::PtzHandle>,
    imaging: Option<ipcamd_media::imaging::ImagingHandle>,
}

/// Opens a local camera's source; a synthetic camera is seen through `views`.
fn source_factory(c: &CameraConfig, views: Views) -> SourceFactory {
    let c = c.clone();
    Box::new(
        move |now| -> Result<Box<dyn Source>, ipcamd_media::SourceError> {
            // A camera whose clock is off starts at its own idea of now.
            let start = now + (c.clock_offset_s * 1e6) as i64;
            Ok(match c.source {
                SourceKind::Synthetic => {
                    let cam = SyntheticCamera::new(
                        SyntheticConfig {
                            width: c.width,
                            height: c.height,
                            fps: c.fps,
                            bitrate_bps: c.bitrate_kbps.saturating_mul(1000),
                            keyframe_interval_ms: c.keyframe_interval_ms,
                            video: match c.video {
                                VideoCodec::H264 => SyntheticVideo::H264,
                                VideoCodec::Mjpeg => SyntheticVideo::Mjpeg,
                            },
                            jpeg_quality: c.jpeg_quality,
                            audio: c.audio,
                            label: c.name.clone(),
                        },
                        start,
                    )?;
                    let cam = match &views.ptz {
                        Some(h) => cam.with_ptz(h.clone()),
                        None => cam,
                    };
                    match &views.imaging {
                        Some(h) => Box::new(cam.with_imaging(h.clone())),
                        None => Box::new(cam),
                    }
                }
                SourceKind::File => {
                    let path = c.path.clone().unwrap_or_default();
                    Box::new(FileSource::open(&path, start)?)
                }
                SourceKind::Rtsp | SourceKind::Onvif | SourceKind::Publish | SourceKind::Exec => {
                    return Err(ipcamd_media::SourceError::Encoder(
                        "a proxied or published camera is not a local source".into(),
                    ))
                }
            })
        },
    )
}

fn backchannel_output(
    c: &CameraConfig,
    data_dir: &std::path::Path,
    relay: Option<Arc<Relay>>,
) -> Option<Arc<AudioOut>> {
    let b = &c.backchannel()?;
    if b.outputs.is_empty() {
        return None;
    }
    let outputs = b
        .outputs
        .iter()
        .filter_map(|o| match o.as_str() {
            "wav" => Some(OutputTarget::Wav(data_dir.join(&b.wav_dir))),
            "exec" => b.exec.clone().map(OutputTarget::Exec),
            "alsa" => Some(OutputTarget::Alsa(b.alsa_device.clone())),
            "record" => Some(OutputTarget::Record),
            "relay" => relay.clone().map(OutputTarget::Relay),
            _ => None, // rejected by Config::check
        })
        .collect();
    Some(AudioOut::new(
        &c.name,
        BackchannelConfig {
            outputs,
            output_rate: b.output_rate,
            policy: if b.policy == "mix" {
                TalkPolicy::Mix
            } else {
                TalkPolicy::Exclusive
            },
            g726_packing: if b.g726_packing == "aal2" {
                G726Packing::BigEndianAal2
            } else {
                G726Packing::Rfc3551LittleEndian
            },
            jitter: Duration::from_millis(b.jitter_ms),
        },
    ))
}

/// Target of the one machine-readable start-up line, so that it can be enabled alone:
/// `--log warn,ipcamd::bound=info`.
const BOUND_TARGET: &str = "ipcamd::bound";

/// Logs every address the server listens on, as bound (a port configured as 0 is the one
/// the system chose), in one line of `key=address` pairs, `off` for a listener that is not
/// configured (README "Bound addresses"):
/// `INFO ipcamd::bound: rtsp=127.0.0.1:41234 http=127.0.0.1:41235 rtsps=off https=off
/// rtp=127.0.0.1:6970 rtcp=127.0.0.1:6971 webrtc=0.0.0.0:8189`.
fn log_bound(server: &Server) {
    let or_off =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    let (rtp, rtcp) = server.udp_ports;
    let udp = |port| std::net::SocketAddr::new(server.rtsp_addr.ip(), port);
    tracing::info!(
        target: BOUND_TARGET,
        "rtsp={} http={} rtsps={} https={} rtp={} rtcp={} webrtc={}",
        server.rtsp_addr,
        or_off(server.http_addr),
        or_off(server.rtsps_addr),
        or_off(server.https_addr),
        udp(rtp),
        udp(rtcp),
        or_off(server.webrtc_addr())
    );
}

fn print_urls(server: &Server, config: &Config) {
    let host = |a: std::net::SocketAddr| {
        if a.ip().is_unspecified() {
            format!("127.0.0.1:{}", a.port())
        } else {
            a.to_string()
        }
    };
    for c in &config.cameras {
        let tracks: Vec<String> = server
            .hub
            .cameras
            .get(&c.name)
            .map(|cam| {
                cam.stream
                    .tracks()
                    .iter()
                    .map(|t| t.codec.name().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let what = match c.source {
            SourceKind::Publish => format!(
                "publish here, e.g. ffmpeg -re -i in.mp4 -c copy -f rtsp rtsp://{}/{}",
                host(server.rtsp_addr),
                c.name
            ),
            SourceKind::Exec => "published by its exec command".to_owned(),
            _ => tracks.join(" + "),
        };
        tracing::info!(
            "camera {}: rtsp://{}/{} ({what})",
            c.name,
            host(server.rtsp_addr),
            c.name,
        );
        if let Some(h) = server.http_addr {
            tracing::info!(
                "camera {}: RTSP over HTTP tunnel at http://{}/{} (ffmpeg: -rtsp_transport http rtsp://{}/{})",
                c.name,
                host(h),
                c.name,
                host(h),
                c.name
            );
        }
    }
    if server.rtsp_addr.ip().is_unspecified() {
        tracing::info!(
            "listening on every interface: replace 127.0.0.1 by this host's address from elsewhere"
        );
    }
    if let Some(a) = server.rtsps_addr {
        tracing::info!("RTSPS (RTSP over TLS) at rtsps://{}/<camera>", host(a));
    }
    if let Some(a) = server.https_addr {
        tracing::info!("HTTPS at https://{}/", host(a));
    }
    let (loud, text) = server.options.auth.describe();
    if loud {
        tracing::warn!("{text}");
    } else {
        tracing::info!("{text}");
    }
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `[onvif]` and what the synthetic cameras' settings say about their video (file cameras
/// are measured from their stream by the server).
fn onvif_options(
    config: &Config,
    ptz: &HashMap<String, ipcamd_media::ptz::PtzHandle>,
) -> ipcamd_server::onvif::OnvifOptions {
    let hints = config
        .cameras
        .iter()
        .filter(|c| c.source == SourceKind::Synthetic)
        .map(|c| {
            let h = ipcamd_server::onvif::VideoHints {
                fps: c.fps,
                bitrate_kbps: c.bitrate_kbps,
                gov_length: (c.fps * c.keyframe_interval_ms / 1000).max(1),
            };
            (c.name.clone(), h)
        })
        .collect();
    ipcamd_server::onvif::OnvifOptions {
        discovery: config.onvif.discovery,
        discovery_port: config.onvif.discovery_port,
        hints,
        manufacturer: config.onvif.manufacturer.clone(),
        model: config.onvif.model.clone(),
        motion: config
            .cameras
            .iter()
            .filter_map(|c| {
                let p = c.motion_periods.as_deref()?;
                // Checked when the configuration was loaded.
                let p = ipcamd_server::onvif::events::MotionPeriods::parse(p).ok()?;
                Some((c.name.clone(), p))
            })
            .collect(),
        event_limits: ipcamd_server::onvif::events::EventLimits {
            per_user: config.onvif.max_subscriptions_per_user,
            total: config.onvif.max_subscriptions,
            ..Default::default()
        },
        ptz: ptz.clone(),
        ..Default::default()
    }
}
