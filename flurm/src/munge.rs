//! MUNGE credentials through Debian's libmunge, loaded at run time (`dlopen` of
//! `libmunge.so.2`), so `cargo build` works on a machine without MUNGE; only the
//! features that mint or verify credentials (legacy FLURM translation) need it.
//!
//! * [`Munge::encode`]: `munge_encode` with a payload (Slurm puts the body hash
//!   there, `slurm_codec::body_hash::k12_payload`) and an optional UID restriction
//!   (`MUNGE_OPT_UID_RESTRICTION`), through the socket given at load time
//!   (`MUNGE_OPT_SOCKET`; `None` = libmunge's default socket).
//! * [`Munge::decode`]: `munge_decode` of an incoming credential → uid, gid, payload.
//!
//! Credentials are secrets for their lifetime: nothing here logs or formats them
//! (errors carry only libmunge's status and message).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

const MUNGE_OPT_TTL: c_int = 4;
const MUNGE_OPT_SOCKET: c_int = 8;
const MUNGE_OPT_UID_RESTRICTION: c_int = 9;

/// `munge_err_t` values that callers act on.
pub const EMUNGE_SUCCESS: i32 = 0;
pub const EMUNGE_SOCKET: i32 = 6;
pub const EMUNGE_CRED_EXPIRED: i32 = 15;
pub const EMUNGE_CRED_REPLAYED: i32 = 17;
pub const EMUNGE_CRED_UNAUTHORIZED: i32 = 18;

/// Sonames tried in order (Debian: libmunge2 ships `.so.2`, libmunge-dev `.so`).
const LIBRARY_NAMES: [&str; 2] = ["libmunge.so.2", "libmunge.so"];

extern "C" {
    // libc's free(): munge_encode/munge_decode return malloc'ed buffers.
    fn free(p: *mut c_void);
}

type CtxCreate = unsafe extern "C" fn() -> *mut c_void;
type CtxDestroy = unsafe extern "C" fn(*mut c_void);
type CtxSet = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type CtxStrerror = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type Encode = unsafe extern "C" fn(*mut *mut c_char, *mut c_void, *const c_void, c_int) -> c_int;
type Decode = unsafe extern "C" fn(
    *const c_char,
    *mut c_void,
    *mut *mut c_void,
    *mut c_int,
    *mut u32,
    *mut u32,
) -> c_int;
type Strerror = unsafe extern "C" fn(c_int) -> *const c_char;

struct Lib {
    ctx_create: CtxCreate,
    ctx_destroy: CtxDestroy,
    ctx_set: CtxSet,
    ctx_strerror: CtxStrerror,
    encode: Encode,
    decode: Decode,
    strerror: Strerror,
    // Keeps the function pointers above valid.
    _lib: libloading::Library,
}

/// Why a MUNGE operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MungeError {
    /// libmunge could not be loaded (not installed: `scripts/install-build-deps`).
    #[error("libmunge unavailable: {0}")]
    Unavailable(String),
    /// libmunge returned an error status (`munge_err_t`) with its message.
    #[error("munge error {code}: {message}")]
    Status { code: i32, message: String },
    #[error("invalid argument: {0}")]
    BadArgument(&'static str),
}

impl MungeError {
    /// A stable label (metrics).
    pub fn reason(&self) -> &'static str {
        match self {
            MungeError::Unavailable(_) => "munge_unavailable",
            MungeError::BadArgument(_) => "munge_bad_argument",
            MungeError::Status { code, .. } => match *code {
                EMUNGE_SOCKET => "munge_socket",
                EMUNGE_CRED_EXPIRED => "credential_expired",
                EMUNGE_CRED_REPLAYED => "credential_replayed",
                EMUNGE_CRED_UNAUTHORIZED => "credential_unauthorized",
                8 | 9 | 14 => "credential_invalid",
                _ => "munge_error",
            },
        }
    }
}

/// What a verified credential says. The payload is the sender's body hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Decoded {
    pub uid: u32,
    pub gid: u32,
    pub payload: Vec<u8>,
}

impl fmt::Debug for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Decoded {{ uid: {}, gid: {}, payload: {} bytes }}",
            self.uid,
            self.gid,
            self.payload.len()
        )
    }
}

/// A handle on libmunge bound to one munged socket. Cheap to clone; every call
/// uses its own context, so it can be shared between threads.
#[derive(Clone)]
pub struct Munge {
    lib: Arc<Lib>,
    socket: Option<CString>,
    ttl: Option<i32>,
}

impl fmt::Debug for Munge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Munge")
            .field("socket", &self.socket)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A context destroyed on drop.
struct Ctx<'a> {
    lib: &'a Lib,
    ptr: *mut c_void,
}

impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        unsafe { (self.lib.ctx_destroy)(self.ptr) }
    }
}

impl Munge {
    /// Loads libmunge. `socket` = munged's socket (`AuthInfo=socket=…` of the
    /// cluster); `None` = libmunge's compiled-in default.
    pub fn load(socket: Option<&Path>) -> Result<Munge, MungeError> {
        let mut last = String::new();
        for name in LIBRARY_NAMES {
            // SAFETY: loading libmunge runs no initialisers with preconditions.
            match unsafe { libloading::Library::new(name) } {
                Ok(lib) => return Self::from_library(lib, socket),
                Err(e) => last = format!("{name}: {e}"),
            }
        }
        Err(MungeError::Unavailable(last))
    }

    fn from_library(lib: libloading::Library, socket: Option<&Path>) -> Result<Munge, MungeError> {
        fn sym<T: Copy>(lib: &libloading::Library, name: &[u8]) -> Result<T, MungeError> {
            // SAFETY: the types above are the prototypes of munge.h (0.5.x).
            unsafe { lib.get::<T>(name) }.map(|s| *s).map_err(|e| {
                MungeError::Unavailable(format!("{}: {e}", String::from_utf8_lossy(name)))
            })
        }
        let socket = match socket {
            None => None,
            Some(p) => Some(
                CString::new(p.as_os_str().as_encoded_bytes())
                    .map_err(|_| MungeError::BadArgument("socket path with NUL"))?,
            ),
        };
        let lib = Lib {
            ctx_create: sym(&lib, b"munge_ctx_create\0")?,
            ctx_destroy: sym(&lib, b"munge_ctx_destroy\0")?,
            ctx_set: sym(&lib, b"munge_ctx_set\0")?,
            ctx_strerror: sym(&lib, b"munge_ctx_strerror\0")?,
            encode: sym(&lib, b"munge_encode\0")?,
            decode: sym(&lib, b"munge_decode\0")?,
            strerror: sym(&lib, b"munge_strerror\0")?,
            _lib: lib,
        };
        Ok(Munge {
            lib: Arc::new(lib),
            socket,
            ttl: None,
        })
    }

    /// Credentials minted from now on get this time-to-live (seconds) instead
    /// of munged's default.
    pub fn with_ttl(mut self, ttl: i32) -> Self {
        self.ttl = Some(ttl);
        self
    }

    fn status(&self, ctx: &Ctx<'_>, code: c_int) -> MungeError {
        // SAFETY: both return static or context-owned NUL-terminated strings.
        let msg = unsafe {
            let p = (self.lib.ctx_strerror)(ctx.ptr);
            let p = if p.is_null() {
                (self.lib.strerror)(code)
            } else {
                p
            };
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        MungeError::Status { code, message: msg }
    }

    fn ctx(&self) -> Result<Ctx<'_>, MungeError> {
        // SAFETY: plain constructor.
        let ptr = unsafe { (self.lib.ctx_create)() };
        if ptr.is_null() {
            return Err(MungeError::Status {
                code: 5,
                message: "munge_ctx_create failed".into(),
            });
        }
        let ctx = Ctx {
            lib: &self.lib,
            ptr,
        };
        if let Some(s) = &self.socket {
            // SAFETY: MUNGE_OPT_SOCKET takes a `char *` (copied by libmunge).
            let rc = unsafe { (self.lib.ctx_set)(ctx.ptr, MUNGE_OPT_SOCKET, s.as_ptr()) };
            if rc != EMUNGE_SUCCESS {
                return Err(self.status(&ctx, rc));
            }
        }
        Ok(ctx)
    }

    /// Mints a credential carrying `payload`. `uid_restriction` = the only uid
    /// allowed to decode it (`None` = anyone). Returns the `MUNGE:…:` text.
    pub fn encode(
        &self,
        payload: &[u8],
        uid_restriction: Option<u32>,
    ) -> Result<String, MungeError> {
        let ctx = self.ctx()?;
        if let Some(uid) = uid_restriction {
            // SAFETY: MUNGE_OPT_UID_RESTRICTION takes a uid_t (unsigned int).
            let rc = unsafe {
                (self.lib.ctx_set)(ctx.ptr, MUNGE_OPT_UID_RESTRICTION, uid as std::ffi::c_uint)
            };
            if rc != EMUNGE_SUCCESS {
                return Err(self.status(&ctx, rc));
            }
        }
        if let Some(ttl) = self.ttl {
            // SAFETY: MUNGE_OPT_TTL takes an int.
            let rc = unsafe { (self.lib.ctx_set)(ctx.ptr, MUNGE_OPT_TTL, ttl as c_int) };
            if rc != EMUNGE_SUCCESS {
                return Err(self.status(&ctx, rc));
            }
        }
        let len = c_int::try_from(payload.len())
            .map_err(|_| MungeError::BadArgument("payload too long"))?;
        let mut cred: *mut c_char = std::ptr::null_mut();
        // SAFETY: payload is valid for len bytes; cred receives a malloc'ed string.
        let rc = unsafe { (self.lib.encode)(&mut cred, ctx.ptr, payload.as_ptr().cast(), len) };
        if rc != EMUNGE_SUCCESS {
            if !cred.is_null() {
                unsafe { free(cred.cast()) };
            }
            return Err(self.status(&ctx, rc));
        }
        // SAFETY: on success cred is a NUL-terminated string we own.
        let out = unsafe { CStr::from_ptr(cred) }
            .to_string_lossy()
            .into_owned();
        unsafe { free(cred.cast()) };
        Ok(out)
    }

    /// Verifies a credential (`MUNGE:…:`, with or without its trailing NUL).
    /// A replayed, expired or otherwise failing credential is an error.
    pub fn decode(&self, credential: &[u8]) -> Result<Decoded, MungeError> {
        let text = credential.strip_suffix(&[0]).unwrap_or(credential);
        let c = CString::new(text).map_err(|_| MungeError::BadArgument("credential with NUL"))?;
        let ctx = self.ctx()?;
        let mut buf: *mut c_void = std::ptr::null_mut();
        let mut len: c_int = 0;
        let (mut uid, mut gid) = (u32::MAX, u32::MAX);
        // SAFETY: out-pointers are valid; buf receives a malloc'ed block (or NULL).
        let rc = unsafe {
            (self.lib.decode)(c.as_ptr(), ctx.ptr, &mut buf, &mut len, &mut uid, &mut gid)
        };
        let payload = if buf.is_null() || len <= 0 {
            Vec::new()
        } else {
            // SAFETY: libmunge returned len bytes at buf.
            unsafe { std::slice::from_raw_parts(buf as *const u8, len as usize) }.to_vec()
        };
        if !buf.is_null() {
            unsafe { free(buf) };
        }
        if rc != EMUNGE_SUCCESS {
            return Err(self.status(&ctx, rc));
        }
        Ok(Decoded { uid, gid, payload })
    }
}
