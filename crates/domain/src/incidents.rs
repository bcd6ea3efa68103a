//! The incidents module's values (issue 18): an incident's indicators and how an access event is
//! matched against them, the three classes a patient can be in, the reference codes notices
//! carry, and the texts of the notices, with the content Privacy Act 2020 s 117 requires of a
//! notice to an affected person. No I/O.

use crate::appointments::stored_enum;
use std::net::IpAddr;

stored_enum!(
    /// What an incident's scope says of one patient.
    Class {
        /// A document or record item of theirs was served to an indicator.
        Confirmed = "confirmed" / "Affected",
        /// An indicator could have reached their information (it saw a list naming it, their
        /// details, a key was unlocked) but no document or record item was served.
        Possible = "possible" / "Possibly affected",
        /// Nothing of theirs was reached.
        NotAffected = "not_affected" / "No impact",
    }
);

impl Class {
    /// Worse first: a patient both possibly and certainly affected is affected.
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Self::Confirmed => 2,
            Self::Possible => 1,
            Self::NotAffected => 0,
        }
    }
}

/// A time window, in milliseconds since the Unix epoch, `from` included, `to` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    /// Start (inclusive).
    pub from_ms: i64,
    /// End (exclusive).
    pub to_ms: i64,
}

/// An IP address range (CIDR), or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange(ipnet::IpNet);

impl IpRange {
    /// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`.
    ///
    /// # Errors
    /// When it is neither an address nor a range.
    pub fn parse(text: &str) -> Result<Self, IndicatorError> {
        let t = text.trim();
        t.parse::<ipnet::IpNet>()
            .or_else(|_| t.parse::<IpAddr>().map(ipnet::IpNet::from))
            .map(Self)
            .map_err(|_| IndicatorError(format!("\"{text}\" is not an IP address or range (like 203.0.113.0/24)")))
    }

    /// Whether the range holds `ip` (an IPv4 address seen as IPv6-mapped is the same address).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 @ IpAddr::V4(_) => v4,
        };
        self.0.contains(&ip)
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// A bad indicator, with what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IndicatorError(pub String);

/// What identifies the attacker's accesses. An event matches when one of the "who" indicators
/// (account, session, API client, IP range, user agent) matches it, and it falls inside one of
/// the windows (if any are given) and one of the modules (if any are given).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Indicators {
    /// Account ids.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Session ids.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Organisation systems (API client ids).
    #[serde(default)]
    pub clients: Vec<String>,
    /// IP addresses and ranges (CIDR).
    #[serde(default)]
    pub ips: Vec<String>,
    /// User agents: an event's user agent containing one of these (case-insensitive) matches.
    #[serde(default)]
    pub user_agents: Vec<String>,
    /// Time windows.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Module codes.
    #[serde(default)]
    pub modules: Vec<String>,
}

/// The indicator an event matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'a> {
    /// One of the sessions.
    Session(&'a str),
    /// One of the accounts.
    Account(&'a str),
    /// One of the systems (API clients).
    System(&'a str),
    /// An address or range.
    Ip(IpRange),
    /// A user agent's words.
    UserAgent(&'a str),
}

impl std::fmt::Display for Match<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Session(s) => write!(f, "session {s}"),
            Self::Account(a) => write!(f, "account {a}"),
            Self::System(c) => write!(f, "system {c}"),
            Self::Ip(r) => write!(f, "IP {r}"),
            Self::UserAgent(u) => write!(f, "user agent \"{u}\""),
        }
    }
}

/// The fields of an access event the indicators look at.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The acting account (or API client).
    pub account: Option<&'a str>,
    /// The session.
    pub session: Option<&'a str>,
    /// The client address.
    pub ip: &'a str,
    /// The user agent.
    pub user_agent: &'a str,
    /// When.
    pub at_ms: i64,
    /// The module's code.
    pub module: &'a str,
}

fn cleaned(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = list.iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
    out.sort();
    out.dedup();
    out
}

impl Indicators {
    /// Trims, sorts and checks the indicators: at least one "who" indicator; ranges, windows
    /// and modules well formed; user agents at least 4 characters (a shorter one would match
    /// nearly everyone).
    ///
    /// # Errors
    /// What is wrong, and what to type instead.
    pub fn checked(&self) -> Result<Self, IndicatorError> {
        let out = Self {
            accounts: cleaned(&self.accounts),
            sessions: cleaned(&self.sessions),
            clients: cleaned(&self.clients),
            ips: cleaned(&self.ips),
            user_agents: cleaned(&self.user_agents),
            windows: {
                let mut w = self.windows.clone();
                w.sort_by_key(|w| (w.from_ms, w.to_ms));
                w.dedup();
                w
            },
            modules: cleaned(&self.modules),
        };
        for id in out.accounts.iter().chain(&out.sessions).chain(&out.clients) {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(IndicatorError(format!(
                    "\"{id}\" is not an account, session or system id (ids look like 0191c2a4-…)"
                )));
            }
        }
        for ip in &out.ips {
            IpRange::parse(ip)?;
        }
        if let Some(ua) = out.user_agents.iter().find(|u| u.chars().count() < 4) {
            return Err(IndicatorError(format!(
                "the user agent \"{ua}\" is too short to identify anyone: give at least 4 characters of it"
            )));
        }
        if let Some(w) = out.windows.iter().find(|w| w.to_ms <= w.from_ms) {
            return Err(IndicatorError(format!(
                "a time window must end after it starts ({} to {})",
                w.from_ms, w.to_ms
            )));
        }
        if let Some(m) = out.modules.iter().find(|m| crate::Module::parse(m).is_none()) {
            return Err(IndicatorError(format!(
                "\"{m}\" is not a module: use one of {}",
                crate::Module::ALL.iter().map(|m| m.code()).collect::<Vec<_>>().join(", ")
            )));
        }
        if out.accounts.is_empty()
            && out.sessions.is_empty()
            && out.clients.is_empty()
            && out.ips.is_empty()
            && out.user_agents.is_empty()
        {
            return Err(IndicatorError(
                "say who the attacker was: at least one account, session, system, IP address or range, or user agent"
                    .into(),
            ));
        }
        Ok(out)
    }

    /// Which indicator an event matches ("session 0191…", "IP 203.0.113.0/24"), if any.
    #[must_use]
    pub fn matching(&self, e: Seen<'_>) -> Option<String> {
        self.which(e).map(|m| m.to_string())
    }

    /// Which indicator an event matches, if any, without writing it out (a scope asks this of
    /// every event, and says it only of the first that puts a person in a class).
    #[must_use]
    pub fn which<'a>(&'a self, e: Seen<'_>) -> Option<Match<'a>> {
        if !self.windows.is_empty() && !self.windows.iter().any(|w| e.at_ms >= w.from_ms && e.at_ms < w.to_ms) {
            return None;
        }
        if !self.modules.is_empty() && !self.modules.iter().any(|m| m == e.module) {
            return None;
        }
        if let Some(s) = e.session.and_then(|s| self.sessions.iter().find(|x| *x == s)) {
            return Some(Match::Session(s));
        }
        if let Some(a) = e.account {
            if let Some(a) = self.accounts.iter().find(|x| *x == a) {
                return Some(Match::Account(a));
            }
            if let Some(c) = self.clients.iter().find(|x| *x == a) {
                return Some(Match::System(c));
            }
        }
        if !self.ips.is_empty()
            && let Ok(ip) = e.ip.parse::<IpAddr>()
            && let Some(r) = self.ips.iter().filter_map(|r| IpRange::parse(r).ok()).find(|r| r.contains(ip))
        {
            return Some(Match::Ip(r));
        }
        if self.user_agents.is_empty() {
            return None;
        }
        let ua = e.user_agent.to_lowercase();
        self.user_agents.iter().find(|u| ua.contains(&u.to_lowercase())).map(|u| Match::UserAgent(u))
    }

    /// Ids the log is indexed by (accounts, systems and sessions): without one, the scope reads
    /// every event in the windows.
    #[must_use]
    pub fn indexed(&self) -> bool {
        !(self.accounts.is_empty() && self.sessions.is_empty() && self.clients.is_empty())
    }

    /// How the scope finds the events: by account and session when it can, and by time when
    /// only addresses and agents are known (which needs a window).
    ///
    /// # Errors
    /// With neither an id nor a window, the whole log would be read.
    pub fn searchable(&self) -> Result<(), IndicatorError> {
        // Addresses and agents are not indexed: the events of their windows are read whole, so
        // without a window they would match nothing found by id, silently.
        if (self.ips.is_empty() && self.user_agents.is_empty()) || !self.windows.is_empty() {
            Ok(())
        } else {
            Err(IndicatorError(
                "with IP addresses or user agents, give a time window too (their events are found by time)".into(),
            ))
        }
    }
}

/// Whether text that goes into notices (an incident's description, what is being done) could
/// read as a link, an address to write to or a request to act on one.
#[must_use]
pub fn reads_as_link(text: &str) -> bool {
    let t = text.to_lowercase();
    ["://", "www.", "@", "http", "click", "log in", "sign in to", "enter your", "reply with"]
        .iter()
        .any(|x| t.contains(x))
        || t.split_whitespace().any(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            [".nz", ".com", ".org", ".net", ".io"].iter().any(|tld| w.ends_with(tld) && w.len() > tld.len())
        })
}

/// Characters of reference codes: Crockford's base 32 (no I, L, O or U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new reference code: 80 random bits as 16 characters in four groups (`7KQ2-9XMD-…`).
#[must_use]
pub fn new_reference() -> String {
    let a = uuid::Uuid::new_v4().as_u128();
    let b = uuid::Uuid::new_v4().as_u128();
    // The low 61 bits of one v4 uuid and the low 19 of another: all random (a v4 uuid's
    // version and variant bits are above bit 61).
    let bits = ((a & ((1 << 61) - 1)) << 19) | (b & ((1 << 19) - 1));
    let mut out = String::with_capacity(19);
    for i in 0..16 {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        let idx = usize::try_from((bits >> (75 - i * 5)) & 31).unwrap_or(0);
        out.push(char::from(ALPHABET[idx]));
    }
    out
}

/// A typed reference code in its one canonical form (upper case, grouped), or `None` when it
/// cannot be one. Spaces and dashes are ignored; O is read as 0 and I or L as 1.
#[must_use]
pub fn normalise_reference(text: &str) -> Option<String> {
    let mut chars = Vec::with_capacity(16);
    for c in text.chars() {
        let c = match c.to_ascii_uppercase() {
            ' ' | '-' | '\u{2010}'..='\u{2015}' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if ALPHABET.contains(&u8::try_from(u32::from(c)).unwrap_or(b'U')) => c,
            _ => return None,
        };
        chars.push(c);
        if chars.len() > 16 {
            return None;
        }
    }
    if chars.len() != 16 {
        return None;
    }
    let mut out = String::with_capacity(19);
    for (i, c) in chars.into_iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    Some(out)
}

/// What a notice says: everything but the person's own part comes from the incident and its
/// revision, so every notice of one revision says the same thing.
#[derive(Debug, Clone, Default)]
pub struct NoticeFacts {
    /// The person's name (the notice is addressed to them).
    pub name: String,
    /// What happened, in plain words (the incident's description).
    pub what_happened: String,
    /// When it was found (a date people read, "27 November 2026").
    pub discovered_on: String,
    /// What Tiaki and the practices are doing.
    pub steps_taken: String,
    /// Whether and when the Privacy Commissioner was told ("on 28 November 2026").
    pub commissioner_told: String,
    /// The support phone number.
    pub support_phone: String,
    /// The person's class in the revision.
    pub class: Option<Class>,
    /// What of theirs was reached, one line each, with no health detail beyond a kind and a
    /// date ("a hospital discharge summary dated 3 March 2025, from Te Whatu Ora Te Tai Tokerau").
    pub items: Vec<String>,
    /// The notice's reference code.
    pub reference: String,
}

/// What a person can do, whatever their class.
const WHAT_YOU_CAN_DO: &str = "What you can do
- Be wary of emails, texts and calls that mention your health information or this incident. \
Tiaki will never ask you for your password, a sign-in code or payment, and this message has no links.
- If someone contacts you claiming to be from Tiaki or your practice, check the reference code they give \
by calling the number below.
- You do not need to change anything to stay safe, but you can choose a new password and turn on a second \
sign-in step in the Tiaki app at any time.
- If you are worried about how this affects you, talk to your doctor or practice.";

fn what_was_reached(f: &NoticeFacts) -> String {
    match f.class {
        Some(Class::Confirmed) => {
            let mut s = String::from(
                "What this means for you\nThe investigation found that the person who did this was shown the \
                 following information of yours:\n",
            );
            for item in &f.items {
                s.push_str("- ");
                s.push_str(item);
                s.push('\n');
            }
            s.pop();
            s
        }
        Some(Class::Possible) => "What this means for you\nThe investigation found that the person who did this \
             could have seen some of your information (for example, a list of your documents), but there is no \
             record of them opening any of your documents or health records."
            .into(),
        Some(Class::NotAffected) | None => "What this means for you\nThe investigation found that none of your \
             documents or health records were reached."
            .into(),
    }
}

fn common_end(f: &NoticeFacts) -> String {
    format!(
        "What we are doing\n{steps}\n\n{can_do}\n\nThe Privacy Commissioner\nWe told the Office of the Privacy \
         Commissioner about this {told}. If you are not happy with how we have handled your information, you can \
         complain to the Privacy Commissioner (phone 0800 803 909).\n\nWho to contact\nCall the Tiaki support line \
         on {phone} and give your reference code. You can also talk to your practice.\n\nYour reference code, to \
         check that this message is from us:\n{reference}\n",
        steps = f.steps_taken.trim(),
        can_do = WHAT_YOU_CAN_DO,
        told = f.commissioner_told.trim(),
        phone = f.support_phone.trim(),
        reference = f.reference,
    )
}

/// The first notice to an affected person (subject, body): plain text, no links.
#[must_use]
pub fn notice(f: &NoticeFacts) -> (String, String) {
    let subject = match f.class {
        Some(Class::Confirmed) => "Your health information was accessed without permission",
        _ => "Your health information may have been accessed without permission",
    };
    let body = format!(
        "Kia ora {name},\n\nWe are writing to tell you about a privacy breach at Tiaki, the patient portal your \
         practice uses.\n\nWhat happened\n{what} We found this on {found}.\n\n{reached}\n\n{end}",
        name = f.name.trim(),
        what = f.what_happened.trim(),
        found = f.discovered_on.trim(),
        reached = what_was_reached(f),
        end = common_end(f),
    );
    (subject.into(), body)
}

/// A correction to someone already told (subject, body): what they were told, and what the
/// investigation has since found.
#[must_use]
pub fn correction(f: &NoticeFacts, told_on: &str, was: Class) -> (String, String) {
    let before = match was {
        Class::Confirmed => "that some of your information was shown to the person who did this",
        Class::Possible => "that some of your information could have been seen by the person who did this",
        Class::NotAffected => "that none of your information was reached",
    };
    let body = format!(
        "Kia ora {name},\n\nWe wrote to you on {told_on} about a privacy breach at Tiaki, the patient portal your \
         practice uses, and said {before}. What the investigation has found since is different, and this message corrects \
         what we told you.\n\nWhat happened\n{what} We found this on {found}.\n\n{reached}\n\n{end}",
        name = f.name.trim(),
        what = f.what_happened.trim(),
        found = f.discovered_on.trim(),
        reached = what_was_reached(f),
        end = common_end(f),
    );
    ("A correction about the Tiaki privacy breach".into(), body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_hold_what_they_say() {
        let r = IpRange::parse("203.0.113.0/24").unwrap();
        assert!(r.contains("203.0.113.77".parse().unwrap()));
        assert!(!r.contains("203.0.114.1".parse().unwrap()));
        assert!(r.contains("::ffff:203.0.113.9".parse().unwrap()));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(IpRange::parse("2001:db8::/32").unwrap().contains("2001:db8:1::5".parse().unwrap()));
        assert!(!IpRange::parse("2001:db8::/32").unwrap().contains("203.0.113.1".parse().unwrap()));
        for bad in ["203.0.113.0/33", "nope", "1.2.3/8", ""] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn indicators_match_within_windows_and_modules() {
        let s = "0191c2a4-0000-7000-8000-000000000001";
        let i = Indicators {
            sessions: vec![s.into()],
            ips: vec!["203.0.113.0/24".into()],
            user_agents: vec!["python-requests".into()],
            windows: vec![Window { from_ms: 100, to_ms: 200 }],
            ..Indicators::default()
        }
        .checked()
        .unwrap();
        let e =
            Seen { account: None, session: Some(s), ip: "10.0.0.1", user_agent: "x", at_ms: 150, module: "documents" };
        assert_eq!(i.matching(e).unwrap(), format!("session {s}"));
        assert!(i.matching(Seen { at_ms: 200, ..e }).is_none(), "the window's end is excluded");
        assert!(i.matching(Seen { session: None, ip: "203.0.113.5", ..e }).unwrap().starts_with("IP"));
        assert!(i.matching(Seen { session: None, user_agent: "Python-Requests/2.31", ..e }).is_some());
        assert!(i.matching(Seen { session: None, ..e }).is_none());
        let m = Indicators { modules: vec!["records".into()], ..i.clone() };
        assert!(m.matching(e).is_none());
        assert!(Indicators::default().checked().is_err());
        assert!(
            Indicators { ips: vec!["1.2.3.4".into()], ..Indicators::default() }
                .checked()
                .unwrap()
                .searchable()
                .is_err()
        );
        let with_id = Indicators { ips: vec!["1.2.3.4".into()], sessions: vec![s.into()], ..Indicators::default() };
        assert!(with_id.checked().unwrap().searchable().is_err(), "an address without a window would be dropped");
        assert!(
            Indicators { sessions: vec![s.into()], ..Indicators::default() }.checked().unwrap().searchable().is_ok()
        );
        assert!(Indicators { user_agents: vec!["Moz".into()], ..Indicators::default() }.checked().is_err());
        assert!(Indicators { accounts: vec!["x".into()], ..Indicators::default() }.checked().is_err());
        assert!(Indicators { modules: vec!["nope".into()], ..i }.checked().is_err());
    }

    #[test]
    fn free_text_that_reads_as_a_link_is_caught() {
        for bad in
            ["see tiaki.nz", "http://x", "write to help@tiaki.nz", "Click here", "www.example.com/x", "log in to check"]
        {
            assert!(reads_as_link(bad), "{bad}");
        }
        for good in ["We ended the sessions involved.", "Someone used a GP's stolen password (Dr. Smith)."] {
            assert!(!reads_as_link(good), "{good}");
        }
    }

    #[test]
    fn reference_codes_are_random_and_read_back_however_typed() {
        let a = new_reference();
        assert_eq!(a.len(), 19);
        assert_eq!(normalise_reference(&a).unwrap(), a);
        assert_eq!(normalise_reference(&a.to_lowercase().replace('-', " ")).unwrap(), a);
        let codes: std::collections::HashSet<String> = (0..2_000).map(|_| new_reference()).collect();
        assert_eq!(codes.len(), 2_000);
        assert_eq!(normalise_reference("oooo-iiii-llll-0000").unwrap(), "0000-1111-1111-0000");
        for bad in ["", "ABCD", "ABCD-EFGH-JKMN-PQRS-T", "UUUU-UUUU-UUUU-UUUU", "<script>"] {
            assert!(normalise_reference(bad).is_none(), "{bad}");
        }
    }

    fn facts(class: Class) -> NoticeFacts {
        NoticeFacts {
            name: "Aroha Ngata".into(),
            what_happened: "Someone used a GP's stolen password to open patients' letters.".into(),
            discovered_on: "27 November 2026".into(),
            steps_taken: "We ended the sessions involved and locked the account.".into(),
            commissioner_told: "on 28 November 2026".into(),
            support_phone: "0800 824 254".into(),
            class: Some(class),
            items: vec!["a hospital discharge summary dated 3 March 2025, from Te Whatu Ora".into()],
            reference: new_reference(),
        }
    }

    /// Every text a notice campaign can send: each class's notice and each correction.
    fn every_notice() -> Vec<(String, String, NoticeFacts)> {
        let mut out = Vec::new();
        for class in [Class::Confirmed, Class::Possible] {
            let f = facts(class);
            let (s, b) = notice(&f);
            out.push((s, b, f));
        }
        for was in Class::ALL {
            for now in Class::ALL.iter().filter(|c| *c != was) {
                let f = facts(*now);
                let (s, b) = correction(&f, "28 November 2026", *was);
                out.push((s, b, f));
            }
        }
        out
    }

    #[test]
    fn every_notice_has_the_s117_content_and_no_link_or_request_for_credentials() {
        for (subject, body, f) in every_notice() {
            let all = format!("{subject}\n{body}").to_lowercase();
            // s 117(1): what happened; what is being done; what they can do; that the
            // Commissioner was told and that they may complain; who to contact.
            for heading in ["what happened\n", "what we are doing\n", "what you can do\n", "who to contact\n"] {
                assert!(all.contains(heading), "{heading:?} missing from {body}");
            }
            assert!(all.contains("office of the privacy commissioner"), "{body}");
            assert!(all.contains("complain"), "{body}");
            assert!(body.contains(&f.support_phone) && body.contains(&f.reference), "{body}");
            assert!(body.starts_with(&format!("Kia ora {},", f.name)), "personally addressed: {body}");
            for link in ["http", "www.", "://", ".nz/", ".com", "@"] {
                assert!(!all.contains(link), "{link:?} in {body}");
            }
            for ask in ["click", "enter your", "reply with", "confirm your", "verify your", "send us your", "log in to"]
            {
                assert!(!all.contains(ask), "{ask:?} in {body}");
            }
            assert!(all.contains("will never ask you for your password"), "{body}");
            if f.class == Some(Class::Confirmed) {
                assert!(body.contains(&f.items[0]), "{body}");
            } else {
                assert!(!body.contains(&f.items[0]), "{body}");
            }
        }
    }
}
