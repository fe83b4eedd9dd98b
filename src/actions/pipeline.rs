//! The one sign-in pipeline: every action that needs a token — `get`, `login`, `token` (a
//! narrower one too), `import` and `setup` — runs [`SignIn::run`], so a refresh fails the same
//! way whoever asked.
//!
//! The steps, in order:
//! 1. **Hot path** ([`Purpose::Serve`] only): a lock-free [`cache::peek`] of the wanted token's
//!    file. A token that stays valid for the minimum lifetime ([`Entry::valid_access_token`])
//!    is served with no lock and no network; nothing runs before this read.
//! 2. **Lock** the account (its lock guards the refresh token) and, for a narrower token, that
//!    token's own file: always in the order of their file names (a narrower token's file may be
//!    another account's own, narrowed the other way by another process).
//! 3. **Re-read** under the lock: another process may have refreshed or signed in meanwhile.
//! 4. **Refresh** the account's login — its cached refresh token, or for `import` the one read
//!    on stdin — asking for the wanted scope and audience. Termination signals are deferred
//!    from the request until the answer is saved ([`SignIn::issue_and_save`], the one place):
//!    the provider may have rotated the refresh token, and the new one must reach the disk.
//!    - Success: a rotated refresh token is saved to the account, the access token to the
//!      wanted entry, and served.
//!    - A dead login ([`Error::is_login_gone`]: `invalid_grant`, IAM's 401 `invalid_token`, any
//!      400/401 naming no set-up mistake such as glewlwyd's empty 400, but not an HTML page,
//!      a proxy's): the refused refresh token is forgotten wherever it is stored (the
//!      account's login, with its access token), and a new sign-in follows (step 5). For
//!      `import` the refusal is the answer (exit 3): the token on stdin was never saved, and
//!      the login cached before stays as it was.
//!    - Anything else (the provider down: 5xx, 429, a network failure; or a set-up mistake the
//!      provider names): the login is kept, and the wanted token is served, with a warning,
//!      while it is valid at all; otherwise the error (exit 4). For `import` the cached token
//!      is another login's, so the error is the answer.
//! 5. **Sign in** where a person may be asked ([`Interactive`](crate::config::Interactive)): the
//!    device flow, or the password flow per settings; else [`Error::LoginRequired`] (exit 3).
//!    `login` ([`Purpose::SignInAgain`]) starts here. The new login is saved to the account;
//!    a narrower token is then made from it by one more refresh (step 4, without its fallbacks).
//!
//! A narrower token (`token --scope/--audience`) has its own cache entry but no login of its
//! own: it is always made from the account's refresh token, so a dead or missing account login
//! is handled exactly as `get` handles it.

use std::io::Write;

use crate::actions::Io;
use crate::config::{Flow, Settings};
use crate::error::{Error, Result};
use crate::person::askpass;
use crate::person::browser;
use crate::person::prompt::Prompt;
use crate::person::signin;
use crate::provider::{Client, TokenResponse, device, password};
use crate::secret::Secret;
use crate::store::cache::{self, AccountFiles, Entry};
use crate::store::lock::LockGuard;
use crate::sys::signals::Deferred;
use crate::trust::host_of;

/// A usable access token, its expiry (Unix seconds), and what the provider granted when known
/// (see [`Entry::granted_scope`], [`Entry::granted_audience`]).
pub struct Token {
    /// The access token.
    pub access: Secret<String>,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
    /// The scope granted with it, when known.
    pub granted_scope: Option<String>,
    /// Its audience, when it is a readable JWT.
    pub granted_audience: Option<String>,
}

/// The cached token of `e` if it stays valid for `min_lifetime` seconds after `now` (capped by
/// its issued lifetime: [`Entry::valid_access_token`]).
pub fn from_entry(e: &Entry, now: i64, min_lifetime: u64) -> Option<Token> {
    e.valid_access_token(now, min_lifetime)
        .map(|(t, exp)| Token {
            access: Secret::new(t.to_string()),
            expires_at: exp,
            granted_scope: e.granted_scope.clone(),
            granted_audience: e.granted_audience.clone(),
        })
}

/// A sink for cache warnings that prints them on `stderr`.
pub fn warner(stderr: &mut dyn Write) -> impl FnMut(&str) + '_ {
    move |m: &str| {
        let _ = writeln!(stderr, "git-credential-iam: {m}");
    }
}

/// What the pipeline is run for.
pub enum Purpose {
    /// A valid token, from the cache when it has one, else a refresh, else a sign-in (`get`,
    /// `token`, `setup`).
    Serve,
    /// A new sign-in whatever is cached (`login`).
    SignInAgain,
    /// Replace the account's login with this refresh token, checked by one refresh (`import`).
    ImportRefreshToken(Secret<String>),
    /// Cache this access token, valid until `expires_at` (`import --access-token`); the
    /// account's refresh token, if any, is kept.
    ImportAccessToken {
        /// The access token read on stdin.
        token: Secret<String>,
        /// When it expires (Unix seconds): `--expires-at` or its JWT `exp`, bounded.
        expires_at: i64,
    },
}

impl Purpose {
    /// Whether a token already cached may answer (steps 1 and 3).
    fn reuses_cache(&self) -> bool {
        matches!(self, Purpose::Serve)
    }

    /// Whether the tokens come from stdin: then a dead refresh token or a provider that is down
    /// is the answer (nothing cached is theirs to fall back on), and a failed save an error.
    fn is_import(&self) -> bool {
        matches!(
            self,
            Purpose::ImportRefreshToken(_) | Purpose::ImportAccessToken { .. }
        )
    }
}

/// What [`SignIn::run_for_import`] reports besides the token.
pub struct Served {
    /// The token served.
    pub token: Token,
    /// Whether the account holds a refresh token after the run.
    pub refresh_token_held: bool,
}

/// One run of the pipeline: an account, the token wanted of it, and the purpose.
pub struct SignIn<'a> {
    /// The account: whose login (refresh token) is used, kept and renewed.
    account: &'a Settings,
    /// The settings of a narrower token (scope, audience) made from the account's login, when
    /// they name another cache entry than the account's.
    narrower: Option<&'a Settings>,
    purpose: Purpose,
    /// The username git sent, offered by the password flow's prompt.
    git_username: Option<&'a str>,
}

/// Where a new access token goes: the account's entry (a new sign-in), or the wanted one (a
/// refresh: the account's, or a narrower token's). A rotated refresh token always goes to the
/// account.
#[derive(Clone, Copy)]
enum Dest {
    /// The account's entry.
    Account,
    /// The wanted token's entry.
    Wanted,
}

/// The entries read under the lock.
struct Held {
    /// The account's entry: its login.
    account: Entry,
    /// A narrower token's own entry.
    narrower: Option<Entry>,
}

impl Held {
    /// The entry whose access token is wanted.
    fn wanted(&self) -> &Entry {
        self.narrower.as_ref().unwrap_or(&self.account)
    }
}

/// New tokens, from the provider or stdin, before they are saved.
struct Issued {
    /// The access token.
    access: Secret<String>,
    /// When it expires (Unix seconds).
    expires_at: i64,
    /// A new refresh token (`None` keeps the account's).
    refresh: Option<Secret<String>>,
    /// What the provider granted; `None` when unknown (an imported access token).
    granted_scope: Option<String>,
}

impl Issued {
    /// A token response received at `now` for a request of `requested` scope.
    fn from_response(t: TokenResponse, requested: &str, now: i64) -> Issued {
        // RFC 6749 §5.1: no `scope` in the answer means the scope requested.
        let granted = t
            .scope
            .as_deref()
            .map(|g| crate::encoding::clean(g.trim(), 2000))
            .filter(|g| !g.is_empty())
            .unwrap_or_else(|| requested.to_string());
        Issued {
            expires_at: t.expires_at(now),
            access: t.access_token,
            refresh: t.refresh_token,
            granted_scope: Some(granted),
        }
    }
}

impl<'a> SignIn<'a> {
    /// A run for the account `account`, serving its own token.
    pub fn new(account: &'a Settings, purpose: Purpose) -> SignIn<'a> {
        SignIn {
            account,
            narrower: None,
            purpose,
            git_username: None,
        }
    }

    /// Serves the token of `wanted` (the account with a narrower scope or audience) instead,
    /// made from the account's login. The same cache entry as the account's changes nothing.
    pub fn narrowed_to(mut self, wanted: &'a Settings) -> SignIn<'a> {
        let data = |s: &Settings| AccountFiles::for_settings(s).data;
        self.narrower = (data(wanted) != data(self.account)).then_some(wanted);
        self
    }

    /// Offers the username git sent to the password flow's prompt.
    pub fn for_git_user(mut self, username: Option<&'a str>) -> SignIn<'a> {
        self.git_username = username;
        self
    }

    /// The settings of the wanted token.
    fn wanted(&self) -> &'a Settings {
        self.narrower.unwrap_or(self.account)
    }

    /// Runs the pipeline (see the module's documentation): a valid token, or why not.
    pub fn run(&self, io: &mut Io) -> Result<Token> {
        let wanted = self.wanted();
        // Step 1, the hot path: no lock, no network. Writers replace the file by rename, so
        // this read sees a whole file, old or new.
        if self.purpose.reuses_cache()
            && let Some(t) = cache::peek(
                &AccountFiles::for_settings(wanted),
                wanted,
                &mut warner(io.stderr),
            )?
            .as_ref()
            .and_then(|e| from_entry(e, (io.clock)(), wanted.min_lifetime))
        {
            return Ok(t);
        }
        self.locked(io).map(|s| s.token)
    }

    /// Runs the pipeline for `import` (which never reuses a cached token, so it starts at the
    /// lock), and also says whether the account holds a refresh token afterwards.
    pub fn run_for_import(&self, io: &mut Io) -> Result<Served> {
        self.locked(io)
    }

    /// Steps 2 to 5, under the lock.
    fn locked(&self, io: &mut Io) -> Result<Served> {
        let account_files = AccountFiles::for_settings(self.account);
        let wanted_files = self.narrower.map(AccountFiles::for_settings);
        cache::prepare_dir(&account_files.dir, &mut warner(io.stderr))?;
        // Step 2: the account's lock and the narrower token's, in the order of their file names:
        // a narrower token's entry may be another account's own (same issuer and client, that
        // scope), and two runs narrowing each way, each holding its account's lock first, would
        // each wait for the other's until --lock-timeout.
        let mut order: Vec<&AccountFiles> = [Some(&account_files), wanted_files.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        order.sort_by(|a, b| a.data.cmp(&b.data));
        let _locks = order
            .into_iter()
            .map(|f| {
                let stderr = &mut *io.stderr;
                LockGuard::acquire(&f.lock, self.account.lock_timeout, |holder| {
                    let _ = writeln!(
                        stderr,
                        "git-credential-iam: waiting for {holder} to finish its sign-in or \
                         refresh…"
                    );
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // Step 3: re-read.
        let mut held = Held {
            account: self.load(&account_files, self.account, io)?,
            narrower: match (&wanted_files, self.narrower) {
                (Some(f), Some(s)) => Some(self.load(f, s, io)?),
                _ => None,
            },
        };
        let files = Files {
            account: &account_files,
            wanted: wanted_files.as_ref().unwrap_or(&account_files),
        };
        if self.purpose.reuses_cache()
            && let Some(t) = from_entry(held.wanted(), (io.clock)(), self.wanted().min_lifetime)
        {
            // Another process refreshed or signed in while we waited.
            return Ok(self.served(t, &held));
        }
        if let Purpose::ImportAccessToken { token, expires_at } = &self.purpose {
            let issued = Issued {
                access: token.clone(),
                expires_at: *expires_at,
                refresh: None,
                granted_scope: None,
            };
            let t = self.issue_and_save(&files, &mut held, Dest::Account, io, || Ok(issued))?;
            return Ok(self.served(t, &held));
        }
        // Step 4: refresh.
        let now = (io.clock)();
        let account_client = Client::new(self.account, now)?;
        let narrower_client = self.narrower.map(|s| Client::new(s, now)).transpose()?;
        let wanted_client = narrower_client.as_ref().unwrap_or(&account_client);
        if let Some(rt) = self.refresh_token(&held, now)? {
            match self.refresh(wanted_client, &rt, Dest::Wanted, &files, &mut held, io) {
                Ok(t) => return Ok(self.served(t, &held)),
                Err(e) if e.is_login_gone() && self.narrower.is_some() => {
                    // The refusal may be of the narrower scope or audience, not of the login:
                    // one refresh as the account itself tells which, before a login is dropped.
                    match self.refresh(&account_client, &rt, Dest::Account, &files, &mut held, io) {
                        Ok(_) => return Err(self.narrower_refused(e)),
                        Err(again) if again.is_login_gone() => {
                            self.forget(&rt, again, &files, &mut held, io)?
                        }
                        Err(again) => return self.provider_down(again, &held, io),
                    }
                }
                Err(e) if e.is_login_gone() => self.forget(&rt, e, &files, &mut held, io)?,
                Err(e) => return self.provider_down(e, &held, io),
            }
        }
        // Step 5: a new sign-in, saved to the account.
        let t = self.sign_in(&account_client, &files, &mut held, io)?;
        if self.narrower.is_none() {
            return Ok(self.served(t, &held));
        }
        let rt = self
            .refresh_token(&held, (io.clock)())?
            .ok_or_else(|| self.no_refresh_token())?;
        let t = self.refresh(wanted_client, &rt, Dest::Wanted, &files, &mut held, io)?;
        Ok(self.served(t, &held))
    }

    /// The provider refused the narrower token but still refreshes the account's login: the
    /// narrower scope or audience is what it refuses, and the login is kept.
    fn narrower_refused(&self, e: Error) -> Error {
        let w = self.wanted();
        let audience = w
            .audience
            .as_deref()
            .map(|a| format!(" and audience {a:?}"))
            .unwrap_or_default();
        Error::Provider {
            host: host_of(&w.issuer),
            message: format!(
                "refused a token for scope {:?}{audience} ({e}), though the login itself still \
                 refreshes; it is kept. Ask for a scope or audience this client may have \
                 (--scope, --audience)",
                w.scope
            ),
        }
    }

    /// The account's entry (or a narrower token's) as on disk, or an empty one.
    fn load(&self, files: &AccountFiles, s: &Settings, io: &mut Io) -> Result<Entry> {
        Ok(cache::load(files, s, &mut warner(io.stderr))?.unwrap_or_else(|| Entry::empty(s)))
    }

    /// `token`, served with what `held` says of the account's login.
    fn served(&self, token: Token, held: &Held) -> Served {
        Served {
            token,
            refresh_token_held: held.account.refresh_token.is_some(),
        }
    }

    /// The refresh token step 4 uses: the one imported, else the account's (none for a forced
    /// sign-in). A narrower token cannot be made from a login that holds a valid access token
    /// but no refresh token (an imported access token, a login without `offline_access`).
    fn refresh_token(&self, held: &Held, now: i64) -> Result<Option<Secret<String>>> {
        match &self.purpose {
            Purpose::ImportRefreshToken(rt) => Ok(Some(rt.clone())),
            Purpose::SignInAgain | Purpose::ImportAccessToken { .. } => Ok(None),
            Purpose::Serve => match &held.account.refresh_token {
                Some(rt) => Ok(Some(rt.clone())),
                None if self.narrower.is_some() && from_entry(&held.account, now, 1).is_some() => {
                    Err(self.no_refresh_token())
                }
                None => Ok(None),
            },
        }
    }

    /// Why no narrower token can be made from the account's login.
    fn no_refresh_token(&self) -> Error {
        Error::LoginRequired(format!(
            "the login for {} holds no refresh token, so no narrower token can be made; \
             sign in with the scope offline_access",
            self.account.issuer
        ))
    }

    /// One refresh of `rt` by `client`, asking for the scope and audience of `into`'s entry
    /// (the account's, or the wanted token's), saved there.
    fn refresh(
        &self,
        client: &Client,
        rt: &Secret<String>,
        into: Dest,
        files: &Files,
        held: &mut Held,
        io: &mut Io,
    ) -> Result<Token> {
        let requested = match into {
            Dest::Account => &self.account.scope,
            Dest::Wanted => &self.wanted().scope,
        };
        let clock = io.clock;
        self.issue_and_save(files, held, into, io, || {
            let t = client.refresh(rt)?;
            // The refresh token used becomes the account's (the imported one), unless the
            // provider rotated it.
            let mut issued = Issued::from_response(t, requested, clock());
            issued.refresh = issued.refresh.or_else(|| Some(rt.clone()));
            Ok(issued)
        })
    }

    /// A dead login: the refused refresh token is forgotten where it is stored (an imported one
    /// was stored nowhere: the refusal is the answer).
    fn forget(
        &self,
        rt: &Secret<String>,
        e: Error,
        files: &Files,
        held: &mut Held,
        io: &mut Io,
    ) -> Result<()> {
        if self.purpose.is_import() {
            return Err(Error::LoginRequired(format!(
                "the imported refresh token was refused ({e}); get a fresh one"
            )));
        }
        io.say(&format!(
            "the saved login is no longer valid ({e}); a new sign-in is needed"
        ));
        let a = &mut held.account;
        if a.refresh_token.as_ref().map(|r| r.expose()) == Some(rt.expose()) {
            a.refresh_token = None;
            a.clear_access_token();
            a.updated_at = (io.clock)();
            cache::save(files.account, a)?;
        }
        Ok(())
    }

    /// The provider is down (or names a set-up mistake): the login is kept, and the wanted
    /// token served while it is valid at all.
    fn provider_down(&self, e: Error, held: &Held, io: &mut Io) -> Result<Served> {
        let cached = (!self.purpose.is_import())
            .then(|| from_entry(held.wanted(), (io.clock)(), 1))
            .flatten();
        let Some(t) = cached else {
            return Err(e);
        };
        io.say(&format!(
            "cannot refresh ({e}); using the cached token, which expires soon"
        ));
        Ok(self.served(t, held))
    }

    /// Step 5: the device flow, or the password flow per settings, for the account.
    fn sign_in(
        &self,
        client: &Client,
        files: &Files,
        held: &mut Held,
        io: &mut Io,
    ) -> Result<Token> {
        let s = self.account;
        let host = host_of(&s.issuer);
        let t = if s.flow == Flow::Password {
            let username = askpass::username(s, self.git_username, &host, io.getenv)?;
            let pw = askpass::password(s, &format!("{username}@{host}"), io.getenv)?;
            io.say(password::DEPRECATION);
            password::grant(client, &username, &pw)?
        } else {
            let stderr_is_tty = io.stderr_is_tty;
            let Some(mut prompt) = Prompt::open(s.interactive, &mut *io.stderr, stderr_is_tty)
            else {
                return Err(Error::LoginRequired(format!(
                    "no valid login for {host} and no terminal to sign in on (non-interactive); \
                     run `git-credential-iam login` (with the same options) first"
                )));
            };
            let opener = browser::System {
                env: io.getenv,
                os: std::env::consts::OS,
            };
            let ui = signin::Ui {
                qr: s.qr,
                browser: s.browser,
                env: io.getenv,
                os: std::env::consts::OS,
                opener: &opener,
            };
            let flow = signin::DeviceFlow {
                start: &|| device::start(client),
                poll: &|da, progress| device::poll(client, da, progress),
            };
            signin::sign_in(&flow, &host, &mut prompt, &ui, io.clock)?
        };
        let issued = Issued::from_response(t, &s.scope, (io.clock)());
        self.issue_and_save(files, held, Dest::Account, io, || Ok(issued))
    }

    /// The one window in which a termination signal would lose a login: from the request that
    /// issues tokens (a refresh rotates the refresh token) until they are saved. Signals are
    /// deferred across it ([`Deferred`]); a person's part of a sign-in stays outside it.
    fn issue_and_save(
        &self,
        files: &Files,
        held: &mut Held,
        into: Dest,
        io: &mut Io,
        issue: impl FnOnce() -> Result<Issued>,
    ) -> Result<Token> {
        let _deferred = Deferred::new();
        let t = issue()?;
        self.save(files, held, into, t, io)
    }

    /// Saves new tokens: a rotated refresh token to the account first, then the access token
    /// where `into` says. A failed write is an error for `import`; otherwise the token is
    /// still handed out with a warning (it is valid, and failing would lose it too).
    fn save(
        &self,
        files: &Files,
        held: &mut Held,
        into: Dest,
        t: Issued,
        io: &mut Io,
    ) -> Result<Token> {
        let now = (io.clock)();
        let rotated = t.refresh.filter(|new| {
            held.account.refresh_token.as_ref().map(|r| r.expose()) != Some(new.expose())
        });
        let (entry, data_files) = match (into, held.narrower.as_mut()) {
            (Dest::Wanted, Some(narrower)) => {
                if let Some(rt) = rotated {
                    held.account.refresh_token = Some(rt);
                    held.account.updated_at = now;
                    self.write(files.account, &held.account, io)?;
                }
                (narrower, files.wanted)
            }
            _ => {
                if let Some(rt) = rotated {
                    held.account.refresh_token = Some(rt);
                }
                (&mut held.account, files.account)
            }
        };
        let before = (entry.granted_scope.take(), entry.granted_audience.take());
        entry.set_access_token(t.access.clone(), t.expires_at, now);
        entry.granted_scope = t.granted_scope;
        entry.granted_audience = crate::provider::claims::audience(t.access.expose());
        if entry.granted_scope.is_some()
            && (&entry.granted_scope, &entry.granted_audience) != (&before.0, &before.1)
            && let Some(note) = grant_note(entry)
        {
            io.say(&note);
        }
        self.write(data_files, entry, io)?;
        Ok(Token {
            access: t.access,
            expires_at: t.expires_at,
            granted_scope: entry.granted_scope.clone(),
            granted_audience: entry.granted_audience.clone(),
        })
    }

    /// Writes an entry: an error for `import`, a warning otherwise (see [`SignIn::save`]).
    fn write(&self, files: &AccountFiles, entry: &Entry, io: &mut Io) -> Result<()> {
        match cache::save(files, entry) {
            Err(e) if self.purpose.is_import() => Err(e),
            Err(e) => {
                io.say(&format!(
                    "warning: the new tokens could not be saved ({e}); this token works until \
                     it expires, then a new sign-in is needed"
                ));
                Ok(())
            }
            Ok(()) => Ok(()),
        }
    }
}

/// The cache files of one run: the account's, and the wanted token's (the same for the
/// account's own token).
struct Files<'f> {
    account: &'f AccountFiles,
    wanted: &'f AccountFiles,
}

/// One line saying how what the provider granted differs from the request, if it does.
pub fn grant_note(e: &Entry) -> Option<String> {
    let mut parts = Vec::new();
    let missing = e.scopes_not_granted();
    if !missing.is_empty() {
        parts.push(format!(
            "without the requested scope {} (granted: {})",
            missing.join(" "),
            e.granted_scope.as_deref().unwrap_or_default()
        ));
    }
    if e.audience_differs() {
        parts.push(format!(
            "for the audience {:?}, not the requested {:?}",
            e.granted_audience.as_deref().unwrap_or_default(),
            e.audience.as_deref().unwrap_or_default()
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "note: {} issued the token {}",
            host_of(&e.issuer),
            parts.join(", and ")
        )
    })
}

#[cfg(test)]
mod tests;
