//! Using a credential: as a second factor after the password, or
//! passwordless (discoverable credentials); the owner of a credential and
//! the sign counter's compare-and-swap after every assertion.

use super::*;

impl PasskeyService {
    /// Begin a second-factor assertion for `user_id` (user verification
    /// preferred); `None` when the user has no credential.
    pub async fn start_second_factor(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        binding: &str,
        now_ms: u64,
    ) -> Result<Option<(String, RequestChallengeResponse)>, PasskeyError> {
        let creds: Vec<SecurityKey> = self
            .stored(tenant, user_id, Consistency::Linearizable)
            .await?
            .into_iter()
            .map(|(p, _)| SecurityKey::from(p.credential))
            .collect();
        if creds.is_empty() {
            return Ok(None);
        }
        let rp = relying_party(issuer)?;
        let (mut options, state) = rp
            .start_securitykey_authentication(&creds)
            .map_err(rejected)?;
        // Platform passkeys as well as security keys: no UI hint.
        options.public_key.hints = None;
        let step = Step::SecondFactor {
            user_id: user_id.to_string(),
            state,
        };
        let id = self.put_ceremony(tenant, binding, step, now_ms).await?;
        Ok(Some((id, options)))
    }

    /// Finish a second-factor assertion for `user_id`.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_second_factor(
        &self,
        tenant: &str,
        issuer: &str,
        user_id: &str,
        ceremony: &str,
        binding: &str,
        response: &PublicKeyCredential,
        now_ms: u64,
    ) -> Result<Verified, PasskeyError> {
        let Step::SecondFactor {
            user_id: owner,
            state,
        } = self
            .take_ceremony(tenant, ceremony, binding, now_ms)
            .await?
        else {
            return Err(PasskeyError::CeremonyExpired);
        };
        if owner != user_id {
            return Err(PasskeyError::CeremonyExpired);
        }
        let rp = relying_party(issuer)?;
        let result = rp
            .finish_securitykey_authentication(response, &state)
            .map_err(assertion_error)?;
        let (user, id) = self.owner(tenant, result.cred_id().as_ref()).await?;
        if user != user_id {
            return Err(PasskeyError::UnknownCredential);
        }
        self.record_use(tenant, &user, &id, &result, now_ms).await?;
        Ok(Verified {
            user_id: user,
            passkey_id: id,
            user_verified: result.user_verified(),
        })
    }

    /// Begin a passwordless assertion (discoverable credentials, user
    /// verification required).
    pub async fn start_passwordless(
        &self,
        tenant: &str,
        issuer: &str,
        binding: &str,
        now_ms: u64,
    ) -> Result<(String, RequestChallengeResponse), PasskeyError> {
        let rp = relying_party(issuer)?;
        let (mut options, state) = rp.start_discoverable_authentication().map_err(rejected)?;
        // A button-started ceremony, not autofill ("conditional") UI.
        options.mediation = None;
        let id = self
            .put_ceremony(tenant, binding, Step::Passwordless { state }, now_ms)
            .await?;
        Ok((id, options))
    }

    /// Finish a passwordless assertion: who signed in.
    pub async fn finish_passwordless(
        &self,
        tenant: &str,
        issuer: &str,
        ceremony: &str,
        binding: &str,
        response: &PublicKeyCredential,
        now_ms: u64,
    ) -> Result<Verified, PasskeyError> {
        let Step::Passwordless { state } = self
            .take_ceremony(tenant, ceremony, binding, now_ms)
            .await?
        else {
            return Err(PasskeyError::CeremonyExpired);
        };
        let rp = relying_party(issuer)?;
        let (handle, cred_id) = rp
            .identify_discoverable_authentication(response)
            .map_err(|_| PasskeyError::UnknownCredential)?;
        let (user, id) = self.owner(tenant, cred_id).await?;
        if user_handle(&user) != handle {
            return Err(PasskeyError::UnknownCredential);
        }
        let (kv, _) = self
            .consensus
            .get(&passkey_key(tenant, &user, &id), Consistency::Linearizable)
            .await?;
        let stored: StoredPasskey =
            serde_json::from_slice(&kv.ok_or(PasskeyError::UnknownCredential)?.value)
                .map_err(corrupt)?;
        if stored.security_key {
            // Registered as a second factor only.
            return Err(PasskeyError::UnknownCredential);
        }
        let key = DiscoverableKey::from(&Passkey::from(stored.credential));
        let result = rp
            .finish_discoverable_authentication(response, state, &[key])
            .map_err(assertion_error)?;
        if !result.user_verified() {
            return Err(PasskeyError::Rejected(
                "user verification is required".into(),
            ));
        }
        self.record_use(tenant, &user, &id, &result, now_ms).await?;
        Ok(Verified {
            user_id: user,
            passkey_id: id,
            user_verified: true,
        })
    }

    /// The user and passkey id a credential id is registered to.
    async fn owner(&self, tenant: &str, cred_id: &[u8]) -> Result<(String, String), PasskeyError> {
        let (kv, _) = self
            .consensus
            .get(&index_key(tenant, cred_id), Consistency::Linearizable)
            .await?;
        let kv = kv.ok_or(PasskeyError::UnknownCredential)?;
        let text = String::from_utf8(kv.value).map_err(corrupt)?;
        let (user, id) = text
            .rsplit_once('/')
            .ok_or_else(|| corrupt("credential index without an owner"))?;
        Ok((user.to_string(), id.to_string()))
    }

    /// After a valid signature: the counter must still be above the one
    /// stored *now* (another node may have accepted a later one since the
    /// ceremony started); store it, the flags and the time with a CAS.
    async fn record_use(
        &self,
        tenant: &str,
        user: &str,
        id: &str,
        result: &AuthenticationResult,
        now_ms: u64,
    ) -> Result<(), PasskeyError> {
        let key = passkey_key(tenant, user, id);
        for _ in 0..8 {
            let (kv, _) = self.consensus.get(&key, Consistency::Linearizable).await?;
            let kv = kv.ok_or(PasskeyError::UnknownCredential)?;
            let mut stored: StoredPasskey = serde_json::from_slice(&kv.value).map_err(corrupt)?;
            let counter = result.counter();
            if (counter > 0 || stored.credential.counter > 0)
                && counter <= stored.credential.counter
            {
                return Err(PasskeyError::ClonedAuthenticator);
            }
            stored.credential.counter = counter;
            stored.credential.backup_state = result.backup_state();
            stored.credential.backup_eligible |= result.backup_eligible();
            stored.last_used_ms = Some(now_ms);
            let txn = Txn {
                compares: vec![Compare {
                    key: key.clone(),
                    target: CompareTarget::ModRevision(CmpOp::Eq, kv.mod_revision),
                }],
                success: vec![TxnOp::Put {
                    key: key.clone(),
                    value: serde_json::to_vec(&stored).map_err(corrupt)?,
                    ttl_ms: None,
                }],
                failure: vec![],
            };
            if self.consensus.txn(txn).await?.succeeded {
                return Ok(());
            }
        }
        Err(PasskeyError::Consensus(ConsensusError::Unavailable(
            "passkey counter kept changing".into(),
        )))
    }
}

fn assertion_error(e: webauthn_rs::prelude::WebauthnError) -> PasskeyError {
    match e {
        webauthn_rs::prelude::WebauthnError::CredentialPossibleCompromise => {
            PasskeyError::ClonedAuthenticator
        }
        webauthn_rs::prelude::WebauthnError::CredentialNotFound => PasskeyError::UnknownCredential,
        other => rejected(other),
    }
}
