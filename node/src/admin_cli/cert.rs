//! `rsp cert ca` and `rsp cert node`: a private CA for the cluster's peer
//! links and one certificate per node, valid as TLS server and client
//! (mutual TLS), for the names and addresses in each node's peer address.
//! docs/operations.md ("Mutual TLS between nodes") gives the sequence.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::exit::{CliResult, Failure};

#[derive(Subcommand, Debug)]
pub enum Cert {
    /// Make the cluster's CA: DIR/ca.pem (give it to every node as
    /// --peer-tls-ca) and DIR/ca.key (keep it offline)
    Ca(CaArgs),
    /// Make a node's certificate and key, signed by the CA
    Node(NodeArgs),
}

#[derive(Args, Debug)]
pub struct CaArgs {
    /// Directory to write ca.pem and ca.key into (made if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The CA's common name
    #[arg(long, default_value = "rsp cluster CA")]
    name: String,
    /// Days it is valid
    #[arg(long, default_value_t = 3650)]
    days: u32,
}

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Directory holding the CA's ca.pem and ca.key
    #[arg(long, value_name = "DIR")]
    ca: PathBuf,
    /// The node's name: the files are NAME.pem and NAME.key
    #[arg(long)]
    name: String,
    /// A DNS name or IP address in the node's peer (and HTTP) address;
    /// repeatable, at least one
    #[arg(long = "san", value_name = "NAME_OR_IP", required = true)]
    sans: Vec<String>,
    /// Directory to write the certificate and key into (made if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Days it is valid
    #[arg(long, default_value_t = 825)]
    days: u32,
}

impl Cert {
    pub fn run(self) -> CliResult<()> {
        match self {
            Cert::Ca(args) => ca(args),
            Cert::Node(args) => node(args),
        }
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::usage(format!("{what}: {e}"))
}

/// From yesterday (clocks differ) for `days` days.
fn validity(params: &mut CertificateParams, days: u32) {
    use chrono::Datelike;
    let ymd = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let today = chrono::Utc::now().date_naive();
    params.not_before = ymd(today - chrono::Days::new(1));
    params.not_after = ymd(today + chrono::Days::new(u64::from(days.max(1))));
}

fn ca(args: CaArgs) -> CliResult<()> {
    let (cert_path, key_path) = (args.out.join("ca.pem"), args.out.join("ca.key"));
    refuse_existing(&[&cert_path, &key_path])?;
    let key = KeyPair::generate().map_err(|e| fail("generating the CA key", e))?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, &args.name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, args.days);
    let cert = params
        .self_signed(&key)
        .map_err(|e| fail("signing the CA", e))?;
    write_files(&args.out, &cert_path, &cert, &key_path, &key)?;
    println!(
        "CA certificate {} (give it to every node as --peer-tls-ca), key {} (keep it offline)",
        cert_path.display(),
        key_path.display()
    );
    Ok(())
}

fn node(args: NodeArgs) -> CliResult<()> {
    if args.name.is_empty() || args.name.contains(['/', '\\']) || args.name.starts_with('.') {
        return Err(Failure::usage(format!(
            "--name {:?} must be a plain file name",
            args.name
        )));
    }
    let (cert_path, key_path) = (
        args.out.join(format!("{}.pem", args.name)),
        args.out.join(format!("{}.key", args.name)),
    );
    refuse_existing(&[&cert_path, &key_path])?;
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(|e| fail(&format!("cannot read {}", p.display()), e))
    };
    let ca_key = KeyPair::from_pem(&read(args.ca.join("ca.key"))?)
        .map_err(|e| fail("ca.key is not a private key", e))?;
    let issuer = Issuer::from_ca_cert_pem(&read(args.ca.join("ca.pem"))?, ca_key)
        .map_err(|e| fail("ca.pem is not a CA certificate", e))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, &args.name);
    for san in &args.sans {
        let entry = match san.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                san.clone()
                    .try_into()
                    .map_err(|e| fail(&format!("--san {san:?} is not a DNS name"), e))?,
            ),
        };
        params.subject_alt_names.push(entry);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    validity(&mut params, args.days);
    let key = KeyPair::generate().map_err(|e| fail("generating the node key", e))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| fail("signing the node certificate", e))?;
    write_files(&args.out, &cert_path, &cert, &key_path, &key)?;
    println!(
        "node certificate {} and key {} for {} (--tls-cert and --tls-key)",
        cert_path.display(),
        key_path.display(),
        args.sans.join(", ")
    );
    Ok(())
}

fn refuse_existing(paths: &[&Path]) -> CliResult<()> {
    for p in paths {
        if p.exists() {
            return Err(Failure::usage(format!(
                "{} exists; nothing was written",
                p.display()
            )));
        }
    }
    Ok(())
}

/// The certificate (0644) and its key (0600, written first), in `dir`.
fn write_files(
    dir: &Path,
    cert_path: &Path,
    cert: &rcgen::Certificate,
    key_path: &Path,
    key: &KeyPair,
) -> CliResult<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(&format!("cannot create {}", dir.display()), e))?;
    let write = |path: &Path, mode: u32, text: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .map_err(|e| fail(&format!("cannot write {}", path.display()), e))
    };
    write(key_path, 0o600, &key.serialize_pem())?;
    write(cert_path, 0o644, &cert.pem())
}
