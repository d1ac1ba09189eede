//! The server's UDP socket pair (RTP on an even port, RTCP on the next), shared by all
//! sessions: media for every UDP client is sent from it. What clients send to it
//! (receiver reports, backchannel audio) is read and routed by `crate::rtsp::udp_in`.
//!
//! The packets of a frame to one client go out in one `sendmsg` with UDP generic
//! segmentation offload (Linux `UDP_SEGMENT`, 4.18+): the kernel cuts the buffer into
//! datagrams of the first packet's size (the last may be shorter), which is how a
//! packetizer cuts a frame. One system call per frame instead of one per packet; where
//! the kernel refuses it (or `[server] udp_gso = false`), a frame's packets go in one
//! `sendmmsg` from then on.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use tokio::net::UdpSocket;

/// Most datagrams in one segmented send (the kernel's UDP_MAX_SEGMENTS is 64 on older
/// kernels) and most bytes (one UDP datagram's limit).
const GSO_MAX_SEGMENTS: usize = 64;
const GSO_MAX_BYTES: usize = 65_000;
/// The largest segment sent segmented: a UDP payload in one Ethernet frame (1500 - 20 - 8).
/// The kernel refuses segments beyond the path's MTU (EINVAL), which would switch
/// segmentation off for every reader; larger packets (a replay client that asked for them
/// with `Blocksize`) go in one `sendmmsg` instead.
const GSO_MAX_SEGMENT: usize = 1472;

pub struct UdpPair {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
    pub send_errors: AtomicU64,
    /// Segmented sends work on this socket (cleared at the first refusal).
    gso: AtomicBool,
    /// System calls that sent RTP, and the packets they carried (`/api/stats`).
    pub rtp_sends: AtomicU64,
    pub rtp_packets: AtomicU64,
}

impl UdpPair {
    /// Binds `port` and `port + 1` (`port` even), or the first free even pair from 6970
    /// upwards when `port` is 0. `gso`: try segmented sends.
    pub async fn bind(ip: IpAddr, port: u16, gso: bool) -> std::io::Result<UdpPair> {
        let candidates: Vec<u16> = if port != 0 {
            vec![port]
        } else {
            (6970..7970).step_by(2).collect()
        };
        let mut last_err = None;
        for p in candidates {
            match (
                UdpSocket::bind((ip, p)).await,
                UdpSocket::bind((ip, p.wrapping_add(1))).await,
            ) {
                (Ok(rtp), Ok(rtcp)) => {
                    return Ok(UdpPair {
                        rtp,
                        rtcp,
                        send_errors: AtomicU64::new(0),
                        gso: AtomicBool::new(gso && cfg!(target_os = "linux")),
                        rtp_sends: AtomicU64::new(0),
                        rtp_packets: AtomicU64::new(0),
                    })
                }
                (Err(e), _) | (_, Err(e)) => last_err = Some(e),
            }
        }
        let e = last_err.unwrap_or_else(|| std::io::ErrorKind::AddrInUse.into());
        Err(std::io::Error::new(
            e.kind(),
            format!("cannot bind the RTP/RTCP UDP port pair on {ip} (rtp_port = {port}): {e}"),
        ))
    }

    /// (RTP, RTCP) server ports, for the Transport header.
    pub fn ports(&self) -> (u16, u16) {
        let p = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
        (p(&self.rtp), p(&self.rtcp))
    }

    /// UDP is fire-and-forget: a failed send (e.g. no route) is counted, never fatal.
    pub async fn send_rtp(&self, pkt: &[u8], to: SocketAddr) -> std::io::Result<()> {
        self.rtp_sends.fetch_add(1, Ordering::Relaxed);
        self.rtp_packets.fetch_add(1, Ordering::Relaxed);
        if self.rtp.send_to(pkt, to).await.is_err() {
            self.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Sends `pkts` (in order) to `to`: runs of packets of the size of their first (the
    /// last of a run may be shorter) in one segmented send each, where the kernel has it.
    pub async fn send_rtp_all(&self, pkts: &[&Bytes], to: SocketAddr) -> std::io::Result<()> {
        let mut rest = pkts;
        while let Some(first) = rest.first() {
            let size = first.len();
            let mut n = 1;
            let mut bytes = size;
            // Equal sizes, then at most one shorter packet that ends the run.
            while n < rest.len() && n < GSO_MAX_SEGMENTS && rest[n - 1].len() == size {
                let next = rest[n].len();
                if next > size || bytes + next > GSO_MAX_BYTES || next == 0 {
                    break;
                }
                bytes += next;
                n += 1;
            }
            let (run, after) = rest.split_at(n);
            rest = after;
            if n == 1 || size == 0 {
                for p in run {
                    self.send_rtp(p, to).await?;
                }
                continue;
            }
            if !self.gso.load(Ordering::Relaxed) || size > GSO_MAX_SEGMENT {
                self.send_many(run, to).await;
                continue;
            }
            match self.send_segmented(run, size, to).await {
                Ok(()) => {
                    self.rtp_sends.fetch_add(1, Ordering::Relaxed);
                    self.rtp_packets.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if gso_refused(&e) => {
                    tracing::info!(error = %e, "UDP segmentation offload refused by the kernel; sending RTP packets one by one");
                    self.gso.store(false, Ordering::Relaxed);
                    self.send_many(run, to).await;
                }
                Err(_) => {
                    self.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    async fn send_segmented(
        &self,
        run: &[&Bytes],
        size: usize,
        to: SocketAddr,
    ) -> std::io::Result<()> {
        let addr = socket2::SockAddr::from(to);
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
        let mut control = vec![0u8; space];
        // Waits until the socket is writable and retries while the kernel says WouldBlock.
        self.rtp
            .async_io(tokio::io::Interest::WRITABLE, || {
                // SAFETY: `msg` points at `addr`, `iov` (whose entries point into `run`'s
                // buffers) and `control`, all alive and unmoved for this call; the control
                // message is written inside `control`, sized by CMSG_SPACE for one u16.
                // (The iovecs hold raw pointers, which may not live across an await.)
                let iov: Vec<libc::iovec> = run
                    .iter()
                    .map(|p| libc::iovec {
                        iov_base: p.as_ptr() as *mut libc::c_void,
                        iov_len: p.len(),
                    })
                    .collect();
                unsafe {
                    let mut msg: libc::msghdr = std::mem::zeroed();
                    msg.msg_name = addr.as_ptr() as *mut libc::c_void;
                    msg.msg_namelen = addr.len();
                    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
                    msg.msg_iovlen = iov.len();
                    msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
                    msg.msg_controllen = space;
                    let cmsg = libc::CMSG_FIRSTHDR(&msg);
                    if cmsg.is_null() {
                        return Err(std::io::Error::other(
                            "no room for the UDP_SEGMENT control message",
                        ));
                    }
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut u16, size as u16);
                    let n = libc::sendmsg(std::os::fd::AsRawFd::as_raw_fd(&self.rtp), &msg, 0);
                    if n < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                }
            })
            .await
    }

    /// Without segmentation: the packets as separate datagrams, in one `sendmmsg` where
    /// the kernel has it (one system call for the run instead of one per packet).
    async fn send_many(&self, run: &[&Bytes], to: SocketAddr) {
        let mut rest = run;
        while !rest.is_empty() {
            match self.sendmmsg(rest, to).await {
                Ok(sent) if sent > 0 => {
                    self.rtp_sends.fetch_add(1, Ordering::Relaxed);
                    self.rtp_packets.fetch_add(sent as u64, Ordering::Relaxed);
                    rest = rest.get(sent..).unwrap_or(&[]);
                }
                _ => {
                    // Refused or failed: the rest one by one (each failure counted there).
                    for p in rest {
                        let _ = self.send_rtp(p, to).await;
                    }
                    return;
                }
            }
        }
    }

    /// One `sendmmsg` of `run` to `to`: how many datagrams the kernel took.
    #[cfg(target_os = "linux")]
    async fn sendmmsg(&self, run: &[&Bytes], to: SocketAddr) -> std::io::Result<usize> {
        let addr = socket2::SockAddr::from(to);
        // Waits until the socket is writable and retries while the kernel says WouldBlock.
        self.rtp
            .async_io(tokio::io::Interest::WRITABLE, || {
                // SAFETY: every header points at `addr` and at one entry of `iov`, whose
                // entries point into `run`'s buffers; all are alive and unmoved for this
                // call (built inside it: raw pointers may not live across an await).
                let mut iov: Vec<libc::iovec> = run
                    .iter()
                    .map(|p| libc::iovec {
                        iov_base: p.as_ptr() as *mut libc::c_void,
                        iov_len: p.len(),
                    })
                    .collect();
                let mut msgs: Vec<libc::mmsghdr> = iov
                    .iter_mut()
                    .map(|v| {
                        // SAFETY: an all-zero msghdr is a valid empty one.
                        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
                        h.msg_name = addr.as_ptr() as *mut libc::c_void;
                        h.msg_namelen = addr.len();
                        h.msg_iov = v as *mut libc::iovec;
                        h.msg_iovlen = 1;
                        libc::mmsghdr {
                            msg_hdr: h,
                            msg_len: 0,
                        }
                    })
                    .collect();
                let n = unsafe {
                    libc::sendmmsg(
                        std::os::fd::AsRawFd::as_raw_fd(&self.rtp),
                        msgs.as_mut_ptr(),
                        msgs.len().min(1024) as libc::c_uint,
                        0,
                    )
                };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            })
            .await
    }

    #[cfg(not(target_os = "linux"))]
    async fn sendmmsg(&self, _: &[&Bytes], _: SocketAddr) -> std::io::Result<usize> {
        Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
    }

    #[cfg(not(target_os = "linux"))]
    async fn send_segmented(&self, _: &[&Bytes], _: usize, _: SocketAddr) -> std::io::Result<()> {
        Err(std::io::Error::from_raw_os_error(libc::EINVAL))
    }

    pub async fn send_rtcp(&self, pkt: &[u8], to: SocketAddr) -> std::io::Result<()> {
        if self.rtcp.send_to(pkt, to).await.is_err() {
            self.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Whether a segmented send failed because the kernel or the route has no segmentation
/// (old kernel, a device without checksum offload, an option it does not know).
fn gso_refused(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A frame's run of packets reaches the client as separate datagrams, in order, with
    /// one system call, with and without segmentation.
    #[tokio::test]
    async fn a_run_of_packets_is_one_send_either_way() {
        for gso in [true, false] {
            let pair = UdpPair::bind([127, 0, 0, 1].into(), 0, gso)
                .await
                .expect("bind a port pair on 127.0.0.1");
            let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
            let to = client.local_addr().expect("client address");
            let pkts: Vec<Bytes> = [1400, 1400, 1400, 300]
                .iter()
                .enumerate()
                .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
                .collect();
            let refs: Vec<&Bytes> = pkts.iter().collect();
            pair.send_rtp_all(&refs, to).await.expect("send");
            let mut buf = vec![0u8; 65536];
            for (i, p) in pkts.iter().enumerate() {
                let n = tokio::time::timeout(Duration::from_secs(2), client.recv(&mut buf))
                    .await
                    .expect("datagram within 2 s")
                    .expect("recv");
                assert_eq!(&buf[..n], &p[..], "gso={gso}: datagram {i}");
            }
            assert_eq!(pair.rtp_packets.load(Ordering::Relaxed), 4, "gso={gso}");
            assert_eq!(pair.rtp_sends.load(Ordering::Relaxed), 1, "gso={gso}");
            assert_eq!(pair.send_errors.load(Ordering::Relaxed), 0, "gso={gso}");
        }
    }
}
