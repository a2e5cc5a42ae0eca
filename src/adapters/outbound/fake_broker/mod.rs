//! `FakeBroker`: the embedded, deterministic [`BrokerReader`] used by default, in demos and in
//! tests.
//!
//! It holds a small fixed world (see [`known_ids`] for every id):
//! - three accounts: `DU1234567` (paper, USD), `U7654321` (live, USD) and `DU7654320` (paper,
//!   EUR), each with cash, positions, orders and fills;
//! - seventeen instruments: US and European stocks (`VOD` is listed twice, on LSE in GBP and as
//!   a NASDAQ ADR in USD, so a search for `VOD` is ambiguous until narrowed by exchange or
//!   currency), two ETFs, a six-option AAPL chain with greeks, the ES front future and two FX
//!   pairs;
//! - quotes that are live except for three deliberate cases: VOD on LSE is **delayed** (stamped
//!   15 minutes before now), the ES future is **stale** (3 hours before now) and the pink-sheet
//!   stock `DRMT` ([`known_ids::NO_DATA`]) has **no market data** at all
//!   ([`BrokerError::MarketDataUnavailable`] for quotes and bars).
//!
//! Order what-ifs follow a small invented cost and margin model (see `what_if`) and never
//! create order state: the fake's seeded books are fixed.
//!
//! Paper orders placed through the local-candidate writer join this world when the fake is
//! handed that writer's book as its [`LocalOrders`] (see [`FakeBroker::with_local_orders`]):
//! `live_orders` lists them after the account's seeded orders, in placement order, with their
//! current status, filled quantity, average price, client order id and rejection reason,
//! stamped with the clock's time of the listing (the local book keeps no times). Fills
//! scripted on that book (the writer never fills by itself) are listed by `executions`, newest
//! first and stamped the same way, before the seeded fills; positions and summaries are
//! unchanged by local orders.
//!
//! Nothing here performs I/O or draws randomness: every value comes from the catalog, the
//! clock, or a fixed integer hash of the contract id, so equal clocks give equal answers.
//! Quotes do not move; bars trace a path that ends at the quote's last price (see `history`).
//! Times of orders and fills are stored as ages and stamped relative to the clock.
//!
//! Construction is infallible: the catalog is built once in [`FakeBroker::new`] and, should a
//! literal ever be refused by a domain constructor, every data call reports that as
//! [`BrokerError::InvalidResponse`] instead of panicking at start-up. A unit test builds the
//! catalog, so that path is never taken in a released build.

mod account_reads;
mod cash_fx;
mod catalog;
mod depth;
mod history;
mod ledger;
mod market;
mod news_calendar;
mod options;
mod research;
mod what_if;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use self::catalog::{AccountBook, Catalog, FillTemplate, Listing, OrderTemplate};
use crate::domain::account::{Account, AccountSummary};
use crate::domain::ids::{AccountId, ContractId};
use crate::domain::instrument::{AssetClass, Contract, ContractQuery};
use crate::domain::market_data::{BarSeries, BarsRequest, Quote};
use crate::domain::money::{Currency, Money};
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::order_intent::OrderIntent;
use crate::domain::portfolio::Position;
use crate::domain::preview::WhatIf;
use crate::domain::session::{SessionState, SessionStatus};
use crate::ports::broker_reader::{BrokerError, BrokerReader};
use crate::ports::clock::Clock;
use crate::ports::order_writer::WorkingOrder;

/// The ids of the fake broker's fixed world, for tests and demos.
pub mod known_ids {
    /// Paper account, base USD: stocks, ETFs (one short), a call, an LSE line, five orders,
    /// five fills.
    pub const PAPER_USD_ACCOUNT: &str = "DU1234567";
    /// Live account, base USD: two positions, one order, one fill.
    pub const LIVE_USD_ACCOUNT: &str = "U7654321";
    /// Paper account, base EUR: a German stock, an FX position and a US stock.
    pub const PAPER_EUR_ACCOUNT: &str = "DU7654320";

    /// APPLE INC, NASDAQ, USD.
    pub const AAPL: u64 = 265_598;
    /// MICROSOFT CORP, NASDAQ, USD.
    pub const MSFT: u64 = 272_093;
    /// VODAFONE GROUP PLC on LSE, GBP; its quotes are delayed.
    pub const VOD_LSE: u64 = 8_894_117;
    /// VODAFONE GROUP PLC ADR on NASDAQ, USD; shares the symbol and local symbol `VOD`.
    pub const VOD_ADR: u64 = 44_652_000;
    /// SAP SE on IBIS (Xetra), EUR.
    pub const SAP: u64 = 16_934_597;
    /// SPDR S&P 500 ETF TRUST, ARCA, USD.
    pub const SPY: u64 = 756_733;
    /// INVESCO QQQ TRUST SERIES 1, NASDAQ, USD.
    pub const QQQ: u64 = 320_227_568;
    /// AAPL 18DEC26 180 call (CBOE, multiplier 100).
    pub const AAPL_180_CALL: u64 = 745_201_801;
    /// AAPL 18DEC26 180 put.
    pub const AAPL_180_PUT: u64 = 745_201_802;
    /// AAPL 18DEC26 190 call.
    pub const AAPL_190_CALL: u64 = 745_201_901;
    /// AAPL 18DEC26 190 put.
    pub const AAPL_190_PUT: u64 = 745_201_902;
    /// AAPL 18DEC26 200 call.
    pub const AAPL_200_CALL: u64 = 745_202_001;
    /// AAPL 18DEC26 200 put.
    pub const AAPL_200_PUT: u64 = 745_202_002;
    /// E-mini S&P 500 December 2026 (`ESZ6`, CME, multiplier 50); its quotes are stale.
    pub const ES_FRONT: u64 = 495_512_563;
    /// EUR.USD on IDEALPRO.
    pub const EUR_USD: u64 = 12_087_792;
    /// GBP.USD on IDEALPRO.
    pub const GBP_USD: u64 = 12_087_797;
    /// DORMANT RESOURCES CORP (`DRMT`, PINK, USD): searchable, but without market data.
    pub const NO_DATA: u64 = 431_926_001;
}

/// Orders placed outside the fake's seeded world that it lists as its own: the book of the
/// local-candidate writer, so that paper orders placed locally and the fake's orders are one
/// world.
///
/// The book knows the orders and their fills; the reader knows what the book does not (the
/// time of the listing, symbols and currencies) and passes it in.
pub trait LocalOrders: Send + Sync {
    /// The orders of `account` the broker still lists, as placed, in placement order, with
    /// their current status; empty for an account without any.
    ///
    /// # Errors
    /// None: the orders are in memory.
    fn orders_of(&self, account: &AccountId) -> Vec<WorkingOrder>;

    /// The same orders as the broker reports them at `now` (the book keeps no times): with
    /// what filled, the average fill price, the client order id and a rejection's reason,
    /// each named by `symbol_of` its contract.
    ///
    /// # Errors
    /// None: the orders are in memory.
    fn live_orders_of(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
        symbol_of: &dyn Fn(ContractId) -> String,
    ) -> Vec<LiveOrder>;

    /// The fills of `account`'s orders, listed or not, newest first, each naming its order
    /// and client order id, stamped `now`, without commission; `describe` gives a contract's
    /// symbol and the currency the (zero) commission is in.
    ///
    /// # Errors
    /// None: the fills are in memory.
    fn executions_of(
        &self,
        account: &AccountId,
        now: DateTime<Utc>,
        describe: &dyn Fn(ContractId) -> (String, Currency),
    ) -> Vec<Execution>;
}

/// The embedded fake broker. See the module documentation for its world.
pub struct FakeBroker {
    clock: Arc<dyn Clock>,
    /// Built once at construction; an `Err` is a catalog bug, reported by every data call.
    catalog: Result<Catalog, BrokerError>,
    session_state: SessionState,
    /// Paper orders placed locally, shared with the local-candidate writer; `None` lists the
    /// seeded orders only.
    local_orders: Option<Arc<dyn LocalOrders>>,
}

impl fmt::Debug for FakeBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeBroker")
            .field("session_state", &self.session_state)
            .field("catalog_ok", &self.catalog.is_ok())
            .field("local_orders", &self.local_orders.is_some())
            .finish_non_exhaustive()
    }
}

impl FakeBroker {
    /// A fake broker with a usable session, reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            catalog: Catalog::build(),
            session_state: SessionState::Usable,
            local_orders: None,
        }
    }

    /// The same fake, also listing `orders` (the book the local-candidate writer places
    /// into) after each account's seeded orders. The seeded world is unchanged.
    #[must_use]
    pub fn with_local_orders(mut self, orders: Arc<dyn LocalOrders>) -> Self {
        self.local_orders = Some(orders);
        self
    }

    /// The same fake with its session in `state`. When the state is not usable, every data
    /// method fails: [`SessionState::LoginRequired`] and [`SessionState::CompetingSession`]
    /// with [`BrokerError::SessionRequired`] (no login URL), [`SessionState::Unavailable`] with
    /// [`BrokerError::Unavailable`]; the session methods report the state.
    #[must_use]
    pub fn with_session_state(mut self, state: SessionState) -> Self {
        self.session_state = state;
        self
    }

    fn status(&self) -> SessionStatus {
        let state = self.session_state;
        SessionStatus {
            state,
            authenticated: matches!(state, SessionState::Usable | SessionState::CompetingSession),
            connected: state != SessionState::Unavailable,
            competing: state == SessionState::CompetingSession,
            login_url: None,
        }
    }

    /// The catalog, when the session allows data calls.
    fn usable_catalog(&self) -> Result<&Catalog, BrokerError> {
        match self.session_state {
            SessionState::Usable => self.catalog.as_ref().map_err(Clone::clone),
            SessionState::LoginRequired | SessionState::CompetingSession => {
                Err(BrokerError::SessionRequired { login_url: None })
            }
            SessionState::Unavailable => Err(BrokerError::Unavailable {
                detail: "the fake broker is set to be unreachable".to_owned(),
            }),
        }
    }

    fn usable_book(&self, account: &AccountId) -> Result<(&Catalog, &AccountBook), BrokerError> {
        let catalog = self.usable_catalog()?;
        let book = catalog.book(account).ok_or(BrokerError::UnknownAccount)?;
        Ok((catalog, book))
    }

    fn usable_listing(&self, contract_id: ContractId) -> Result<&Listing, BrokerError> {
        self.usable_catalog()?
            .listing(contract_id)
            .ok_or(BrokerError::UnknownContract { contract_id })
    }
}

/// True when `text` matches the contract: it starts the symbol or the local symbol, or starts
/// a word of the description (so `apple` finds APPLE INC but `es` does not find INVESCO).
/// Case is ignored.
fn text_matches(contract: &Contract, text: &str) -> bool {
    let needle = text.to_uppercase();
    let description = contract.description.to_uppercase();
    let starts_a_word = |(index, _): (usize, &str)| {
        description[..index]
            .chars()
            .next_back()
            .is_none_or(|previous| !previous.is_alphanumeric())
    };
    contract.symbol.to_uppercase().starts_with(&needle)
        || contract.local_symbol.to_uppercase().starts_with(&needle)
        || description.match_indices(&needle).any(starts_a_word)
}

/// The symbol shown on orders and fills: the local symbol where the root symbol is ambiguous.
fn display_symbol(contract: &Contract) -> String {
    match contract.asset_class {
        AssetClass::Stock | AssetClass::Etf | AssetClass::Index => contract.symbol.clone(),
        _ => contract.local_symbol.clone(),
    }
}

fn catalog_gap(contract_id: ContractId) -> BrokerError {
    BrokerError::InvalidResponse {
        detail: format!("fake broker catalog: no contract {contract_id}"),
    }
}

fn live_order(
    catalog: &Catalog,
    account_id: &AccountId,
    template: &OrderTemplate,
    now: DateTime<Utc>,
) -> Result<LiveOrder, BrokerError> {
    let listing = catalog
        .listing(template.contract_id)
        .ok_or_else(|| catalog_gap(template.contract_id))?;
    Ok(LiveOrder {
        order_id: template.order_id.clone(),
        account_id: account_id.clone(),
        contract_id: template.contract_id,
        symbol: display_symbol(&listing.contract),
        side: template.side.into(),
        order_type: template.order_type,
        quantity: template.quantity,
        filled_quantity: template.filled_quantity,
        limit_price: template.limit_price,
        stop_price: template.stop_price,
        time_in_force: template.time_in_force,
        status: template.status,
        updated_at: market::before(now, template.age)?,
        client_order_id: None,
        average_price: None,
        reason: None,
    })
}

/// The symbol of a contract placed from outside the seeded world: a contract missing from the
/// catalog (placed by a caller that skipped the preview) is shown by its id rather than
/// failing the whole list.
fn local_symbol(catalog: &Catalog, contract_id: ContractId) -> String {
    catalog.listing(contract_id).map_or_else(
        || contract_id.to_string(),
        |listing| display_symbol(&listing.contract),
    )
}

fn execution(
    catalog: &Catalog,
    account_id: &AccountId,
    template: &FillTemplate,
    now: DateTime<Utc>,
) -> Result<Execution, BrokerError> {
    let listing = catalog
        .listing(template.contract_id)
        .ok_or_else(|| catalog_gap(template.contract_id))?;
    Ok(Execution {
        execution_id: template.execution_id.clone(),
        // The fixed world's fills carry broker order ids; none was placed with a `cOID`.
        order_id: Some(template.order_id.clone()),
        client_order_id: None,
        account_id: account_id.clone(),
        contract_id: template.contract_id,
        symbol: display_symbol(&listing.contract),
        side: template.side,
        quantity: template.quantity,
        price: template.price,
        commission: Money::new(template.commission, listing.contract.currency),
        executed_at: market::before(now, template.age)?,
    })
}

#[async_trait]
impl BrokerReader for FakeBroker {
    fn backend_name(&self) -> &'static str {
        "fake"
    }

    async fn session_status(&self) -> Result<SessionStatus, BrokerError> {
        Ok(self.status())
    }

    async fn keepalive(&self) -> Result<SessionStatus, BrokerError> {
        Ok(self.status())
    }

    async fn accounts(&self) -> Result<Vec<Account>, BrokerError> {
        let catalog = self.usable_catalog()?;
        Ok(catalog
            .books
            .iter()
            .map(|book| book.account.clone())
            .collect())
    }

    async fn account_summary(&self, account: &AccountId) -> Result<AccountSummary, BrokerError> {
        let (catalog, book) = self.usable_book(account)?;
        ledger::summarize(catalog, book)
    }

    async fn positions(&self, account: &AccountId) -> Result<Vec<Position>, BrokerError> {
        let (catalog, book) = self.usable_book(account)?;
        ledger::positions(catalog, book)
    }

    async fn search_contracts(&self, query: &ContractQuery) -> Result<Vec<Contract>, BrokerError> {
        let catalog = self.usable_catalog()?;
        Ok(catalog
            .listings
            .iter()
            .map(|listing| &listing.contract)
            .filter(|contract| {
                text_matches(contract, query.text()) && query.filters_accept(contract)
            })
            .cloned()
            .collect())
    }

    async fn contract(&self, contract_id: ContractId) -> Result<Contract, BrokerError> {
        Ok(self.usable_listing(contract_id)?.contract.clone())
    }

    async fn quote_snapshot(&self, contract_id: ContractId) -> Result<Quote, BrokerError> {
        market::quote(self.usable_listing(contract_id)?, self.clock.now())
    }

    async fn historical_bars(&self, request: &BarsRequest) -> Result<BarSeries, BrokerError> {
        let contract_id = request.contract_id;
        let listing = self.usable_listing(contract_id)?;
        let market = listing
            .market
            .as_ref()
            .ok_or(BrokerError::MarketDataUnavailable { contract_id })?;
        Ok(BarSeries {
            contract_id,
            bar_size: request.bar_size,
            status: market.feed.status(),
            bars: history::bars(market, request, self.clock.now())?,
        })
    }

    async fn live_orders(&self, account: &AccountId) -> Result<Vec<LiveOrder>, BrokerError> {
        let (catalog, book) = self.usable_book(account)?;
        let now = self.clock.now();
        let mut orders = book
            .orders
            .iter()
            .map(|template| live_order(catalog, &book.account.id, template, now))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(local_orders) = &self.local_orders {
            orders.extend(
                local_orders.live_orders_of(&book.account.id, now, &|contract_id| {
                    local_symbol(catalog, contract_id)
                }),
            );
        }
        Ok(orders)
    }

    async fn executions(
        &self,
        account: &AccountId,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<Execution>, BrokerError> {
        let (catalog, book) = self.usable_book(account)?;
        let now = self.clock.now();
        let mut executions = Vec::new();
        if let Some(local_orders) = &self.local_orders {
            // Newest first, like the whole list; all are stamped `now`, so the stable sort
            // below keeps them in this order, before the older seeded fills. A contract the
            // catalog lacks is charged in the account's base currency.
            let describe = |contract_id| {
                let currency = catalog
                    .listing(contract_id)
                    .map_or(book.account.base_currency, |listing| {
                        listing.contract.currency
                    });
                (local_symbol(catalog, contract_id), currency)
            };
            executions.extend(local_orders.executions_of(&book.account.id, now, &describe));
        }
        for template in &book.fills {
            executions.push(execution(catalog, &book.account.id, template, now)?);
        }
        executions.retain(|execution| since.is_none_or(|since| execution.executed_at >= since));
        // Newest first; ties keep catalog order, so the order is stable.
        executions.sort_by_key(|execution| std::cmp::Reverse(execution.executed_at));
        Ok(executions)
    }

    async fn what_if(
        &self,
        account: &AccountId,
        legs: &[OrderIntent],
    ) -> Result<WhatIf, BrokerError> {
        let (catalog, book) = self.usable_book(account)?;
        what_if::what_if(catalog, book, legs)
    }

    // ── issue 16: account_reads ──

    async fn account_pnl(
        &self,
        account: &AccountId,
    ) -> Result<crate::domain::account_reads::AccountPnl, BrokerError> {
        self.fake_account_pnl(account)
    }

    async fn account_metadata(
        &self,
        account: &AccountId,
    ) -> Result<crate::domain::account_reads::AccountMetadata, BrokerError> {
        self.fake_account_metadata(account)
    }

    // ── issue 16: options ──

    async fn option_chain(
        &self,
        request: &crate::domain::options::OptionChainRequest,
    ) -> Result<crate::domain::options::OptionChain, BrokerError> {
        options::chain(self, request)
    }

    async fn option_greeks(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::options::OptionGreeks, BrokerError> {
        options::greeks(self, contract_id)
    }

    // ── issue 16: depth ──

    async fn market_depth(
        &self,
        request: &crate::domain::depth::DepthRequest,
    ) -> Result<crate::domain::depth::DepthBook, BrokerError> {
        depth::answer(self, request)
    }

    // ── issue 16: research ──

    async fn scanner_params(&self) -> Result<crate::domain::research::ScannerParams, BrokerError> {
        self.usable_catalog()
            .and_then(|_| research::scanner_params(self.clock.now()))
    }

    async fn run_scanner(
        &self,
        request: &crate::domain::research::ScanRequest,
    ) -> Result<crate::domain::research::ScanResult, BrokerError> {
        Ok(research::run_scanner(self.usable_catalog()?, request))
    }

    async fn fundamentals(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::research::Fundamentals, BrokerError> {
        research::fundamentals(self.usable_listing(contract_id)?)
    }

    // ── issue 16: news_calendar ──

    async fn fyi_notifications(
        &self,
        max: crate::domain::news_calendar::FyiCount,
    ) -> Result<Vec<crate::domain::news_calendar::FyiNotification>, BrokerError> {
        self.usable_catalog()
            .map(|_| news_calendar::fyi_notifications(self.clock.now(), max))
    }

    async fn trading_schedule(
        &self,
        contract_id: ContractId,
    ) -> Result<crate::domain::news_calendar::TradingSchedule, BrokerError> {
        news_calendar::trading_schedule(self.usable_listing(contract_id)?, self.clock.now())
    }

    // ── issue 16: cash_fx ──

    async fn fx_rate(
        &self,
        source: Currency,
        target: Currency,
    ) -> Result<crate::domain::cash_fx::FxRate, BrokerError> {
        self.fake_fx_rate(source, target)
    }

    async fn currency_pairs(
        &self,
        currency: Currency,
    ) -> Result<Vec<crate::domain::cash_fx::CurrencyPair>, BrokerError> {
        self.fake_currency_pairs(currency)
    }

    async fn cash_transactions(
        &self,
        account: &AccountId,
        request: &crate::domain::cash_fx::TransactionsRequest,
    ) -> Result<crate::domain::cash_fx::TransactionsReading, BrokerError> {
        self.fake_cash_transactions(account, request)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::adapters::outbound::clock::FixedClock;
    use crate::domain::account::AccountMode;
    use crate::domain::market_data::{BarSize, DataStatus, HistoryPeriod};
    use crate::domain::money::Quantity;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_793_417, 0).unwrap()
    }

    fn fake() -> FakeBroker {
        FakeBroker::new(Arc::new(FixedClock::new(now())))
    }

    fn account(raw: &str) -> AccountId {
        AccountId::parse(raw).unwrap()
    }

    fn conid(value: u64) -> ContractId {
        ContractId::new(value).unwrap()
    }

    async fn search(fake: &FakeBroker, query: ContractQuery) -> Vec<u64> {
        let found = fake.search_contracts(&query).await.unwrap();
        found.iter().map(|contract| contract.id.value()).collect()
    }

    #[tokio::test]
    async fn accounts_are_the_three_known_ones_with_modes_from_their_ids() {
        let accounts = fake().accounts().await.unwrap();
        let ids: Vec<_> = accounts.iter().map(|account| account.id.expose()).collect();
        assert_eq!(
            ids,
            [
                known_ids::PAPER_USD_ACCOUNT,
                known_ids::LIVE_USD_ACCOUNT,
                known_ids::PAPER_EUR_ACCOUNT
            ]
        );
        let modes: Vec<_> = accounts.iter().map(|account| account.mode).collect();
        assert_eq!(
            modes,
            [AccountMode::Paper, AccountMode::Live, AccountMode::Paper]
        );
        assert_eq!(accounts[2].base_currency.as_str(), "EUR");
    }

    #[tokio::test]
    async fn search_matches_symbol_prefixes_and_description_words() {
        let fake = fake();
        let vod = search(&fake, ContractQuery::new("vod").unwrap()).await;
        assert_eq!(vod, [known_ids::VOD_LSE, known_ids::VOD_ADR]);
        let lse = search(
            &fake,
            ContractQuery::new("VOD")
                .unwrap()
                .with_exchange("lse")
                .unwrap(),
        )
        .await;
        assert_eq!(lse, [known_ids::VOD_LSE]);
        assert_eq!(
            search(&fake, ContractQuery::new("apple").unwrap()).await,
            [known_ids::AAPL]
        );
        assert_eq!(
            search(&fake, ContractQuery::new("ES").unwrap()).await,
            [known_ids::ES_FRONT]
        );
        let aapl = search(&fake, ContractQuery::new("AAPL").unwrap()).await;
        assert_eq!(aapl.len(), 7);
        let mut options = ContractQuery::new("aapl").unwrap();
        options.asset_class = Some(AssetClass::Option);
        assert_eq!(search(&fake, options).await.len(), 6);
        let occ = search(&fake, ContractQuery::new("AAPL  261218P").unwrap()).await;
        assert_eq!(
            occ,
            [
                known_ids::AAPL_180_PUT,
                known_ids::AAPL_190_PUT,
                known_ids::AAPL_200_PUT
            ]
        );
        assert!(
            search(&fake, ContractQuery::new("ZZZNOTREAL").unwrap())
                .await
                .is_empty()
        );
    }

    #[tokio::test]
    async fn unknown_ids_are_refused() {
        let fake = fake();
        let stranger = account("U1111111");
        assert_eq!(
            fake.positions(&stranger).await,
            Err(BrokerError::UnknownAccount)
        );
        assert_eq!(
            fake.account_summary(&stranger).await,
            Err(BrokerError::UnknownAccount)
        );
        let missing = conid(1);
        assert_eq!(
            fake.quote_snapshot(missing).await,
            Err(BrokerError::UnknownContract {
                contract_id: missing
            })
        );
    }

    #[tokio::test]
    async fn bars_of_the_no_data_contract_are_unavailable_and_others_match_the_feed() {
        let fake = fake();
        let period = HistoryPeriod::parse("1d").unwrap();
        let no_data = conid(known_ids::NO_DATA);
        let request = BarsRequest::new(no_data, period, BarSize::OneHour).unwrap();
        assert_eq!(
            fake.historical_bars(&request).await,
            Err(BrokerError::MarketDataUnavailable {
                contract_id: no_data
            })
        );
        let request =
            BarsRequest::new(conid(known_ids::ES_FRONT), period, BarSize::OneHour).unwrap();
        let series = fake.historical_bars(&request).await.unwrap();
        assert_eq!(series.status, DataStatus::Stale);
        assert_eq!(series.bars.len(), 24);
    }

    #[tokio::test]
    async fn orders_and_fills_are_stamped_relative_to_the_clock() {
        let fake = fake();
        let paper = account(known_ids::PAPER_USD_ACCOUNT);
        let orders = fake.live_orders(&paper).await.unwrap();
        assert!(orders.iter().all(|order| order.updated_at < now()));
        assert!(
            orders
                .iter()
                .any(|order| order.status == crate::domain::order::OrderStatus::PreSubmitted)
        );
        let fills = fake.executions(&paper, None).await.unwrap();
        assert_eq!(
            fills.first().unwrap().executed_at,
            now() - Duration::hours(1)
        );
        assert_eq!(fills.last().unwrap().executed_at, now() - Duration::days(3));
        let since = fake
            .executions(&paper, Some(now() - Duration::hours(26)))
            .await
            .unwrap();
        assert_eq!(since.len(), 3, "the bound is inclusive");
        let option_fill = fills
            .iter()
            .find(|fill| fill.contract_id == conid(known_ids::AAPL_190_CALL));
        assert_eq!(option_fill.unwrap().symbol, "AAPL  261218C00190000");
    }

    #[tokio::test]
    async fn session_states_gate_every_data_call() {
        let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
        let paper = account(known_ids::PAPER_USD_ACCOUNT);
        for (state, expected) in [
            (
                SessionState::LoginRequired,
                BrokerError::SessionRequired { login_url: None },
            ),
            (
                SessionState::CompetingSession,
                BrokerError::SessionRequired { login_url: None },
            ),
            (
                SessionState::Unavailable,
                BrokerError::Unavailable {
                    detail: "the fake broker is set to be unreachable".to_owned(),
                },
            ),
        ] {
            let fake = FakeBroker::new(Arc::clone(&clock)).with_session_state(state);
            assert_eq!(fake.session_status().await.unwrap().state, state);
            assert_eq!(fake.keepalive().await.unwrap().state, state);
            assert_eq!(fake.accounts().await, Err(expected.clone()));
            assert_eq!(fake.positions(&paper).await, Err(expected.clone()));
            assert_eq!(
                fake.contract(conid(known_ids::AAPL)).await,
                Err(expected.clone())
            );
            assert_eq!(fake.executions(&paper, None).await, Err(expected));
        }
        let usable = FakeBroker::new(clock).session_status().await.unwrap();
        assert!(usable.authenticated && usable.connected && !usable.competing);
    }

    fn buy_limit(account_raw: &str, contract: u64) -> OrderIntent {
        use crate::domain::money::Price;
        use crate::domain::order::{OrderSide, OrderType, TimeInForce};
        use crate::domain::order_intent::IntentParts;
        OrderIntent::new(IntentParts {
            account_id: account(account_raw),
            contract_id: conid(contract),
            side: OrderSide::Buy,
            quantity: Quantity::parse("10").unwrap(),
            order_type: OrderType::Limit,
            limit_price: Some(Price::parse("190").unwrap()),
            stop_price: None,
            trailing: None,
            time_in_force: TimeInForce::Day,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn local_orders_are_listed_after_the_seeded_ones_of_their_account_only() {
        use crate::adapters::outbound::local_candidate::{LocalCandidateWriter, LocalOrderBook};
        use crate::domain::ids::IdempotencyKey;
        use crate::domain::order::OrderStatus;
        use crate::ports::order_writer::OrderWriter;

        let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(now()));
        let book = LocalOrderBook::new();
        let fake = FakeBroker::new(clock).with_local_orders(Arc::new(book.clone()));
        let writer = LocalCandidateWriter::with_book(book);
        let paper = account(known_ids::PAPER_USD_ACCOUNT);
        let euro = account(known_ids::PAPER_EUR_ACCOUNT);
        let seeded = fake.live_orders(&paper).await.unwrap();
        let seeded_euro = fake.live_orders(&euro).await.unwrap();
        let fills = fake.executions(&paper, None).await.unwrap();
        let positions = fake.positions(&paper).await.unwrap();

        let key = |raw: &str| IdempotencyKey::parse(raw).unwrap();
        writer
            .submit(
                &buy_limit(known_ids::PAPER_USD_ACCOUNT, known_ids::AAPL),
                &key("k-1"),
            )
            .await
            .unwrap();
        // A contract the catalog lacks is shown by its id, not an error for the whole list.
        writer
            .submit(&buy_limit(known_ids::PAPER_USD_ACCOUNT, 4242), &key("k-2"))
            .await
            .unwrap();

        let listed = fake.live_orders(&paper).await.unwrap();
        assert_eq!(
            listed[..seeded.len()],
            seeded[..],
            "seeded orders come first"
        );
        let local: Vec<_> = listed[seeded.len()..]
            .iter()
            .map(|order| (order.order_id.as_str(), order.symbol.as_str(), order.status))
            .collect();
        assert_eq!(
            local,
            [
                ("lc-1", "AAPL", OrderStatus::Submitted),
                ("lc-2", "4242", OrderStatus::Submitted)
            ]
        );
        assert!(
            listed[seeded.len()..].iter().all(|order| {
                order.updated_at == now() && order.filled_quantity.value().is_zero()
            })
        );
        assert_eq!(fake.live_orders(&euro).await.unwrap(), seeded_euro);
        assert_eq!(fake.executions(&paper, None).await.unwrap(), fills);
        assert_eq!(fake.positions(&paper).await.unwrap(), positions);
    }

    #[tokio::test]
    async fn scripted_fills_and_rejections_of_local_orders_are_listed_with_their_client_order_ids()
    {
        use crate::adapters::outbound::local_candidate::{LocalCandidateWriter, LocalOrderBook};
        use crate::domain::ids::IdempotencyKey;
        use crate::domain::money::Price;
        use crate::domain::order::OrderStatus;
        use crate::ports::order_writer::OrderWriter;

        let book = LocalOrderBook::new();
        let fake = FakeBroker::new(Arc::new(FixedClock::new(now())))
            .with_local_orders(Arc::new(book.clone()));
        let writer = LocalCandidateWriter::with_book(book.clone());
        let paper = account(known_ids::PAPER_USD_ACCOUNT);
        let seeded_fills = fake.executions(&paper, None).await.unwrap();
        let key = |raw: &str| IdempotencyKey::parse(raw).unwrap();
        let order = buy_limit(known_ids::PAPER_USD_ACCOUNT, known_ids::AAPL);
        let filled = writer.submit(&order, &key("k-1")).await.unwrap().order_id;
        let rejected = writer.submit(&order, &key("k-2")).await.unwrap().order_id;
        let price = |raw: &str| Price::parse(raw).unwrap();
        book.fill(&filled, Quantity::parse("4").unwrap(), price("189"))
            .unwrap();
        book.fill(&filled, Quantity::parse("6").unwrap(), price("190"))
            .unwrap();
        book.reject(&rejected, "Order rejected: no trading permissions")
            .unwrap();

        let listed = fake.live_orders(&paper).await.unwrap();
        let local: Vec<_> = listed
            .iter()
            .filter(|order| order.client_order_id.is_some())
            .map(|order| {
                (
                    order.order_id.as_str(),
                    order.status,
                    order.filled_quantity.to_string(),
                    order.average_price.map(|price| price.to_string()),
                    order.client_order_id.as_deref(),
                    order.reason.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            local,
            [
                (
                    "lc-1",
                    OrderStatus::Filled,
                    "10".to_owned(),
                    Some("189.6".to_owned()),
                    Some("k-1"),
                    None
                ),
                (
                    "lc-2",
                    OrderStatus::Inactive,
                    "0".to_owned(),
                    None,
                    Some("k-2"),
                    Some("Order rejected: no trading permissions")
                ),
            ]
        );

        let fills = fake.executions(&paper, None).await.unwrap();
        assert_eq!(fills[2..], seeded_fills[..], "local fills come first");
        let local_fills: Vec<_> = fills[..2]
            .iter()
            .map(|fill| {
                (
                    fill.execution_id.as_str(),
                    fill.order_id.as_ref().map(|id| id.as_str()),
                    fill.client_order_id.as_deref(),
                    fill.quantity.to_string(),
                    fill.symbol.as_str(),
                    fill.commission.to_string(),
                    fill.executed_at,
                )
            })
            .collect();
        assert_eq!(
            local_fills,
            [
                (
                    "lc-1.2",
                    Some("lc-1"),
                    Some("k-1"),
                    "6".to_owned(),
                    "AAPL",
                    "0 USD".to_owned(),
                    now()
                ),
                (
                    "lc-1.1",
                    Some("lc-1"),
                    Some("k-1"),
                    "4".to_owned(),
                    "AAPL",
                    "0 USD".to_owned(),
                    now()
                ),
            ]
        );
        // A forgotten order leaves the list, not the fills.
        book.forget(&filled).unwrap();
        assert!(
            fake.live_orders(&paper)
                .await
                .unwrap()
                .iter()
                .all(|order| order.order_id != filled)
        );
        assert_eq!(fake.executions(&paper, None).await.unwrap(), fills);
    }
}
