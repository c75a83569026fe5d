//! Typed decode errors: every error names the byte offset (from the start of the
//! frame, length prefix included) where decoding stopped, and why.

use std::fmt;

/// Why a decode failed. `reason()` is a stable snake_case label (metrics, JSON).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("truncated: needed {needed} bytes, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("length prefix {len} is over the limit {limit}")]
    LengthOverLimit { len: u64, limit: u64 },
    #[error("length prefix {len} is below the minimum {min}")]
    LengthUnderMinimum { len: u64, min: u64 },
    #[error("unsupported protocol version 0x{0:04x}")]
    UnsupportedVersion(u16),
    #[error("string or memory block length {len} exceeds the {available} bytes left")]
    BadStringLength { len: u32, available: usize },
    #[error("body_length {declared} does not fit the {available} bytes after the auth section")]
    BodyLengthMismatch { declared: u32, available: usize },
    #[error("AF_INET6 address block of length {0} (must be 16)")]
    BadAddressLength(u32),
    #[error("list count {0} is out of range")]
    BadCount(u32),
    #[error("{count} ret_list entries with msg_type {msg_type} (no body layout known)")]
    UnsupportedRetList { count: u16, msg_type: u16 },
    #[error("{0} trailing bytes after the layout")]
    TrailingBytes(usize),
    #[error("unknown value {value} for {field}")]
    UnknownValue { field: &'static str, value: u64 },
    #[error("looks like HTTP, not a Slurm RPC")]
    Http,
    #[error("looks like a TLS ClientHello, not a Slurm RPC")]
    Tls,
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// `reason()` and `ALL_REASONS` from one list, so the two cannot drift apart.
macro_rules! reasons {
    ($($kind:pat => $label:literal,)*) => {
        /// A short stable label, from a closed set (safe as a metric label value).
        pub fn reason(&self) -> &'static str {
            match self {
                $($kind => $label,)*
            }
        }

        /// Every label `reason()` can return, for pre-registering metrics.
        pub const ALL_REASONS: &'static [&'static str] = &[$($label,)*];
    };
}

impl ErrorKind {
    reasons! {
        ErrorKind::Truncated { .. } => "truncated",
        ErrorKind::LengthOverLimit { .. } => "length_over_limit",
        ErrorKind::LengthUnderMinimum { .. } => "length_under_minimum",
        ErrorKind::UnsupportedVersion(_) => "unsupported_version",
        ErrorKind::BadStringLength { .. } => "bad_string_length",
        ErrorKind::BodyLengthMismatch { .. } => "body_length_mismatch",
        ErrorKind::BadAddressLength(_) => "bad_address_length",
        ErrorKind::BadCount(_) => "bad_count",
        ErrorKind::UnsupportedRetList { .. } => "unsupported_ret_list",
        ErrorKind::TrailingBytes(_) => "trailing_bytes",
        ErrorKind::UnknownValue { .. } => "unknown_value",
        ErrorKind::Http => "http",
        ErrorKind::Tls => "tls",
        ErrorKind::Malformed(_) => "malformed",
    }
}

/// A decode failure at a byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset in the unit being decoded (a frame: counted from its length prefix).
    pub offset: usize,
    pub kind: ErrorKind,
}

impl DecodeError {
    pub fn new(offset: usize, kind: ErrorKind) -> Self {
        DecodeError { offset, kind }
    }

    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The same error, seen from an enclosing unit that starts `base` bytes earlier.
    pub fn shifted(mut self, base: usize) -> Self {
        self.offset += base;
        self
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for DecodeError {}

pub type Result<T> = std::result::Result<T, DecodeError>;
