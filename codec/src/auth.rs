//! The auth section after the header (spec §5): plugin id + plugin fields, kept as
//! raw strings. Credentials are never interpreted here.

use bytes::{BufMut, Bytes};

use crate::error::{DecodeError, ErrorKind, Result};
use crate::wire::{PackStr, Reader};

pub const AUTH_NONE: u32 = 100;
pub const AUTH_MUNGE: u32 = 101;
pub const AUTH_JWT: u32 = 102;
pub const AUTH_SLURM: u32 = 103;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthSection {
    /// Header flag SLURM_NO_AUTH_CRED (23.02+): nothing follows the header.
    NoCredential,
    /// No auth bytes although the flag is not set: the frame's remaining bytes are
    /// exactly the body (legacy FLURM requests are sent like this).
    Absent,
    /// auth/none: uid, gid, hostname.
    None {
        uid: u32,
        gid: u32,
        hostname: PackStr,
    },
    /// auth/munge: the `MUNGE:…:` credential string.
    Munge { credential: PackStr },
    /// auth/jwt: token and user name.
    Jwt { token: PackStr, username: PackStr },
    /// auth/slurm (23.11+): an HS256 JWT.
    Slurm { token: PackStr },
    /// A plugin id this codec does not know; its fields are delimited by the
    /// header's body_length and kept raw.
    Unknown { plugin_id: u32, raw: Bytes },
}

impl AuthSection {
    /// Decodes the section that sits between the header and a body of
    /// `body_length` bytes; `no_cred` is the header's SLURM_NO_AUTH_CRED flag.
    pub fn decode(r: &mut Reader, body_length: u32, no_cred: bool) -> Result<Self> {
        let body_length = body_length as usize;
        if no_cred {
            // 22.05 echoes a request's 0x40 flag into its reply and still signs it:
            // a section that ends exactly where the body starts is a credential.
            if r.remaining() > body_length {
                let mut probe = r.clone();
                if let Ok(a) = Self::decode(&mut probe, body_length as u32, false) {
                    if probe.remaining() == body_length && !matches!(a, AuthSection::Unknown { .. })
                    {
                        *r = probe;
                        return Ok(a);
                    }
                }
            }
            return Ok(AuthSection::NoCredential);
        }
        if r.remaining() < body_length {
            return Err(r.error(ErrorKind::BodyLengthMismatch {
                declared: body_length as u32,
                available: r.remaining(),
            }));
        }
        let auth_len = r.remaining() - body_length;
        if auth_len == 0 {
            return Ok(AuthSection::Absent);
        }
        // Parse inside exactly the bytes that precede the body; with trailing bytes
        // allowed (upstream ≤ 22.05.10) the plugin fields decide where the body starts.
        let start = r.offset();
        if auth_len < 4 {
            return Err(r.error(ErrorKind::BodyLengthMismatch {
                declared: body_length as u32,
                available: r.remaining(),
            }));
        }
        let plugin_id = r.u32()?;
        let section = match plugin_id {
            AUTH_NONE => AuthSection::None {
                uid: r.u32()?,
                gid: r.u32()?,
                hostname: r.packstr()?,
            },
            AUTH_MUNGE => AuthSection::Munge {
                credential: r.packstr()?,
            },
            AUTH_JWT => AuthSection::Jwt {
                token: r.packstr()?,
                username: r.packstr()?,
            },
            AUTH_SLURM => AuthSection::Slurm {
                token: r.packstr()?,
            },
            _ => {
                return Ok(AuthSection::Unknown {
                    plugin_id,
                    raw: r.bytes(auth_len - 4)?,
                })
            }
        };
        if r.remaining() < body_length {
            return Err(DecodeError::new(
                start,
                ErrorKind::BodyLengthMismatch {
                    declared: body_length as u32,
                    available: auth_len,
                },
            ));
        }
        Ok(section)
    }

    pub fn encode(&self, w: &mut impl BufMut) {
        match self {
            AuthSection::NoCredential | AuthSection::Absent => {}
            AuthSection::None { uid, gid, hostname } => {
                w.put_u32(AUTH_NONE);
                w.put_u32(*uid);
                w.put_u32(*gid);
                hostname.encode(w);
            }
            AuthSection::Munge { credential } => {
                w.put_u32(AUTH_MUNGE);
                credential.encode(w);
            }
            AuthSection::Jwt { token, username } => {
                w.put_u32(AUTH_JWT);
                token.encode(w);
                username.encode(w);
            }
            AuthSection::Slurm { token } => {
                w.put_u32(AUTH_SLURM);
                token.encode(w);
            }
            AuthSection::Unknown { plugin_id, raw } => {
                w.put_u32(*plugin_id);
                w.put_slice(raw);
            }
        }
    }

    pub fn wire_len(&self) -> usize {
        match self {
            AuthSection::NoCredential | AuthSection::Absent => 0,
            AuthSection::None { hostname, .. } => 12 + hostname.wire_len(),
            AuthSection::Munge { credential } => 4 + credential.wire_len(),
            AuthSection::Jwt { token, username } => 4 + token.wire_len() + username.wire_len(),
            AuthSection::Slurm { token } => 4 + token.wire_len(),
            AuthSection::Unknown { raw, .. } => 4 + raw.len(),
        }
    }

    /// The plugin id on the wire, if any.
    pub fn plugin_id(&self) -> Option<u32> {
        match self {
            AuthSection::NoCredential | AuthSection::Absent => None,
            AuthSection::None { .. } => Some(AUTH_NONE),
            AuthSection::Munge { .. } => Some(AUTH_MUNGE),
            AuthSection::Jwt { .. } => Some(AUTH_JWT),
            AuthSection::Slurm { .. } => Some(AUTH_SLURM),
            AuthSection::Unknown { plugin_id, .. } => Some(*plugin_id),
        }
    }

    /// Short label for logs and JSON (never the credential itself).
    pub fn label(&self) -> &'static str {
        match self {
            AuthSection::NoCredential => "no_cred",
            AuthSection::Absent => "absent",
            AuthSection::None { .. } => "auth/none",
            AuthSection::Munge { .. } => "auth/munge",
            AuthSection::Jwt { .. } => "auth/jwt",
            AuthSection::Slurm { .. } => "auth/slurm",
            AuthSection::Unknown { .. } => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn munge_section_roundtrips_and_leaves_the_body() {
        let mut wire = vec![0, 0, 0, 101, 0, 0, 0, 8];
        wire.extend_from_slice(b"MUNGE:x\0");
        wire.extend_from_slice(&[0, 0, 0, 0]); // 4-byte body
        let mut r = Reader::new(Bytes::from(wire.clone()));
        let a = AuthSection::decode(&mut r, 4, false).unwrap();
        assert_eq!(r.remaining(), 4);
        let mut out = Vec::new();
        a.encode(&mut out);
        assert_eq!(out, wire[..16]);
        assert_eq!(a.wire_len(), 16);
    }

    #[test]
    fn no_bytes_before_the_body_is_absent() {
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 0]));
        assert_eq!(
            AuthSection::decode(&mut r, 4, false).unwrap(),
            AuthSection::Absent
        );
    }

    #[test]
    fn credential_overrunning_the_body_is_an_error() {
        let mut r = Reader::new(Bytes::from_static(&[
            0, 0, 0, 101, 0, 0, 0, 4, b'a', b'b', b'c', 0,
        ]));
        let e = AuthSection::decode(&mut r, 2, false).unwrap_err();
        assert_eq!(e.reason(), "body_length_mismatch");
    }

    #[test]
    fn flag_0x40_with_a_credential_anyway_keeps_the_credential() {
        // 22.05 copies a request's 0x40 into its reply and still signs it.
        let mut wire = vec![0, 0, 0, 101, 0, 0, 0, 8];
        wire.extend_from_slice(b"MUNGE:x\0");
        wire.extend_from_slice(&[0, 0, 0, 0]);
        let mut r = Reader::new(Bytes::from(wire));
        let a = AuthSection::decode(&mut r, 4, true).unwrap();
        assert!(matches!(a, AuthSection::Munge { .. }));
        assert_eq!(r.remaining(), 4);
        // Without spare bytes the flag means what it says.
        let mut r = Reader::new(Bytes::from_static(&[0, 0, 0, 0]));
        assert_eq!(
            AuthSection::decode(&mut r, 4, true).unwrap(),
            AuthSection::NoCredential
        );
    }
}
