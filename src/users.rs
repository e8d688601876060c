//! The four predefined users of the development server.
//!
//! Tokens are base64 of `{"UserID":…,"Password":…}` and must stay byte-identical to the
//! official dev server's: the workflow SDK decodes them, and the JS SDK's dev-mode probe
//! compares user 1's signing keys with hard-coded values.

use subtle::ConstantTimeEq;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub u8);

pub struct PredefinedUser {
    pub name: &'static str,
    pub token: &'static str,
    pub current_signing_key: &'static str,
    pub next_signing_key: &'static str,
}

pub const USERS: [PredefinedUser; 4] = [
    PredefinedUser {
        name: "defaultUser",
        token: "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=",
        current_signing_key: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        next_signing_key: "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    },
    PredefinedUser {
        name: "testUser1",
        token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjEiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        current_signing_key: "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM",
        next_signing_key: "sig_5NoELc3EFnZn4DVS5bDs2Nk4b7Ua",
    },
    PredefinedUser {
        name: "testUser2",
        token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjIiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        current_signing_key: "sig_6jWGaWRxHsw4vMSPJprXadyvrybF",
        next_signing_key: "sig_7qHbvhmahe5GwfePDiS5Lg3pi6Qx",
    },
    PredefinedUser {
        name: "testUser3",
        token: "eyJVc2VySUQiOiJ0ZXN0VXNlcjMiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9",
        current_signing_key: "sig_5T8FcSsynBjn9mMLBsXhpacRovJf",
        next_signing_key: "sig_7GFR4YaDshFcqsxWRZpRB161jguD",
    },
];

pub const USER_COUNT: usize = USERS.len();

impl UserId {
    pub fn index(self) -> usize {
        self.0 as usize
    }

    pub fn all() -> impl Iterator<Item = UserId> {
        (0..USER_COUNT as u8).map(UserId)
    }

    pub fn info(self) -> &'static PredefinedUser {
        &USERS[self.index()]
    }
}

/// Finds the user owning `token`. Tokens of the right length are compared in constant time,
/// all of them whatever matches, so timing reveals nothing about which prefix was right (the
/// lengths are public: the tokens are printed at start).
pub fn authenticate(token: &str) -> Option<UserId> {
    let mut found = None;
    for (i, user) in USERS.iter().enumerate() {
        if user.token.len() == token.len()
            && bool::from(user.token.as_bytes().ct_eq(token.as_bytes()))
        {
            found = Some(UserId(i as u8));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_their_users() {
        for (i, user) in USERS.iter().enumerate() {
            assert_eq!(authenticate(user.token), Some(UserId(i as u8)));
        }
        assert_eq!(authenticate(""), None);
        assert_eq!(authenticate(&USERS[0].token[..10]), None);
        assert_eq!(authenticate("eyJVc2VySUQiOiJ4In0="), None);
    }
}
