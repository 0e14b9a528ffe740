//! The storage crate's one error type.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("i/o on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt record {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("the log sync thread has stopped")]
    SyncStopped,
}

impl StorageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

/// bincode 2 with the standard configuration, used for every stored value.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Encoding plain data into a Vec cannot fail: no size limit is set and the
    // types have no custom serializers that return errors.
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .unwrap_or_else(|e| panic!("bincode encode of an in-memory value failed: {e}"))
}

/// The most one stored value may decode to, in bytes. A corrupt length
/// prefix that claims more is reported as corruption instead of aborting
/// the process on a huge allocation.
const MAX_DECODED: usize = 1 << 30;

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StorageError> {
    let config = bincode::config::standard().with_limit::<MAX_DECODED>();
    bincode::serde::decode_from_slice(bytes, config)
        .map(|(v, _)| v)
        .map_err(|e| StorageError::corrupt(what, e))
}
