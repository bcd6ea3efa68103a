//! A plain SMTP client for notice campaigns, with one thing general clients do not offer: a
//! step between writing a message and telling the server to deliver it (the final `.`), where
//! the campaign records the notice as going out. A notice killed before that step was never
//! delivered (the server drops a message whose connection ends mid-DATA) and is sent again; one
//! killed after it is never sent again. It speaks to a relay on the server's own network (a
//! local Postfix, or the test's aiosmtpd): no TLS, no authentication.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A reply: its code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub(crate) const fn ok(&self) -> bool {
        self.code >= 200 && self.code < 400
    }
    pub(crate) const fn permanent(&self) -> bool {
        self.code >= 500
    }
}

/// What went wrong with a message before its last step.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The server refused it (the reply says whether for good).
    Server(Reply),
    /// The connection failed.
    Io(std::io::Error),
}

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// One connection.
pub(crate) struct Smtp {
    read: BufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

impl Smtp {
    /// Connects and says hello.
    pub(crate) async fn connect(addr: &str, hello: &str) -> Result<Self, Refused> {
        let stream = tokio::time::timeout(std::time::Duration::from_secs(30), TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to the SMTP server"))??;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut s = Self { read: BufReader::new(r), write: w };
        let greeting = s.reply().await?;
        if !greeting.ok() {
            return Err(Refused::Server(greeting));
        }
        s.command(&format!("EHLO {hello}")).await?;
        Ok(s)
    }

    async fn reply(&mut self) -> Result<Reply, std::io::Error> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(std::time::Duration::from_mins(1), self.read.read_line(&mut line))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "waiting for the SMTP server"))??;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the SMTP server hung up"));
            }
            let line = line.trim_end();
            let code = line.get(..3).and_then(|c| c.parse::<u16>().ok()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not an SMTP reply: {line:?}"))
            })?;
            text.push_str(line.get(4..).unwrap_or(""));
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(Reply { code, text });
            }
            text.push(' ');
        }
    }

    async fn command(&mut self, line: &str) -> Result<Reply, Refused> {
        self.write.write_all(format!("{line}\r\n").as_bytes()).await?;
        let r = self.reply().await?;
        if r.ok() { Ok(r) } else { Err(Refused::Server(r)) }
    }

    /// Everything of a message but its last step: envelope, `DATA`, and the content
    /// (dot-stuffed, ending in CRLF).
    pub(crate) async fn write_message(&mut self, from: &str, to: &str, message: &[u8]) -> Result<(), Refused> {
        if to.contains(['<', '>', '\r', '\n']) || from.contains(['<', '>', '\r', '\n']) {
            return Err(Refused::Server(Reply { code: 553, text: "not a mailbox".into() }));
        }
        self.command(&format!("MAIL FROM:<{from}>")).await?;
        self.command(&format!("RCPT TO:<{to}>")).await?;
        self.command("DATA").await?;
        let mut out = Vec::with_capacity(message.len() + 64);
        for line in message.split_inclusive(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.first() == Some(&b'.') {
                out.push(b'.');
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        self.write.write_all(&out).await?;
        Ok(())
    }

    /// The last step: tells the server to deliver the message (the data is in the kernel's
    /// hands when this returns: the server gets it even if this process dies now).
    pub(crate) async fn deliver(&mut self) -> Result<(), std::io::Error> {
        self.write.write_all(b".\r\n").await
    }

    /// The server's answer to the last step.
    pub(crate) async fn answer(&mut self) -> Result<Reply, std::io::Error> {
        self.reply().await
    }

    /// After a refused envelope: start over on this connection.
    pub(crate) async fn reset(&mut self) -> Result<(), Refused> {
        self.command("RSET").await.map(|_| ())
    }
}
