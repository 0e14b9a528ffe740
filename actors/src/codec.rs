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
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ActorError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| ActorError::Internal(format!("stored {what} does not decode: {e}")))
}
