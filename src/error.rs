//! The one error type of chord. Every failure inside the library is an [`Error`]; its [`ErrorCode`]
//! is the stable number that the C ABI returns as `chord_status`.

use std::ffi::CStr;
use std::fmt;

/// Stable numeric error codes. Numbers are part of the ABI: never reuse or renumber one.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// An argument is invalid: a NULL pointer, an out-of-range value, an unknown enum value.
    InvalidArgument = 1,
    /// A caller buffer is too small; the needed size is reported through the out-length.
    BufferTooSmall = 2,
    /// A string is not valid UTF-8.
    InvalidUtf8 = 3,
    /// The operating system reported an I/O error (open, read, map).
    Io = 4,
    /// The file does not start with the GGUF magic.
    GgufBadMagic = 5,
    /// The GGUF version is not 2 or 3.
    GgufUnsupportedVersion = 6,
    /// The file ends inside a header, metadata or tensor-info section.
    GgufTruncated = 7,
    /// A tensor's data lies outside the file or is misaligned.
    GgufOutOfBounds = 8,
    /// A count, length or dimension is beyond what the file or a sane model could hold.
    GgufLimit = 9,
    /// A tensor or metadata value has a type id that chord does not know or support.
    GgufUnknownType = 10,
    /// Two metadata keys or two tensors have the same name.
    GgufDuplicate = 11,
    /// The model's architecture is not one chord runs.
    UnknownArchitecture = 12,
    /// The model's metadata or tensors are inconsistent: a missing key, a wrong type, a wrong shape.
    BadModel = 13,
    /// The request is valid but not supported by this build or model.
    Unsupported = 14,
    /// The session's context is full; the tokens were not added.
    ContextFull = 15,
    /// Another thread is using the session.
    Busy = 16,
    /// The operation was cancelled by the host.
    Cancelled = 17,
    /// A token id is outside the vocabulary.
    InvalidToken = 18,
    /// A bug in chord (a caught panic). The object that reported it may be poisoned.
    Internal = 19,
    /// A chat template does not parse, fails while rendering, or uses a construct chord does not support.
    Template = 20,
    /// A saved session state is malformed, from another state version, or from another model.
    BadState = 21,
    /// A metadata key or other named item does not exist.
    NotFound = 22,
    /// A value exists but has a different type from the one asked for.
    TypeMismatch = 23,
    /// A grammar or JSON Schema does not parse or cannot be used, or generation under a grammar
    /// reached a point where no token of the vocabulary continues it.
    Grammar = 24,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::InvalidArgument,
        ErrorCode::BufferTooSmall,
        ErrorCode::InvalidUtf8,
        ErrorCode::Io,
        ErrorCode::GgufBadMagic,
        ErrorCode::GgufUnsupportedVersion,
        ErrorCode::GgufTruncated,
        ErrorCode::GgufOutOfBounds,
        ErrorCode::GgufLimit,
        ErrorCode::GgufUnknownType,
        ErrorCode::GgufDuplicate,
        ErrorCode::UnknownArchitecture,
        ErrorCode::BadModel,
        ErrorCode::Unsupported,
        ErrorCode::ContextFull,
        ErrorCode::Busy,
        ErrorCode::Cancelled,
        ErrorCode::InvalidToken,
        ErrorCode::Internal,
        ErrorCode::Template,
        ErrorCode::BadState,
        ErrorCode::NotFound,
        ErrorCode::TypeMismatch,
        ErrorCode::Grammar,
    ];

    /// The code with number `n`, if there is one.
    pub fn from_u32(n: u32) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| *c as u32 == n)
    }

    /// The code's symbolic name as used in the C header (without the `CHORD_E_` prefix).
    pub fn name(self) -> &'static str {
        self.c_name().to_str().expect("names are ASCII")
    }

    /// [`ErrorCode::name`] as a NUL-terminated string, for the C ABI.
    pub fn c_name(self) -> &'static CStr {
        match self {
            ErrorCode::InvalidArgument => c"INVALID_ARGUMENT",
            ErrorCode::BufferTooSmall => c"BUFFER_TOO_SMALL",
            ErrorCode::InvalidUtf8 => c"INVALID_UTF8",
            ErrorCode::Io => c"IO",
            ErrorCode::GgufBadMagic => c"GGUF_BAD_MAGIC",
            ErrorCode::GgufUnsupportedVersion => c"GGUF_UNSUPPORTED_VERSION",
            ErrorCode::GgufTruncated => c"GGUF_TRUNCATED",
            ErrorCode::GgufOutOfBounds => c"GGUF_OUT_OF_BOUNDS",
            ErrorCode::GgufLimit => c"GGUF_LIMIT",
            ErrorCode::GgufUnknownType => c"GGUF_UNKNOWN_TYPE",
            ErrorCode::GgufDuplicate => c"GGUF_DUPLICATE",
            ErrorCode::UnknownArchitecture => c"UNKNOWN_ARCHITECTURE",
            ErrorCode::BadModel => c"BAD_MODEL",
            ErrorCode::Unsupported => c"UNSUPPORTED",
            ErrorCode::ContextFull => c"CONTEXT_FULL",
            ErrorCode::Busy => c"BUSY",
            ErrorCode::Cancelled => c"CANCELLED",
            ErrorCode::InvalidToken => c"INVALID_TOKEN",
            ErrorCode::Internal => c"INTERNAL",
            ErrorCode::Template => c"TEMPLATE",
            ErrorCode::BadState => c"BAD_STATE",
            ErrorCode::NotFound => c"NOT_FOUND",
            ErrorCode::TypeMismatch => c"TYPE_MISMATCH",
            ErrorCode::Grammar => c"GRAMMAR",
        }
    }
}

/// A failure: a stable code and a human-readable message that names what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// Creates an error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorCode::Io, format!("I/O error: {e}"))
    }
}

/// `Result` with chord's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shorthand for building an `Err` with a formatted message: `bail!(Code, "fmt", args)`.
#[macro_export]
macro_rules! bail {
    ($code:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::new($crate::error::ErrorCode::$code, format!($($arg)*)))
    };
}
