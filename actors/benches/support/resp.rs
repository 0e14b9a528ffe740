//! A minimal RESP2 client over a tokio `TcpStream` and a throwaway
//! `redis-server` (AOF with `appendfsync always`) for the comparison.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub struct Resp {
    stream: BufReader<TcpStream>,
    out: Vec<u8>,
    line: String,
}

#[derive(Debug, PartialEq)]
pub enum Reply {
    Ok,
    Bulk(Option<Vec<u8>>),
    Int(i64),
}

impl Resp {
    pub async fn connect(port: u16) -> std::io::Result<Resp> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        Ok(Resp {
            stream: BufReader::new(stream),
            out: Vec::with_capacity(256),
            line: String::new(),
        })
    }

    pub async fn cmd(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.out.clear();
        self.out
            .extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            self.out
                .extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            self.out.extend_from_slice(a);
            self.out.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&self.out).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let bad = |m: &str| std::io::Error::other(m.to_string());
        let (kind, rest) = self.line.trim_end().split_at(1.min(self.line.len()));
        match kind {
            "+" => Ok(Reply::Ok),
            "-" => Err(bad(rest)),
            ":" => rest.parse().map(Reply::Int).map_err(|_| bad("bad integer")),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| bad("bad length"))?;
                if len < 0 {
                    return Ok(Reply::Bulk(None));
                }
                let mut buf = vec![0; len as usize + 2];
                self.stream.read_exact(&mut buf).await?;
                buf.truncate(len as usize);
                Ok(Reply::Bulk(Some(buf)))
            }
            _ => Err(bad("unexpected reply")),
        }
    }
}

/// A `redis-server` child on a free loopback port; killed on drop.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// None when `redis-server` is not installed.
    pub async fn start(dir: &Path) -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(mut c) = Resp::connect(port).await
                && c.cmd(&[b"PING"]).await.is_ok()
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
