//! How this crate's records (sessions, lockout counters) are stored:
//! bincode with its standard configuration (varints).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ActorError;

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ActorError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| ActorError::Internal(format!("encode: {e}")))
}

/// Decode a stored `what` (named in the error if it does not decode).
/// The most a stored record may decode to, in bytes: a corrupt length
/// prefix is an error, not a huge allocation.
const MAX_DECODED: usize = 16 << 20;

pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ActorError> {
    let config = bincode::config::standard().with_limit::<MAX_DECODED>();
    bincode::serde::decode_from_slice(bytes, config)
        .map(|(v, _)| v)
        .map_err(|e| ActorError::Internal(format!("stored {what} does not decode: {e}")))
}
