//! The Client Portal mapping for FX rates, currency pairs, and transfers and cash movements
//! (issue 16).
//!
//! - `GET /iserver/exchangerate?source=&target=` (reference §9.1), after the brokerage
//!   pre-flight: `{"rate": number}`, units of target per unit of source.
//! - `GET /iserver/currency/pairs?currency=` (§9.2), after the brokerage pre-flight: a map from
//!   the currency to its pairs `{symbol: "USD.JPY", conid, ccyPair}`.
//! - `POST /pa/transactions` (§10.2), after the `/portfolio/accounts` pre-flight, with
//!   `{"acctIds": [id], "conids": [conid], "currency", "days"}`: one contract per request.
//!   The `/pa/*` endpoints allow one request per fifteen minutes (§1.5), so the rows are kept
//!   in a cache, durable when the adapter has a state directory: a small owner-only JSON file
//!   replaced atomically, keyed by a SHA-256 digest of the request (never the account id in
//!   clear). A refresh is sent only once the window (widened by the pacing margin) has passed
//!   since the rows were fetched; sooner, the cached rows come back marked stale with the time
//!   a refresh is allowed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::client::ApiRequest;
use super::errors::{self, ErrorContext, GatewayFault};
use super::lenient::{NumText, WireConid};
use super::writer::{self, Reply};
use super::{ClientPortalBroker, ClientPortalConfig, dto, pacing};
use crate::adapters::outbound::private_files;
use crate::domain::audit::sha256_hex;
use crate::domain::broker_text::{BODY_CHARS, BrokerText};
use crate::domain::cash_fx::{
    CashTransaction, CurrencyPair, Freshness, FxRate, MAX_CURRENCY_PAIRS, MAX_TRANSACTION_ROWS,
    RefreshDecision, TransactionsReading, TransactionsRequest, decide_refresh, next_refresh_at,
};
use crate::domain::ids::{AccountId, ContractId};
use crate::domain::money::Currency;
use crate::ports::broker_reader::BrokerError;

/// The cache file's name inside the state directory.
pub(crate) const CACHE_FILE_NAME: &str = "client-portal-transactions.json";
/// The documented `/pa/*` limit: one request per fifteen minutes (reference §1.5).
const PA_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// The most requests kept in the cache; the oldest fetch goes first.
const MAX_CACHED_REQUESTS: usize = 64;

/// Unique temporary names for concurrent writers of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

// ---------------------------------------------------------------------------------------------
// The cache
// ---------------------------------------------------------------------------------------------

/// One cached row, as stored: text already cleaned, decimals as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredRow {
    date: Option<NaiveDate>,
    kind: String,
    description: String,
    amount: String,
    currency: String,
    quantity: String,
    price: String,
    fx_rate: Option<String>,
    contract_id: Option<u64>,
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct StoredEntry {
    fetched_at: DateTime<Utc>,
    truncated: bool,
    rows: Vec<StoredRow>,
}

/// The cache file: entries by request digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCache {
    #[serde(default)]
    entries: BTreeMap<String, StoredEntry>,
}

impl StoredRow {
    fn from_domain(row: &CashTransaction) -> Self {
        Self {
            date: row.date,
            kind: row.kind.as_str().to_owned(),
            description: row.description.as_str().to_owned(),
            amount: row.amount.to_string(),
            currency: row.currency.as_str().to_owned(),
            quantity: row.quantity.to_string(),
            price: row.price.to_string(),
            fx_rate: row.fx_rate.map(|rate| rate.to_string()),
            contract_id: row.contract_id.map(ContractId::value),
        }
    }

    /// The row back; `None` when the file was edited into something the domain refuses.
    fn to_domain(&self) -> Option<CashTransaction> {
        let decimal = |raw: &str| Decimal::from_str_exact(raw).ok();
        Some(CashTransaction {
            date: self.date,
            kind: BrokerText::label(&self.kind),
            description: BrokerText::new(&self.description, BODY_CHARS),
            amount: decimal(&self.amount)?,
            currency: Currency::parse(&self.currency).ok()?,
            quantity: decimal(&self.quantity)?,
            price: decimal(&self.price)?,
            fx_rate: match &self.fx_rate {
                Some(raw) => Some(decimal(raw)?),
                None => None,
            },
            contract_id: match self.contract_id {
                Some(id) => Some(ContractId::new(id).ok()?),
                None => None,
            },
        })
    }
}

/// Rows read earlier, with when.
#[derive(Debug, Clone)]
struct CachedRows {
    fetched_at: DateTime<Utc>,
    truncated: bool,
    rows: Vec<CashTransaction>,
}

impl CachedRows {
    fn from_stored(entry: &StoredEntry) -> Option<Self> {
        Some(Self {
            fetched_at: entry.fetched_at,
            truncated: entry.truncated,
            rows: entry
                .rows
                .iter()
                .map(StoredRow::to_domain)
                .collect::<Option<Vec<_>>>()?,
        })
    }

    fn to_stored(&self) -> StoredEntry {
        StoredEntry {
            fetched_at: self.fetched_at,
            truncated: self.truncated,
            rows: self.rows.iter().map(StoredRow::from_domain).collect(),
        }
    }

    fn reading(
        self,
        freshness: Freshness,
        next_refresh_allowed_at: DateTime<Utc>,
    ) -> TransactionsReading {
        TransactionsReading {
            transactions: self.rows,
            truncated: self.truncated,
            fetched_at: self.fetched_at,
            freshness,
            next_refresh_allowed_at,
        }
    }
}

/// The transactions already read, in memory and, with a state directory, in an owner-only
/// file every process of the installation shares.
#[derive(Debug)]
pub(super) struct TransactionsCache {
    file: Option<PathBuf>,
    interval: chrono::Duration,
    // A std mutex: held only to read or replace an entry, never across an await.
    memory: Mutex<StoredCache>,
}

impl TransactionsCache {
    /// The cache for `config`: its file in the state directory, if any; refreshes spaced by
    /// the documented `/pa/*` interval widened by the pacing margin.
    pub(super) fn new(config: &ClientPortalConfig) -> Self {
        let widened = pacing::widen(PA_INTERVAL, config.pacing_margin_percent);
        Self {
            file: config
                .shared_state_dir
                .as_ref()
                .map(|dir| dir.join(CACHE_FILE_NAME)),
            interval: chrono::Duration::from_std(widened)
                .unwrap_or_else(|_| chrono::Duration::minutes(30)),
            memory: Mutex::new(StoredCache::default()),
        }
    }

    /// The newer of the memory and file entries for `key`.
    async fn load(&self, key: &str) -> Option<CachedRows> {
        let in_memory = self
            .memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .get(key)
            .cloned();
        let in_file = match &self.file {
            Some(path) => {
                let path = path.clone();
                let key = key.to_owned();
                tokio::task::spawn_blocking(move || read_file(&path).entries.remove(&key))
                    .await
                    .ok()
                    .flatten()
            }
            None => None,
        };
        let newest = match (in_memory, in_file) {
            (Some(memory), Some(file)) if file.fetched_at > memory.fetched_at => Some(file),
            (Some(memory), _) => Some(memory),
            (None, file) => file,
        };
        newest.as_ref().and_then(CachedRows::from_stored)
    }

    /// Keeps `rows` under `key`, in memory and in the file. A file that cannot be written
    /// costs only durability: the rows are still answered, and the failure is logged without
    /// the path.
    async fn store(&self, key: &str, rows: &CachedRows) {
        let entry = rows.to_stored();
        insert_bounded(
            &mut self.memory.lock().unwrap_or_else(PoisonError::into_inner),
            key,
            entry.clone(),
        );
        let Some(path) = self.file.clone() else {
            return;
        };
        let key = key.to_owned();
        let written = tokio::task::spawn_blocking(move || {
            let mut cache = read_file(&path);
            insert_bounded(&mut cache, &key, entry);
            write_file_atomically(&path, &cache)
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(
                "the transactions cache could not be written to the state directory; \
                 the rows are kept in memory only"
            );
        }
    }
}

fn insert_bounded(cache: &mut StoredCache, key: &str, entry: StoredEntry) {
    cache.entries.insert(key.to_owned(), entry);
    while cache.entries.len() > MAX_CACHED_REQUESTS {
        let oldest = cache
            .entries
            .iter()
            .min_by_key(|(_, entry)| entry.fetched_at)
            .map(|(key, _)| key.clone());
        match oldest {
            Some(oldest) => cache.entries.remove(&oldest),
            None => break,
        };
    }
}

/// The cache file; missing, unreadable or malformed counts as empty.
fn read_file(path: &Path) -> StoredCache {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Writes `cache` to a new owner-only file beside `path`, flushes it, and renames it over
/// `path`: a reader sees the old file or the new one, never half of one.
fn write_file_atomically(path: &Path, cache: &StoredCache) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("the cache file has no directory"))?;
    private_files::create_private_dir(dir)?;
    let bytes = serde_json::to_vec(cache).map_err(io::Error::other)?;
    let temporary = dir.join(format!(
        ".{CACHE_FILE_NAME}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = private_files::open_private(&temporary, true)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, path)?;
        private_files::restrict_to_owner(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// The cache key: a digest of everything the request names, the account included, so the
/// file never holds an account id in clear.
fn cache_key(account: &AccountId, request: &TransactionsRequest) -> String {
    let text = format!(
        "pa/transactions/v1|{}|{}|{}|{}",
        account.expose(),
        request.contract_id,
        request.currency,
        request.days()
    );
    sha256_hex(text.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Wire types
// ---------------------------------------------------------------------------------------------

/// `/iserver/exchangerate`.
#[derive(Debug, Deserialize)]
struct ExchangeRateDto {
    rate: Option<NumText>,
}

/// One entry of `/iserver/currency/pairs`.
#[derive(Debug, Deserialize)]
struct PairDto {
    symbol: Option<String>,
    conid: Option<WireConid>,
}

/// `/pa/transactions`.
#[derive(Debug, Deserialize)]
struct TransactionsDto {
    #[serde(default)]
    transactions: Option<Vec<Value>>,
}

/// One row of `/pa/transactions`.
#[derive(Debug, Deserialize)]
struct TransactionDto {
    date: Option<String>,
    cur: Option<String>,
    #[serde(rename = "fxRate")]
    fx_rate: Option<NumText>,
    pr: Option<NumText>,
    qty: Option<NumText>,
    acctid: Option<String>,
    amt: Option<NumText>,
    conid: Option<WireConid>,
    #[serde(rename = "type")]
    kind: Option<String>,
    desc: Option<String>,
}

impl TransactionDto {
    fn try_into_domain(self, fallback: Currency) -> Result<CashTransaction, GatewayFault> {
        let amount = self
            .amt
            .as_ref()
            .and_then(NumText::decimal)
            .ok_or_else(|| GatewayFault::invalid("a transaction has no readable amount"))?;
        let currency = match self.cur.as_deref().map(str::trim) {
            None | Some("") => fallback,
            Some(raw) => Currency::parse(raw)
                .map_err(|_| GatewayFault::invalid("a transaction has an unreadable currency"))?,
        };
        let number = |value: &Option<NumText>| -> Result<Option<Decimal>, GatewayFault> {
            match value {
                None => Ok(None),
                Some(text) => text
                    .decimal()
                    .map(Some)
                    .ok_or_else(|| GatewayFault::invalid("a transaction has an unreadable number")),
            }
        };
        Ok(CashTransaction {
            date: self.date.as_deref().and_then(broker_date),
            kind: BrokerText::label(self.kind.as_deref().unwrap_or_default()),
            description: BrokerText::new(self.desc.as_deref().unwrap_or_default(), BODY_CHARS),
            amount,
            currency,
            quantity: number(&self.qty)?.unwrap_or(Decimal::ZERO),
            price: number(&self.pr)?.unwrap_or(Decimal::ZERO),
            fx_rate: number(&self.fx_rate)?,
            contract_id: self.conid.and_then(WireConid::contract_id),
        })
    }
}

/// The row date: `Thu Jul 03 00:00:00 EDT 2025` (the documented shape), `20250703` or
/// `2025-07-03`; anything else is unknown.
fn broker_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y%m%d") {
        return Some(date);
    }
    if let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Some(date);
    }
    let words: Vec<&str> = raw.split_whitespace().collect();
    match words.as_slice() {
        [_, month, day, _, _, year] => {
            NaiveDate::parse_from_str(&format!("{month} {day} {year}"), "%b %d %Y").ok()
        }
        _ => None,
    }
}

fn fx_rate(value: Value, source: Currency, target: Currency) -> Result<FxRate, GatewayFault> {
    let rate = dto::parse::<ExchangeRateDto>(value, "exchange rate")?
        .rate
        .as_ref()
        .and_then(NumText::decimal)
        .filter(|rate| *rate > Decimal::ZERO)
        .ok_or_else(|| GatewayFault::invalid("the gateway gave no positive exchange rate"))?;
    Ok(FxRate {
        source,
        target,
        rate: rate.normalize(),
    })
}

fn currency_pairs(value: Value, currency: Currency) -> Result<Vec<CurrencyPair>, GatewayFault> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(mut map) => match map.remove(currency.as_str()) {
            Some(Value::Array(items)) => items,
            Some(Value::Null) | None => return Ok(Vec::new()),
            Some(_) => return Err(GatewayFault::invalid("the currency pairs are not a list")),
        },
        _ => return Err(GatewayFault::invalid("the currency pairs are not a map")),
    };
    let mut pairs = Vec::new();
    for item in items {
        // A malformed entry is skipped: the others are still the broker's pairs.
        let Ok(entry) = serde_json::from_value::<PairDto>(item) else {
            continue;
        };
        let (Some(symbol), Some(contract_id)) =
            (entry.symbol, entry.conid.and_then(WireConid::contract_id))
        else {
            continue;
        };
        let Some(pair) = CurrencyPair::from_symbol(&symbol, contract_id) else {
            continue;
        };
        if (pair.base == currency || pair.quote == currency)
            && !pairs.iter().any(|known: &CurrencyPair| known == &pair)
        {
            pairs.push(pair);
        }
        if pairs.len() == MAX_CURRENCY_PAIRS {
            break;
        }
    }
    Ok(pairs)
}

/// The rows of `account`, newest first (unknown dates last), at most
/// [`MAX_TRANSACTION_ROWS`], and whether more were dropped.
fn transactions(
    value: Value,
    account: &AccountId,
    fallback: Currency,
) -> Result<(Vec<CashTransaction>, bool), GatewayFault> {
    let items = match value {
        Value::Null => Vec::new(),
        other => dto::parse::<TransactionsDto>(other, "transactions")?
            .transactions
            .unwrap_or_default(),
    };
    let mut rows = Vec::new();
    for item in items {
        let row: TransactionDto = dto::parse(item, "transaction")?;
        // The request names one account; a row of another is never passed on.
        if row
            .acctid
            .as_deref()
            .is_some_and(|owner| owner.trim() != account.expose())
        {
            continue;
        }
        rows.push(row.try_into_domain(fallback)?);
    }
    rows.sort_by(|a, b| match (a.date, b.date) {
        (Some(a), Some(b)) => b.cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    let truncated = rows.len() > MAX_TRANSACTION_ROWS;
    rows.truncate(MAX_TRANSACTION_ROWS);
    Ok((rows, truncated))
}

// ---------------------------------------------------------------------------------------------
// The reads
// ---------------------------------------------------------------------------------------------

impl ClientPortalBroker {
    /// `/iserver/exchangerate`.
    pub(super) async fn read_fx_rate(
        &self,
        source: Currency,
        target: Currency,
    ) -> Result<FxRate, GatewayFault> {
        let request = ApiRequest::get(&["iserver", "exchangerate"])
            .query("source", source.as_str())
            .query("target", target.as_str());
        fx_rate(self.iserver(&request).await?, source, target)
    }

    /// `/iserver/currency/pairs`.
    pub(super) async fn read_currency_pairs(
        &self,
        currency: Currency,
    ) -> Result<Vec<CurrencyPair>, GatewayFault> {
        let request =
            ApiRequest::get(&["iserver", "currency", "pairs"]).query("currency", currency.as_str());
        match self.iserver(&request).await {
            Err(GatewayFault::NothingFound) => Ok(Vec::new()),
            other => currency_pairs(other?, currency),
        }
    }

    /// `/pa/transactions`, through the cache.
    pub(super) async fn read_cash_transactions(
        &self,
        account: &AccountId,
        request: &TransactionsRequest,
    ) -> Result<TransactionsReading, GatewayFault> {
        let cache = &self.transactions;
        let key = cache_key(account, request);
        let cached = cache.load(&key).await;
        let now = self.clock.now();
        let decision = decide_refresh(
            cached.as_ref().map(|rows| rows.fetched_at),
            request.refresh,
            now,
            cache.interval,
        );
        let cached = match (decision, cached) {
            (RefreshDecision::ServeCached, Some(rows)) => {
                let next = next_refresh_at(rows.fetched_at, cache.interval);
                return Ok(rows.reading(Freshness::Cached, next));
            }
            (RefreshDecision::Refuse { next_allowed_at }, Some(rows)) => {
                return Ok(rows.reading(Freshness::Stale, next_allowed_at));
            }
            (_, cached) => cached,
        };
        match self.fetch_transactions(account, request).await {
            Ok((rows, truncated)) => {
                let fetched = CachedRows {
                    fetched_at: now,
                    truncated,
                    rows,
                };
                cache.store(&key, &fetched).await;
                let next = next_refresh_at(now, cache.interval);
                Ok(fetched.reading(Freshness::Fetched, next))
            }
            Err(fault) => match (rate_limit_wait(&fault), cached) {
                // The pacing (this process's, another's, or the gateway's 429) refused the
                // refresh: the rows read before, marked stale, with when to try again.
                (Some(wait), Some(rows)) => {
                    let next = now
                        .checked_add_signed(chrono::Duration::seconds(
                            i64::try_from(wait).unwrap_or(i64::MAX / 1_000),
                        ))
                        .unwrap_or(DateTime::<Utc>::MAX_UTC);
                    Ok(rows.reading(Freshness::Stale, next))
                }
                _ => Err(fault),
            },
        }
    }

    async fn fetch_transactions(
        &self,
        account: &AccountId,
        request: &TransactionsRequest,
    ) -> Result<(Vec<CashTransaction>, bool), GatewayFault> {
        self.portfolio_account(account).await?;
        let body = json!({
            "acctIds": [account.expose()],
            "conids": [request.contract_id.value()],
            "currency": request.currency.as_str(),
            "days": request.days(),
        });
        let body = serde_json::to_vec(&body)
            .map_err(|_| GatewayFault::invalid("the transactions request could not be built"))?;
        let call = ApiRequest::post_json(&["pa", "transactions"], body);
        match writer::sort(self.client.exchange(&call).await) {
            Reply::Body(value) => transactions(value, account, request.currency),
            Reply::ErrorText(text) => Err(errors::classify_text(&text, ErrorContext::default())
                .unwrap_or_else(|| {
                    GatewayFault::invalid("the gateway refused the transactions request")
                })),
            Reply::NotActed(fault) | Reply::Unknown(fault) => Err(fault),
        }
    }
}

/// How many seconds a rate-limit fault asks to wait, for any other fault `None`.
fn rate_limit_wait(fault: &GatewayFault) -> Option<u64> {
    match fault {
        GatewayFault::Broker(BrokerError::RateLimited {
            retry_after_seconds,
        }) => Some(*retry_after_seconds),
        GatewayFault::RateLimited { penalty } => match pacing::rate_limited(*penalty) {
            BrokerError::RateLimited {
                retry_after_seconds,
            } => Some(retry_after_seconds),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn documented_dates_are_read() {
        assert_eq!(
            broker_date("Thu Jul 03 00:00:00 EDT 2025"),
            NaiveDate::from_ymd_opt(2025, 7, 3)
        );
        assert_eq!(
            broker_date("20250515"),
            NaiveDate::from_ymd_opt(2025, 5, 15)
        );
        assert_eq!(broker_date("soon"), None);
    }

    #[test]
    fn rows_of_another_account_are_dropped_and_the_rest_sorted_newest_first() {
        let account = AccountId::parse("DU7654321").unwrap();
        let value = json!({ "transactions": [
            { "date": "20250101", "cur": "USD", "amt": "10", "acctid": "DU7654321", "type": "Deposit", "desc": "a" },
            { "date": "20250301", "amt": 5, "acctid": "DU0000001", "type": "Deposit", "desc": "other" },
            { "date": "Thu Jul 03 00:00:00 EDT 2025", "cur": "USD", "fxRate": 1, "pr": 213.55, "qty": -50,
              "acctid": "DU7654321", "amt": 10677.5, "conid": 265598, "type": "Sell", "desc": "Apple Inc" }
        ]});
        let (rows, truncated) = transactions(value, &account, usd()).unwrap();
        assert!(!truncated);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kind.as_str(), "Sell");
        assert_eq!(rows[0].quantity, Decimal::from(-50));
        assert_eq!(rows[1].description.as_str(), "a");
    }

    #[test]
    fn a_row_without_an_amount_is_an_invalid_answer() {
        let account = AccountId::parse("DU7654321").unwrap();
        let value = json!({ "transactions": [ { "date": "20250101", "type": "Deposit" } ] });
        assert!(transactions(value, &account, usd()).is_err());
    }

    #[test]
    fn the_cache_file_is_owner_only_and_holds_no_account_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(CACHE_FILE_NAME);
        let account = AccountId::parse("DU7654321").unwrap();
        let request =
            TransactionsRequest::new(ContractId::new(265_598).unwrap(), usd(), 90, false).unwrap();
        let mut cache = StoredCache::default();
        insert_bounded(
            &mut cache,
            &cache_key(&account, &request),
            StoredEntry {
                fetched_at: DateTime::<Utc>::UNIX_EPOCH,
                truncated: false,
                rows: Vec::new(),
            },
        );
        write_file_atomically(&path, &cache).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("DU7654321"), "{text}");
        assert_eq!(read_file(&path), cache);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn the_cache_keeps_a_bounded_number_of_requests() {
        let mut cache = StoredCache::default();
        for minute in 0..(MAX_CACHED_REQUESTS as i64 + 5) {
            insert_bounded(
                &mut cache,
                &format!("key-{minute}"),
                StoredEntry {
                    fetched_at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute),
                    truncated: false,
                    rows: Vec::new(),
                },
            );
        }
        assert_eq!(cache.entries.len(), MAX_CACHED_REQUESTS);
        assert!(!cache.entries.contains_key("key-0"));
    }
}
