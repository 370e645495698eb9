//! A receiver's push endpoint, and the guard against server-side request forgery (SSRF).
//!
//! Any API client that creates a stream names the URL its SETs are pushed to, so without a guard
//! the transmitter could be made to POST to the cloud metadata service, an admin port on the
//! private network, or anything else only it can reach. The defence has two halves:
//!
//! - at registration, [`ReceiverUrl::parse`] accepts only an absolute `https` URL (`http` only to
//!   a loopback host) without credentials or fragment, and refuses a host written as an IP literal
//!   in a [`forbidden`] range;
//! - at every connection, [`GuardedResolver`] refuses a host name that resolves to a forbidden
//!   address, or to a loopback address unless the name is `localhost`: a name's addresses can
//!   change after registration (DNS rebinding), so checking them once is not enough.
//!
//! An operator can let receivers reach chosen private networks (an internal SIEM, say) with
//! [`AllowPrivate`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 network, as its first address and prefix length, and why an address in it is refused.
struct V4Rule {
    net: [u8; 4],
    len: u32,
    reason: &'static str,
}

/// An IPv6 network, as its first address and prefix length, and why an address in it is refused.
struct V6Rule {
    net: u128,
    len: u32,
    reason: &'static str,
}

const fn v4(net: [u8; 4], len: u32, reason: &'static str) -> V4Rule {
    V4Rule { net, len, reason }
}

const fn v6(net: u128, len: u32, reason: &'static str) -> V6Rule {
    V6Rule { net, len, reason }
}

/// Forbidden IPv4 ranges, the more specific first (the first match gives the reason).
const V4_RULES: &[V4Rule] = &[
    v4(
        [169, 254, 169, 254],
        32,
        "the cloud metadata endpoint (169.254.169.254)",
    ),
    v4(
        [100, 100, 100, 200],
        32,
        "a cloud metadata endpoint (Alibaba Cloud, 100.100.100.200)",
    ),
    v4(
        [168, 63, 129, 16],
        32,
        "a cloud metadata endpoint (Azure WireServer, 168.63.129.16)",
    ),
    v4(
        [255, 255, 255, 255],
        32,
        "the broadcast address (255.255.255.255)",
    ),
    v4([0, 0, 0, 0], 32, "the unspecified address (0.0.0.0)"),
    v4([0, 0, 0, 0], 8, "a \"this network\" address (0.0.0.0/8)"),
    v4([10, 0, 0, 0], 8, "a private address (10.0.0.0/8)"),
    v4(
        [100, 64, 0, 0],
        10,
        "a carrier-grade NAT address (100.64.0.0/10)",
    ),
    v4(
        [169, 254, 0, 0],
        16,
        "a link-local address (169.254.0.0/16)",
    ),
    v4([172, 16, 0, 0], 12, "a private address (172.16.0.0/12)"),
    v4(
        [192, 0, 0, 0],
        24,
        "an IETF protocol assignment (192.0.0.0/24)",
    ),
    v4([192, 0, 2, 0], 24, "a documentation address (192.0.2.0/24)"),
    v4([192, 168, 0, 0], 16, "a private address (192.168.0.0/16)"),
    v4(
        [198, 18, 0, 0],
        15,
        "a benchmarking address (198.18.0.0/15)",
    ),
    v4(
        [198, 51, 100, 0],
        24,
        "a documentation address (198.51.100.0/24)",
    ),
    v4(
        [203, 0, 113, 0],
        24,
        "a documentation address (203.0.113.0/24)",
    ),
    v4([224, 0, 0, 0], 4, "a multicast address (224.0.0.0/4)"),
    v4([240, 0, 0, 0], 4, "a reserved address (240.0.0.0/4)"),
];

/// Forbidden IPv6 ranges, the more specific first. Ranges that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4) are judged by that address instead, in [`forbidden_v6`].
const V6_RULES: &[V6Rule] = &[
    v6(0, 128, "the unspecified address (::)"),
    v6(
        0xfd00_0ec2_0000_0000_0000_0000_0000_0254,
        128,
        "the cloud metadata endpoint (AWS, fd00:ec2::254)",
    ),
    v6(
        0x0064_ff9b_0001_0000_0000_0000_0000_0000,
        48,
        "a local-use NAT64 address (64:ff9b:1::/48)",
    ),
    v6(
        0x0100_0000_0000_0000_0000_0000_0000_0000,
        64,
        "a discard-only address (100::/64)",
    ),
    v6(
        0x2001_0db8_0000_0000_0000_0000_0000_0000,
        32,
        "a documentation address (2001:db8::/32)",
    ),
    v6(
        0x3fff_0000_0000_0000_0000_0000_0000_0000,
        20,
        "a documentation address (3fff::/20)",
    ),
    v6(
        0xfc00_0000_0000_0000_0000_0000_0000_0000,
        7,
        "a unique-local address (fc00::/7)",
    ),
    v6(
        0xfe80_0000_0000_0000_0000_0000_0000_0000,
        10,
        "a link-local address (fe80::/10)",
    ),
    v6(
        0xfec0_0000_0000_0000_0000_0000_0000_0000,
        10,
        "a site-local address (fec0::/10, deprecated)",
    ),
    v6(
        0xff00_0000_0000_0000_0000_0000_0000_0000,
        8,
        "a multicast address (ff00::/8)",
    ),
];

/// The NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
const NAT64: u128 = 0x0064_ff9b_0000_0000_0000_0000_0000_0000;
/// The 6to4 prefix 2002::/16 (RFC 3056).
const SIX_TO_FOUR: u128 = 0x2002_0000_0000_0000_0000_0000_0000_0000;

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from_be_bytes(net) & mask
}

fn in_v6(ip: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    ip & mask == net & mask
}

/// Why a push may not connect to `ip`, or `None` if it may.
///
/// Refused: the unspecified and "this network" addresses, private networks (10/8, 172.16/12,
/// 192.168/16), carrier-grade NAT (100.64/10), link-local (169.254/16, fe80::/10) and with it the
/// cloud metadata endpoints (169.254.169.254, AWS's fd00:ec2::254, and Alibaba's and Azure's
/// well-known ones), multicast, broadcast, IETF protocol assignments (192.0.0.0/24),
/// benchmarking (198.18/15), reserved (240/4), unique-local (fc00::/7), site-local (fec0::/10),
/// discard-only (100::/64) and local-use NAT64 (64:ff9b:1::/48). IPv4-mapped (`::ffff:a.b.c.d`)
/// and IPv4-compatible (`::a.b.c.d`) addresses, NAT64 addresses (64:ff9b::/96) and 6to4
/// addresses (2002::/16) are judged by the IPv4 address they embed.
///
/// Documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20) are
/// refused too: they are never routed, so a receiver there is a mistake or a probe.
///
/// Loopback (127/8, ::1) is *not* refused here: a receiver on the same host is how tests and
/// sidecars work. [`ReceiverUrl::parse`] accepts loopback literals, and [`GuardedResolver`]
/// accepts loopback addresses only for the name `localhost`.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_RULES
        .iter()
        .find(|r| in_v4(ip, r.net, r.len))
        .map(|r| r.reason)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    let bits = u128::from(ip);
    if in_v6(bits, NAT64, 96) {
        // The NAT64 gateway's loopback, not ours.
        let v4 = Ipv4Addr::from(bits as u32);
        return if v4.is_loopback() {
            Some("a NAT64 address of a loopback address (64:ff9b::/96)")
        } else {
            forbidden_v4(v4)
        };
    }
    if in_v6(bits, SIX_TO_FOUR, 16) {
        let v4 = Ipv4Addr::from((bits >> 80) as u32);
        return if v4.is_loopback() {
            Some("a 6to4 address of a loopback address (2002::/16)")
        } else {
            forbidden_v4(v4)
        };
    }
    V6_RULES
        .iter()
        .find(|r| in_v6(bits, r.net, r.len))
        .map(|r| r.reason)
}

/// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible (`::a.b.c.d`, other
/// than `::` and `::1`) address stands for.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    ip.to_ipv4()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// The reason `s` is refused, which must mention `expect`.
    #[track_caller]
    fn refused(s: &str, expect: &str) {
        let reason = forbidden(ip(s)).unwrap_or_else(|| panic!("{s} should be forbidden"));
        assert!(
            reason.contains(expect),
            "{s}: reason {reason:?} should mention {expect:?}"
        );
    }

    #[track_caller]
    fn allowed(s: &str) {
        assert_eq!(forbidden(ip(s)), None, "{s} should be allowed");
    }

    #[test]
    fn ipv4_ranges() {
        for (addr, why) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network"),
            ("0.255.255.255", "this network"),
            ("10.0.0.0", "private"),
            ("10.255.255.255", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.0.1", "private"),
            ("192.168.255.255", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("169.254.0.1", "link-local"),
            ("169.254.255.255", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("168.63.129.16", "cloud metadata"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("254.1.2.3", "reserved"),
            ("192.0.0.8", "IETF protocol"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.1", "documentation"),
            ("203.0.113.1", "documentation"),
        ] {
            refused(addr, why);
        }
    }

    #[test]
    fn ipv4_edges_and_public_allowed() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "192.0.1.255",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "1.0.0.0",
        ] {
            allowed(addr);
        }
    }

    #[test]
    fn loopback_is_not_in_the_list() {
        allowed("127.0.0.1");
        allowed("127.255.255.254");
        allowed("::1");
        allowed("::ffff:127.0.0.1");
    }

    #[test]
    fn ipv6_ranges() {
        for (addr, why) in [
            ("::", "unspecified"),
            ("fc00::1", "unique-local"),
            ("fdff:ffff::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf:ffff::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fd00:ec2::253", "unique-local"),
            ("100::1", "discard-only"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
        ] {
            refused(addr, why);
        }
        for addr in [
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "fbff::1",
            "fe00::1",
        ] {
            allowed(addr);
        }
    }

    #[test]
    fn ipv4_mapped_and_compatible_are_judged_by_their_ipv4_address() {
        refused("::ffff:10.0.0.1", "private");
        refused("::ffff:192.168.1.1", "private");
        refused("::ffff:169.254.169.254", "cloud metadata");
        refused("::ffff:0.0.0.0", "unspecified");
        refused("::ffff:255.255.255.255", "broadcast");
        refused("::ffff:a9fe:a9fe", "cloud metadata");
        refused("::10.0.0.1", "private");
        refused("::0.0.0.2", "this network");
        allowed("::ffff:8.8.8.8");
        allowed("::8.8.8.8");
    }

    #[test]
    fn nat64_and_6to4_are_judged_by_their_ipv4_address() {
        refused("64:ff9b::10.0.0.1", "private");
        refused("64:ff9b::169.254.169.254", "cloud metadata");
        refused("64:ff9b::127.0.0.1", "NAT64 address of a loopback");
        allowed("64:ff9b::8.8.8.8");
        refused("2002:0a00:0001::1", "private");
        refused("2002:a9fe:a9fe::", "cloud metadata");
        refused("2002:7f00:0001::1", "6to4 address of a loopback");
        allowed("2002:0808:0808::1");
    }
}
