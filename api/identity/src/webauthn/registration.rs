//! Registering a credential: options for `navigator.credentials.create`,
//! then the authenticator's answer checked and stored.

use super::*;

impl PasskeyService {
    /// Begin registering a credential for `user` named `name`: the
    /// ceremony id and the options for `navigator.credentials.create`
    /// (JSON, binary fields in base64url). A passkey is asked to be
    /// discoverable and to verify the user; a security key (`security_key`)
    /// is a second factor only, user verification preferred.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_registration(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        username: &str,
        name: &str,
        security_key: bool,
        binding: &str,
        now_ms: u64,
    ) -> Result<(String, serde_json::Value), PasskeyError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(PasskeyError::Invalid(format!(
                "Give the passkey a name of 1 to {MAX_NAME_CHARS} characters."
            )));
        }
        let rp = relying_party(issuer)?;
        let existing = self
            .stored(tenant, user_id, Consistency::Linearizable)
            .await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::Invalid(format!(
                "An account can have at most {MAX_PASSKEYS} passkeys."
            )));
        }
        let exclude: Vec<_> = existing
            .iter()
            .map(|(p, _)| p.credential.cred_id.clone())
            .collect();
        let handle = user_handle(user_id);
        let (options, step) = if security_key {
            let (options, state) = rp
                .start_securitykey_registration(
                    handle,
                    username,
                    username,
                    Some(exclude),
                    None,
                    None,
                )
                .map_err(rejected)?;
            let step = Step::RegisterSecurityKey {
                user_id: user_id.to_string(),
                name: name.to_string(),
                state,
            };
            (serde_json::to_value(&options).map_err(corrupt)?, step)
        } else {
            let (options, state) = rp
                .start_passkey_registration(handle, username, username, Some(exclude))
                .map_err(rejected)?;
            let mut options = serde_json::to_value(&options).map_err(corrupt)?;
            // Ask for a discoverable credential, so the same passkey also
            // signs in without a username. (Advisory to the client, as the
            // spec says; passwordless sign-in finds no such credential
            // otherwise.)
            if let Some(sel) = options
                .pointer_mut("/publicKey/authenticatorSelection")
                .and_then(serde_json::Value::as_object_mut)
            {
                sel.insert("residentKey".into(), "required".into());
                sel.insert("requireResidentKey".into(), true.into());
            }
            let step = Step::Register {
                user_id: user_id.to_string(),
                name: name.to_string(),
                state,
            };
            (options, step)
        };
        let id = self.put_ceremony(tenant, binding, step, now_ms).await?;
        Ok((id, options))
    }

    /// Finish a registration begun by [`Self::start_registration`] for the
    /// same user and binding; the credential is stored.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_registration(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        ceremony: &str,
        binding: &str,
        response: &RegisterPublicKeyCredential,
        now_ms: u64,
    ) -> Result<PasskeyInfo, PasskeyError> {
        let rp = relying_party(issuer)?;
        let (owner, name, credential, security_key) = match self
            .take_ceremony(tenant, ceremony, binding, now_ms)
            .await?
        {
            Step::Register {
                user_id,
                name,
                state,
            } => {
                let passkey = rp
                    .finish_passkey_registration(response, &state)
                    .map_err(rejected)?;
                (user_id, name, Credential::from(passkey), false)
            }
            Step::RegisterSecurityKey {
                user_id,
                name,
                state,
            } => {
                let key = rp
                    .finish_securitykey_registration(response, &state)
                    .map_err(rejected)?;
                (user_id, name, Credential::from(key), true)
            }
            _ => return Err(PasskeyError::CeremonyExpired),
        };
        if owner != user_id {
            return Err(PasskeyError::CeremonyExpired);
        }
        let stored = StoredPasskey {
            id: random_token(12),
            name,
            created_at_ms: now_ms,
            last_used_ms: None,
            security_key,
            credential,
        };
        let index = index_key(tenant, stored.credential.cred_id.as_ref());
        let value = serde_json::to_vec(&stored).map_err(corrupt)?;
        let txn = Txn {
            compares: vec![Compare {
                key: index.clone(),
                target: CompareTarget::Exists(false),
            }],
            success: vec![
                TxnOp::Put {
                    key: passkey_key(tenant, user_id, &stored.id),
                    value,
                    ttl_ms: None,
                },
                TxnOp::Put {
                    key: index,
                    value: format!("{user_id}/{}", stored.id).into_bytes(),
                    ttl_ms: None,
                },
            ],
            failure: vec![],
        };
        if !self.consensus.txn(txn).await?.succeeded {
            return Err(PasskeyError::AlreadyRegistered);
        }
        Ok(PasskeyInfo::from(&stored))
    }
}
