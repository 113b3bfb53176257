//! An echo server on utcp's tokio API: every connection is a tokio task,
//! none is a thread.
//!
//! ```sh
//! sudo bash scripts/setup-tun.sh --netns utcp-demo        # utcp0, 10.77.0.1/24
//! sudo ip netns exec utcp-demo cargo run --release --features tokio --example tokio_echo
//! # in another shell:
//! sudo ip netns exec utcp-demo nc -N 10.77.0.2 7 <<< hello
//! ```
//!
//! Arguments: `[DEV [ADDR [PORT]]]`, default `utcp0 10.77.0.2 7`.

use std::net::Ipv4Addr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use utcp::socket::NetStack;
use utcp::stack::StackConfig;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dev = args.next().unwrap_or_else(|| "utcp0".into());
    let addr: Ipv4Addr = args
        .next()
        .unwrap_or_else(|| "10.77.0.2".into())
        .parse()
        .map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("address: {e}"))
        })?;
    let port: u16 = args
        .next()
        .unwrap_or_else(|| "7".into())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("port: {e}")))?;
    let net = NetStack::tun(&dev, StackConfig::new(addr))?;
    let listener = utcp::tokio::TcpListener::bind(&net, port).await?;
    eprintln!("tokio_echo: listening on {}", listener.local_addr()?);
    loop {
        let (mut stream, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            let mut total = 0u64;
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        total += n as u64;
                    }
                }
            }
            let _ = stream.shutdown().await;
            eprintln!("tokio_echo: {peer}: {total} bytes echoed");
        });
    }
}
