//! `ipcamd discover`: finds the ONVIF devices on the network with a WS-Discovery Probe
//! (multicast, or unicast to the addresses given with `--probe`), asks each for its
//! device information, media profiles and their stream URIs (with the credentials given),
//! and prints a ready-to-paste `[[camera]]` block per device (`source = "onvif"`; the
//! stream URI as a comment for those who prefer `source = "rtsp"`). The network and SOAP
//! work is `ipcamd_client::onvif`'s; this file asks and prints.
//!
//! Passwords appear only in the printed blocks (marked `# contains the password`), never
//! in other output or in the log.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use ipcamd_client::onvif::{
    probe, DeviceInformation, DiscoveredDevice, MediaService, OnvifDevice, Profile,
    MULTICAST_TARGET,
};

#[derive(clap::Args)]
pub struct DiscoverArgs {
    /// How long to wait for answers to the Probe, in seconds.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// User name for the devices' ONVIF services (device information, profiles, stream
    /// URIs). Without it only what WS-Discovery says is listed.
    #[arg(short, long, env = "IPCAMD_ONVIF_USER")]
    username: Option<String>,
    /// Password of --username (better given in the environment than on the command line,
    /// where other users of the machine can see it).
    #[arg(short, long, env = "IPCAMD_ONVIF_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Send the Probe to ADDR (IP:PORT, or IP for port 3702) instead of multicasting it to
    /// 239.255.255.250:3702; repeatable. For networks without multicast, and for tests.
    #[arg(long = "probe", value_name = "ADDR")]
    probe: Vec<String>,
}

pub fn run(args: DiscoverArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipcamd discover: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(discover(args)) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ipcamd discover: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything learnt about one device.
struct Report {
    found: DiscoveredDevice,
    /// The device service address asked (normalised), if any.
    url: Option<String>,
    /// Why the device could not be asked at all (unreachable, refused, no media).
    refused: Option<String>,
    info: Option<Result<DeviceInformation, String>>,
    media: Option<MediaService>,
    /// Each profile with its stream URI (or why there is none).
    profiles: Vec<(Profile, Result<String, String>)>,
}

async fn discover(args: DiscoverArgs) -> Result<String, String> {
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        return Err(format!(
            "--timeout {} is not a number of seconds from 0 to 600",
            args.timeout
        ));
    }
    if args.password.is_some() && args.username.is_none() {
        return Err("--password needs --username".into());
    }
    let targets = args
        .probe
        .iter()
        .map(|a| probe_target(a))
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let found = probe(&targets, timeout).await.map_err(|e| e.to_string())?;
    let sent_to = if targets.is_empty() {
        MULTICAST_TARGET.to_string()
    } else {
        targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if found.is_empty() {
        let hint = if targets.is_empty() {
            "; is multicast routed to the cameras' network? Give their addresses with --probe IP"
        } else {
            ""
        };
        return Err(format!(
            "no ONVIF device answered the Probe sent to {sent_to} within {} s{hint}",
            args.timeout
        ));
    }
    // Ask every device at the same time: one unreachable address costs its timeout once.
    let mut tasks = tokio::task::JoinSet::new();
    for (i, d) in found.into_iter().enumerate() {
        let user = args.username.clone();
        let password = args.password.clone();
        tasks.spawn(async move { (i, ask(d, user, password).await) });
    }
    let mut reports: Vec<(usize, Report)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(r) => reports.push(r),
            Err(e) => tracing::error!(error = %e, "asking a device failed"),
        }
    }
    reports.sort_by_key(|(i, _)| *i);
    let reports: Vec<Report> = reports.into_iter().map(|(_, r)| r).collect();
    Ok(render(
        &reports,
        &sent_to,
        args.username.as_deref(),
        args.password.as_deref(),
    ))
}

/// `IP:PORT`, `IP` (port 3702), or `HOST[:PORT]`.
fn probe_target(a: &str) -> Result<SocketAddr, String> {
    const PORT: u16 = MULTICAST_TARGET.port();
    if let Ok(s) = a.parse::<SocketAddr>() {
        return Ok(s);
    }
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, PORT));
    }
    let resolved = if a.contains(':') {
        a.to_socket_addrs()
    } else {
        (a, PORT).to_socket_addrs()
    };
    resolved
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("--probe {a}: not an address (IP:PORT, IP or HOST[:PORT])"))
}

async fn ask(found: DiscoveredDevice, user: Option<String>, password: Option<String>) -> Report {
    let mut report = Report {
        url: None,
        refused: None,
        info: None,
        media: None,
        profiles: Vec::new(),
        found,
    };
    let Some(url) = report.found.device_url().map(str::to_owned) else {
        report.refused = Some(format!(
            "no http:// device service address (XAddrs: {}); https is not supported",
            report.found.xaddrs.join(" ")
        ));
        return report;
    };
    report.url = Some(url.clone());
    let mut device = match OnvifDevice::connect(&url, user.as_deref(), password.as_deref()).await {
        Ok(d) => d,
        Err(e) => {
            report.refused = Some(e.to_string());
            return report;
        }
    };
    report.url = Some(device.url());
    report.info = Some(device.device_information().await.map_err(|e| e.to_string()));
    match device.profiles().await {
        Ok(profiles) => {
            report.media = device.media_service();
            for p in profiles {
                let uri = device.stream_uri(&p.token).await.map_err(|e| e.to_string());
                report.profiles.push((p, uri));
            }
        }
        Err(e) => report.refused = Some(e.to_string()),
    }
    report
}

fn render(reports: &[Report], sent_to: &str, user: Option<&str>, password: Option<&str>) -> String {
    let mut out = format!(
        "{} ONVIF device{} answered the Probe sent to {sent_to}:\n",
        reports.len(),
        if reports.len() == 1 { "" } else { "s" }
    );
    for (i, r) in reports.iter().enumerate() {
        let d = &r.found;
        out += &format!("\n{}. {}", i + 1, title(r));
        if let Some(h) = &d.hardware {
            out += &format!(" (hardware {h})");
        }
        out += "\n";
        out += &format!("   endpoint  {}\n", d.endpoint);
        out += &format!("   XAddrs    {}\n", d.xaddrs.join(" "));
        out += &format!("   answered  from {}\n", d.from);
        match &r.info {
            Some(Ok(i)) => {
                out += &format!(
                    "   device    {} {}, firmware {}, serial {}\n",
                    i.manufacturer, i.model, i.firmware_version, i.serial_number
                )
            }
            Some(Err(e)) => out += &format!("   device    GetDeviceInformation failed: {e}\n"),
            None => {}
        }
        if let Some(why) = &r.refused {
            out += &format!("   refused   {why}\n");
        }
        if !r.profiles.is_empty() {
            let media = match r.media {
                Some(MediaService::Media2) => "Media2",
                _ => "Media",
            };
            out += &format!("   profiles  ({media})\n");
            for (p, uri) in &r.profiles {
                out += &format!("     {} {:?}: {}\n", p.token, p.name, describe(p));
                match uri {
                    Ok(u) => out += &format!("       {u}\n"),
                    Err(e) => out += &format!("       no stream URI: {e}\n"),
                }
            }
        }
    }
    out += "\n# Paste into the configuration file (ipcamd.toml):\n";
    let mut names: Vec<String> = Vec::new();
    for r in reports {
        out += "\n";
        out += &camera_block(r, &mut names, user, password);
    }
    out
}

/// The device's name: its name scope, else its model, else its endpoint.
fn title(r: &Report) -> String {
    r.found
        .name
        .clone()
        .or_else(|| match &r.info {
            Some(Ok(i)) if !i.model.is_empty() => Some(format!("{} {}", i.manufacturer, i.model)),
            _ => None,
        })
        .unwrap_or_else(|| r.found.endpoint.clone())
}

/// `H264 1920x1080 25 fps 4096 kbit/s, audio G711, backchannel`.
fn describe(p: &Profile) -> String {
    let mut parts = Vec::new();
    match &p.video {
        Some(v) => {
            let mut s = format!("{} {}x{}", v.encoding, v.width, v.height);
            if let Some(f) = v.frame_rate {
                s += &format!(" {f} fps");
            }
            if let Some(b) = v.bitrate_kbps {
                s += &format!(" {b} kbit/s");
            }
            parts.push(s);
        }
        None if p.video_source => parts.push("video".into()),
        None => parts.push("no video".into()),
    }
    if let Some(a) = &p.audio {
        parts.push(format!("audio {a}"));
    }
    parts.push(if p.backchannel {
        "backchannel".into()
    } else {
        "no backchannel".into()
    });
    parts.join(", ")
}

/// The `[[camera]]` block of a device, with the comments above it.
fn camera_block(
    r: &Report,
    names: &mut Vec<String>,
    user: Option<&str>,
    password: Option<&str>,
) -> String {
    let chosen = r
        .profiles
        .iter()
        .find(|(p, _)| p.has_video())
        .or_else(|| r.profiles.first());
    let base = sanitize(
        r.found
            .name
            .as_deref()
            .or(match &r.info {
                Some(Ok(i)) if !i.model.is_empty() => Some(i.model.as_str()),
                _ => None,
            })
            .or(chosen.map(|(p, _)| p.name.as_str()))
            .unwrap_or("camera"),
    );
    let mut name = base.clone();
    let mut n = 2;
    while names.contains(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    names.push(name.clone());
    let url = r
        .url
        .clone()
        .or_else(|| r.found.xaddrs.first().cloned())
        .unwrap_or_default();
    let mut s = format!("# {}", title(r));
    match chosen {
        Some((p, _)) => s += &format!(": profile {} {:?}, {}\n", p.token, p.name, describe(p)),
        None => s += "\n",
    }
    match chosen {
        Some((_, Ok(uri))) => s += &format!("# {uri}\n"),
        Some((_, Err(_))) => s += "# (no stream URI: see above)\n",
        None => {
            s += "# (profiles unknown: see above; without `profile` the first profile with video is used)\n"
        }
    }
    if password.is_some() {
        s += "# contains the password\n";
    }
    s += "[[camera]]\n";
    s += &format!("name = {}\n", toml_string(&name));
    s += "source = \"onvif\"\n";
    s += &format!("url = {}\n", toml_string(&url));
    if let Some((p, _)) = chosen {
        s += &format!("profile = {}\n", toml_string(&p.token));
    }
    if let Some(u) = user {
        s += &format!("username = {}\n", toml_string(u));
    }
    if let Some(p) = password {
        s += &format!("password = {}\n", toml_string(p));
    }
    s
}

/// A TOML basic string, quoted and escaped.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Lower case, `[a-z0-9_-]` only (others become `_`, repeated `_` collapse), `camera`
/// when nothing is left.
fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '_'
        };
        if !(c == '_' && (out.is_empty() || out.ends_with('_'))) {
            out.push(c);
        }
    }
    let out = out.trim_end_matches('_').to_owned();
    if out.is_empty() {
        "camera".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_client::onvif::VideoEncoder;

    #[test]
    fn names() {
        assert_eq!(sanitize("Front Door (2nd floor)"), "front_door_2nd_floor");
        assert_eq!(sanitize("DS-2CD2042WD-I"), "ds-2cd2042wd-i");
        assert_eq!(sanitize("Écran / Caméra"), "cran_cam_ra");
        assert_eq!(sanitize("***"), "camera");
        assert_eq!(
            probe_target("10.0.0.5").unwrap().to_string(),
            "10.0.0.5:3702"
        );
        assert_eq!(
            probe_target("127.0.0.1:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        assert!(probe_target("no such host name.invalid").is_err());
    }

    fn report(name: &str, password_like: &str) -> Report {
        Report {
            found: DiscoveredDevice {
                endpoint: "urn:uuid:1".into(),
                xaddrs: vec!["http://10.0.0.5/onvif/device_service".into()],
                types: Vec::new(),
                scopes: Vec::new(),
                name: Some(name.into()),
                hardware: Some("X1".into()),
                from: "10.0.0.5:3702".parse().unwrap(),
            },
            url: Some("http://10.0.0.5:80/onvif/device_service".into()),
            refused: None,
            info: None,
            media: Some(MediaService::Media),
            profiles: vec![(
                Profile {
                    token: format!("tok\"{password_like}"),
                    name: "main".into(),
                    video: Some(VideoEncoder {
                        encoding: "H264".into(),
                        width: 1920,
                        height: 1080,
                        frame_rate: Some(25.0),
                        bitrate_kbps: None,
                    }),
                    video_source: true,
                    audio: None,
                    backchannel: true,
                },
                Ok("rtsp://10.0.0.5:554/main".into()),
            )],
        }
    }

    /// The blocks parse as TOML with the keys the server reads; names are made unique;
    /// the password appears once per block and nowhere else.
    #[test]
    fn blocks_parse_and_hold_the_password_only_there() {
        let reports = [report("Gate", "x"), report("Gate", "y")];
        let out = render(&reports, "10.0.0.5:3702", Some("admin"), Some("p\"w\\1"));
        let config_start = out.find("[[camera]]").unwrap();
        assert!(!out[..config_start].contains("p\"w"), "{out}");
        let config = &out[out.find("# Paste into").unwrap()..];
        let parsed: toml::Value = toml::from_str(config).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let cams = parsed["camera"].as_array().unwrap();
        assert_eq!(cams.len(), 2);
        assert_eq!(cams[0]["name"].as_str(), Some("gate"));
        assert_eq!(cams[1]["name"].as_str(), Some("gate_2"));
        assert_eq!(cams[0]["source"].as_str(), Some("onvif"));
        assert_eq!(
            cams[0]["url"].as_str(),
            Some("http://10.0.0.5:80/onvif/device_service")
        );
        assert_eq!(cams[0]["profile"].as_str(), Some("tok\"x"));
        assert_eq!(cams[0]["username"].as_str(), Some("admin"));
        assert_eq!(cams[0]["password"].as_str(), Some("p\"w\\1"));
        assert_eq!(
            out.matches("# contains the password\n[[camera]]").count(),
            2
        );
        assert!(out.contains("# rtsp://10.0.0.5:554/main\n"), "{out}");
        // Without credentials: no such keys, no such comment.
        let out = render(&reports[..1], "x", None, None);
        assert!(
            !out.contains("username") && !out.contains("password"),
            "{out}"
        );
    }
}
