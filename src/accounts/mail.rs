//! The texts of the mails accounts send.

use crate::{config::AccountSettings, mail::Outgoing};

pub(super) fn confirmation(settings: &AccountSettings, email: &str, key: &str) -> Outgoing {
    let link = settings.email_confirm_url.replace("{key}", key);
    Outgoing {
        to: email.to_owned(),
        subject: "Confirm your email address",
        body: format!(
            "Hello,\n\nconfirm that {email} is your address by opening\n\n{link}\n\nor by sending this key to \
             /rest-auth/registration/verify-email/:\n\n{key}\n\nIf you did not sign up, ignore this mail.\n"
        ),
    }
}

/// allauth's "account already exists" mail: sent instead of an error when someone registers
/// with an address that has an account (`ACCOUNT_PREVENT_ENUMERATION`).
pub(super) fn account_exists(settings: &AccountSettings, email: &str) -> Outgoing {
    let reset = settings
        .password_reset_url
        .split('{')
        .next()
        .unwrap_or_default()
        .to_owned();
    Outgoing {
        to: email.to_owned(),
        subject: "Account already exists",
        body: format!(
            "Hello,\n\nsomeone tried to sign up with {email}, but an account with this address already \
             exists. If it was you and you forgot your password, ask for a reset ({reset}).\n\n\
             If it was not you, ignore this mail: nothing changes.\n"
        ),
    }
}

pub(super) fn password_reset(settings: &AccountSettings, to: &str, username: &str, uid: &str, token: &str) -> Outgoing {
    let link = settings
        .password_reset_url
        .replace("{uid}", uid)
        .replace("{token}", token);
    Outgoing {
        to: to.to_owned(),
        subject: "Reset your password",
        body: format!(
            "Hello {username},\n\nsomeone asked to reset your password. To choose a new one, open\n\n{link}\n\n\
             (uid {uid}, token {token}). If it was not you, ignore this mail: nothing changes.\n"
        ),
    }
}
