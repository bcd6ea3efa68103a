//! An access event and its canonical encoding, which is what a Merkle leaf commits to. The
//! verifier re-encodes each stored row, so a change to any field changes the leaf.

/// One access to information (or an account event), as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Random event id.
    pub id: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The account that acted, if any.
    pub actor_account: Option<String>,
    /// `patient`, `staff:<role>`, `operator`, `anonymous`, `console` or `system`.
    pub actor_role: String,
    /// The actor's practice, for staff.
    pub actor_practice: Option<String>,
    /// The session the request came with.
    pub session: Option<String>,
    /// Client address.
    pub ip: String,
    /// Client user agent (truncated).
    pub user_agent: String,
    /// On whose behalf, or a break-glass reason.
    pub on_behalf: Option<String>,
    /// `read`, `list`, `search`, `create`, `update`, `delete`, `export`, `push`, `key_unwrap`,
    /// `sign_in`, `sign_out`, `session_end`, …
    pub action: String,
    /// What kind of object.
    pub object_type: String,
    /// Which object.
    pub object_id: String,
    /// The patient the information is about, if any.
    pub patient: Option<String>,
    /// The controlling practice, if any.
    pub practice: Option<String>,
    /// `allowed`, `denied`, `not_found` or `failed`.
    pub outcome: String,
    /// The request id, to join with logs.
    pub request_id: String,
    /// The module the access happened in (a `domain::Module` code).
    pub module: String,
    /// The encoding the leaf commits to: [`FORMAT_V1`] for events written before events named
    /// their module (their module was filled in later, from the object kind, and is not
    /// committed); [`FORMAT_V2`] (or 0, the default) for every event since.
    pub format: u8,
}

/// The first encoding: every field but the module.
pub const FORMAT_V1: u8 = 1;
/// The current encoding: the module too.
pub const FORMAT_V2: u8 = 2;

fn put(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
    out.push(b'\n');
}

fn put_opt(out: &mut Vec<u8>, name: &str, value: Option<&str>) {
    match value {
        // Absent and empty must encode differently.
        None => {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"~\n");
        }
        Some(v) => put(out, name, v),
    }
}

impl Event {
    /// The bytes a leaf commits to: a fixed header naming the format, then every field, one per
    /// line, in a fixed order, with `\`, newline and carriage return escaped. A format-1 event
    /// encodes exactly as it did when it was written.
    #[must_use]
    pub fn canonical(&self) -> Vec<u8> {
        let v1 = self.format == FORMAT_V1;
        let mut out = if v1 { b"tiaki-audit-event/v1\n".to_vec() } else { b"tiaki-audit-event/v2\n".to_vec() };
        put(&mut out, "id", &self.id);
        put(&mut out, "at_ms", &self.at_ms.to_string());
        put_opt(&mut out, "actor_account", self.actor_account.as_deref());
        put(&mut out, "actor_role", &self.actor_role);
        put_opt(&mut out, "actor_practice", self.actor_practice.as_deref());
        put_opt(&mut out, "session", self.session.as_deref());
        put(&mut out, "ip", &self.ip);
        put(&mut out, "user_agent", &self.user_agent);
        put_opt(&mut out, "on_behalf", self.on_behalf.as_deref());
        put(&mut out, "action", &self.action);
        put(&mut out, "object_type", &self.object_type);
        put(&mut out, "object_id", &self.object_id);
        put_opt(&mut out, "patient", self.patient.as_deref());
        put_opt(&mut out, "practice", self.practice.as_deref());
        put(&mut out, "outcome", &self.outcome);
        put(&mut out, "request_id", &self.request_id);
        if !v1 {
            put(&mut out, "module", &self.module);
        }
        out
    }

    /// The Merkle leaf hash of this event.
    #[must_use]
    pub fn leaf_hash(&self) -> crate::merkle::Hash {
        crate::merkle::leaf_hash(&self.canonical())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_field_is_committed_and_encoding_is_unambiguous() {
        let e = Event { id: "e".into(), actor_role: "patient".into(), ..Event::default() };
        let base = e.leaf_hash();
        let variants = [
            Event { at_ms: 1, ..e.clone() },
            Event { actor_account: Some(String::new()), ..e.clone() },
            Event { ip: "x".into(), ..e.clone() },
            Event { user_agent: "a\nip=x".into(), ..e.clone() },
            Event { patient: Some("p".into()), ..e.clone() },
            Event { outcome: "denied".into(), ..e.clone() },
            Event { request_id: "r".into(), ..e.clone() },
            Event { module: "documents".into(), ..e.clone() },
            Event { format: FORMAT_V1, ..e.clone() },
        ];
        for v in &variants {
            assert_ne!(v.leaf_hash(), base, "{v:?}");
        }
        // An injected newline cannot forge another field.
        let a = Event { user_agent: "ua\nip=1.2.3.4".into(), ..e.clone() };
        let b = Event { user_agent: "ua".into(), ip: "1.2.3.4".into(), ..e };
        assert_ne!(a.canonical(), b.canonical());
    }

    #[test]
    fn a_format_1_event_encodes_as_it_did_when_written() {
        // The bytes below are what the first encoding produced (before events named their
        // module); a log written then must keep verifying, whatever module is filled in later.
        let e = Event {
            id: "e1".into(),
            at_ms: 5,
            actor_role: "patient".into(),
            ip: "::1".into(),
            action: "read".into(),
            object_type: "document".into(),
            object_id: "d".into(),
            patient: Some("p".into()),
            outcome: "allowed".into(),
            module: "documents".into(),
            format: FORMAT_V1,
            ..Event::default()
        };
        let v1 = "tiaki-audit-event/v1\nid=e1\nat_ms=5\nactor_account~\nactor_role=patient\nactor_practice~\nsession~\n\
                  ip=::1\nuser_agent=\non_behalf~\naction=read\nobject_type=document\nobject_id=d\npatient=p\n\
                  practice~\noutcome=allowed\nrequest_id=\n";
        assert_eq!(String::from_utf8(e.canonical()).unwrap(), v1);
        assert_eq!(Event { module: "records".into(), ..e.clone() }.leaf_hash(), e.leaf_hash());
        // The same event in the current format commits to its module.
        let v2 = Event { format: FORMAT_V2, ..e };
        assert!(String::from_utf8(v2.canonical()).unwrap().ends_with("request_id=\nmodule=documents\n"));
        assert_ne!(v2.leaf_hash(), Event { module: "records".into(), ..v2.clone() }.leaf_hash());
    }
}
