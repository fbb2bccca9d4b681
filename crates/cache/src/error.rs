//! The one error type of the cache role. It says what happened, not which backend it came
//! from; each backend maps its own failures into it.

/// What went wrong with a cache operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key holds another kind of value than the operation works on (a hash operation on
    /// a string key, `get` on a sorted set). Redis's WRONGTYPE.
    #[error("key \"{key}\" holds another kind of value than this operation works on")]
    WrongType { key: String },

    /// A counter operation met a value that is not a 64-bit integer, or the result would
    /// overflow one.
    #[error("key \"{key}\": {what} is not an integer or the result would overflow")]
    NotInteger { key: String, what: String },

    /// An argument is not acceptable; `field` names it.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    /// A stored value is not what the caller expected (JSON of another shape).
    #[error("{what} does not hold the expected value: {reason}")]
    Decode { what: String, reason: String },

    /// A value (or the entry it would make) is larger than the cache accepts.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },

    /// The backend cannot be reached or is not serving right now. Retrying may succeed.
    #[error("cache unavailable: {0}")]
    Unavailable(String),

    /// The cache URL names a backend this build does not contain.
    #[error("cache url scheme \"{scheme}\" is not supported in this build{hint}")]
    NotSupported { scheme: String, hint: &'static str },

    /// The cache URL cannot be understood.
    #[error("invalid cache url \"{url}\": {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The backend answered something this crate does not expect (a bug or a server
    /// speaking another dialect). Not retryable.
    #[error("cache backend: {0}")]
    Backend(String),
}

impl Error {
    /// Whether the same operation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable(_))
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field,
            reason: reason.into(),
        }
    }
}

/// The result of a cache operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
