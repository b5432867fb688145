//! The workstation inventory's types, parsed once at the boundary: hosts, ports, MAC addresses, tags, the
//! protocol and mode of a seat, booking slots, and the input of one workstation (from a form, the API or a CSV
//! row). No I/O here.

use std::fmt;
use std::net::IpAddr;

use agilekit_kernel::FieldErrors;
use agilekit_kernel::validate::Text;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

agilekit_kernel::typed_id!(
    /// A remote workstation: an office PC or a virtual desktop reachable by RDP, VNC or SSH.
    WorkstationId
);
agilekit_kernel::typed_id!(
    /// A booking of a pooled workstation for a time slot.
    BookingId
);
agilekit_kernel::typed_id!(
    /// One recorded change of a workstation's reachability.
    ProbeId
);

/// Field error codes of this domain, localised as `ws-field-<code>` in `locales/*/workstations.ftl` (the kernel's
/// generic codes, `required`, `too-long`, `format`, `taken`, keep their `field-<code>` text).
pub mod codes {
    pub const REQUIRED: &str = "required";
    pub const FORMAT: &str = "format";
    pub const TOO_LONG: &str = "too-long";
    /// Already used by another workstation of the organisation.
    pub const TAKEN: &str = "taken";
    pub const INVALID_HOST: &str = "invalid-host";
    pub const INVALID_ADDRESS: &str = "invalid-address";
    pub const INVALID_PORT: &str = "invalid-port";
    pub const INVALID_PROTOCOL: &str = "invalid-protocol";
    pub const INVALID_MODE: &str = "invalid-mode";
    pub const INVALID_MAC: &str = "invalid-mac";
    pub const INVALID_TAG: &str = "invalid-tag";
    pub const TOO_MANY_TAGS: &str = "too-many-tags";
    /// The assignee is not a member of the organisation (or no such account).
    pub const NOT_MEMBER: &str = "not-member";
    /// An assignee on a pooled workstation.
    pub const NOT_DEDICATED: &str = "not-dedicated";
    /// A booking of a workstation that is not pooled.
    pub const NOT_POOLED: &str = "not-pooled";
    /// A pooled workstation with bookings to come cannot become dedicated.
    pub const HAS_BOOKINGS: &str = "has-bookings";
    /// Someone else holds the workstation for part of the slot.
    pub const SLOT_TAKEN: &str = "slot-taken";
    /// The person already holds another workstation for part of the slot.
    pub const ALREADY_BOOKED: &str = "already-booked";
    pub const NOT_ALIGNED: &str = "not-aligned";
    pub const IN_PAST: &str = "in-past";
    pub const TOO_FAR: &str = "too-far";
    pub const SLOT_TOO_LONG: &str = "slot-too-long";
    pub const BEFORE_START: &str = "before-start";
    /// An instant outside the years the service deals in (see [`super::parse_instant`]).
    pub const OUT_OF_RANGE: &str = "out-of-range";
    // CSV structure
    pub const DUPLICATE_IN_FILE: &str = "duplicate-in-file";
    pub const UNKNOWN_COLUMN: &str = "unknown-column";
    pub const DUPLICATE_COLUMN: &str = "duplicate-column";
    pub const MISSING_COLUMN: &str = "missing-column";
    pub const COLUMN_COUNT: &str = "column-count";
    pub const ENCODING: &str = "encoding";
    pub const EMPTY_FILE: &str = "empty-file";
    pub const TOO_MANY_ROWS: &str = "too-many-rows";
    pub const MALFORMED: &str = "malformed";
}

// ---------------------------------------------------------------------------------------------------------------
// Protocol, mode, status

/// How a person reaches the workstation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Rdp,
    Vnc,
    Ssh,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::Rdp, Protocol::Vnc, Protocol::Ssh];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Rdp => "rdp",
            Protocol::Vnc => "vnc",
            Protocol::Ssh => "ssh",
        }
    }

    /// The port the protocol listens on unless the workstation says otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Rdp => 3389,
            Protocol::Vnc => 5900,
            Protocol::Ssh => 22,
        }
    }

    pub fn parse(s: &str) -> Option<Protocol> {
        let s = s.trim();
        Protocol::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

/// A dedicated workstation belongs to one person; a pooled one is booked by time slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Dedicated,
    Pooled,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Dedicated, Mode::Pooled];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Dedicated => "dedicated",
            Mode::Pooled => "pooled",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        let s = s.trim();
        Mode::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

/// What the last reachability probe found; `unknown` until the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Unknown,
    Online,
    Offline,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Unknown, Status::Online, Status::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Unknown => "unknown",
            Status::Online => "online",
            Status::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        let s = s.trim();
        Status::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Hosts and addresses

/// A workstation's name on the network: a DNS hostname (lowercase, RFC 1123) or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    pub const MAX_LEN: usize = 253;

    /// Blank is `required`; anything that is neither an IP address nor a valid hostname is `invalid-host`.
    pub fn parse(input: &str) -> Result<Host, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err(codes::REQUIRED);
        }
        let unbracketed = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        // A trailing dot is the fully-qualified spelling of the same name.
        let name = s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase();
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(codes::INVALID_HOST);
        }
        let labels_ok = name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        // An all-numeric last label would make `10.0.0.256` a "hostname": it is a mistyped address.
        let last_numeric = name.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
        if !labels_ok || last_numeric {
            return Err(codes::INVALID_HOST);
        }
        Ok(Host::Name(name))
    }

    pub fn as_string(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(ip) => ip.fmt(f),
        }
    }
}

/// An optional IP address to connect to instead of resolving the hostname.
pub fn parse_address(input: &str) -> Result<Option<IpAddr>, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let unbracketed = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(s);
    unbracketed.parse::<IpAddr>().map(Some).map_err(|_| codes::INVALID_ADDRESS)
}

/// A TCP port, 1–65535; blank means the protocol's default.
pub fn parse_port(input: &str, protocol: Option<Protocol>) -> Result<u16, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(protocol.unwrap_or(Protocol::Rdp).default_port());
    }
    match s.parse::<u16>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(codes::INVALID_PORT),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// MAC address and the Wake-on-LAN magic packet

/// A network card's hardware address, for Wake-on-LAN. Written `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` (Windows), `aabb.ccdd.eeff` (Cisco) and `aabbccddeeff`.
    /// A multicast or all-zero address belongs to no network card: `invalid-mac`.
    pub fn parse(input: &str) -> Result<Mac, &'static str> {
        let s = input.trim();
        let hex: String = if s.len() == 17 && (s.split(':').count() == 6 || s.split('-').count() == 6) {
            let sep = if s.contains(':') { ':' } else { '-' };
            if !s.split(sep).all(|g| g.len() == 2) {
                return Err(codes::INVALID_MAC);
            }
            s.split(sep).collect()
        } else if s.len() == 14 && s.split('.').count() == 3 && s.split('.').all(|g| g.len() == 4) {
            s.split('.').collect()
        } else if s.len() == 12 {
            s.to_owned()
        } else {
            return Err(codes::INVALID_MAC);
        };
        let bytes = hex::decode(hex).map_err(|_| codes::INVALID_MAC)?;
        let arr: [u8; 6] = bytes.try_into().map_err(|_| codes::INVALID_MAC)?;
        if arr[0] & 1 == 1 || arr == [0; 6] {
            return Err(codes::INVALID_MAC);
        }
        Ok(Mac(arr))
    }

    /// The Wake-on-LAN magic packet: six 0xFF bytes, then the address sixteen times.
    pub fn magic_packet(&self) -> [u8; 102] {
        let mut p = [0xFFu8; 102];
        for i in 0..16 {
            p[6 + i * 6..12 + i * 6].copy_from_slice(&self.0);
        }
        p
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Tags and free text

/// Short labels to group workstations by (`piano-3`, `cad`, `sede-milano`): lowercase letters, digits, `-`, `_`
/// and `.`, at most 32 characters each and 16 per workstation, without repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tags(Vec<String>);

impl Tags {
    pub const MAX_TAGS: usize = 16;
    pub const MAX_LEN: usize = 32;

    pub fn parse_one(input: &str) -> Result<String, &'static str> {
        let t = input.trim().to_lowercase();
        let ok = !t.is_empty()
            && t.chars().count() <= Self::MAX_LEN
            && t.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok { Ok(t) } else { Err(codes::INVALID_TAG) }
    }

    pub fn from_list<S: AsRef<str>>(items: &[S]) -> Result<Tags, &'static str> {
        let mut out: Vec<String> = Vec::new();
        for i in items {
            let t = Self::parse_one(i.as_ref())?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.len() > Self::MAX_TAGS {
            return Err(codes::TOO_MANY_TAGS);
        }
        Ok(Tags(out))
    }

    /// A cell or a form field: tags separated by spaces, commas or semicolons.
    pub fn parse_text(input: &str) -> Result<Tags, &'static str> {
        let items: Vec<&str> = input.split(|c: char| c.is_whitespace() || c == ',' || c == ';').filter(|s| !s.is_empty()).collect();
        Self::from_list(&items)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// How the column stores them: ` a b ` (each tag between spaces), so `LIKE '% tag %'` finds one on both engines.
    pub fn to_column(&self) -> String {
        if self.0.is_empty() { String::new() } else { format!(" {} ", self.0.join(" ")) }
    }

    pub fn from_column(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }
}

/// Optional free text (operating system, location): blank is absent. A leading `=`, `+`, `-` or `@` is refused,
/// so that an exported CSV opened in a spreadsheet never runs a formula — and the export needs no escaping to
/// round-trip.
pub fn parse_free_text(input: &str, max: usize) -> Result<Option<String>, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if s.starts_with(['=', '+', '-', '@']) || s.contains(['\n', '\r', '\t']) {
        return Err(codes::FORMAT);
    }
    Text::parse(s, max).map(|t| Some(t.into_string())).map_err(|e| e.code())
}

pub const OS_MAX: usize = 80;
pub const LOCATION_MAX: usize = 120;

// ---------------------------------------------------------------------------------------------------------------
// One workstation's input

/// A workstation as submitted, every field as text: from the API, a form or a CSV row. The assignee is named by
/// email, as people write it in a spreadsheet.
#[derive(Clone, Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(default)]
pub struct WorkstationInput {
    /// DNS name (`pc-lom-0001.regione.lombardia.it`) or IP address. Unique in the organisation, case-insensitively.
    pub hostname: String,
    /// IP address to connect to instead of resolving the hostname (optional).
    pub address: String,
    /// `rdp` (default), `vnc` or `ssh`.
    pub protocol: String,
    /// 1–65535; blank for the protocol's default (3389, 5900, 22).
    pub port: String,
    pub os: String,
    pub location: String,
    /// Separated by spaces, commas or semicolons.
    pub tags: String,
    /// For Wake-on-LAN (optional).
    pub mac: String,
    /// `dedicated` or `pooled` (default).
    pub mode: String,
    /// Email of the member of the organisation a dedicated workstation belongs to (optional).
    pub assignee: String,
}

/// A valid workstation, ready to store (the assignee still has to be found among the organisation's members).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWorkstation {
    pub hostname: Host,
    pub address: Option<IpAddr>,
    pub protocol: Protocol,
    pub port: u16,
    pub os: Option<String>,
    pub location: Option<String>,
    pub tags: Tags,
    pub mac: Option<Mac>,
    pub mode: Mode,
    /// Lowercased email.
    pub assignee: Option<String>,
}

impl WorkstationInput {
    /// Every complaint at once, each under the name of its field.
    pub fn parse(&self) -> Result<NewWorkstation, FieldErrors> {
        let mut e = FieldErrors::new();
        let hostname = Host::parse(&self.hostname).map_err(|c| e.add("hostname", c)).ok();
        let address = parse_address(&self.address).map_err(|c| e.add("address", c)).ok();
        let protocol = if self.protocol.trim().is_empty() {
            Some(Protocol::Rdp)
        } else {
            let p = Protocol::parse(&self.protocol);
            if p.is_none() {
                e.add("protocol", codes::INVALID_PROTOCOL);
            }
            p
        };
        let port = parse_port(&self.port, protocol).map_err(|c| e.add("port", c)).ok();
        let os = parse_free_text(&self.os, OS_MAX).map_err(|c| e.add("os", c)).ok();
        let location = parse_free_text(&self.location, LOCATION_MAX).map_err(|c| e.add("location", c)).ok();
        let tags = Tags::parse_text(&self.tags).map_err(|c| e.add("tags", c)).ok();
        let mac = if self.mac.trim().is_empty() {
            Some(None)
        } else {
            Mac::parse(&self.mac).map(Some).map_err(|c| e.add("mac", c)).ok()
        };
        let mode = if self.mode.trim().is_empty() {
            Some(Mode::Pooled)
        } else {
            let m = Mode::parse(&self.mode);
            if m.is_none() {
                e.add("mode", codes::INVALID_MODE);
            }
            m
        };
        let assignee = {
            let a = self.assignee.trim();
            if a.is_empty() {
                Some(None)
            } else {
                match agilekit_kernel::validate::Email::parse(a) {
                    Ok(em) => Some(Some(em.as_str().to_owned())),
                    Err(_) => {
                        e.add("assignee", codes::NOT_MEMBER);
                        None
                    }
                }
            }
        };
        if mode == Some(Mode::Pooled) && matches!(assignee, Some(Some(_))) {
            e.add("assignee", codes::NOT_DEDICATED);
        }
        match (hostname, address, protocol, port, os, location, tags, mac, mode, assignee) {
            (Some(hostname), Some(address), Some(protocol), Some(port), Some(os), Some(location), Some(tags), Some(mac), Some(mode), Some(assignee))
                if e.is_empty() =>
            {
                Ok(NewWorkstation { hostname, address, protocol, port, os, location, tags, mac, mode, assignee })
            }
            _ => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Booking slots

/// Bookings start and end on a quarter of an hour: slots that line up are easy to read on a board and leave no
/// unusable gaps of a few minutes between two bookings.
pub const SLOT_MINUTES: i64 = 15;
/// A working day with overtime; a longer hold is a dedicated workstation, not a booking.
pub const MAX_SLOT_HOURS: i64 = 12;
/// How far ahead a seat may be booked.
pub const MAX_AHEAD_DAYS: i64 = 60;

/// A time slot of a booking: start before end, both on a quarter hour, at most [`MAX_SLOT_HOURS`] long, starting
/// no earlier than the current quarter hour and no later than [`MAX_AHEAD_DAYS`] from now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

fn aligned(t: OffsetDateTime) -> bool {
    t.nanosecond() == 0 && t.second() == 0 && i64::from(t.minute()) % SLOT_MINUTES == 0
}

/// The start of the quarter hour `t` falls in.
pub fn floor_slot(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    let minute = u8::try_from(i64::from(t.minute()) / SLOT_MINUTES * SLOT_MINUTES).unwrap_or(0);
    t.replace_nanosecond(0).and_then(|x| x.replace_second(0)).and_then(|x| x.replace_minute(minute)).unwrap_or(t)
}

impl Slot {
    pub fn parse(start: OffsetDateTime, end: OffsetDateTime, now: OffsetDateTime) -> Result<Slot, FieldErrors> {
        let mut e = FieldErrors::new();
        // In UTC; an instant that has no UTC reading the calendar can write (year 10000) is out of range.
        let utc = |t: OffsetDateTime| t.checked_to_offset(time::UtcOffset::UTC);
        let (Some(start), Some(end)) = (utc(start), utc(end)) else {
            for (field, t) in [("starts_at", start), ("ends_at", end)] {
                if utc(t).is_none() {
                    e.add(field, codes::OUT_OF_RANGE);
                }
            }
            return Err(e);
        };
        if !aligned(start) {
            e.add("starts_at", codes::NOT_ALIGNED);
        } else if start < floor_slot(now) {
            e.add("starts_at", codes::IN_PAST);
        } else if start > now + Duration::days(MAX_AHEAD_DAYS) {
            e.add("starts_at", codes::TOO_FAR);
        }
        if !aligned(end) {
            e.add("ends_at", codes::NOT_ALIGNED);
        } else if end <= start {
            e.add("ends_at", codes::BEFORE_START);
        } else if end - start > Duration::hours(MAX_SLOT_HOURS) {
            e.add("ends_at", codes::SLOT_TOO_LONG);
        }
        if !e.is_empty() {
            return Err(e);
        }
        Ok(Slot { start, end })
    }

    pub fn overlaps(&self, other: &Slot) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// The instants the API takes, in Unix seconds: from 1970 to the start of 9999. RFC 3339 can write years 0 to
/// 9999 with offsets of up to a day, and the arithmetic of a slot or a window (the offset applied, 14 or 62 days
/// added) must stay within what the time library and both databases hold.
const EARLIEST_INSTANT: i64 = 0;
const LATEST_INSTANT: i64 = 253_370_764_800;

/// Reads an instant the API was given: RFC 3339 (`2026-03-02T08:00:00Z`, or with an offset), returned in UTC
/// (stored instants are UTC, and SQLite compares them as text). Outside 1970–9998 it is `out-of-range`.
pub fn parse_instant(s: &str) -> Result<OffsetDateTime, &'static str> {
    let s = s.trim();
    if s.is_empty() {
        return Err(codes::REQUIRED);
    }
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|_| codes::FORMAT)?;
    // `unix_timestamp` reads the instant without moving it to another offset, which could leave the calendar.
    if !(EARLIEST_INSTANT..LATEST_INSTANT).contains(&t.unix_timestamp()) {
        return Err(codes::OUT_OF_RANGE);
    }
    Ok(t.to_offset(time::UtcOffset::UTC))
}

/// A date and time on a wall clock in Rome (as a form gives them) as an instant: the offset is the one Rome has
/// then. In the hour that repeats when summer time ends, the first (summer-time) reading wins.
pub fn rome_local(date: time::Date, t: time::Time) -> OffsetDateTime {
    let local = time::PrimitiveDateTime::new(date, t);
    // At the ends of the calendar an offset could move the instant out of it: read such a date as UTC, which the
    // slot's checks then refuse (a date of year 0 is in the past; one of 9999 too far ahead).
    if !(1..=9998).contains(&date.year()) {
        return local.assume_utc();
    }
    for hours in [2i8, 1] {
        let off = time::UtcOffset::from_hms(hours, 0, 0).unwrap_or(time::UtcOffset::UTC);
        let candidate = local.assume_offset(off);
        if agilekit_kernel::clock::rome_offset(candidate) == off {
            return candidate.to_offset(time::UtcOffset::UTC);
        }
    }
    // The hour skipped when summer time starts: read it as winter time.
    local.assume_offset(time::UtcOffset::from_hms(1, 0, 0).unwrap_or(time::UtcOffset::UTC)).to_offset(time::UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hosts_are_hostnames_or_addresses() {
        assert_eq!(Host::parse(" PC-LOM-0001.Regione.Lombardia.IT. "), Ok(Host::Name("pc-lom-0001.regione.lombardia.it".into())));
        assert_eq!(Host::parse("10.20.3.4"), Ok(Host::Ip("10.20.3.4".parse().unwrap())));
        assert_eq!(Host::parse("[fd00::1]"), Ok(Host::Ip("fd00::1".parse().unwrap())));
        assert_eq!(Host::parse(""), Err(codes::REQUIRED));
        for bad in ["10.0.0.256", "-pc.example", "pc-.example", "pc..example", "pc_01", "pc 01", "pc:3389", "città.it", &"a".repeat(64)] {
            assert_eq!(Host::parse(bad), Err(codes::INVALID_HOST), "{bad}");
        }
        assert_eq!(Host::parse(&format!("{}.it", vec!["a".repeat(63); 4].join("."))), Err(codes::INVALID_HOST));
    }

    #[test]
    fn ports_default_by_protocol_and_stay_in_range() {
        assert_eq!(parse_port("", Some(Protocol::Vnc)), Ok(5900));
        assert_eq!(parse_port("", Some(Protocol::Ssh)), Ok(22));
        assert_eq!(parse_port("", None), Ok(3389));
        assert_eq!(parse_port(" 3390 ", Some(Protocol::Rdp)), Ok(3390));
        for bad in ["0", "65536", "-1", "33.89", "rdp"] {
            assert_eq!(parse_port(bad, Some(Protocol::Rdp)), Err(codes::INVALID_PORT), "{bad}");
        }
    }

    #[test]
    fn mac_addresses_in_every_usual_spelling() {
        let want = Mac([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]);
        for s in ["00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2b3c.4d5e", "001A2B3C4D5E"] {
            assert_eq!(Mac::parse(s), Ok(want), "{s}");
        }
        assert_eq!(want.to_string(), "00:1a:2b:3c:4d:5e");
        for bad in ["00:1a:2b:3c:4d", "00:1a:2b:3c:4d:5g", "01:00:5e:00:00:01", "00:00:00:00:00:00", "00:1a-2b:3c:4d:5e", "0:1a:2b:3c:4d:5e:"] {
            assert_eq!(Mac::parse(bad), Err(codes::INVALID_MAC), "{bad}");
        }
    }

    #[test]
    fn the_magic_packet_is_six_ff_then_sixteen_macs() {
        let mac = Mac([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]);
        let p = mac.magic_packet();
        assert_eq!(p.len(), 102);
        assert_eq!(&p[..6], &[0xFF; 6]);
        for i in 0..16 {
            assert_eq!(&p[6 + 6 * i..12 + 6 * i], &[0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e], "repetition {i}");
        }
    }

    #[test]
    fn tags_are_normalised_and_bounded() {
        let t = Tags::parse_text("Piano-3, CAD;cad  sede.milano").unwrap();
        assert_eq!(t.as_slice(), ["piano-3", "cad", "sede.milano"]);
        assert_eq!(t.to_column(), " piano-3 cad sede.milano ");
        assert_eq!(Tags::from_column(&t.to_column()), ["piano-3", "cad", "sede.milano"]);
        assert_eq!(Tags::parse_text("").unwrap().to_column(), "");
        assert_eq!(Tags::parse_text("a/b"), Err(codes::INVALID_TAG));
        assert_eq!(Tags::parse_text(&"x".repeat(33)), Err(codes::INVALID_TAG));
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        assert_eq!(Tags::from_list(&many), Err(codes::TOO_MANY_TAGS));
    }

    #[test]
    fn free_text_refuses_spreadsheet_formulas() {
        assert_eq!(parse_free_text("  Windows 11  ", OS_MAX), Ok(Some("Windows 11".into())));
        assert_eq!(parse_free_text("", OS_MAX), Ok(None));
        for bad in ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)"] {
            assert_eq!(parse_free_text(bad, OS_MAX), Err(codes::FORMAT), "{bad}");
        }
        assert_eq!(parse_free_text(&"x".repeat(81), OS_MAX), Err("too-long"));
    }

    #[test]
    fn an_input_reports_every_bad_field() {
        let i = WorkstationInput {
            hostname: "pc 1".into(), address: "10.0.0.300".into(), protocol: "telnet".into(), port: "99999".into(),
            mac: "zz".into(), mode: "shared".into(), tags: "a/b".into(), ..Default::default()
        };
        let e = i.parse().unwrap_err();
        let got: Vec<(&str, &str)> = e.0.iter().map(|x| (x.field.as_str(), x.code.as_str())).collect();
        assert_eq!(got, [
            ("hostname", "invalid-host"), ("address", "invalid-address"), ("protocol", "invalid-protocol"),
            ("port", "invalid-port"), ("tags", "invalid-tag"), ("mac", "invalid-mac"), ("mode", "invalid-mode"),
        ]);
        let ok = WorkstationInput { hostname: "PC-1".into(), protocol: "VNC".into(), mode: "dedicated".into(), assignee: "A@B.IT".into(), ..Default::default() }
            .parse()
            .unwrap();
        assert_eq!((ok.protocol, ok.port, ok.mode, ok.assignee.as_deref()), (Protocol::Vnc, 5900, Mode::Dedicated, Some("a@b.it")));
        let pooled = WorkstationInput { hostname: "pc-2".into(), assignee: "a@b.it".into(), ..Default::default() };
        assert_eq!(pooled.parse().unwrap_err().get("assignee"), Some("not-dedicated"));
    }

    #[test]
    fn slots_are_quarter_hours_ahead_and_bounded() {
        let now = datetime!(2026-03-02 08:07:30 UTC);
        let ok = Slot::parse(datetime!(2026-03-02 08:00 UTC), datetime!(2026-03-02 12:30 UTC), now).unwrap();
        assert_eq!(ok.end - ok.start, Duration::minutes(270));
        let code = |s, e| {
            let err = Slot::parse(s, e, now).unwrap_err();
            err.0.iter().map(|x| format!("{}:{}", x.field, x.code)).collect::<Vec<_>>().join(",")
        };
        assert_eq!(code(datetime!(2026-03-02 08:10 UTC), datetime!(2026-03-02 09:00 UTC)), "starts_at:not-aligned");
        assert_eq!(code(datetime!(2026-03-02 07:45 UTC), datetime!(2026-03-02 09:00 UTC)), "starts_at:in-past");
        assert_eq!(code(datetime!(2026-05-02 08:00 UTC), datetime!(2026-05-02 09:00 UTC)), "starts_at:too-far");
        assert_eq!(code(datetime!(2026-03-02 09:00 UTC), datetime!(2026-03-02 09:00 UTC)), "ends_at:before-start");
        assert_eq!(code(datetime!(2026-03-02 09:00 UTC), datetime!(2026-03-02 08:00 UTC)), "ends_at:before-start");
        assert_eq!(code(datetime!(2026-03-02 09:00 UTC), datetime!(2026-03-02 21:15 UTC)), "ends_at:slot-too-long");
        assert_eq!(code(datetime!(2026-03-02 09:00:01 UTC), datetime!(2026-03-02 10:00 UTC)), "starts_at:not-aligned");
        // An offset is fine as long as the instant is on a quarter hour.
        assert!(Slot::parse(datetime!(2026-03-02 10:00 +02:00), datetime!(2026-03-02 11:00 +02:00), now).is_ok());
        let a = Slot { start: datetime!(2026-03-02 08:00 UTC), end: datetime!(2026-03-02 09:00 UTC) };
        let b = Slot { start: datetime!(2026-03-02 09:00 UTC), end: datetime!(2026-03-02 10:00 UTC) };
        assert!(!a.overlaps(&b) && !b.overlaps(&a));
        assert!(a.overlaps(&Slot { start: datetime!(2026-03-02 08:45 UTC), end: datetime!(2026-03-02 09:15 UTC) }));
    }

    #[test]
    fn instants_are_rfc3339_within_the_years_the_service_deals_in() {
        assert_eq!(parse_instant(" 2026-03-02T09:00:00+01:00 "), Ok(datetime!(2026-03-02 08:00 UTC)));
        assert_eq!(parse_instant("2026-03-02T09:00:00+01:00").unwrap().offset(), time::UtcOffset::UTC);
        assert_eq!(parse_instant(""), Err(codes::REQUIRED));
        assert_eq!(parse_instant("2026-02-30T10:00:00Z"), Err(codes::FORMAT));
        // Year 10000 once the offset is applied, year -1 likewise, and the days a window or a slot adds to them.
        for edge in ["9999-12-31T23:45:00-01:00", "9999-12-20T00:00:00Z", "0000-01-01T00:00:00+01:00", "1969-12-31T23:59:59Z"] {
            assert_eq!(parse_instant(edge), Err(codes::OUT_OF_RANGE), "{edge}");
        }
        assert!(parse_instant("9998-12-31T23:45:00Z").is_ok());
        // Slots built by hand (the pages' Rome wall clock) at the same edges are refused, not a crash.
        let late = OffsetDateTime::parse("9999-12-31T23:45:00-01:00", &time::format_description::well_known::Rfc3339).unwrap();
        let now = datetime!(2026-03-02 08:07:30 UTC);
        assert_eq!(Slot::parse(late, late, now).unwrap_err().get("starts_at"), Some(codes::OUT_OF_RANGE));
        let first = time::Date::from_calendar_date(-9999, time::Month::January, 1).unwrap();
        let last = time::Date::from_calendar_date(9999, time::Month::December, 31).unwrap();
        assert_eq!(rome_local(first, time::macros::time!(00:00)).year(), -9999);
        assert_eq!(rome_local(last, time::macros::time!(23:45)).year(), 9999);
    }

    #[test]
    fn rome_wall_clock_times_become_utc_instants() {
        let d = |y, m, day| time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), day).unwrap();
        assert_eq!(rome_local(d(2026, 1, 15), time::macros::time!(09:00)), datetime!(2026-01-15 08:00 UTC));
        assert_eq!(rome_local(d(2026, 7, 15), time::macros::time!(09:00)), datetime!(2026-07-15 07:00 UTC));
        // 02:30 on 29 March 2026 does not exist in Rome; 02:30 on 25 October happens twice.
        assert_eq!(rome_local(d(2026, 3, 29), time::macros::time!(02:30)), datetime!(2026-03-29 01:30 UTC));
        assert_eq!(rome_local(d(2026, 10, 25), time::macros::time!(02:30)), datetime!(2026-10-25 00:30 UTC));
    }
}
