//! `ClientPortalBroker`: the [`BrokerReader`] over IBKR's Client Portal Gateway (CPAPI), the
//! REST gateway a person runs locally and logs in to through a browser.
//!
//! The adapter behaves like the documented gateway, quirks included (`docs/client-portal.md`
//! for operators; the CPAPI reference for the details):
//! - **Pre-flight.** `/iserver/accounts` runs once per brokerage session before any other
//!   `/iserver` call; `/portfolio/accounts` runs before any `/portfolio/{accountId}/…` call and
//!   its answer decides which account ids are known. Both are cached for the session they were
//!   made in, identified by the digest of `/tickle`'s session token, and run again when the
//!   session is seen logged out, renewed or replaced by a new login (by this process's
//!   keepalive or, through the shared pacing file, by another process). The gateway's
//!   `Please query … first` answers trigger the pre-flight once more and the call is repeated
//!   once. An empty portfolio first checks the session with `/tickle` (a login nobody has seen
//!   yet redoes the pre-flight), and one read soon after a pre-flight is read a second time
//!   before it is believed: right after a login the gateway may not have loaded the positions.
//! - **Two-call snapshot.** The first snapshot of a conid only opens a stream and returns its
//!   identifiers. The snapshot is asked again, up to [`ClientPortalConfig::snapshot_attempts`]
//!   times with [`ClientPortalConfig::snapshot_retry_pause`] between, until its fields (and,
//!   for options, its greeks) are populated.
//! - **Pacing.** Every request, the keepalive included, waits for its slot under
//!   [`ClientPortalPacing`] widened by a margin; with a state directory the slots are shared by
//!   every process of the installation. A 429 drops the requests still waiting and backs off
//!   its endpoint; 429s from two endpoints within a minute start the penalty box, during which
//!   every request is refused locally with `RateLimited`.
//! - **Login is never automated.** Nothing here calls `ssodh/init` or `reauthenticate`; a session
//!   that needs a person reports the gateway's own login page.
//!
//! Contract details come from `/trsrv/secdef` (batched, cached for the life of the adapter:
//! a conid never changes meaning); contract search uses `/iserver/secdef/search` for the conids.
//!
//! The what-if (`/iserver/account/{accountId}/orders/whatif`) is a read: it never touches the
//! place, reply, modify or cancel endpoints. Writes live in [`ClientPortalOrderWriter`], built
//! from a broker with [`ClientPortalBroker::order_writer`] (paper) or
//! [`ClientPortalBroker::order_writer_for`] (paper or live) so all share one HTTP client, one
//! pacing limiter and one brokerage session.

mod account_reads;
mod cash_fx;
mod client;
mod depth;
mod dto;
mod endpoints;
mod errors;
mod lenient;
mod news_calendar;
mod options;
mod pacing;
mod research;
mod session;
mod shared_state;
mod writer;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;
use tokio::sync::Mutex as AsyncMutex;
use url::Url;

use self::client::{ApiRequest, GatewayClient};
use self::dto::accounts::{
    BrokerageAccounts, IserverAccountsDto, LedgerDto, PortfolioAccount, PortfolioAccountDto,
    SummaryDto,
};
use self::dto::contracts::{ContractFieldsError, search_conids, secdef_items};
use self::dto::market::{
    HistoryDto, SnapshotReading, SnapshotRules, cpapi_bar, cpapi_period, read_snapshot,
    snapshot_fields,
};
use self::dto::order_write;
use self::dto::orders::{OrdersDto, TradeDto};
use self::dto::positions::position_page;
use self::errors::{ErrorContext, GatewayFault};
use self::pacing::Preflight;
pub use self::pacing::{
    ClientPortalPacing, DEFAULT_PACING_MARGIN_PERCENT, PACING_MARGIN_PERCENT_RANGE,
};
use self::session::{AuthStatusDto, SessionCache};
use self::writer::Reply;
pub use self::writer::{
    ClientPortalOrderWriter, DEFAULT_CONFIRMABLE_MESSAGE_IDS, MAX_REPLY_ROUNDS,
};
use crate::domain::account::{Account, AccountSummary};
use crate::domain::error_code::ErrorCode;
use crate::domain::ids::{AccountId, ContractId};
use crate::domain::instrument::{Contract, ContractQuery};
use crate::domain::market_data::{BarSeries, BarsRequest, Quote};
use crate::domain::money::Currency;
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::order_intent::OrderIntent;
use crate::domain::portfolio::Position;
use crate::domain::preview::WhatIf;
use crate::domain::session::{SessionState, SessionStatus};
use crate::ports::broker_reader::{BrokerError, BrokerReader};
use crate::ports::clock::Clock;
use crate::ports::order_writer::WriterMode;

/// The most conids of one search that are looked up.
const MAX_SEARCH_RESULTS: usize = 50;
/// The most conids `/trsrv/secdef` takes in one request.
const MAX_SECDEF_BATCH: usize = 200;
/// Contract details kept before the cache is emptied.
const MAX_CACHED_CONTRACTS: usize = 4096;
/// The trades endpoint looks back at most this many days.
const MAX_TRADE_DAYS: i64 = 7;
/// An empty portfolio read within this long of its pre-flight is read a second time.
const RECENT_PREFLIGHT: Duration = Duration::from_secs(60);

/// How to reach the gateway and how patiently to treat it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPortalConfig {
    /// The API base URL, e.g. `https://localhost:5000/v1/api`.
    pub base_url: Url,
    /// Skip certificate checks (the gateway ships a self-signed certificate). Refused unless
    /// the host is loopback (`localhost`, `127.0.0.0/8`, `::1`).
    pub allow_insecure_tls_for_localhost: bool,
    /// The longest one request may take, connection and body included.
    pub request_timeout: Duration,
    /// The longest connecting may take.
    pub connect_timeout: Duration,
    /// The largest response body read; a larger one is an invalid response.
    pub max_body_bytes: usize,
    /// Request pacing; keep [`ClientPortalPacing::documented`] outside tests.
    pub pacing: ClientPortalPacing,
    /// How far below each documented limit the pacing stays, in percent
    /// ([`PACING_MARGIN_PERCENT_RANGE`]); 20 turns 10 requests per second into 8.
    pub pacing_margin_percent: u8,
    /// The state directory whose pacing file every process of the installation shares; `None`
    /// keeps the pacing state in memory (one process). The file is stamped with the broker's
    /// clock, which must then be the system clock.
    pub shared_state_dir: Option<PathBuf>,
    /// The pause before an empty portfolio read right after a pre-flight is read again.
    pub empty_portfolio_recheck_pause: Duration,
    /// How many snapshot calls one quote may take (the first often only opens the stream).
    pub snapshot_attempts: u32,
    /// The pause between two snapshot calls of one quote.
    pub snapshot_retry_pause: Duration,
    /// A live or delayed quote not updated for longer than this is reported stale.
    pub quote_stale_after: Duration,
    /// The most position pages read for one account.
    pub max_position_pages: u32,
}

impl ClientPortalConfig {
    /// The defaults for `base_url`: certificates checked, 15 s per request, 5 s to connect,
    /// 8 MiB per body, the documented pacing with a 20% margin kept in memory, three snapshot
    /// calls 500 ms apart, quotes stale after 10 minutes without an update, at most 50 pages of
    /// positions, an empty portfolio after a fresh pre-flight read again after 1 s.
    pub fn new(base_url: Url) -> Self {
        Self {
            base_url,
            allow_insecure_tls_for_localhost: false,
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_body_bytes: 8 * 1024 * 1024,
            pacing: ClientPortalPacing::documented(),
            pacing_margin_percent: DEFAULT_PACING_MARGIN_PERCENT,
            shared_state_dir: None,
            empty_portfolio_recheck_pause: Duration::from_secs(1),
            snapshot_attempts: 3,
            snapshot_retry_pause: Duration::from_millis(500),
            quote_stale_after: Duration::from_secs(600),
            max_position_pages: 50,
        }
    }
}

/// Why the adapter could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientPortalSetupError {
    /// Certificate checks may only be skipped for a loopback host.
    #[error(
        "allow_insecure_tls_for_localhost is only allowed for a loopback host (localhost, 127.0.0.0/8, ::1)"
    )]
    TlsBypassNonLocalhost,
    /// The base URL cannot be used.
    #[error("the gateway base URL {reason}")]
    BaseUrl {
        /// What is wrong, e.g. `must not carry credentials`.
        reason: &'static str,
    },
    /// A timeout, size cap or count is out of range.
    #[error("the gateway limits are invalid: {reason}")]
    Limits {
        /// What is wrong.
        reason: &'static str,
    },
    /// The TLS stack could not be initialised.
    #[error("the HTTP client could not be built")]
    HttpClient,
}

impl ClientPortalSetupError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TlsBypassNonLocalhost => ErrorCode::ConfigTlsBypassNonLocalhost,
            Self::BaseUrl { .. } | Self::Limits { .. } => ErrorCode::ConfigInvalid,
            Self::HttpClient => ErrorCode::InternalError,
        }
    }
}

/// The Client Portal Gateway adapter. See the module documentation.
pub struct ClientPortalBroker {
    // Shared with the order writers built from this broker.
    client: Arc<GatewayClient>,
    clock: Arc<dyn Clock>,
    snapshot_attempts: u32,
    snapshot_retry_pause: Duration,
    quote_stale_after: chrono::Duration,
    max_position_pages: u32,
    empty_portfolio_recheck_pause: Duration,
    // An async mutex: it is held across the pre-flight requests, so concurrent callers share
    // one pre-flight instead of each paying the one-per-5-seconds `/portfolio/accounts` limit.
    // Shared with the order writers, so a session seen lost by either is forgotten by both.
    session: Arc<AsyncMutex<SessionCache>>,
    // An async mutex held across one whole order write (prompts included) by the writers built
    // from this broker: the gateway wants one submission in flight at a time (reference §6.3).
    writes: Arc<AsyncMutex<()>>,
    // A std mutex: held only to read or insert, never across an await.
    contracts: Mutex<HashMap<ContractId, Contract>>,
    // The `/pa/transactions` rows already read (issue 16: cash_fx).
    transactions: cash_fx::TransactionsCache,
    // The market-depth WebSocket's TLS policy (the REST client's), built once (issue 16: depth).
    depth: depth::DepthSocket,
    // issue 16: research (the cached scanner parameters).
    research: research::ResearchState,
}

impl fmt::Debug for ClientPortalBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPortalBroker").finish_non_exhaustive()
    }
}

impl ClientPortalBroker {
    /// Builds the adapter and its one HTTP client. Nothing is sent until the first call.
    ///
    /// # Errors
    /// [`ClientPortalSetupError::TlsBypassNonLocalhost`] when certificate checks would be
    /// skipped for a host that is not loopback; other variants for an unusable base URL or
    /// limits.
    pub fn new(
        config: ClientPortalConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ClientPortalSetupError> {
        if config.snapshot_attempts == 0 || config.max_position_pages == 0 {
            return Err(ClientPortalSetupError::Limits {
                reason: "snapshot attempts and position pages must be at least 1",
            });
        }
        let quote_stale_after =
            chrono::Duration::from_std(config.quote_stale_after).map_err(|_| {
                ClientPortalSetupError::Limits {
                    reason: "the stale-quote age is too large",
                }
            })?;
        Ok(Self {
            client: Arc::new(GatewayClient::build(&config, Arc::clone(&clock))?),
            clock,
            snapshot_attempts: config.snapshot_attempts,
            snapshot_retry_pause: config.snapshot_retry_pause,
            quote_stale_after,
            max_position_pages: config.max_position_pages,
            empty_portfolio_recheck_pause: config.empty_portfolio_recheck_pause,
            session: Arc::new(AsyncMutex::new(SessionCache::default())),
            writes: Arc::new(AsyncMutex::new(())),
            contracts: Mutex::new(HashMap::new()),
            transactions: cash_fx::TransactionsCache::new(&config),
            depth: depth::DepthSocket::build(&config)?,
            research: research::ResearchState::default(),
        })
    }

    /// An order writer for paper accounts that shares this broker's HTTP client, pacing,
    /// brokerage session and write serialization. It confirms a gateway prompt on its own only
    /// when every message id of the prompt is in `confirmable_message_ids` (see
    /// [`DEFAULT_CONFIRMABLE_MESSAGE_IDS`]), for at most [`MAX_REPLY_ROUNDS`] rounds; every
    /// other prompt goes back to the caller.
    pub fn order_writer(
        &self,
        confirmable_message_ids: BTreeSet<String>,
    ) -> ClientPortalOrderWriter {
        ClientPortalOrderWriter::new(
            Arc::clone(&self.client),
            Arc::clone(&self.session),
            Arc::clone(&self.writes),
            confirmable_message_ids,
            WriterMode::Paper,
            MAX_REPLY_ROUNDS,
        )
    }

    /// An order writer for `mode`, sharing what [`ClientPortalBroker::order_writer`] shares
    /// (writes of every writer built from this broker, paper and live, are serialized
    /// together). It answers at most `max_reply_rounds` confirmable prompts for one write
    /// (`broker.max_reply_rounds`; 0 declines every prompt). A live writer writes only to live
    /// accounts and refuses market orders and anything without a limit price before sending.
    pub fn order_writer_for(
        &self,
        mode: WriterMode,
        confirmable_message_ids: BTreeSet<String>,
        max_reply_rounds: u8,
    ) -> ClientPortalOrderWriter {
        ClientPortalOrderWriter::new(
            Arc::clone(&self.client),
            Arc::clone(&self.session),
            Arc::clone(&self.writes),
            confirmable_message_ids,
            mode,
            usize::from(max_reply_rounds),
        )
    }

    /// The live order writer: [`ClientPortalBroker::order_writer_for`] with
    /// [`WriterMode::Live`].
    pub fn live_order_writer(
        &self,
        confirmable_message_ids: BTreeSet<String>,
        max_reply_rounds: u8,
    ) -> ClientPortalOrderWriter {
        self.order_writer_for(WriterMode::Live, confirmable_message_ids, max_reply_rounds)
    }

    // ---------------------------------------------------------------------------------------
    // The seam
    // ---------------------------------------------------------------------------------------

    /// Forgets what was learnt in the brokerage session, so the pre-flight runs again.
    async fn forget_session(&self) {
        *self.session.lock().await = SessionCache::default();
    }

    /// Maps a fault to the port's error, dropping the session caches where the session is gone.
    async fn finish<T>(&self, result: Result<T, GatewayFault>) -> Result<T, BrokerError> {
        match result {
            Ok(value) => Ok(value),
            Err(GatewayFault::Broker(error)) => Err(error),
            Err(GatewayFault::NoSession) => {
                self.forget_session().await;
                Err(session::no_session_error(&self.client).await)
            }
            Err(GatewayFault::PreflightMissing) => {
                self.forget_session().await;
                Err(errors::invalid(
                    "the gateway asked for its pre-flight again",
                ))
            }
            Err(GatewayFault::NothingFound) => {
                Err(errors::invalid("the gateway found nothing for a known id"))
            }
            Err(GatewayFault::RateLimited { penalty }) => Err(pacing::rate_limited(penalty)),
        }
    }

    /// `/iserver/accounts`, once per brokerage session.
    async fn brokerage(&self) -> Result<BrokerageAccounts, GatewayFault> {
        preflight_brokerage(&self.client, &self.session).await
    }

    /// `/portfolio/accounts`, once per session.
    async fn portfolio(&self) -> Result<Vec<PortfolioAccount>, GatewayFault> {
        let mut cache = self.session.lock().await;
        follow_shared_session(&self.client, &mut cache).await;
        if let Some(portfolio) = &cache.portfolio {
            return Ok(portfolio.clone());
        }
        let value = self
            .client
            .call(&ApiRequest::get(&["portfolio", "accounts"]))
            .await?;
        let items: Vec<PortfolioAccountDto> = match value {
            serde_json::Value::Null => Vec::new(),
            other => dto::parse(other, "portfolio accounts")?,
        };
        let mut accounts: Vec<PortfolioAccount> = Vec::new();
        for item in items {
            let account = item.try_into_domain()?;
            if !accounts.iter().any(|known| known.id == account.id) {
                accounts.push(account);
            }
        }
        cache.portfolio = Some(accounts.clone());
        cache.portfolio_at = Some(tokio::time::Instant::now());
        if let Some(digest) = &cache.session_digest {
            self.client
                .limiter()
                .note_preflight(digest, Preflight::Portfolio)
                .await;
        }
        Ok(accounts)
    }

    /// A `/portfolio/{accountId}/…` call after its pre-flight. When the gateway says the
    /// pre-flight is missing (`Please query /portfolio/accounts first`), the pre-flight and the
    /// call run once more.
    async fn portfolio_call(
        &self,
        request: &ApiRequest,
    ) -> Result<serde_json::Value, GatewayFault> {
        match self.client.call(request).await {
            Err(GatewayFault::PreflightMissing) => {
                self.forget_portfolio().await;
                self.portfolio().await?;
                self.client.call(request).await
            }
            other => other,
        }
    }

    /// True when the portfolio pre-flight ran within [`RECENT_PREFLIGHT`].
    async fn preflight_is_recent(&self) -> bool {
        self.session
            .lock()
            .await
            .portfolio_at
            .is_some_and(|at| at.elapsed() < RECENT_PREFLIGHT)
    }

    /// Forgets the portfolio pre-flight only (the brokerage one stays).
    async fn forget_portfolio(&self) {
        let mut cache = self.session.lock().await;
        cache.portfolio = None;
        cache.portfolio_at = None;
    }

    /// Notes the session a keepalive saw. A session other than the one the pre-flights were
    /// made in (a new login) forgets them, here and, through the shared record, elsewhere.
    /// Pre-flights made before any session was seen are taken to belong to this one. Returns
    /// true when the pre-flights were forgotten.
    async fn observe_session(&self, digest: &str) -> bool {
        let mut cache = self.session.lock().await;
        let replaced = match cache.session_digest.as_deref() {
            Some(known) => known != digest,
            None => false,
        };
        if replaced {
            *cache = SessionCache::for_session(Some(digest.to_owned()));
        } else {
            cache.session_digest = Some(digest.to_owned());
        }
        drop(cache);
        self.client.limiter().note_session(digest).await;
        replaced
    }

    /// Asks the gateway which session it holds (`/tickle`) and forgets the pre-flights when it
    /// is not the one they were made in.
    async fn session_was_replaced(&self) -> Result<bool, GatewayFault> {
        let value = self
            .client
            .call(&ApiRequest::post_empty(&["tickle"]))
            .await?;
        match session::read_tickle(value)?.session_digest {
            Some(digest) => Ok(self.observe_session(&digest).await),
            None => Ok(false),
        }
    }

    /// An `/iserver` call after its pre-flight. When the gateway says the pre-flight is
    /// missing (the session was renewed), the pre-flight and the call run once more.
    async fn iserver(&self, request: &ApiRequest) -> Result<serde_json::Value, GatewayFault> {
        self.brokerage().await?;
        match self.client.call(request).await {
            Err(GatewayFault::PreflightMissing) => {
                self.forget_session().await;
                self.brokerage().await?;
                self.client.call(request).await
            }
            other => other,
        }
    }

    /// The portfolio account for `id`, after the `/portfolio/accounts` pre-flight.
    async fn portfolio_account(&self, id: &AccountId) -> Result<PortfolioAccount, GatewayFault> {
        self.portfolio()
            .await?
            .into_iter()
            .find(|account| &account.id == id)
            .ok_or(GatewayFault::Broker(BrokerError::UnknownAccount))
    }

    /// Checks that `id` is known to both the portfolio and the brokerage session.
    async fn brokerage_account(&self, id: &AccountId) -> Result<(), GatewayFault> {
        self.portfolio_account(id).await?;
        if self.brokerage().await?.ids.contains(id) {
            Ok(())
        } else {
            Err(GatewayFault::Broker(BrokerError::UnknownAccount))
        }
    }

    // ---------------------------------------------------------------------------------------
    // Contracts
    // ---------------------------------------------------------------------------------------

    fn cached_contract(&self, id: ContractId) -> Option<Contract> {
        self.contracts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn cache_contract(&self, contract: &Contract) {
        let mut cache = self
            .contracts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_CONTRACTS {
            cache.clear();
        }
        cache.insert(contract.id, contract.clone());
    }

    /// Details of `ids` from the cache, the rest from `/trsrv/secdef` in batches. Ids the
    /// gateway does not know are absent from the answer; each present id maps to its contract
    /// or to why it could not become one.
    async fn contracts(
        &self,
        ids: &[ContractId],
    ) -> Result<HashMap<ContractId, Result<Contract, ContractFieldsError>>, GatewayFault> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match self.cached_contract(*id) {
                Some(contract) => {
                    found.insert(*id, Ok(contract));
                }
                None if !missing.contains(id) => missing.push(*id),
                None => {}
            }
        }
        for batch in missing.chunks(MAX_SECDEF_BATCH) {
            let conids = batch
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let request = ApiRequest::get(&["trsrv", "secdef"]).query("conids", conids);
            let request = match batch {
                [single] => request.about(ErrorContext::contract(*single)),
                _ => request,
            };
            let value = match self.client.call(&request).await {
                Err(GatewayFault::NothingFound) => serde_json::Value::Null,
                other => other?,
            };
            for item in secdef_items(value)? {
                let Some(id) = item.conid.and_then(lenient::WireConid::contract_id) else {
                    continue;
                };
                if !batch.contains(&id) {
                    continue;
                }
                let contract = item.try_into_domain();
                if let Ok(contract) = &contract {
                    self.cache_contract(contract);
                }
                found.insert(id, contract);
            }
        }
        Ok(found)
    }

    async fn contract_by_id(&self, id: ContractId) -> Result<Contract, GatewayFault> {
        match self.contracts(&[id]).await?.remove(&id) {
            None => Err(GatewayFault::Broker(BrokerError::UnknownContract {
                contract_id: id,
            })),
            Some(Ok(contract)) => Ok(contract),
            Some(Err(error)) => Err(error.into()),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Reads
    // ---------------------------------------------------------------------------------------

    async fn read_session_status(&self) -> Result<SessionStatus, GatewayFault> {
        let login_url = self.client.login_url();
        let status = match self
            .client
            .call(&ApiRequest::post_empty(&["iserver", "auth", "status"]))
            .await
        {
            Ok(value) => {
                dto::parse::<AuthStatusDto>(value, "session status")?.into_status(login_url)?
            }
            Err(GatewayFault::NoSession) => session::logged_out(login_url),
            Err(other) => return Err(other),
        };
        if status.state != SessionState::Usable {
            self.forget_session().await;
        }
        Ok(status)
    }

    async fn read_keepalive(&self) -> Result<SessionStatus, GatewayFault> {
        let login_url = self.client.login_url();
        let auth_status = match self.client.call(&ApiRequest::post_empty(&["tickle"])).await {
            Ok(value) => {
                let tickle = session::read_tickle(value)?;
                if let Some(digest) = &tickle.session_digest {
                    self.observe_session(digest).await;
                }
                tickle.auth_status
            }
            Err(GatewayFault::NoSession) => {
                self.forget_session().await;
                return Ok(session::logged_out(login_url));
            }
            Err(other) => return Err(other),
        };
        match auth_status {
            Some(auth_status) => {
                let status = auth_status.into_status(login_url)?;
                if status.state != SessionState::Usable {
                    self.forget_session().await;
                }
                Ok(status)
            }
            // An older gateway without the nested status: ask for it.
            None => self.read_session_status().await,
        }
    }

    async fn read_accounts(&self) -> Result<Vec<Account>, GatewayFault> {
        let brokerage = self.brokerage().await?;
        let portfolio = self.portfolio().await?;
        Ok(portfolio
            .iter()
            .map(|account| dto::accounts::account(account, brokerage.is_paper))
            .collect())
    }

    async fn read_account_summary(&self, id: &AccountId) -> Result<AccountSummary, GatewayFault> {
        let account = self.portfolio_account(id).await?;
        let summary: SummaryDto = dto::parse(
            self.portfolio_call(
                &ApiRequest::get(&["portfolio"])
                    .segment(id.expose())
                    .segment("summary"),
            )
            .await?,
            "account summary",
        )?;
        let ledger: LedgerDto = dto::parse(
            self.portfolio_call(
                &ApiRequest::get(&["portfolio"])
                    .segment(id.expose())
                    .segment("ledger"),
            )
            .await?,
            "ledger",
        )?;
        dto::accounts::account_summary(&account, &summary, &ledger)
    }

    async fn read_positions(&self, id: &AccountId) -> Result<Vec<Position>, GatewayFault> {
        self.portfolio_account(id).await?;
        let mut positions = Vec::new();
        let mut page_size = None;
        for page in 0..self.max_position_pages {
            let request = ApiRequest::get(&["portfolio"])
                .segment(id.expose())
                .segment("positions")
                .segment(page.to_string());
            let mut answer = position_page(self.portfolio_call(&request).await?, id)?;
            if page == 0 && answer.positions.is_empty() {
                // An empty portfolio is believed only in the session its pre-flight was made
                // in: after a login the keepalive has not seen yet, the gateway answers empty
                // until `/portfolio/accounts` is asked again.
                if self.session_was_replaced().await? {
                    self.portfolio_account(id).await?;
                    answer = position_page(self.portfolio_call(&request).await?, id)?;
                }
                if answer.positions.is_empty() && self.preflight_is_recent().await {
                    // Right after a login the gateway can answer empty before it has loaded
                    // the account: a second read decides.
                    tokio::time::sleep(self.empty_portfolio_recheck_pause).await;
                    answer = position_page(self.portfolio_call(&request).await?, id)?;
                }
            }
            let page = answer;
            if page.positions.is_empty() {
                return Ok(positions);
            }
            page_size = page.page_size.or(page_size);
            let count = page.positions.len();
            positions.extend(page.positions);
            // A short page is the last. Without a reported size, read on to an empty page
            // rather than guess one (old gateways paged by 30, current ones by 100).
            if page_size.is_some_and(|size| count < size) {
                return Ok(positions);
            }
        }
        Err(GatewayFault::invalid(
            "the account has more position pages than the adapter reads",
        ))
    }

    async fn read_search(&self, query: &ContractQuery) -> Result<Vec<Contract>, GatewayFault> {
        let text = query.text();
        let mut request = ApiRequest::get(&["iserver", "secdef", "search"]).query("symbol", text);
        if text.chars().any(char::is_whitespace) {
            // Words, not a ticker: search company names.
            request = request.query("name", "true");
        }
        let value = match self.iserver(&request).await {
            Err(GatewayFault::NothingFound) => return Ok(Vec::new()),
            other => other?,
        };
        let mut ids = search_conids(value)?;
        ids.truncate(MAX_SEARCH_RESULTS);
        let mut details = self.contracts(&ids).await?;
        let mut contracts = Vec::new();
        for id in ids {
            match details.remove(&id) {
                Some(Ok(contract)) if query.filters_accept(&contract) => contracts.push(contract),
                // Unknown to the details endpoint, or filtered out: not a result.
                Some(Ok(_)) | None => {}
                Some(Err(error)) => return Err(error.into()),
            }
        }
        Ok(contracts)
    }

    async fn read_quote(&self, contract_id: ContractId) -> Result<Quote, GatewayFault> {
        let contract = self.contract_by_id(contract_id).await?;
        let expects_greeks = contract.option.is_some();
        let request = ApiRequest::get(&["iserver", "marketdata", "snapshot"])
            .query("conids", contract_id.to_string())
            .query("fields", snapshot_fields(expects_greeks))
            .about(ErrorContext::contract(contract_id));
        let mut partial = None;
        for attempt in 0..self.snapshot_attempts {
            if attempt > 0 {
                tokio::time::sleep(self.snapshot_retry_pause).await;
            }
            let value = self.iserver(&request).await?;
            let rules = SnapshotRules {
                contract_id,
                expects_greeks,
                now: self.clock.now(),
                stale_after: self.quote_stale_after,
            };
            match read_snapshot(value, rules)? {
                SnapshotReading::Ready(quote) => return Ok(*quote),
                SnapshotReading::NoData => {
                    return Err(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                        contract_id,
                    }));
                }
                SnapshotReading::Partial(quote) => partial = Some(*quote),
                SnapshotReading::NotReady => {}
            }
        }
        // Still incomplete after the bounded attempts: what did arrive, the rest listed as
        // missing; with no value at all, the quote is incomplete.
        partial.ok_or(GatewayFault::Broker(BrokerError::MarketDataIncomplete {
            contract_id,
        }))
    }

    async fn read_bars(&self, request: &BarsRequest) -> Result<BarSeries, GatewayFault> {
        let contract_id = request.contract_id;
        self.contract_by_id(contract_id).await?;
        let _permit = self.client.limiter().history_permit().await?;
        let call = ApiRequest::get(&["iserver", "marketdata", "history"])
            .query("conid", contract_id.to_string())
            .query("period", cpapi_period(request.period))
            .query("bar", cpapi_bar(request.bar_size))
            .about(ErrorContext::contract(contract_id));
        let unavailable =
            || GatewayFault::Broker(BrokerError::MarketDataUnavailable { contract_id });
        let value = match self.iserver(&call).await {
            Err(GatewayFault::NothingFound) => return Err(unavailable()),
            other => other?,
        };
        dto::parse::<HistoryDto>(value, "history")?
            .try_into_domain(request)?
            .ok_or_else(unavailable)
    }

    async fn read_live_orders(&self, id: &AccountId) -> Result<Vec<LiveOrder>, GatewayFault> {
        self.brokerage_account(id).await?;
        let request =
            ApiRequest::get(&["iserver", "account", "orders"]).query("accountId", id.expose());
        let read = |value: serde_json::Value| -> Result<OrdersDto, GatewayFault> {
            match value {
                serde_json::Value::Null => {
                    dto::parse(serde_json::json!({ "orders": [] }), "live orders")
                }
                other => dto::parse(other, "live orders"),
            }
        };
        let mut orders = read(self.iserver(&request).await?)?;
        if orders.is_unprimed() {
            // The first answer of a session can be empty before the gateway has its snapshot;
            // the second call waits for the endpoint's pacing slot.
            orders = read(self.iserver(&request).await?)?;
        }
        orders.try_into_domain(id)
    }

    async fn read_what_if(
        &self,
        id: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, GatewayFault> {
        // A bracket's legs are linked through a placeholder `cOID`: a what-if registers nothing.
        let link = (legs.len() > 1).then_some(order_write::WHAT_IF_PARENT_ID);
        let body = order_write::orders_body(id, legs, link).map_err(|error| {
            GatewayFault::Broker(BrokerError::OrderRejected {
                reason: error.to_string(),
            })
        })?;
        self.brokerage_account(id).await?;
        let request = ApiRequest::post_json(&["iserver", "account"], body)
            .segment(id.expose())
            .segment("orders")
            .segment("whatif");
        let mut reply = writer::sort(self.client.exchange(&request).await);
        if reply.asks_for_preflight() {
            // A what-if places nothing, so unlike a write it may be asked again.
            self.forget_session().await;
            self.brokerage().await?;
            reply = writer::sort(self.client.exchange(&request).await);
        }
        match reply {
            Reply::Body(value) => order_write::what_if(value),
            Reply::ErrorText(text) => Err(
                match errors::classify_text(&text, ErrorContext::default()) {
                    Some(fault @ (GatewayFault::NoSession | GatewayFault::PreflightMissing)) => {
                        fault
                    }
                    // The broker's refusal (a margin or a size check), passed on masked.
                    _ => GatewayFault::Broker(BrokerError::OrderRejected {
                        reason: order_write::broker_text(&text),
                    }),
                },
            ),
            Reply::NotActed(fault) | Reply::Unknown(fault) => Err(fault),
        }
    }

    async fn read_executions(
        &self,
        id: &AccountId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, GatewayFault> {
        self.brokerage_account(id).await?;
        let days = since.map_or(MAX_TRADE_DAYS, |since| {
            ((self.clock.now() - since).num_days() + 1).clamp(1, MAX_TRADE_DAYS)
        });
        let request = ApiRequest::get(&["iserver", "account", "trades"])
            .query("accountId", id.expose())
            .query("days", days.to_string());
        let trades: Vec<TradeDto> = match self.iserver(&request).await? {
            serde_json::Value::Null => Vec::new(),
            other => dto::parse(other, "trades")?,
        };
        let trades: Vec<TradeDto> = trades
            .into_iter()
            .filter(|trade| trade.owner() == Some(id.expose()))
            .collect();
        // The answer names no currency; the commission is taken to be in the contract's.
        let conids = trades
            .iter()
            .map(TradeDto::contract_id)
            .collect::<Result<Vec<_>, _>>()?;
        let details = self.contracts(&conids).await?;
        let currency_of = |conid: ContractId| -> Result<Currency, GatewayFault> {
            match details.get(&conid) {
                Some(Ok(contract)) => Ok(contract.currency),
                _ => Err(GatewayFault::invalid(
                    "a fill's contract could not be looked up",
                )),
            }
        };
        let mut executions = Vec::new();
        for trade in &trades {
            let execution = trade.try_into_domain(id, currency_of(trade.contract_id()?)?)?;
            if since.is_none_or(|since| execution.executed_at >= since) {
                executions.push(execution);
            }
        }
        // Newest first; the execution id breaks ties, so the order is stable.
        executions.sort_by(|a, b| {
            b.executed_at
                .cmp(&a.executed_at)
                .then_with(|| a.execution_id.as_str().cmp(b.execution_id.as_str()))
        });
        Ok(executions)
    }
}

#[async_trait]
impl BrokerReader for ClientPortalBroker {
    fn backend_name(&self) -> &'static str {
        "client_portal_gateway"
    }

    async fn session_status(&self) -> Result<SessionStatus, BrokerError> {
        let result = self.read_session_status().await;
        self.finish(result).await
    }

    async fn keepalive(&self) -> Result<SessionStatus, BrokerError> {
        let result = self.read_keepalive().await;
        self.finish(result).await
    }

    async fn accounts(&self) -> Result<Vec<Account>, BrokerError> {
        let result = self.read_accounts().await;
        self.finish(result).await
    }

    async fn account_summary(&self, account: &AccountId) -> Result<AccountSummary, BrokerError> {
        let result = self.read_account_summary(account).await;
        self.finish(result).await
    }

    async fn positions(&self, account: &AccountId) -> Result<Vec<Position>, BrokerError> {
        let result = self.read_positions(account).await;
        self.finish(result).await
    }

    async fn search_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, BrokerError> {
        let result = self.read_search(query).await;
        self.finish(result).await
    }

    async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError> {
        let result = self.contract_by_id(contract_id).await;
        self.finish(result).await
    }

    async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError> {
        let result = self.read_quote(contract_id).await;
        self.finish(result).await
    }

    async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError> {
        let result = self.read_bars(request).await;
        self.finish(result).await
    }

    async fn live_orders(&self, account: &AccountId) -> Result<Vec<LiveOrder>, BrokerError> {
        let result = self.read_live_orders(account).await;
        self.finish(result).await
    }

    async fn executions(
        &self,
        account: &AccountId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let result = self.read_executions(account, since).await;
        self.finish(result).await
    }

    async fn what_if(
        &self,
        account: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, BrokerError> {
        let result = self.read_what_if(account, legs).await;
        self.finish(result).await
    }

    // ── issue 16: account_reads ──

    async fn account_pnl(
        &self,
        account: &AccountId,
    ) -> Result<crate::domain::account_reads::AccountPnl, BrokerError> {
        self.account_pnl_at_seam(account).await
    }

    async fn account_metadata(
        &self,
        account: &AccountId,
    ) -> Result<crate::domain::account_reads::AccountMetadata, BrokerError> {
        self.account_metadata_at_seam(account).await
    }

    // ── issue 16: options ──

    async fn option_chain(
        &self,
        request: &crate::domain::options::OptionChainRequest,
    ) -> Result<crate::domain::options::OptionChain, BrokerError> {
        self.finish(self.read_option_chain(request).await).await
    }

    async fn option_greeks(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::options::OptionGreeks, BrokerError> {
        self.finish(self.read_option_greeks(contract_id).await)
            .await
    }

    // ── issue 16: depth ──

    async fn market_depth(
        &self,
        request: &crate::domain::depth::DepthRequest,
    ) -> Result<crate::domain::depth::DepthBook, BrokerError> {
        let result = self.read_depth(request).await;
        self.finish(result).await
    }

    // ── issue 16: research ──

    async fn scanner_params(&self) -> Result<crate::domain::research::ScannerParams, BrokerError> {
        self.finish(self.read_scanner_params().await).await
    }

    async fn run_scanner(
        &self,
        request: &crate::domain::research::ScanRequest,
    ) -> Result<crate::domain::research::ScanResult, BrokerError> {
        self.finish(self.read_scan(request).await).await
    }

    async fn fundamentals(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::research::Fundamentals, BrokerError> {
        self.finish(self.read_fundamentals(contract_id).await).await
    }

    // ── issue 16: news_calendar ──

    async fn fyi_notifications(
        &self,
        max: crate::domain::news_calendar::FyiCount,
    ) -> Result<Vec<crate::domain::news_calendar::FyiNotification>, BrokerError> {
        self.finish(news_calendar::fyi_notifications(&self.client, max).await)
            .await
    }

    async fn trading_schedule(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::news_calendar::TradingSchedule, BrokerError> {
        self.finish(news_calendar::trading_schedule(&self.client, contract_id).await)
            .await
    }

    // ── issue 16: cash_fx ──

    async fn fx_rate(
        &self,
        source: Currency,
        target: Currency,
    ) -> Result<crate::domain::cash_fx::FxRate, BrokerError> {
        let result = self.read_fx_rate(source, target).await;
        self.finish(result).await
    }

    async fn currency_pairs(
        &self,
        currency: Currency,
    ) -> Result<Vec<crate::domain::cash_fx::CurrencyPair>, BrokerError> {
        let result = self.read_currency_pairs(currency).await;
        self.finish(result).await
    }

    async fn cash_transactions(
        &self,
        account: &AccountId,
        request: &crate::domain::cash_fx::TransactionsRequest,
    ) -> Result<crate::domain::cash_fx::TransactionsReading, BrokerError> {
        let result = self.read_cash_transactions(account, request).await;
        self.finish(result).await
    }
}

/// `/iserver/accounts`, once per brokerage session; shared by the broker and its writers.
async fn preflight_brokerage(
    client: &GatewayClient,
    session: &AsyncMutex<SessionCache>,
) -> Result<BrokerageAccounts, GatewayFault> {
    let mut cache = session.lock().await;
    follow_shared_session(client, &mut cache).await;
    if let Some(brokerage) = &cache.brokerage {
        return Ok(brokerage.clone());
    }
    let value = client
        .call(&ApiRequest::get(&["iserver", "accounts"]))
        .await?;
    let brokerage =
        dto::parse::<IserverAccountsDto>(value, "brokerage accounts")?.try_into_domain()?;
    cache.brokerage = Some(brokerage.clone());
    if let Some(digest) = &cache.session_digest {
        client
            .limiter()
            .note_preflight(digest, Preflight::Brokerage)
            .await;
    }
    Ok(brokerage)
}

/// Ties the cached pre-flights to the session recorded in the shared state: when another
/// process (or this one's keepalive) recorded a different session, a person logged in again
/// and the pre-flights are forgotten; pre-flights about to run are tagged with it.
async fn follow_shared_session(client: &GatewayClient, cache: &mut SessionCache) {
    let Some(shared) = client.limiter().shared_session().await else {
        return;
    };
    if cache.session_digest.as_deref() == Some(shared.as_str()) {
        return;
    }
    if cache.has_preflights() || cache.session_digest.is_some() {
        *cache = SessionCache::for_session(Some(shared));
    } else {
        cache.session_digest = Some(shared);
    }
}
