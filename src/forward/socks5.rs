//! A SOCKS5 client for the relay (RFC 1928), with the username/password
//! method of RFC 1929: just the CONNECT command to an IPv4 address, which is
//! all a transparent relay needs.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version byte (RFC 1928 section 3).
const VERSION: u8 = 5;
/// "NO AUTHENTICATION REQUIRED" (RFC 1928 section 3).
const METHOD_NONE: u8 = 0x00;
/// "USERNAME/PASSWORD" (RFC 1928 section 3, RFC 1929).
const METHOD_USER_PASS: u8 = 0x02;
/// "NO ACCEPTABLE METHODS" (RFC 1928 section 3).
const METHOD_REFUSED: u8 = 0xff;
/// The username/password subnegotiation's version (RFC 1929 section 2).
const USER_PASS_VERSION: u8 = 1;
/// CMD CONNECT (RFC 1928 section 4).
const CMD_CONNECT: u8 = 1;
/// Address types (RFC 1928 section 5).
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;

/// Username and password for RFC 1929 (each 1 to 255 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Credentials {
    /// Checks the RFC 1929 length limits: `InvalidInput` if either is empty
    /// or longer than 255 bytes.
    pub fn new(user: &str, password: &str) -> io::Result<Credentials> {
        for (what, v) in [("username", user), ("password", password)] {
            if v.is_empty() || v.len() > 255 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "a SOCKS5 {what} is 1 to 255 bytes (RFC 1929), not {}",
                        v.len()
                    ),
                ));
            }
        }
        Ok(Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// The username.
    pub fn user(&self) -> &str {
        &self.user
    }
}

impl std::fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Where the relay's connections go through a SOCKS5 proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socks5 {
    /// The proxy's address.
    pub proxy: SocketAddr,
    /// With credentials the client offers username/password besides
    /// no authentication; without, only no authentication.
    pub credentials: Option<Credentials>,
}

/// Runs the client side of the SOCKS5 handshake on `s`, a connection to the
/// proxy: method selection, the RFC 1929 subnegotiation when the proxy
/// picks it, then CONNECT `dst`. On success `s` carries the relayed
/// connection. The proxy's refusals come back as errors of the matching
/// kind (reply 5 is `ConnectionRefused`, 3 and 4 `HostUnreachable`...).
pub async fn handshake<S>(
    s: &mut S,
    creds: Option<&Credentials>,
    dst: SocketAddrV4,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let method = select_method(s, creds).await?;
    if method == METHOD_USER_PASS {
        let creds = creds.ok_or_else(|| protocol("the proxy chose a method we did not offer"))?;
        authenticate(s, creds).await?;
    }
    let mut req = [0u8; 10];
    req[..4].copy_from_slice(&[VERSION, CMD_CONNECT, 0, ATYP_IPV4]);
    req[4..8].copy_from_slice(&dst.ip().octets());
    req[8..].copy_from_slice(&dst.port().to_be_bytes());
    s.write_all(&req).await?;
    read_reply(s).await
}

/// RFC 1928 section 3: offers our methods, returns the proxy's choice.
async fn select_method<S>(s: &mut S, creds: Option<&Credentials>) -> io::Result<u8>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let greeting: &[u8] = match creds {
        Some(_) => &[VERSION, 2, METHOD_NONE, METHOD_USER_PASS],
        None => &[VERSION, 1, METHOD_NONE],
    };
    s.write_all(greeting).await?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await?;
    if choice[0] != VERSION {
        return Err(protocol(&format!(
            "version {} in the method reply",
            choice[0]
        )));
    }
    match choice[1] {
        METHOD_NONE => Ok(METHOD_NONE),
        METHOD_USER_PASS if creds.is_some() => Ok(METHOD_USER_PASS),
        METHOD_REFUSED => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the SOCKS5 proxy accepts none of our methods (credentials needed?)",
        )),
        m => Err(protocol(&format!(
            "the proxy chose method {m}, which we did not offer"
        ))),
    }
}

/// RFC 1929 section 2: the username/password subnegotiation.
async fn authenticate<S>(s: &mut S, creds: &Credentials) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut msg = Vec::with_capacity(3 + creds.user.len() + creds.password.len());
    msg.push(USER_PASS_VERSION);
    // Lengths checked in Credentials::new.
    msg.push(creds.user.len() as u8);
    msg.extend_from_slice(creds.user.as_bytes());
    msg.push(creds.password.len() as u8);
    msg.extend_from_slice(creds.password.as_bytes());
    s.write_all(&msg).await?;
    let mut status = [0u8; 2];
    s.read_exact(&mut status).await?;
    if status[1] != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the SOCKS5 proxy rejected user {:?}", creds.user),
        ));
    }
    Ok(())
}

/// RFC 1928 section 6: the reply to CONNECT, bound address included.
async fn read_reply<S>(s: &mut S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    if head[0] != VERSION {
        return Err(protocol(&format!("version {} in the reply", head[0])));
    }
    if head[1] != 0 {
        return Err(reply_error(head[1]));
    }
    let rest = match head[3] {
        ATYP_IPV4 => 4 + 2,
        ATYP_IPV6 => 16 + 2,
        ATYP_DOMAIN => usize::from(s.read_u8().await?) + 2,
        t => return Err(protocol(&format!("address type {t} in the reply"))),
    };
    let mut bound = [0u8; 255 + 2];
    s.read_exact(&mut bound[..rest]).await?;
    Ok(())
}

/// The error for a failure reply (RFC 1928 section 6, field REP).
fn reply_error(rep: u8) -> io::Error {
    use io::ErrorKind as K;
    let (kind, what) = match rep {
        1 => (K::Other, "general SOCKS server failure"),
        2 => (K::PermissionDenied, "connection not allowed by ruleset"),
        3 => (K::HostUnreachable, "network unreachable"),
        4 => (K::HostUnreachable, "host unreachable"),
        5 => (K::ConnectionRefused, "connection refused"),
        6 => (K::TimedOut, "TTL expired"),
        7 => (K::Unsupported, "command not supported"),
        8 => (K::Unsupported, "address type not supported"),
        _ => (K::Other, "unassigned reply code"),
    };
    io::Error::new(kind, format!("SOCKS5 proxy: {what} (reply {rep})"))
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("SOCKS5 protocol error: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::tokio::io::duplex;

    fn dst() -> SocketAddrV4 {
        "10.98.1.1:8080".parse().unwrap()
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        ::tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// A scripted proxy: checks each message the client sends and answers.
    async fn proxy(mut s: ::tokio::io::DuplexStream, script: Vec<(Vec<u8>, Vec<u8>)>) {
        for (expect, answer) in script {
            let mut got = vec![0u8; expect.len()];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expect);
            s.write_all(&answer).await.unwrap();
        }
    }

    const CONNECT: [u8; 10] = [5, 1, 0, 1, 10, 98, 1, 1, 0x1f, 0x90];
    const SUCCESS: [u8; 10] = [5, 0, 0, 1, 10, 98, 0, 2, 0x30, 0x39];

    #[test]
    fn connect_without_authentication() {
        block_on(async {
            let (mut c, s) = duplex(1024);
            let script = vec![
                (vec![5, 1, 0], vec![5, 0]),
                (CONNECT.to_vec(), SUCCESS.to_vec()),
            ];
            let p = ::tokio::spawn(proxy(s, script));
            handshake(&mut c, None, dst()).await.unwrap();
            p.await.unwrap();
        });
    }

    #[test]
    fn connect_with_username_and_password() {
        block_on(async {
            let (mut c, s) = duplex(1024);
            let creds = Credentials::new("alice", "s3cret").unwrap();
            let mut auth = vec![1, 5];
            auth.extend_from_slice(b"alice");
            auth.push(6);
            auth.extend_from_slice(b"s3cret");
            // A domain-name bound address in the reply is read past.
            let mut reply = vec![5, 0, 0, 3, 4];
            reply.extend_from_slice(b"host\x00\x50");
            let script = vec![
                (vec![5, 2, 0, 2], vec![5, 2]),
                (auth, vec![1, 0]),
                (CONNECT.to_vec(), reply),
            ];
            let p = ::tokio::spawn(proxy(s, script));
            handshake(&mut c, Some(&creds), dst()).await.unwrap();
            p.await.unwrap();
            assert!(!format!("{creds:?}").contains("s3cret"));
        });
    }

    fn failing(script: Vec<(Vec<u8>, Vec<u8>)>, creds: Option<Credentials>) -> io::Error {
        block_on(async move {
            let (mut c, s) = duplex(1024);
            let p = ::tokio::spawn(proxy(s, script));
            let e = handshake(&mut c, creds.as_ref(), dst()).await.unwrap_err();
            p.await.unwrap();
            e
        })
    }

    #[test]
    fn refusals_map_to_error_kinds() {
        let refused = failing(
            vec![
                (vec![5, 1, 0], vec![5, 0]),
                (CONNECT.to_vec(), vec![5, 5, 0, 1]),
            ],
            None,
        );
        assert_eq!(
            refused.kind(),
            io::ErrorKind::ConnectionRefused,
            "{refused}"
        );
        let unreachable = failing(
            vec![
                (vec![5, 1, 0], vec![5, 0]),
                (CONNECT.to_vec(), vec![5, 4, 0, 1]),
            ],
            None,
        );
        assert_eq!(unreachable.kind(), io::ErrorKind::HostUnreachable);
        let no_method = failing(vec![(vec![5, 1, 0], vec![5, 0xff])], None);
        assert_eq!(no_method.kind(), io::ErrorKind::PermissionDenied);
        let creds = Credentials::new("bob", "x").unwrap();
        let bad_password = failing(
            vec![
                (vec![5, 2, 0, 2], vec![5, 2]),
                (vec![1, 3, b'b', b'o', b'b', 1, b'x'], vec![1, 1]),
            ],
            Some(creds),
        );
        assert_eq!(bad_password.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_method_we_did_not_offer_is_a_protocol_error() {
        let e = failing(vec![(vec![5, 1, 0], vec![5, 2])], None);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let e = failing(vec![(vec![5, 1, 0], vec![4, 0])], None);
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn credentials_respect_rfc_1929_lengths() {
        assert!(Credentials::new("", "p").is_err());
        assert!(Credentials::new("u", &"p".repeat(256)).is_err());
        assert!(Credentials::new(&"u".repeat(255), "p").is_ok());
    }
}
