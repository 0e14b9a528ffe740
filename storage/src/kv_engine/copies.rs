//! Whole-tree copies of the engine: for a Raft snapshot (taken in the
//! state machine's task, between two applies), for a backup (from any task,
//! under the apply gate), and installing a snapshot.

use super::*;

impl KvEngine {
    /// Every entry of the tree, for a snapshot, with the expiry index in
    /// its on-disk layout (see the module docs).
    pub fn export(&self) -> Result<RawEntries, StorageError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        for (at, raw) in self.expiry_index().iter() {
            let key = indexed_key(raw)?;
            out.push((expiry_key(*at, &key), Vec::new()));
        }
        Ok(out)
    }

    /// Every entry of the tree as it was between two applies, from any
    /// task (applies wait while it is read; the expiry index is left out:
    /// it is rebuilt from the records). For backups.
    pub fn copy_consistent(&self) -> Result<RawEntries, StorageError> {
        let _gate = self.gate();
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Whether `key` is of the expiry index's on-disk layout (never in a
    /// copy, and skipped on restore).
    pub fn is_index_key(key: &[u8]) -> bool {
        key.first() == Some(&EXPIRY)
    }

    /// Replace the whole tree with a snapshot's entries, atomically; the
    /// expiry index is rebuilt from the records.
    pub fn import(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StorageError> {
        // From the entries in hand, before the tree is replaced.
        let index = expiry_index_of(
            entries
                .iter()
                .filter(|(k, _)| k.first() == Some(&DATA))
                .map(|(k, v)| Ok((k, v))),
        )?;
        let mut batch = sled::Batch::default();
        for item in self.tree.iter() {
            let (k, _) = item?;
            batch.remove(k);
        }
        for (k, v) in entries {
            if k.first() != Some(&EXPIRY) {
                batch.insert(k.as_slice(), v.as_slice());
            }
        }
        let gate = self.gate();
        self.tree.apply_batch(batch)?;
        drop(gate);
        *self.expiry_index() = index;
        Ok(())
    }
}
