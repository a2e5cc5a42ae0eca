//! The Client Portal mapping for news (FYI notifications) and trading sessions and holidays (issue 16).
//!
//! - `GET /fyi/notifications?max=N` (reference §8): the FYI inbox, newest first. It needs only
//!   the read-only web session, so no `/iserver` pre-flight runs; `/fyi/*` is paced at 1/s by
//!   the limiter. The body (`MD`) is HTML: tags are dropped and the common entities decoded
//!   before the text is cleaned and bounded as broker text.
//! - `GET /contract/trading-schedule?conid=N` (reference §4.7 b, "Trading Schedule (NEW)"): the
//!   exchange's zone and about six trading days around today as epoch seconds, closed days
//!   omitted. The legacy `/trsrv/secdef/schedule` needs an asset class and symbol and encodes
//!   times as local `HHMM` strings with placeholder dates; the conid read is the one used.
//!
//! News has no documented REST endpoint (reference §8), so nothing here asks for it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;

use super::client::{ApiRequest, GatewayClient};
use super::dto::{self, yyyymmdd};
use super::errors::{ErrorContext, GatewayFault};
use super::lenient::NumText;
use crate::domain::broker_text::{BODY_CHARS, BrokerText};
use crate::domain::ids::ContractId;
use crate::domain::news_calendar::{
    FyiCount, FyiNotification, NotificationId, ScheduledDay, SessionWindow, TradingSchedule,
};

/// The most dates one schedule answer may list; the documented answer has about six.
const MAX_SCHEDULE_DATES: usize = 62;

/// One FYI as `/fyi/notifications` sends it.
#[derive(Debug, Deserialize)]
struct FyiDto {
    /// 1 once read, 0 while unread.
    #[serde(rename = "R", default)]
    read: Option<NumText>,
    /// Epoch seconds as a string, e.g. `"1710847062.0"`.
    #[serde(rename = "D", default)]
    date: Option<NumText>,
    /// The title.
    #[serde(rename = "MS", default)]
    title: Option<String>,
    /// The body, HTML.
    #[serde(rename = "MD", default)]
    body: Option<String>,
    #[serde(rename = "ID", default)]
    id: Option<serde_json::Value>,
    /// The FYI type code.
    #[serde(rename = "FC", default)]
    code: Option<String>,
}

impl FyiDto {
    fn into_domain(self) -> FyiNotification {
        let id = match &self.id {
            Some(serde_json::Value::String(text)) => NotificationId::parse(text),
            Some(serde_json::Value::Number(number)) => NotificationId::parse(&number.to_string()),
            _ => None,
        };
        let unread = self
            .read
            .and_then(|flag| flag.decimal())
            .is_none_or(|flag| flag.is_zero());
        FyiNotification {
            id,
            sent_at: self.date.as_ref().and_then(epoch_seconds),
            unread,
            code: BrokerText::label(self.code.as_deref().unwrap_or_default()),
            title: BrokerText::label(self.title.as_deref().unwrap_or_default()),
            body: BrokerText::new(
                &html_to_text(self.body.as_deref().unwrap_or_default()),
                BODY_CHARS,
            ),
        }
    }
}

/// Epoch seconds, possibly fractional, as a UTC time.
fn epoch_seconds(raw: &NumText) -> Option<DateTime<Utc>> {
    let value: Decimal = raw.decimal()?;
    let seconds = value.trunc().to_i64()?;
    let nanos = (value.fract() * Decimal::from(1_000_000_000))
        .trunc()
        .to_u32()?;
    DateTime::from_timestamp(seconds, nanos)
}

/// The text of an HTML fragment: tags dropped (block breaks become spaces), `&amp;`, `&lt;`,
/// `&gt;`, `&quot;`, `&#39;` and `&nbsp;` decoded. The result is still untrusted text.
fn html_to_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => in_tag = true,
            (true, '>') => {
                in_tag = false;
                text.push(' ');
            }
            (false, other) => text.push(other),
            (true, _) => {}
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `GET /fyi/notifications?max=N`, newest first, at most `max` kept whatever the gateway sends.
pub(super) async fn fyi_notifications(
    client: &GatewayClient,
    max: FyiCount,
) -> Result<Vec<FyiNotification>, GatewayFault> {
    let request = ApiRequest::get(&["fyi", "notifications"]).query("max", max.get().to_string());
    let value = client.call(&request).await?;
    let items: Vec<FyiDto> = dto::parse(value, "FYI notifications")?;
    let mut notifications: Vec<FyiNotification> =
        items.into_iter().map(FyiDto::into_domain).collect();
    // Newest first, undated last; the sort is stable, so equal times keep the gateway's order.
    notifications.sort_by_key(|notification| std::cmp::Reverse(notification.sent_at));
    notifications.truncate(usize::from(max.get()));
    Ok(notifications)
}

/// `/contract/trading-schedule`'s answer.
#[derive(Debug, Deserialize)]
struct ScheduleDto {
    #[serde(default)]
    exchange_time_zone: Option<String>,
    #[serde(default)]
    schedules: Option<BTreeMap<String, ScheduleDayDto>>,
}

#[derive(Debug, Deserialize)]
struct ScheduleDayDto {
    #[serde(default)]
    liquid_hours: Option<Vec<WindowDto>>,
    #[serde(default)]
    extended_hours: Option<Vec<WindowDto>>,
}

#[derive(Debug, Deserialize)]
struct WindowDto {
    opening: NumText,
    closing: NumText,
}

fn windows(raw: Option<Vec<WindowDto>>) -> Result<Vec<SessionWindow>, GatewayFault> {
    let mut sessions = raw
        .unwrap_or_default()
        .iter()
        .map(|window| {
            epoch_seconds(&window.opening)
                .zip(epoch_seconds(&window.closing))
                .and_then(|(opens, closes)| SessionWindow::new(opens, closes))
                .ok_or_else(|| {
                    GatewayFault::invalid("a trading session does not close after it opens")
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    sessions.sort_by_key(|session| session.opens);
    Ok(sessions)
}

impl ScheduleDto {
    fn try_into_domain(self) -> Result<TradingSchedule, GatewayFault> {
        let time_zone: Tz = self
            .exchange_time_zone
            .as_deref()
            .and_then(|name| name.trim().parse().ok())
            .ok_or_else(|| {
                GatewayFault::invalid("the trading schedule names no known time zone")
            })?;
        let listed = self.schedules.unwrap_or_default();
        if listed.len() > MAX_SCHEDULE_DATES {
            return Err(GatewayFault::invalid(
                "the trading schedule lists too many dates",
            ));
        }
        let mut days = BTreeMap::new();
        for (date, day) in listed {
            let date = yyyymmdd(&date)
                .ok_or_else(|| GatewayFault::invalid("a trading schedule date is not YYYYMMDD"))?;
            days.insert(
                date,
                ScheduledDay {
                    liquid: windows(day.liquid_hours)?,
                    extended: windows(day.extended_hours)?,
                },
            );
        }
        Ok(TradingSchedule { time_zone, days })
    }
}

/// `GET /contract/trading-schedule?conid=N`.
pub(super) async fn trading_schedule(
    client: &GatewayClient,
    contract_id: ContractId,
) -> Result<TradingSchedule, GatewayFault> {
    let request = ApiRequest::get(&["contract", "trading-schedule"])
        .query("conid", contract_id.value().to_string())
        .about(ErrorContext::contract(contract_id));
    let value = client.call(&request).await?;
    dto::parse::<ScheduleDto>(value, "trading schedule")?.try_into_domain()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_become_plain_text() {
        assert_eq!(
            html_to_text("<p>Margin&nbsp;call &amp; <b>notice</b></p>&lt;script&gt;"),
            " Margin call &  notice  <script>"
        );
    }

    #[test]
    fn fractional_epoch_seconds_are_read() {
        let raw: NumText = serde_json::from_str("\"1710847062.5\"").unwrap();
        let time = epoch_seconds(&raw).unwrap();
        assert_eq!(time.timestamp(), 1_710_847_062);
        assert_eq!(time.timestamp_subsec_millis(), 500);
    }

    #[test]
    fn the_schedule_zone_accepts_the_documented_alias() {
        let dto: ScheduleDto = serde_json::from_value(serde_json::json!({
            "exchange_time_zone": "US/Eastern",
            "schedules": {"20250707": {"liquid_hours": [{"opening": 1751895000, "closing": "1751918400"}]}}
        }))
        .unwrap();
        let schedule = dto.try_into_domain().unwrap();
        assert_eq!(schedule.time_zone.name(), "US/Eastern");
        assert_eq!(schedule.days.len(), 1);
    }

    #[test]
    fn an_unknown_zone_or_a_backwards_session_is_refused() {
        let unknown: ScheduleDto =
            serde_json::from_value(serde_json::json!({"exchange_time_zone": "Mars/Olympus"}))
                .unwrap();
        assert!(unknown.try_into_domain().is_err());
        let backwards: ScheduleDto = serde_json::from_value(serde_json::json!({
            "exchange_time_zone": "US/Eastern",
            "schedules": {"20250707": {"liquid_hours": [{"opening": 1751918400, "closing": 1751895000}]}}
        }))
        .unwrap();
        assert!(backwards.try_into_domain().is_err());
    }
}
