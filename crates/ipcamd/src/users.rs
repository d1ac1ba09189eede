//! `ipcamd user add|list|remove` (the users file) and `ipcamd cert --self-signed` (a
//! certificate for RTSPS/HTTPS). Passwords are read from standard input or a prompt, never
//! from the command line (where `ps` and shell history would show them).

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;

use ipcamd_server::auth::{Role, Users};

#[derive(clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
    /// Configuration file (for [auth] users_file, realm and [server] data_dir).
    #[arg(short, long, env = "IPCAMD_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The users file, overriding the configuration's.
    #[arg(long, global = true)]
    users_file: Option<PathBuf>,
}

#[derive(clap::Subcommand)]
enum UserCommand {
    /// Add a user (or change a user's role and password). The password is read from
    /// standard input (one line) or, on a terminal, prompted for twice.
    Add {
        name: String,
        /// viewer (live and replay), operator (also talk on the backchannel) or admin
        /// (also the HTTP API's changing calls).
        #[arg(long)]
        role: String,
        /// Read the password from standard input even on a terminal.
        #[arg(long)]
        password_stdin: bool,
        /// Also store the password itself (field wsse_password), which ONVIF WS-Security
        /// UsernameToken digests need; the file is readable by its owner only.
        #[arg(long)]
        wsse: bool,
    },
    /// List the users and their roles.
    List,
    /// Remove a user.
    Remove { name: String },
}

#[derive(clap::Args)]
pub struct CertArgs {
    /// Make a self-signed certificate (for tests and closed networks: clients must be
    /// told not to verify it, e.g. curl -k).
    #[arg(long)]
    self_signed: bool,
    /// Folder for cert.pem and key.pem (default <data_dir>/tls).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Host names or addresses the certificate is for (repeatable; default localhost,
    /// 127.0.0.1 and ::1).
    #[arg(long)]
    name: Vec<String>,
    #[arg(short, long, env = "IPCAMD_CONFIG")]
    config: Option<PathBuf>,
}

fn read_password(from_stdin: bool) -> Result<String, String> {
    let stdin = std::io::stdin();
    let pw = if from_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let a = rpassword::prompt_password("password: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        let b = rpassword::prompt_password("again: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if a != b {
            return Err("the two passwords differ; nothing changed".into());
        }
        a
    };
    if pw.is_empty() {
        return Err("empty password (give it on standard input, e.g. `echo pw | ipcamd user add NAME --role viewer`)".into());
    }
    Ok(pw)
}

pub fn user(a: UserArgs) -> Result<(), String> {
    let config = crate::load_config(&a.config)?;
    let path = a.users_file.unwrap_or_else(|| config.users_file());
    let mut users = Users::load(&path)?;
    match a.command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            wsse,
        } => {
            let role = Role::parse(&role)
                .ok_or_else(|| format!("--role {role:?}: use viewer, operator or admin"))?;
            let password = read_password(password_stdin)?;
            users.add(&name, role, &password, &config.auth.realm, wsse)?;
            users.save(&path)?;
            eprintln!(
                "user {name:?} ({role}) saved in {} (realm {:?}{})",
                path.display(),
                config.auth.realm,
                if wsse {
                    "; the password itself is stored too (--wsse)"
                } else {
                    ""
                }
            );
        }
        UserCommand::List => {
            for u in users.iter() {
                println!(
                    "{}\t{}{}",
                    u.name,
                    u.role,
                    if u.wsse_password.is_some() {
                        "\twsse"
                    } else {
                        ""
                    }
                );
            }
        }
        UserCommand::Remove { name } => {
            if !users.remove(&name) {
                return Err(format!("no user {name:?} in {}", path.display()));
            }
            users.save(&path)?;
            eprintln!("user {name:?} removed from {}", path.display());
        }
    }
    Ok(())
}

pub fn cert(a: CertArgs) -> Result<(), String> {
    if !a.self_signed {
        return Err(
            "only --self-signed is supported: ipcamd cert --self-signed [--out DIR] [--name HOST]"
                .into(),
        );
    }
    let config = crate::load_config(&a.config)?;
    let out = a.out.unwrap_or_else(|| config.server.data_dir.join("tls"));
    let names = if a.name.is_empty() {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    } else {
        a.name
    };
    let ck = rcgen::generate_simple_self_signed(names.clone())
        .map_err(|e| format!("cannot make a certificate for {names:?}: {e}"))?;
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: cannot create: {e}", out.display()))?;
    let cert_path = out.join("cert.pem");
    let key_path = out.join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem())
        .map_err(|e| format!("{}: {e}", cert_path.display()))?;
    write_private(&key_path, ck.key_pair.serialize_pem().as_bytes())?;
    eprintln!(
        "wrote {} and {} (self-signed for {}). Use them with:\n[tls]\ncert = \"{}\"\nkey = \"{}\"",
        cert_path.display(),
        key_path.display(),
        names.join(", "),
        cert_path.display(),
        key_path.display()
    );
    Ok(())
}

/// Writes a file readable by its owner only.
fn write_private(path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    f.write_all(data)
        .map_err(|e| format!("{}: {e}", path.display()))
}
