//! `fedproxy tap`: follows a running proxy's `/tap` stream and prints it live, in
//! the conversation format of `fedproxy replay --conversation` or as JSON lines.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;

use serde_json::Value;

use super::tap::TapFilter;

#[derive(clap::Args, Debug)]
pub struct TapArgs {
    /// The proxy's admin address (`[admin] listen`).
    #[arg(long, default_value = "127.0.0.1:9817")]
    pub admin: SocketAddr,

    /// Print the JSON objects (those of `replay --json`) instead of conversation lines.
    #[arg(long)]
    pub json: bool,

    /// Only this message type: a number, a name, or a name without REQUEST_/RESPONSE_.
    #[arg(long)]
    pub msg_type: Option<String>,

    /// Only connections whose PERSIST_INIT named this cluster.
    #[arg(long)]
    pub cluster: Option<String>,

    /// Only this kind of connection (oneshot, fed_persist, dbd_persist, other_persist).
    #[arg(long)]
    pub conn_kind: Option<String>,
}

/// One tap object as a conversation line: `alpha(fed persist) -> beta  CTLD_MULT_MSG […]`.
pub fn conversation_line(v: &Value) -> String {
    if let Some(n) = v.get("dropped") {
        return format!("(tap: {n} messages dropped so far: this client reads too slowly)");
    }
    let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
    format!(
        "#{:<4} {} -> {}  {}",
        v.get("conn").map_or("?".into(), Value::to_string),
        text("from"),
        text("to"),
        text("summary")
    )
}

pub fn main(args: TapArgs) -> ExitCode {
    let filter = TapFilter {
        msg_type: args.msg_type,
        cluster: args.cluster,
        conn_kind: args.conn_kind,
    };
    match follow(args.admin, &filter, args.json) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fedproxy tap: {e}");
            ExitCode::from(1)
        }
    }
}

fn follow(admin: SocketAddr, filter: &TapFilter, json: bool) -> std::io::Result<()> {
    let mut s = TcpStream::connect(admin)?;
    let q = filter.to_query();
    let path = if q.is_empty() {
        "/tap".to_string()
    } else {
        format!("/tap?{q}")
    };
    // HTTP/1.0: the server streams the body until the connection closes.
    write!(s, "GET {path} HTTP/1.0\r\nHost: {admin}\r\n\r\n")?;
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status)?;
    if status.split_whitespace().nth(1) != Some("200") {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut r, &mut rest);
        let body = rest
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or("")
            .trim()
            .to_string();
        return Err(std::io::Error::other(format!("{}: {body}", status.trim())));
    }
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    let stdout = std::io::stdout();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut out = stdout.lock();
        let written = if json {
            out.write_all(line.as_bytes())
        } else {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => writeln!(out, "{}", conversation_line(&v)),
                Err(_) => out.write_all(line.as_bytes()),
            }
        };
        if written.and_then(|_| out.flush()).is_err() {
            return Ok(()); // stdout closed (piped to head)
        }
    }
}
