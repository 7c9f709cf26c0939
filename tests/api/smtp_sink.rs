//! A real SMTP server for the tests: speaks enough of RFC 5321 (EHLO, MAIL, RCPT, DATA, RSET,
//! NOOP, QUIT) on a random loopback port and keeps what it receives.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: Vec<String>,
    /// Headers and body as sent, with quoted-printable soft line breaks undone.
    pub data: String,
}

/// The text a failing sink puts in its refusals: it must never reach a client.
pub const SMTP_SECRET_TEXT: &str = "relay-internal-detail-42";

#[derive(Clone, Default)]
struct Behaviour {
    /// How many of the next DATA commands are refused (451, temporary).
    refuse_data: Arc<AtomicUsize>,
    /// How long the greeting waits (a slow SMTP server).
    greeting_delay: Option<Duration>,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub url: String,
    mails: Arc<Mutex<Vec<Mail>>>,
    behaviour: Behaviour,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_with(Behaviour::default()).await
    }

    /// A server that takes `delay` to greet each connection.
    pub async fn start_slow(delay: Duration) -> Self {
        Self::start_with(Behaviour {
            greeting_delay: Some(delay),
            ..Default::default()
        })
        .await
    }

    async fn start_with(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp sink");
        let url = format!("smtp://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let mails = Arc::new(Mutex::new(Vec::new()));
        let (store, sessions) = (mails.clone(), behaviour.clone());
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, store.clone(), sessions.clone()));
            }
        });
        Self { url, mails, behaviour }
    }

    /// The next `n` mails are refused with a temporary error naming `SMTP_SECRET_TEXT`.
    pub fn refuses_next(&self, n: usize) {
        self.behaviour.refuse_data.store(n, Ordering::SeqCst);
    }

    /// Waits (5 s at most) until `n` mails to `address` arrived: mail leaves after the answer.
    pub async fn wait_for_mails_to(&self, address: &str, n: usize) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mails = self.mails_to(address);
            if mails.len() >= n || tokio::time::Instant::now() > deadline {
                assert_eq!(mails.len(), n, "mails to {address}");
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The mails sent to `address` (case-insensitive).
    pub fn mails_to(&self, address: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.to_lowercase().contains(&address.to_lowercase())))
            .collect()
    }
}

async fn session(socket: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>, behaviour: Behaviour) {
    if let Some(delay) = behaviour.greeting_delay {
        tokio::time::sleep(delay).await;
    }
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 sink ESMTP\r\n").await;
    let mut to = Vec::new();
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
            "HELO" | "MAIL" | "RSET" | "NOOP" => {
                if verb == "RSET" {
                    to.clear();
                }
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(line[4..].trim().to_owned());
                b"250 OK\r\n"
            }
            "DATA" => {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut data = String::new();
                while let Ok(Some(l)) = lines.next_line().await {
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push('\n');
                }
                let data = data.replace("=\n", "");
                let refuse = behaviour
                    .refuse_data
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refuse {
                    to.clear();
                    let refusal = format!("451 4.3.0 {SMTP_SECRET_TEXT}\r\n");
                    if write.write_all(refusal.as_bytes()).await.is_err() {
                        return;
                    }
                    continue;
                }
                mails.lock().unwrap().push(Mail {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The text after `marker` up to the next whitespace, `)` or `,`.
pub fn after(data: &str, marker: &str) -> String {
    let start = data
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("{marker:?} in {data}"));
    data[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ')' && *c != ',')
        .collect()
}
