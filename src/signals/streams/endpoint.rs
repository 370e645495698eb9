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

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The longest push endpoint URL accepted, in bytes, both as sent and once normalised.
pub const MAX_URL_LEN: usize = 2048;

/// The most characters of caller input an error message quotes.
pub const MAX_QUOTED: usize = 100;

/// Why a push endpoint URL is refused.
///
/// The messages are shown to API callers after the field name ("delivery.endpoint_url contains a
/// fragment ..."): they say what is wrong and what is accepted, and quote at most
/// [`MAX_QUOTED`] characters of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// Longer than [`MAX_URL_LEN`] bytes, as sent or once normalised (percent-encoded).
    #[error("is {len} bytes long; at most {MAX_URL_LEN} bytes are accepted")]
    TooLong {
        /// The length found.
        len: usize,
    },
    /// Contains whitespace or a control character (space, CR, LF, tab, ...).
    #[error(
        "contains whitespace or a control character (such as a space, CR or LF) at byte {at}; \
         percent-encode it"
    )]
    BadCharacter {
        /// The byte offset of the first such character.
        at: usize,
    },
    /// Not an absolute URL.
    #[error("is not an absolute URL ({error}): {quoted}; expected https://host[:port]/path")]
    Malformed {
        /// What the URL parser found.
        error: url::ParseError,
        /// The input, quoted and shortened.
        quoted: String,
    },
    /// A scheme other than `https` or `http`.
    #[error(
        "has scheme {quoted}; only https is accepted (http only to a loopback host: \
         127.0.0.0/8, [::1] or localhost)"
    )]
    Scheme {
        /// The scheme, quoted and shortened.
        quoted: String,
    },
    /// `http` to a host that is not a loopback one.
    #[error(
        "uses http to host {quoted}; use https (http is accepted only to a loopback host: \
         127.0.0.0/8, [::1] or localhost)"
    )]
    HttpNotLoopback {
        /// The host, quoted and shortened.
        quoted: String,
    },
    /// Contains user information (`user:password@`).
    #[error(
        "contains user information (user:password@), which is not accepted; credentials for the \
         receiver belong in the delivery's authorization_header"
    )]
    UserInfo,
    /// Contains a fragment (`#...`).
    #[error("contains a fragment (#...), which is not accepted: a push endpoint has none")]
    Fragment,
    /// Has no host.
    #[error("has no host; expected https://host[:port]/path")]
    NoHost,
    /// Names port 0.
    #[error("has port 0; give a port from 1 to 65535, or none for the scheme's default")]
    PortZero,
    /// The host is an IP literal in a [`forbidden`] range, not allowed by [`AllowPrivate`].
    #[error(
        "has host {quoted}, {reason}, which is not accepted; a receiver must be on a public \
         address (or a loopback one)"
    )]
    ForbiddenHost {
        /// The host, quoted and shortened.
        quoted: String,
        /// Why the address is refused (from [`forbidden`]).
        reason: &'static str,
    },
}

/// `s` in double quotes, escaped, and shortened to [`MAX_QUOTED`] characters (with "...").
fn quote(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED).collect();
    let more = if chars.next().is_some() { "..." } else { "" };
    format!("\"{}{more}\"", head.escape_debug())
}

/// A receiver's push endpoint URL that passed the registration checks of
/// [`ReceiverUrl::parse_with`]; kept and shown in its normalised form.
///
/// A host *name* is only checked when a connection is made, by [`GuardedResolver`]: push with a
/// client from [`guarded_client_builder`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ReceiverUrl(Url);

impl ReceiverUrl {
    /// [`ReceiverUrl::parse_with`] with no private network allowed.
    pub fn parse(input: &str) -> Result<Self, EndpointError> {
        Self::parse_with(input, &AllowPrivate::none())
    }

    /// Checks a receiver's push endpoint URL: absolute, at most [`MAX_URL_LEN`] bytes, without
    /// whitespace or control characters, user information or fragment, with a host and a port
    /// other than 0 (if any). The scheme is `https`, or `http` when the host is a loopback
    /// address literal (127.0.0.0/8, `[::1]`) or `localhost`.
    ///
    /// A host written as an IP address is refused when it is [`forbidden`] and not in `allow`
    /// (which cannot open the cloud metadata, link-local, multicast, broadcast or unspecified
    /// addresses); loopback addresses are accepted. A host name is accepted here and checked
    /// against its addresses on every connection by [`GuardedResolver`].
    pub fn parse_with(input: &str, allow: &AllowPrivate) -> Result<Self, EndpointError> {
        if input.len() > MAX_URL_LEN {
            return Err(EndpointError::TooLong { len: input.len() });
        }
        // The URL parser would drop tabs and newlines and trim spaces silently.
        if let Some((at, _)) = input
            .char_indices()
            .find(|(_, c)| c.is_whitespace() || c.is_control())
        {
            return Err(EndpointError::BadCharacter { at });
        }
        let url = Url::parse(input).map_err(|error| EndpointError::Malformed {
            error,
            quoted: quote(input),
        })?;
        let http = match url.scheme() {
            "https" => false,
            "http" => true,
            other => {
                return Err(EndpointError::Scheme {
                    quoted: quote(other),
                });
            }
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::UserInfo);
        }
        if url.fragment().is_some() {
            return Err(EndpointError::Fragment);
        }
        let host = url.host().ok_or(EndpointError::NoHost)?;
        if url.port() == Some(0) {
            return Err(EndpointError::PortZero);
        }
        let loopback = match host {
            Host::Domain(name) => is_localhost(name),
            Host::Ipv4(ip) => literal(IpAddr::V4(ip), &url, allow)?,
            Host::Ipv6(ip) => literal(IpAddr::V6(ip), &url, allow)?,
        };
        if http && !loopback {
            return Err(EndpointError::HttpNotLoopback {
                quoted: quote(url.host_str().unwrap_or_default()),
            });
        }
        let len = url.as_str().len();
        if len > MAX_URL_LEN {
            return Err(EndpointError::TooLong { len });
        }
        Ok(Self(url))
    }

    /// The normalised URL.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }
}

/// Checks a host given as an IP literal; whether it is a loopback address.
fn literal(ip: IpAddr, url: &Url, allow: &AllowPrivate) -> Result<bool, EndpointError> {
    if is_loopback(ip) {
        return Ok(true);
    }
    match refusal(ip, allow) {
        Some(reason) => Err(EndpointError::ForbiddenHost {
            quoted: quote(url.host_str().unwrap_or_default()),
            reason,
        }),
        None => Ok(false),
    }
}

/// Whether a host name is `localhost` (in any case, with or without the root's trailing dot).
fn is_localhost(name: &str) -> bool {
    name.strip_suffix('.')
        .unwrap_or(name)
        .eq_ignore_ascii_case("localhost")
}

impl AsRef<str> for ReceiverUrl {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for ReceiverUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReceiverUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReceiverUrl").field(&self.as_str()).finish()
    }
}

/// Private networks an operator lets receivers be on (an internal SIEM at 10.1.2.3, say), as
/// CIDR networks. Empty by default.
///
/// An address in one of them is accepted even though it is [`forbidden`], except the
/// unspecified (0.0.0.0/8, ::), link-local (169.254/16, fe80::/10, and with them the cloud
/// metadata endpoints), other metadata (100.100.100.200, 168.63.129.16, fd00:ec2::254),
/// multicast and broadcast addresses: no receiver is there, whatever the list says. A network
/// containing loopback addresses also lets other names than `localhost` resolve to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct AllowPrivate {
    nets: Arc<[IpNet]>,
}

/// A network in an [`AllowPrivate`] list that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{quoted} is not a network: {why}")]
pub struct InvalidNetwork {
    quoted: String,
    why: String,
}

impl AllowPrivate {
    /// No private network allowed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses CIDR networks (`10.0.0.0/8`, `fd12:3456::/32`) or single addresses (`10.1.2.3`,
    /// meaning /32 or /128). A network with bits set after its prefix (`10.1.2.3/8`) is refused
    /// as a likely typo, rather than silently widened to `10.0.0.0/8`.
    pub fn from_cidrs<I, S>(cidrs: I) -> Result<Self, InvalidNetwork>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = cidrs
            .into_iter()
            .map(|s| parse_net(s.as_ref().trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nets: nets.into() })
    }

    /// [`AllowPrivate::from_cidrs`] over a configured list.
    pub fn parse(cidrs: &[String]) -> Result<Self, InvalidNetwork> {
        Self::from_cidrs(cidrs)
    }

    /// The networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether no network is allowed.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` (or the IPv4 address an IPv4-mapped `ip` stands for) is in one of the
    /// networks. Says nothing of whether it is [`forbidden`].
    pub fn contains(&self, ip: IpAddr) -> bool {
        let canon = canonical(ip);
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canon))
    }
}

impl TryFrom<Vec<String>> for AllowPrivate {
    type Error = InvalidNetwork;

    fn try_from(cidrs: Vec<String>) -> Result<Self, Self::Error> {
        Self::from_cidrs(cidrs)
    }
}

fn parse_net(s: &str) -> Result<IpNet, InvalidNetwork> {
    let invalid = |why: String| InvalidNetwork {
        quoted: quote(s),
        why,
    };
    let net = if s.contains('/') {
        s.parse::<IpNet>().map_err(|_| {
            invalid(
                "expected an address and a prefix length, such as 10.0.0.0/8 or fd00::/8".into(),
            )
        })?
    } else {
        s.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
            invalid("expected an IP address or a CIDR network such as 10.0.0.0/8".into())
        })?
    };
    if net.trunc() != net {
        return Err(invalid(format!(
            "it has bits set after the prefix length; write the network {} or the single \
             address {}",
            net.trunc(),
            IpNet::from(net.addr()),
        )));
    }
    Ok(net)
}

/// Why [`GuardedResolver`] refused a receiver's host name. The push fails with a reqwest error
/// whose source chain holds this.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// One of the name's addresses is [`forbidden`] (and not allowed by [`AllowPrivate`]).
    #[error("receiver host {quoted} resolves to {ip}, {reason}; refused")]
    Forbidden {
        /// The name, quoted and shortened.
        quoted: String,
        /// The refused address.
        ip: IpAddr,
        /// Why (from [`forbidden`]).
        reason: &'static str,
    },
    /// The name is not `localhost` but resolves to a loopback address: DNS rebinding, or a
    /// misconfigured receiver.
    #[error(
        "receiver host {quoted} resolves to the loopback address {ip}; refused, only the name \
         localhost may"
    )]
    Loopback {
        /// The name, quoted and shortened.
        quoted: String,
        /// The loopback address.
        ip: IpAddr,
    },
    /// The name resolves to no address.
    #[error("receiver host {quoted} resolves to no address")]
    NoAddress {
        /// The name, quoted and shortened.
        quoted: String,
    },
    /// The lookup failed.
    #[error("cannot resolve receiver host {quoted}: {source}")]
    Lookup {
        /// The name, quoted and shortened.
        quoted: String,
        /// What the system resolver said.
        #[source]
        source: std::io::Error,
    },
}

/// A DNS resolver for pushes that refuses a name when *any* of its addresses is [`forbidden`]
/// (and not in its [`AllowPrivate`] list), or is a loopback address while the name is not
/// `localhost` (a public name pointing at 127.0.0.1 is a DNS rebinding attempt). It resolves with
/// the system resolver (`tokio::net::lookup_host`).
///
/// This is checked when each connection is made, so a name that passed
/// [`ReceiverUrl::parse_with`] and was later re-pointed at the private network is still refused.
/// The addresses checked are the ones connected to: there is no second lookup to race.
///
/// reqwest does not ask a resolver about a URL whose host is an IP literal, nor about the target
/// of a request sent through a proxy: literals are why [`ReceiverUrl::parse_with`] checks them
/// itself, and proxies are why [`guard`] turns them off. Push only to a [`ReceiverUrl`].
#[derive(Debug, Clone, Default)]
pub struct GuardedResolver {
    allow: AllowPrivate,
}

impl GuardedResolver {
    /// A resolver that also accepts addresses in `allow`.
    pub fn new(allow: AllowPrivate) -> Self {
        Self { allow }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|source| ResolveError::Lookup {
                    quoted: quote(&name),
                    source,
                })?;
            let addrs = check_resolved(&name, found, &allow).inspect_err(|e| {
                if !matches!(e, ResolveError::NoAddress { .. }) {
                    tracing::warn!(error = %e, "push to a receiver refused");
                }
            })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The addresses `name` resolved to, if a push may connect to all of them. One refused address
/// refuses the name: connecting only to the others would still let an attacker's DNS steer some
/// connections.
fn check_resolved(
    name: &str,
    addrs: impl IntoIterator<Item = SocketAddr>,
    allow: &AllowPrivate,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let localhost = is_localhost(name);
    let addrs: Vec<SocketAddr> = addrs.into_iter().collect();
    for addr in &addrs {
        let ip = addr.ip();
        if let Some(reason) = refusal(ip, allow) {
            return Err(ResolveError::Forbidden {
                quoted: quote(name),
                ip,
                reason,
            });
        }
        if is_loopback(ip) && !localhost && !allow.contains(ip) {
            return Err(ResolveError::Loopback {
                quoted: quote(name),
                ip,
            });
        }
    }
    if addrs.is_empty() {
        return Err(ResolveError::NoAddress {
            quoted: quote(name),
        });
    }
    Ok(addrs)
}

/// A `reqwest` client builder for pushes to receivers: [`guard`] applied to
/// `reqwest::Client::builder()`. Add timeouts and the like, but nothing that undoes the guard.
pub fn guarded_client_builder(allow: &AllowPrivate) -> reqwest::ClientBuilder {
    guard(reqwest::Client::builder(), allow)
}

/// Guards a `reqwest` client builder for pushes to receiver-chosen URLs:
///
/// - host names are resolved by a [`GuardedResolver`] with `allow`;
/// - redirects are not followed (`redirect::Policy::none()`): a receiver could otherwise send the
///   push on to a forbidden address, including an IP literal no resolver is asked about;
/// - proxies, including those from `HTTP(S)_PROXY` in the environment, are not used: a proxy
///   resolves the target itself, out of the resolver's reach.
///
/// IP-literal URLs skip reqwest's resolver altogether, which is why [`ReceiverUrl::parse_with`]
/// checks literals itself: send only to [`ReceiverUrl`]s. Calling `redirect`, `proxy`,
/// `dns_resolver` or `resolve` on the builder afterwards would undo part of the guard.
pub fn guard(builder: reqwest::ClientBuilder, allow: &AllowPrivate) -> reqwest::ClientBuilder {
    builder
        .dns_resolver(Arc::new(GuardedResolver::new(allow.clone())))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
}

/// Why a push may not connect to `ip` given the operator's allow-list, or `None` if it may.
/// Loopback is not judged here.
fn refusal(ip: IpAddr, allow: &AllowPrivate) -> Option<&'static str> {
    let reason = forbidden(ip)?;
    if allow.contains(ip) && !never_allowed(ip) {
        None
    } else {
        Some(reason)
    }
}

/// Addresses no allow-list opens: no receiver is there.
fn never_allowed(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => never_allowed_v4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            v6.is_unspecified()
                || in_v6(bits, 0xfe80 << 112, 10)
                || in_v6(bits, 0xff00 << 112, 8)
                || bits == AWS_METADATA_V6
                || translated_v4(v6).is_some_and(never_allowed_v4)
        }
    }
}

fn never_allowed_v4(ip: Ipv4Addr) -> bool {
    in_v4(ip, [0, 0, 0, 0], 8)
        || in_v4(ip, [169, 254, 0, 0], 16)
        || in_v4(ip, [224, 0, 0, 0], 4)
        || ip.is_broadcast()
        || ip == Ipv4Addr::new(100, 100, 100, 200)
        || ip == Ipv4Addr::new(168, 63, 129, 16)
}

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
        AWS_METADATA_V6,
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

/// AWS's IPv6 instance metadata endpoint, fd00:ec2::254.
const AWS_METADATA_V6: u128 = 0xfd00_0ec2_0000_0000_0000_0000_0000_0254;
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
    if let Some(v4) = translated_v4(ip) {
        // The translator's loopback, not ours.
        return if v4.is_loopback() {
            Some("a NAT64 or 6to4 address of a loopback address")
        } else {
            forbidden_v4(v4)
        };
    }
    let bits = u128::from(ip);
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

/// The IPv4 address a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address reaches through its
/// translator.
fn translated_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    if in_v6(bits, NAT64, 96) {
        Some(Ipv4Addr::from(bits as u32))
    } else if in_v6(bits, SIX_TO_FOUR, 16) {
        Some(Ipv4Addr::from((bits >> 80) as u32))
    } else {
        None
    }
}

/// `ip`, with an IPv4-mapped or -compatible IPv6 address replaced by its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is a loopback address (127/8, ::1, or 127/8 mapped into IPv6).
fn is_loopback(ip: IpAddr) -> bool {
    canonical(ip).is_loopback()
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
        assert!(is_loopback(ip("127.1.2.3")));
        assert!(is_loopback(ip("::1")));
        assert!(is_loopback(ip("::ffff:127.0.0.1")));
        assert!(!is_loopback(ip("10.0.0.1")));
        assert!(!is_loopback(ip("::2")));
        assert!(!is_loopback(ip("64:ff9b::127.0.0.1")));
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
        refused("64:ff9b::127.0.0.1", "NAT64 or 6to4 address of a loopback");
        allowed("64:ff9b::8.8.8.8");
        refused("2002:0a00:0001::1", "private");
        refused("2002:a9fe:a9fe::", "cloud metadata");
        refused("2002:7f00:0001::1", "NAT64 or 6to4 address of a loopback");
        allowed("2002:0808:0808::1");
    }

    fn ok(input: &str) -> ReceiverUrl {
        ReceiverUrl::parse(input).unwrap_or_else(|e| panic!("{input} should be accepted: {e}"))
    }

    fn err(input: &str) -> EndpointError {
        match ReceiverUrl::parse(input) {
            Ok(url) => panic!("{input} should be refused, got {url:?}"),
            Err(e) => e,
        }
    }

    fn allow(cidrs: &[&str]) -> AllowPrivate {
        AllowPrivate::from_cidrs(cidrs).expect("test networks")
    }

    #[test]
    fn https_urls_are_accepted_and_normalised() {
        assert_eq!(
            ok("https://Receiver.Example.COM/ssf/push?tenant=1").as_str(),
            "https://receiver.example.com/ssf/push?tenant=1"
        );
        assert_eq!(ok("https://example.com").as_str(), "https://example.com/");
        assert_eq!(
            ok("https://example.com:8443/x").as_str(),
            "https://example.com:8443/x"
        );
        assert_eq!(ok("https://8.8.8.8/x").as_str(), "https://8.8.8.8/x");
        assert_eq!(
            ok("https://[2606:4700::1111]/x").as_str(),
            "https://[2606:4700::1111]/x"
        );
        // Hostnames are judged on resolution, not here.
        ok("https://metadata.google.internal/");
        let url = ok("https://example.com/a");
        assert_eq!(url.to_string(), "https://example.com/a");
        assert_eq!(format!("{url:?}"), "ReceiverUrl(\"https://example.com/a\")");
        assert_eq!(url.as_url().host_str(), Some("example.com"));
    }

    #[test]
    fn http_only_to_loopback() {
        assert!(matches!(
            err("http://example.com"),
            EndpointError::HttpNotLoopback { .. }
        ));
        assert!(matches!(
            err("http://8.8.8.8/x"),
            EndpointError::HttpNotLoopback { .. }
        ));
        assert!(matches!(
            err("http://localhost.example.com/x"),
            EndpointError::HttpNotLoopback { .. }
        ));
        assert_eq!(
            ok("http://127.0.0.1:8080/x").as_str(),
            "http://127.0.0.1:8080/x"
        );
        ok("http://localhost/x");
        ok("http://LOCALHOST:9000/x");
        ok("http://127.1.2.3/x");
        ok("http://[::1]:8080/x");
        ok("http://[::ffff:127.0.0.1]/x");
        // Other spellings of 127.0.0.1 are normalised by the URL parser before the check.
        assert_eq!(ok("http://0x7f.1/x").as_str(), "http://127.0.0.1/x");
        assert_eq!(ok("http://2130706433/x").as_str(), "http://127.0.0.1/x");
        // https to loopback is fine too.
        ok("https://127.0.0.1:8443/x");
        ok("https://localhost/x");
    }

    #[test]
    fn other_schemes_are_refused() {
        for input in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ws://localhost/",
            "javascript:alert(1)",
            "data:text/plain,hi",
        ] {
            let e = err(input);
            assert!(matches!(e, EndpointError::Scheme { .. }), "{input}: {e:?}");
            assert!(e.to_string().contains("only https is accepted"), "{e}");
        }
    }

    #[test]
    fn forbidden_literals_are_refused() {
        let e = err("https://169.254.169.254/latest/meta-data/");
        assert!(matches!(e, EndpointError::ForbiddenHost { .. }), "{e:?}");
        assert!(e.to_string().contains("cloud metadata"), "{e}");
        assert!(e.to_string().contains("169.254.169.254"), "{e}");

        let e = err("https://[::ffff:10.0.0.1]/");
        assert!(
            e.to_string().contains("private address (10.0.0.0/8)"),
            "{e}"
        );
        let e = err("https://[::ffff:a9fe:a9fe]/");
        assert!(e.to_string().contains("cloud metadata"), "{e}");
        for input in [
            "https://10.0.0.1/",
            "https://172.16.5.4:443/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://0/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://[fc00::1]/",
            "https://[fe80::1]/",
            "https://[fd00:ec2::254]/",
            "https://[64:ff9b::a00:1]/",
            "https://[::]/",
            "http://10.0.0.1/",
            // The URL parser reads these as IPv4 (octal, hex, short forms).
            "https://012.0.0.1/",
            "https://0xa9.0xfe.0xa9.0xfe/",
            "https://10.1/",
        ] {
            let e = err(input);
            assert!(
                matches!(e, EndpointError::ForbiddenHost { .. }),
                "{input}: {e:?}"
            );
        }
    }

    #[test]
    fn userinfo_fragment_and_missing_host_are_refused() {
        assert_eq!(err("https://user:pw@host/"), EndpointError::UserInfo);
        assert_eq!(err("https://user@host/"), EndpointError::UserInfo);
        assert_eq!(err("https://:pw@host/"), EndpointError::UserInfo);
        assert_eq!(err("https://host/x#frag"), EndpointError::Fragment);
        assert_eq!(err("https://host/x#"), EndpointError::Fragment);
        assert_eq!(err("https://host:0/"), EndpointError::PortZero);
        ok("https://host:65535/");
        assert!(matches!(
            err("https://host:65536/"),
            EndpointError::Malformed { .. }
        ));
        assert!(matches!(err("https://"), EndpointError::Malformed { .. }));
        assert!(matches!(
            err("/relative/path"),
            EndpointError::Malformed { .. }
        ));
        assert!(matches!(
            err("example.com/x"),
            EndpointError::Malformed { .. }
        ));
        assert!(matches!(err(""), EndpointError::Malformed { .. }));
    }

    #[test]
    fn whitespace_and_control_characters_are_refused() {
        for (input, at) in [
            ("https://example.com/a\r\nX-Injected: 1", 21),
            ("https://example.com/a\nb", 21),
            ("https://exa\tmple.com/", 11),
            ("https://example.com/a b", 21),
            (" https://example.com/", 0),
            ("https://example.com/ ", 20),
            ("https://example.com/\u{a0}", 20),
            ("https://example.com/\0", 20),
            ("https://example.com/\u{7f}", 20),
        ] {
            assert_eq!(err(input), EndpointError::BadCharacter { at }, "{input:?}");
        }
    }

    #[test]
    fn length_is_limited() {
        let base = "https://example.com/";
        let at_limit = format!("{base}{}", "a".repeat(MAX_URL_LEN - base.len()));
        ok(&at_limit);
        let over = format!("{at_limit}a");
        assert_eq!(
            err(&over),
            EndpointError::TooLong {
                len: MAX_URL_LEN + 1
            }
        );
        // Short enough as sent, too long once percent-encoded.
        let encoded = format!("{base}{}", "\"".repeat(1000));
        assert!(encoded.len() <= MAX_URL_LEN);
        assert!(matches!(err(&encoded), EndpointError::TooLong { len } if len > MAX_URL_LEN));
        assert!(err(&over).to_string().contains("at most 2048 bytes"));
    }

    #[test]
    fn messages_quote_little_of_the_input() {
        let long = format!("notaurl{}", "x".repeat(1500));
        let msg = err(&long).to_string();
        assert!(msg.len() < 250, "{msg}");
        assert!(msg.contains("expected https://host[:port]/path"), "{msg}");
        assert!(msg.contains("...\""), "{msg}");

        let scheme = format!("{}://host/", "s".repeat(500));
        let msg = err(&scheme).to_string();
        assert!(msg.len() < 250, "{msg}");

        assert_eq!(quote("ab\"c"), "\"ab\\\"c\"");
        assert_eq!(quote(&"é".repeat(150)).chars().count(), MAX_QUOTED + 5);
    }

    #[test]
    fn allow_list_opens_chosen_private_networks() {
        let siem = allow(&["10.1.2.3"]);
        assert_eq!(
            ReceiverUrl::parse_with("https://10.1.2.3/", &siem)
                .expect("allowed")
                .as_str(),
            "https://10.1.2.3/"
        );
        assert!(ReceiverUrl::parse_with("https://[::ffff:10.1.2.3]/", &siem).is_ok());
        assert!(ReceiverUrl::parse_with("https://10.1.2.4/", &siem).is_err());
        assert!(ReceiverUrl::parse("https://10.1.2.3/").is_err());
        // http is still for loopback only.
        assert!(matches!(
            ReceiverUrl::parse_with("http://10.1.2.3/", &siem),
            Err(EndpointError::HttpNotLoopback { .. })
        ));

        let wide = allow(&["10.0.0.0/8", "fd12:3456::/32", "192.168.0.0/16"]);
        assert!(ReceiverUrl::parse_with("https://10.200.0.1/", &wide).is_ok());
        assert!(ReceiverUrl::parse_with("https://[fd12:3456::1]/", &wide).is_ok());
        assert!(ReceiverUrl::parse_with("https://[fd12:3457::1]/", &wide).is_err());
        assert!(ReceiverUrl::parse_with("https://172.16.0.1/", &wide).is_err());
    }

    #[test]
    fn allow_list_cannot_open_metadata_link_local_or_multicast() {
        let everything = allow(&["0.0.0.0/0", "::/0"]);
        for input in [
            "https://169.254.169.254/",
            "https://169.254.170.2/",
            "https://[::ffff:169.254.169.254]/",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://100.100.100.200/",
            "https://168.63.129.16/",
            "https://224.0.0.1/",
            "https://[ff02::1]/",
            "https://255.255.255.255/",
            "https://0.0.0.0/",
            "https://0.1.2.3/",
            "https://[::]/",
            "https://[64:ff9b::a9fe:a9fe]/",
        ] {
            assert!(
                matches!(
                    ReceiverUrl::parse_with(input, &everything),
                    Err(EndpointError::ForbiddenHost { .. })
                ),
                "{input}"
            );
        }
        assert!(ReceiverUrl::parse_with("https://10.0.0.1/", &everything).is_ok());
        assert!(ReceiverUrl::parse_with("https://[fd00::1]/", &everything).is_ok());
    }

    #[test]
    fn allow_list_parsing() {
        let list = allow(&["10.0.0.0/8", " 10.1.2.3 ", "fd00::/8", "::1"]);
        assert_eq!(list.networks().len(), 4);
        assert_eq!(list.networks()[1].to_string(), "10.1.2.3/32");
        assert_eq!(list.networks()[3].to_string(), "::1/128");
        assert!(list.contains(ip("10.9.9.9")));
        assert!(list.contains(ip("::ffff:10.9.9.9")));
        assert!(list.contains(ip("fd00::5")));
        assert!(!list.contains(ip("11.0.0.1")));
        assert!(!list.is_empty());
        assert!(AllowPrivate::none().is_empty());
        assert!(!AllowPrivate::none().contains(ip("10.0.0.1")));

        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "/8",
            "example.com",
            "",
            "10.1.2.3/8",
            "fd00::1/8",
        ] {
            let e = AllowPrivate::from_cidrs([bad]).expect_err(bad);
            assert!(e.to_string().contains("is not a network"), "{e}");
        }
        let e = AllowPrivate::from_cidrs(["10.1.2.3/8"]).expect_err("host bits");
        assert!(e.to_string().contains("network 10.0.0.0/8 or"), "{e}");
        assert!(e.to_string().contains("address 10.1.2.3/32"), "{e}");
        let e = AllowPrivate::from_cidrs(["fd00::1/8"]).expect_err("host bits");
        assert!(e.to_string().contains("network fd00::/8 or"), "{e}");

        let configured = AllowPrivate::parse(&["10.1.2.3".to_owned()]).expect("configured");
        assert!(configured.contains(ip("10.1.2.3")));
        assert!(AllowPrivate::parse(&["nope".to_owned()]).is_err());

        let from_json: AllowPrivate =
            serde_json::from_str(r#"["10.0.0.0/8"]"#).expect("deserialize");
        assert!(from_json.contains(ip("10.1.1.1")));
        assert!(serde_json::from_str::<AllowPrivate>(r#"["10.0.0.0/99"]"#).is_err());
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|s| SocketAddr::new(ip(s), 0)).collect()
    }

    fn check(name: &str, list: &[&str]) -> Result<Vec<SocketAddr>, ResolveError> {
        check_resolved(name, addrs(list), &AllowPrivate::none())
    }

    #[test]
    fn resolver_accepts_public_addresses() {
        let found =
            check("receiver.example.com", &["8.8.8.8", "2001:4860:4860::8888"]).expect("public");
        assert_eq!(found, addrs(&["8.8.8.8", "2001:4860:4860::8888"]));
    }

    #[test]
    fn resolver_refuses_a_name_with_any_forbidden_address() {
        let e = check("receiver.example.com", &["8.8.8.8", "10.0.0.1"]).expect_err("private");
        assert!(
            matches!(e, ResolveError::Forbidden { ip: found, .. } if found == ip("10.0.0.1")),
            "{e:?}"
        );
        let e = check("metadata.google.internal", &["169.254.169.254"]).expect_err("metadata");
        assert!(e.to_string().contains("cloud metadata"), "{e}");
        assert!(e.to_string().contains("metadata.google.internal"), "{e}");
        for bad in [
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "fd00::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "::",
        ] {
            assert!(
                matches!(
                    check("receiver.example.com", &[bad]),
                    Err(ResolveError::Forbidden { .. })
                ),
                "{bad}"
            );
            // localhost is no excuse for a forbidden address.
            assert!(
                matches!(
                    check("localhost", &[bad]),
                    Err(ResolveError::Forbidden { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn resolver_refuses_loopback_for_other_names_than_localhost() {
        for lo in ["127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1"] {
            let e = check("rebind.attacker.example", &["8.8.8.8", lo]).expect_err(lo);
            assert!(matches!(e, ResolveError::Loopback { .. }), "{lo}: {e:?}");
            assert!(e.to_string().contains("only the name localhost"), "{e}");
        }
        check("localhost", &["127.0.0.1", "::1"]).expect("localhost");
        check("LocalHost.", &["127.0.0.1"]).expect("localhost, any case, rooted");
        assert!(check("localhost.attacker.example", &["127.0.0.1"]).is_err());
        assert!(check("foo.localhost", &["127.0.0.1"]).is_err());
    }

    #[test]
    fn resolver_with_no_address_fails() {
        assert!(matches!(
            check("receiver.example.com", &[]),
            Err(ResolveError::NoAddress { .. })
        ));
    }

    #[test]
    fn resolver_honours_the_allow_list() {
        let siem = allow(&["10.1.2.0/24"]);
        check_resolved("siem.corp.example", addrs(&["10.1.2.3"]), &siem).expect("allowed");
        check_resolved("siem.corp.example", addrs(&["::ffff:10.1.2.3"]), &siem).expect("mapped");
        assert!(check_resolved("siem.corp.example", addrs(&["10.1.3.1"]), &siem).is_err());
        assert!(
            check_resolved("siem.corp.example", addrs(&["10.1.2.3", "10.9.9.9"]), &siem).is_err()
        );

        let link_local = allow(&["169.254.0.0/16"]);
        let e = check_resolved("x.example", addrs(&["169.254.169.254"]), &link_local)
            .expect_err("metadata stays closed");
        assert!(e.to_string().contains("cloud metadata"), "{e}");

        let lo = allow(&["127.0.0.0/8"]);
        check_resolved("sidecar.internal", addrs(&["127.0.0.1"]), &lo).expect("operator's choice");
    }

    fn resolve_name(resolver: &GuardedResolver, name: &str) -> Resolving {
        resolver.resolve(name.parse::<Name>().expect("name"))
    }

    #[tokio::test]
    async fn resolver_resolves_localhost_for_real() {
        let found: Vec<SocketAddr> = resolve_name(&GuardedResolver::default(), "localhost")
            .await
            .expect("localhost resolves")
            .collect();
        assert!(!found.is_empty());
        assert!(found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
    }

    #[tokio::test]
    async fn resolver_refuses_through_the_resolve_trait() {
        // Literals go through lookup_host without any network: a name that "resolves" to them.
        for (name, metadata) in [
            ("127.0.0.1", false),
            ("10.0.0.1", false),
            ("169.254.169.254", true),
        ] {
            let e = match resolve_name(&GuardedResolver::default(), name).await {
                Ok(found) => panic!(
                    "{name} should be refused, got {:?}",
                    found.collect::<Vec<_>>()
                ),
                Err(e) => e,
            };
            let e = e.downcast::<ResolveError>().expect("a ResolveError");
            assert!(
                matches!(
                    *e,
                    ResolveError::Forbidden { .. } | ResolveError::Loopback { .. }
                ),
                "{e:?}"
            );
            assert_eq!(e.to_string().contains("cloud metadata"), metadata, "{e}");
        }
        let allowed = GuardedResolver::new(allow(&["10.0.0.0/8"]));
        let found: Vec<SocketAddr> = resolve_name(&allowed, "10.0.0.1")
            .await
            .expect("allowed")
            .collect();
        assert_eq!(found, addrs(&["10.0.0.1"]));
    }

    /// Serves one HTTP request on 127.0.0.1 with a redirect, and answers with its port.
    async fn redirecting_server() -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let response = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{port}/elsewhere\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(response.as_bytes()).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn guarded_client_pushes_to_localhost_and_follows_no_redirect() {
        let port = redirecting_server().await;
        let client = guarded_client_builder(&AllowPrivate::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("client");
        let url = ReceiverUrl::parse(&format!("http://localhost:{port}/events")).expect("url");
        let response = client
            .post(url.as_str())
            .body("set")
            .send()
            .await
            .expect("push to localhost");
        assert_eq!(response.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(response.url().path(), "/events");
    }
}
