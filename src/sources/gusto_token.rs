//! Gusto's verification handshake without letting the first caller choose the secret.
//!
//! Gusto POSTs a `verification_token` to the webhook URL, unsigned (the token is the signing
//! key to be). Anyone can POST such a body, so no handshake ever becomes the secret by itself:
//!
//! 1. The operator opens a short window: `keycard gusto-token open --source gusto` writes
//!    `<verification_token_file>.window` (an expiry time). Outside it, handshakes are refused
//!    with 403 and nothing is kept.
//! 2. While it is open, every distinct token received is kept as a *candidate* in
//!    `<verification_token_file>.candidates` (mode 0600, at most [`MAX_CANDIDATES`]; never
//!    logged), listed by fingerprint.
//! 3. The operator confirms the one Gusto shows (or accepts on
//!    `PUT /v1/webhook_subscriptions/{uuid}/verify`): `keycard gusto-token confirm
//!    --fingerprint <fp>` writes it to `verification_token_file` (never over an existing file)
//!    and removes the candidates and the window.
//!
//! Times come from the caller (the adapter's `received_at`, the CLI's clock).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Candidates kept per window; later ones are refused until the operator clears the list.
pub const MAX_CANDIDATES: usize = 16;
/// How long `gusto-token open` keeps the window open unless told otherwise.
pub const DEFAULT_WINDOW_MINUTES: u32 = 10;
/// The longest window an operator may open.
pub const MAX_WINDOW_MINUTES: u32 = 60;

/// One token received during a window.
#[derive(Clone, Serialize, Deserialize)]
pub struct Candidate {
    pub fingerprint: String,
    pub subscription: String,
    pub received_at: DateTime<Utc>,
    token: String,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Candidate")
            .field("fingerprint", &self.fingerprint)
            .field("subscription", &self.subscription)
            .field("received_at", &self.received_at)
            .finish_non_exhaustive()
    }
}

impl Candidate {
    /// The token itself (for `gusto-token list --reveal` and the confirmation).
    pub fn token(&self) -> &str {
        &self.token
    }
}

/// What a handshake did to the candidate list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// A new candidate, with its fingerprint.
    Added(String),
    /// The same token was already a candidate.
    Known(String),
    /// The list is full; nothing was kept.
    Full,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no verification window is open for this source (run `keycard gusto-token open`)")]
    Closed,
    #[error("no candidate has fingerprint {0} (see `keycard gusto-token list`)")]
    UnknownFingerprint(String),
    #[error("fingerprint {0} matches more than one candidate; give more characters")]
    Ambiguous(String),
    #[error("{0} already exists: the source already has a token (remove it first to replace it)")]
    Exists(PathBuf),
    #[error("window length must be 1 to {MAX_WINDOW_MINUTES} minutes")]
    WindowLength,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: unreadable candidate list ({source})")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The files of one Gusto source's handshake, next to its `verification_token_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStore {
    token_file: PathBuf,
}

/// The short fingerprint shown to the operator: 12 hex digits of the token's SHA-256.
pub fn fingerprint(token: &str) -> String {
    let mut hex = hex::encode(Sha256::digest(token.as_bytes()));
    hex.truncate(12);
    hex
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TokenError + '_ {
    move |source| TokenError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Opens `path` for writing with mode 0600 (created if absent).
fn private(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

impl TokenStore {
    pub fn new(token_file: impl Into<PathBuf>) -> Self {
        Self {
            token_file: token_file.into(),
        }
    }

    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    pub fn candidates_file(&self) -> PathBuf {
        with_suffix(&self.token_file, ".candidates")
    }

    pub fn window_file(&self) -> PathBuf {
        with_suffix(&self.token_file, ".window")
    }

    /// Opens (or reopens) the window until `now + minutes`.
    pub fn open_window(
        &self,
        now: DateTime<Utc>,
        minutes: u32,
    ) -> Result<DateTime<Utc>, TokenError> {
        if minutes == 0 || minutes > MAX_WINDOW_MINUTES {
            return Err(TokenError::WindowLength);
        }
        let until = now + chrono::Duration::minutes(i64::from(minutes));
        let path = self.window_file();
        let mut file = private(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
        )
        .open(&path)
        .map_err(io(&path))?;
        writeln!(file, "{}", until.to_rfc3339()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(until)
    }

    /// When the window closes, if it is open at `now`.
    pub fn window_open_until(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, TokenError> {
        let path = self.window_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        // An unreadable window file is a closed window.
        Ok(DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
            .filter(|until| *until > now))
    }

    /// The candidates kept so far, oldest first.
    pub fn candidates(&self) -> Result<Vec<Candidate>, TokenError> {
        let path = self.candidates_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).map_err(|source| TokenError::Corrupt {
                    path: path.clone(),
                    source,
                })
            })
            .collect()
    }

    /// Keeps `token` as a candidate if the window is open at `now`.
    pub fn keep(
        &self,
        token: &str,
        subscription: &str,
        now: DateTime<Utc>,
    ) -> Result<Kept, TokenError> {
        if self.window_open_until(now)?.is_none() {
            return Err(TokenError::Closed);
        }
        let fp = fingerprint(token);
        let existing = self.candidates()?;
        if existing.iter().any(|c| c.token == token) {
            return Ok(Kept::Known(fp));
        }
        if existing.len() >= MAX_CANDIDATES {
            return Ok(Kept::Full);
        }
        let candidate = Candidate {
            fingerprint: fp.clone(),
            subscription: subscription.to_owned(),
            received_at: now,
            token: token.to_owned(),
        };
        let mut line = serde_json::to_string(&candidate).map_err(|source| TokenError::Corrupt {
            path: self.candidates_file(),
            source,
        })?;
        line.push('\n');
        let path = self.candidates_file();
        // One write per line in append mode: concurrent handshakes do not interleave.
        let mut file = private(std::fs::OpenOptions::new().append(true).create(true))
            .open(&path)
            .map_err(io(&path))?;
        file.write_all(line.as_bytes()).map_err(io(&path))?;
        file.sync_all().map_err(io(&path))?;
        Ok(Kept::Added(fp))
    }

    /// Makes the candidate whose fingerprint starts with `prefix` the source's token, then
    /// closes the window and forgets the other candidates.
    pub fn confirm(&self, prefix: &str) -> Result<Candidate, TokenError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let matching: Vec<Candidate> = self
            .candidates()?
            .into_iter()
            .filter(|c| !prefix.is_empty() && c.fingerprint.starts_with(&prefix))
            .collect();
        let chosen = match matching.as_slice() {
            [] => return Err(TokenError::UnknownFingerprint(prefix)),
            [one] => one.clone(),
            [first, rest @ ..] if rest.iter().all(|c| c.token == first.token) => first.clone(),
            _ => return Err(TokenError::Ambiguous(prefix)),
        };
        let path = &self.token_file;
        let mut file = private(std::fs::OpenOptions::new().write(true).create_new(true))
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => TokenError::Exists(path.clone()),
                _ => io(path)(e),
            })?;
        file.write_all(chosen.token.as_bytes()).map_err(io(path))?;
        file.write_all(b"\n").map_err(io(path))?;
        file.sync_all().map_err(io(path))?;
        self.clear()?;
        Ok(chosen)
    }

    /// Closes the window and forgets every candidate.
    pub fn clear(&self) -> Result<(), TokenError> {
        for path in [self.candidates_file(), self.window_file()] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (TokenStore, PathBuf) {
        let dir = std::env::temp_dir().join(format!("kc-gtok-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        (TokenStore::new(dir.join("gusto-token")), dir)
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).expect("time")
    }

    #[test]
    fn nothing_is_kept_outside_a_window_and_the_window_expires() {
        let (s, dir) = store();
        assert!(matches!(
            s.keep("tok-a", "sub", at(0)),
            Err(TokenError::Closed)
        ));
        let until = s.open_window(at(0), 10).expect("open");
        assert_eq!(until, at(600));
        assert_eq!(
            s.keep("tok-a", "sub", at(599)).expect("kept"),
            Kept::Added(fingerprint("tok-a"))
        );
        assert!(matches!(
            s.keep("tok-b", "sub", at(600)),
            Err(TokenError::Closed)
        ));
        assert!(matches!(
            s.open_window(at(0), 0),
            Err(TokenError::WindowLength)
        ));
        assert!(matches!(
            s.open_window(at(0), 61),
            Err(TokenError::WindowLength)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn every_candidate_is_kept_and_only_the_confirmed_one_becomes_the_token() {
        let (s, dir) = store();
        s.open_window(at(0), 10).expect("open");
        // The attacker is first; the real token comes second.
        s.keep("attacker-token", "x", at(1)).expect("kept");
        s.keep("real-token-from-gusto", "sub-1", at(2))
            .expect("kept");
        assert_eq!(
            s.keep("attacker-token", "x", at(3)).expect("known"),
            Kept::Known(fingerprint("attacker-token"))
        );
        let listed = s.candidates().expect("list");
        assert_eq!(listed.len(), 2);
        assert!(
            !format!("{listed:?}").contains("real-token"),
            "Debug hides tokens"
        );
        assert!(
            format!("{listed:?}").contains(&fingerprint("real-token-from-gusto")),
            "and shows fingerprints"
        );
        assert!(
            !s.token_file().exists(),
            "no handshake writes the token by itself"
        );

        let chosen = s
            .confirm(&fingerprint("real-token-from-gusto")[..8])
            .expect("confirm");
        assert_eq!(chosen.token(), "real-token-from-gusto");
        assert_eq!(
            std::fs::read_to_string(s.token_file())
                .expect("token")
                .trim(),
            "real-token-from-gusto"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(s.token_file())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!s.candidates_file().exists() && !s.window_file().exists());
        // A token is never replaced by a later confirmation.
        s.open_window(at(10), 10).expect("open");
        s.keep("another", "x", at(11)).expect("kept");
        assert!(matches!(
            s.confirm(&fingerprint("another")),
            Err(TokenError::Exists(_))
        ));
        assert!(matches!(
            s.confirm("ffffffffffff0"),
            Err(TokenError::UnknownFingerprint(_))
        ));
        assert!(matches!(
            s.confirm(""),
            Err(TokenError::UnknownFingerprint(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_window_may_last_the_maximum_and_unreadable_files_are_errors_not_empty() {
        let (s, dir) = store();
        assert_eq!(
            s.open_window(at(0), MAX_WINDOW_MINUTES).expect("open"),
            at(60 * i64::from(MAX_WINDOW_MINUTES))
        );
        s.clear().expect("clear");
        // A directory where a file should be: an error to report, not "closed" or "none".
        std::fs::create_dir_all(s.window_file()).expect("dir");
        std::fs::create_dir_all(s.candidates_file()).expect("dir");
        assert!(matches!(
            s.window_open_until(at(0)),
            Err(TokenError::Io { .. })
        ));
        assert!(matches!(s.candidates(), Err(TokenError::Io { .. })));
        assert!(matches!(s.clear(), Err(TokenError::Io { .. })));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_prefix_must_name_one_token() {
        let (s, dir) = store();
        s.open_window(at(0), 10).expect("open");
        // Two tokens whose fingerprints share their first digit.
        let first = "token-0".to_owned();
        let digit = fingerprint(&first)[..1].to_owned();
        let second = (1..)
            .map(|i| format!("token-{i}"))
            .find(|t| fingerprint(t).starts_with(&digit))
            .expect("a second token");
        s.keep(&first, "x", at(1)).expect("kept");
        s.keep(&second, "x", at(2)).expect("kept");
        assert!(matches!(s.confirm(&digit), Err(TokenError::Ambiguous(_))));
        assert!(!s.token_file().exists());
        // The same token twice (two handshakes racing to append) is still one token.
        let (t, dir2) = store();
        t.open_window(at(0), 10).expect("open");
        t.keep(&first, "x", at(1)).expect("kept");
        let line = std::fs::read_to_string(t.candidates_file()).expect("read");
        std::fs::write(t.candidates_file(), format!("{line}{line}")).expect("write");
        assert_eq!(t.confirm(&digit).expect("confirm").token(), first);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(dir2);
    }

    #[test]
    fn the_list_is_bounded() {
        let (s, dir) = store();
        s.open_window(at(0), 10).expect("open");
        for i in 0..MAX_CANDIDATES {
            assert!(matches!(
                s.keep(&format!("t{i}"), "x", at(1)),
                Ok(Kept::Added(_))
            ));
        }
        assert_eq!(s.keep("one-more", "x", at(2)).expect("full"), Kept::Full);
        assert_eq!(s.candidates().expect("list").len(), MAX_CANDIDATES);
        s.clear().expect("clear");
        assert!(s.candidates().expect("list").is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
