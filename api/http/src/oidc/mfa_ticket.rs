//! The ticket that carries a sign-in from its password step to its second
//! factor (or to enrolment): [`MfaTicket`].
//!
//! - **Issued** once the password was right and another step follows
//!   ([`MfaTicket::issue`]): it names the user, where the sign-in leads, a
//!   random id and an expiry [`MFA_TICKET_TTL`] on. It travels sealed in
//!   the page's hidden `ticket` field ([`crate::oidc::csrf::seal_until`]),
//!   and showing the page again (after a wrong code) does not extend it.
//! - **Bound to the browser** that passed the password: that answer sets
//!   [`MFA_COOKIE`], a fresh random value in an `HttpOnly` cookie, and the
//!   ticket holds a keyed hash of it. A ticket posted without that cookie,
//!   or with another browser's, is refused ([`MfaTicket::check`]); a second
//!   password step in the same browser replaces the cookie, so only its
//!   own ticket works there.
//! - **Single use across the cluster**: wrong codes leave the ticket valid
//!   (each is counted by the lockout instead), and the sign-in it carries
//!   spends it when it finishes ([`MfaTicket::spend`], through
//!   [`rsp_identity::mfa_tickets`]: an insert-if-absent through Raft). A
//!   spent ticket is refused on every node before any factor is checked
//!   ([`MfaTicket::ensure_unspent`]).
//!
//! [`crate::oidc::signin::finish_second_factor`] is the one way a ticket's
//! sign-in ends.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::oidc::browser_session::Browser;
use crate::oidc::csrf::{key, seal_until, unseal};
use crate::oidc::login_page::Continuation;
use crate::oidc::pages::PageError;
use crate::state::AppState;
use rsp_identity::crypto::random_token;

/// The cookie that binds a ticket to its browser.
pub const MFA_COOKIE: &str = "rsp_mfa";
/// How long a ticket lasts from the password step.
pub const MFA_TICKET_TTL: Duration = Duration::from_secs(5 * 60);
/// Sealing purpose of [`MfaTicket`].
const MFA_TICKET: &str = "mfa";
const BINDING_LABEL: &str = "rsp mfa ticket binding v1";
/// A spent ticket's record outlives the ticket by this much (clocks of
/// the node that sealed it and of the leader may differ a little).
const SPENT_MARGIN: Duration = Duration::from_secs(60);

/// What the second-factor steps carry from the password step: the user
/// who passed it, where the login leads, and what makes the ticket single
/// use and this browser's.
#[derive(Serialize, Deserialize)]
pub struct MfaTicket {
    /// Random; spent when the sign-in finishes.
    pub id: String,
    pub user_id: String,
    pub username: String,
    pub flow: Continuation,
    /// Keyed hash of the browser's [`MFA_COOKIE`].
    binding: String,
    /// Seconds since the epoch.
    pub expires: u64,
}

fn binding(state: &AppState, browser: &Browser, seed: &str) -> Result<String, PageError> {
    Ok(key(state, BINDING_LABEL)?.hash(bound(browser, seed).as_bytes()))
}

fn bound(browser: &Browser, seed: &str) -> String {
    format!("{}\n{seed}", browser.tenant.id)
}

fn wrong_browser() -> PageError {
    PageError::bad_request(
        "This sign-in page expired or was opened in another browser. Start again from the application.",
    )
}

fn spent() -> PageError {
    PageError::bad_request("This sign-in was already completed. Start again from the application.")
}

impl MfaTicket {
    /// A new ticket for `user_id` who just passed the password step, and
    /// the `Set-Cookie` that binds it to this browser: the page that
    /// carries the ticket must set it.
    pub fn issue(
        state: &AppState,
        browser: &Browser,
        user_id: &str,
        username: &str,
        flow: Continuation,
    ) -> Result<(MfaTicket, String), PageError> {
        let seed = random_token(32);
        let ticket = MfaTicket {
            id: random_token(32),
            user_id: user_id.to_string(),
            username: username.to_string(),
            flow,
            binding: binding(state, browser, &seed)?,
            expires: state.clock().now_secs() + MFA_TICKET_TTL.as_secs(),
        };
        // The cookie lasts as long as a form: enrolment (which checks the
        // binding, not this ticket's expiry) may take longer than a code.
        let max_age = state.tenant_runtime.config.form_ttl.as_secs();
        let cookie = browser.set_cookie(MFA_COOKIE, &seed, Some(max_age));
        Ok((ticket, cookie))
    }

    /// The ticket as a hidden-field value, valid until the ticket expires.
    pub fn seal(&self, state: &AppState, browser: &Browser) -> Result<String, PageError> {
        seal_until(state, browser, MFA_TICKET, self, self.expires)
    }

    /// The ticket a form carried back, if untouched, unexpired and this
    /// browser's ([`MfaTicket::check`]).
    pub fn open(
        state: &AppState,
        browser: &Browser,
        sealed: Option<&str>,
    ) -> Result<MfaTicket, PageError> {
        let ticket: MfaTicket = unseal(state, browser, MFA_TICKET, sealed)?;
        ticket.check(state, browser)?;
        Ok(ticket)
    }

    /// Refuse the ticket once expired, or from a browser without the
    /// cookie it is bound to (a ticket embedded in other sealed state is
    /// checked here too, whatever that state's own lifetime).
    pub fn check(&self, state: &AppState, browser: &Browser) -> Result<(), PageError> {
        if self.expires <= state.clock().now_secs() {
            return Err(wrong_browser());
        }
        self.check_browser(state, browser)
    }

    /// Refuse the ticket from a browser without the cookie it is bound to.
    pub fn check_browser(&self, state: &AppState, browser: &Browser) -> Result<(), PageError> {
        let Some(seed) = browser.cookie(MFA_COOKIE) else {
            return Err(wrong_browser());
        };
        if key(state, BINDING_LABEL)?.verify(bound(browser, seed).as_bytes(), &self.binding) {
            Ok(())
        } else {
            Err(wrong_browser())
        }
    }

    /// Refuse a spent ticket (its sign-in finished, here or on another
    /// node) before any factor is checked with it.
    pub async fn ensure_unspent(
        &self,
        state: &AppState,
        browser: &Browser,
    ) -> Result<(), PageError> {
        if state
            .identity
            .mfa_tickets
            .is_spent(&browser.tenant.id, &self.id)
            .await?
        {
            return Err(spent());
        }
        Ok(())
    }

    /// Spend the ticket, once cluster-wide: `Err` when it was spent
    /// before (here or on another node).
    pub async fn spend(&self, state: &AppState, browser: &Browser) -> Result<(), PageError> {
        let remaining = self.expires.saturating_sub(state.clock().now_secs());
        let ttl = Duration::from_secs(remaining) + SPENT_MARGIN;
        let spent_now = state
            .identity
            .mfa_tickets
            .spend(&browser.tenant.id, &self.id, ttl.as_millis() as u64)
            .await?;
        if spent_now { Ok(()) } else { Err(spent()) }
    }

    /// The `Set-Cookie` that removes the binding cookie once the sign-in
    /// finished.
    pub fn clear_cookie(browser: &Browser) -> String {
        browser.clear_cookie(MFA_COOKIE)
    }
}
