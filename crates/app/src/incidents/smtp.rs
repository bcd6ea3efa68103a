//! A plain SMTP client for notice campaigns, with one thing general clients do not offer: a
//! step between writing a message and telling the server to deliver it (the final `.`), where
//! the campaign records the notice as going out. A notice killed before that step was never
//! delivered (the server drops a message whose connection ends mid-DATA) and is sent again; one
//! killed after it is never sent again. It speaks to a relay on the server's own network (a
//! local Postfix, or the test's aiosmtpd): no TLS, no authentication.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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

/// Why the last step was not taken, or not known to be.
#[derive(Debug)]
pub(crate) enum NotDelivered {
    /// The connection failed (whether the server got the `.` is not known).
    Connection(std::io::Error),
    /// The sender's record could not be written: the connection was reset with the `.`
    /// unsent.
    Note(std::io::Error),
}

/// One connection (not split in two halves: dropping a write half would shut it down, sending
/// what the kernel holds, where [`Smtp::deliver`] needs a reset that throws it away).
pub(crate) struct Smtp {
    stream: BufReader<TcpStream>,
}

impl Smtp {
    /// Connects and says hello.
    pub(crate) async fn connect(addr: &str, hello: &str) -> Result<Self, Refused> {
        let stream = tokio::time::timeout(std::time::Duration::from_secs(30), TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connecting to the SMTP server"))??;
        stream.set_nodelay(true)?;
        let mut s = Self { stream: BufReader::new(stream) };
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
            let n = tokio::time::timeout(std::time::Duration::from_mins(1), self.stream.read_line(&mut line))
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
        self.stream.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
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
        self.stream.get_mut().write_all(&out).await?;
        Ok(())
    }

    /// The last step: tells the server to deliver the message, with `note` (the sender's record
    /// that it did) written in between, so that no moment separates the two that a kill could
    /// fall in and leave the server with a message the record lacks:
    ///  * the final `.` is written with the socket corked: it waits in the kernel, and nothing
    ///    wakes the server (which on a busy machine would run in this process's place, holding it
    ///    between the two writes for as long as the server takes);
    ///  * `note` is written;
    ///  * the socket is uncorked and the `.` goes.
    ///
    /// A process killed before `note` was written still closes the socket, and the kernel sends
    /// what it held: that is the one instant (between two system calls, with nothing in between)
    /// in which a notice could go twice. Killed after, the `.` goes and the record has it. When
    /// `note` fails, the connection is aborted (reset, so the corked `.` is thrown away) and the
    /// message never delivered.
    pub(crate) async fn deliver(&mut self, note: impl FnOnce() -> std::io::Result<()>) -> Result<(), NotDelivered> {
        self.cork(true).map_err(NotDelivered::Connection)?;
        self.stream.get_mut().write_all(b".\r\n").await.map_err(NotDelivered::Connection)?;
        if let Err(e) = note() {
            self.abort();
            return Err(NotDelivered::Note(e));
        }
        self.cork(false).map_err(NotDelivered::Connection)
    }

    #[cfg(target_os = "linux")]
    fn cork(&self, on: bool) -> std::io::Result<()> {
        socket2::SockRef::from(self.stream.get_ref()).set_tcp_cork(on)
    }

    #[cfg(not(target_os = "linux"))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn cork(&self, _on: bool) -> std::io::Result<()> {
        Ok(())
    }

    /// Makes closing this connection reset it, throwing away what the kernel still holds.
    fn abort(&self) {
        let _ = socket2::SockRef::from(self.stream.get_ref()).set_linger(Some(std::time::Duration::ZERO));
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::net::TcpListener;

    /// A relay that takes one message: it marks `dot` when the final `.` arrives, answers 250,
    /// and returns the message (None when the connection ended without the `.`).
    async fn relay() -> (String, Arc<AtomicBool>, tokio::task::JoinHandle<Option<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let dot = Arc::new(AtomicBool::new(false));
        let seen = dot.clone();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut r = BufReader::new(r);
            w.write_all(b"220 relay\r\n").await.unwrap();
            let (mut data, mut body) = (false, String::new());
            loop {
                let mut line = String::new();
                match r.read_line(&mut line).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
                if data {
                    if line == ".\r\n" {
                        seen.store(true, Ordering::SeqCst);
                        w.write_all(b"250 queued\r\n").await.unwrap();
                        return Some(body);
                    }
                    body.push_str(&line);
                } else if line.starts_with("DATA") {
                    data = true;
                    w.write_all(b"354 go on\r\n").await.unwrap();
                } else {
                    w.write_all(b"250 ok\r\n").await.unwrap();
                }
            }
        });
        (addr, dot, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_note_is_written_before_the_server_hears_the_last_step() {
        let (addr, dot, task) = relay().await;
        let mut c = Smtp::connect(&addr, "tiaki.test").await.unwrap();
        c.write_message("from@tiaki.test", "to@example.nz", b"Subject: x\r\n\r\nKia ora\r\n").await.unwrap();
        let mut noted = false;
        c.deliver(|| {
            // Long enough for the relay (on the other worker) to have read a `.` sent at once.
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(!dot.load(Ordering::SeqCst), "the server had the `.` before the note was written");
            noted = true;
            Ok(())
        })
        .await
        .unwrap();
        assert!(noted);
        assert!(c.answer().await.unwrap().ok());
        assert_eq!(task.await.unwrap().as_deref(), Some("Subject: x\r\n\r\nKia ora\r\n"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_note_that_cannot_be_written_leaves_the_message_undelivered() {
        let (addr, dot, task) = relay().await;
        let mut c = Smtp::connect(&addr, "tiaki.test").await.unwrap();
        c.write_message("from@tiaki.test", "to@example.nz", b"Subject: x\r\n\r\nKia ora\r\n").await.unwrap();
        let r = c.deliver(|| Err(std::io::Error::other("no room left on the device"))).await;
        assert!(matches!(r, Err(NotDelivered::Note(_))), "{r:?}");
        drop(c);
        assert_eq!(task.await.unwrap(), None, "the server got no message");
        assert!(!dot.load(Ordering::SeqCst));
    }
}
