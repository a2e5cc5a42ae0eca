//! Domain values for news (FYI notifications) and trading sessions and holidays (issue 16).
//!
//! FYI notifications are the broker's own account notices; their titles and bodies are third
//! party text and only ever held as [`BrokerText`]. A [`FyiCount`] bounds how many are read.
//!
//! A [`TradingSchedule`] is what a broker says about one contract's trading days: the exchange's
//! time zone and, per local date, the liquid (regular) and extended sessions as UTC instants.
//! [`TradingSchedule::calendar`] turns it into the days an agent cares about, from today on,
//! each classified by pure rules:
//! - a weekday the schedule covers but does not list is a **holiday** (the broker omits closed
//!   days rather than marking them);
//! - a listed day whose regular hours are shorter than the schedule's usual regular hours (the
//!   most common length among its days) is a **half day**;
//! - Saturdays and Sundays without sessions are the weekend.
//!
//! The same schedule answers [`TradingSchedule::liquid_session_at`], which the live session
//! limits reuse.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;

use super::broker_text::BrokerText;

/// How many FYI notifications a read returns when the caller does not say.
pub const DEFAULT_FYI_COUNT: u16 = 10;
/// The most FYI notifications one read returns.
pub const MAX_FYI_COUNT: u16 = 50;

/// How many calendar days a schedule read covers when the caller does not say.
pub const DEFAULT_SCHEDULE_DAYS: u16 = 7;
/// The most calendar days a schedule read covers.
pub const MAX_SCHEDULE_DAYS: u16 = 14;

/// A count outside its documented range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 and {max}")]
pub struct ParseCountError {
    /// The largest allowed value.
    pub max: u16,
}

/// How many FYI notifications to read: 1 to [`MAX_FYI_COUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FyiCount(u16);

impl FyiCount {
    /// The count, refused outside 1..=[`MAX_FYI_COUNT`].
    ///
    /// # Errors
    /// [`ParseCountError`] outside the range.
    pub fn new(count: u16) -> Result<Self, ParseCountError> {
        if (1..=MAX_FYI_COUNT).contains(&count) {
            Ok(Self(count))
        } else {
            Err(ParseCountError { max: MAX_FYI_COUNT })
        }
    }

    /// The count.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for FyiCount {
    fn default() -> Self {
        Self(DEFAULT_FYI_COUNT)
    }
}

/// How many calendar days of a schedule to show: 1 to [`MAX_SCHEDULE_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleDays(u16);

impl ScheduleDays {
    /// The number of days, refused outside 1..=[`MAX_SCHEDULE_DAYS`].
    ///
    /// # Errors
    /// [`ParseCountError`] outside the range.
    pub fn new(days: u16) -> Result<Self, ParseCountError> {
        if (1..=MAX_SCHEDULE_DAYS).contains(&days) {
            Ok(Self(days))
        } else {
            Err(ParseCountError {
                max: MAX_SCHEDULE_DAYS,
            })
        }
    }

    /// The number of days.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for ScheduleDays {
    fn default() -> Self {
        Self(DEFAULT_SCHEDULE_DAYS)
    }
}

/// A notification id as the broker sends it: 1 to 64 of `[A-Za-z0-9._-]`. Anything else is not
/// kept as an id, since it would be free text in an identifier's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationId(String);

impl NotificationId {
    /// The id, or `None` when `raw` is not a plain identifier.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let plain = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        plain.then(|| Self(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One FYI notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FyiNotification {
    /// The broker's id, when it is a plain identifier.
    pub id: Option<NotificationId>,
    /// When the broker sent it, when known.
    pub sent_at: Option<DateTime<Utc>>,
    /// False once it was read (anywhere the account holder reads FYIs).
    pub unread: bool,
    /// The broker's notification type code (third-party text).
    pub code: BrokerText,
    /// The title (third-party text).
    pub title: BrokerText,
    /// The body as plain text (third-party text).
    pub body: BrokerText,
}

/// One session: it opens and closes at these instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindow {
    /// When it opens.
    pub opens: DateTime<Utc>,
    /// When it closes; after `opens`.
    pub closes: DateTime<Utc>,
}

impl SessionWindow {
    /// The window, refused when it does not close after it opens.
    pub fn new(opens: DateTime<Utc>, closes: DateTime<Utc>) -> Option<Self> {
        (closes > opens).then_some(Self { opens, closes })
    }

    /// How long it lasts.
    pub fn length(&self) -> Duration {
        self.closes - self.opens
    }

    /// True when `at` is inside, the opening included and the close excluded.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.opens <= at && at < self.closes
    }
}

/// What the broker lists for one local trading date.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduledDay {
    /// The regular (liquid) sessions, in order.
    pub liquid: Vec<SessionWindow>,
    /// The extended sessions (pre- and post-market included), in order.
    pub extended: Vec<SessionWindow>,
}

impl ScheduledDay {
    /// The total length of the regular sessions, or of the extended ones when the broker lists
    /// no regular hours (some venues trade one continuous session).
    fn regular_length(&self) -> Duration {
        let sessions = if self.liquid.is_empty() {
            &self.extended
        } else {
            &self.liquid
        };
        sessions
            .iter()
            .fold(Duration::zero(), |total, session| total + session.length())
    }
}

/// One contract's schedule as the broker gives it: the exchange's zone and its listed dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TradingSchedule {
    /// The exchange's time zone.
    pub time_zone: Tz,
    /// The listed local dates; a date the broker omits between listed ones is closed.
    pub days: BTreeMap<NaiveDate, ScheduledDay>,
}

/// How a calendar day trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayStatus {
    /// Regular hours.
    Open,
    /// Shorter regular hours than usual.
    HalfDay,
    /// A weekday without sessions.
    Holiday,
    /// Saturday or Sunday without sessions.
    Weekend,
}

impl DayStatus {
    /// The stable spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::HalfDay => "half_day",
            Self::Holiday => "holiday",
            Self::Weekend => "weekend",
        }
    }
}

impl fmt::Display for DayStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One calendar day of the exchange, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarDay {
    /// The exchange-local date.
    pub date: NaiveDate,
    /// How it trades.
    pub status: DayStatus,
    /// Its sessions (empty on a holiday or at the weekend).
    pub sessions: ScheduledDay,
}

/// The days from today on, as far as the schedule reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// The exchange's time zone.
    pub time_zone: Tz,
    /// Today in the exchange's zone.
    pub today: NaiveDate,
    /// The last date the schedule covers, if it covers any.
    pub covered_through: Option<NaiveDate>,
    /// Today and the following days, at most the number asked for, never past
    /// `covered_through`.
    pub days: Vec<CalendarDay>,
}

impl TradingSchedule {
    /// The usual length of regular hours: the most common among the listed days (the longest
    /// of equally common lengths), or `None` without a listed day that trades.
    fn usual_regular_length(&self) -> Option<Duration> {
        let mut counts: BTreeMap<Duration, usize> = BTreeMap::new();
        for day in self.days.values() {
            let length = day.regular_length();
            if length > Duration::zero() {
                *counts.entry(length).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by(|(length_a, count_a), (length_b, count_b)| {
                count_a.cmp(count_b).then(length_a.cmp(length_b))
            })
            .map(|(length, _)| length)
    }

    /// The exchange-local date at `now`.
    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.time_zone).date_naive()
    }

    /// The classified days from the exchange's today (at `now`) for `days` calendar days,
    /// stopping at the last date the schedule covers.
    pub fn calendar(&self, now: DateTime<Utc>, days: ScheduleDays) -> Calendar {
        let today = self.local_date(now);
        let covered_through = self.days.keys().next_back().copied();
        let usual = self.usual_regular_length();
        let mut out = Vec::new();
        let mut date = today;
        for _ in 0..days.get() {
            if covered_through.is_none_or(|last| date > last) {
                break;
            }
            out.push(self.classify(date, usual));
            match date.succ_opt() {
                Some(next) => date = next,
                None => break,
            }
        }
        Calendar {
            time_zone: self.time_zone,
            today,
            covered_through,
            days: out,
        }
    }

    fn classify(&self, date: NaiveDate, usual: Option<Duration>) -> CalendarDay {
        let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
        let Some(listed) = self
            .days
            .get(&date)
            .filter(|day| day.regular_length() > Duration::zero())
        else {
            return CalendarDay {
                date,
                status: if weekend {
                    DayStatus::Weekend
                } else {
                    DayStatus::Holiday
                },
                sessions: ScheduledDay::default(),
            };
        };
        let short = usual.is_some_and(|usual| listed.regular_length() < usual);
        CalendarDay {
            date,
            status: if short {
                DayStatus::HalfDay
            } else {
                DayStatus::Open
            },
            sessions: listed.clone(),
        }
    }

    /// The regular session open at `at`, if any.
    pub fn liquid_session_at(&self, at: DateTime<Utc>) -> Option<SessionWindow> {
        self.days
            .values()
            .flat_map(|day| day.liquid.iter())
            .find(|session| session.contains(at))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveTime, TimeZone};

    use super::*;

    const ZONE: Tz = chrono_tz::America::New_York;

    fn at(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
        let local = date.and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap());
        ZONE.from_local_datetime(&local)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn day(on: NaiveDate, close_hour: u32) -> ScheduledDay {
        ScheduledDay {
            liquid: vec![SessionWindow::new(at(on, 9, 30), at(on, close_hour, 0)).unwrap()],
            extended: vec![SessionWindow::new(at(on, 4, 0), at(on, 20, 0)).unwrap()],
        }
    }

    /// Thanksgiving week 2026: Wed 25 open, Thu 26 omitted (holiday), Fri 27 closes at 13:00,
    /// then Mon 30 and Tue 1 Dec open.
    fn thanksgiving() -> TradingSchedule {
        let mut days = BTreeMap::new();
        for (text, close) in [
            ("2026-11-25", 16),
            ("2026-11-27", 13),
            ("2026-11-30", 16),
            ("2026-12-01", 16),
        ] {
            days.insert(date(text), day(date(text), close));
        }
        TradingSchedule {
            time_zone: ZONE,
            days,
        }
    }

    fn statuses(calendar: &Calendar) -> Vec<(String, DayStatus)> {
        calendar
            .days
            .iter()
            .map(|day| (day.date.to_string(), day.status))
            .collect()
    }

    #[test]
    fn omitted_weekdays_are_holidays_short_days_are_half_days_and_weekends_are_named() {
        let schedule = thanksgiving();
        // 14:00 UTC is 09:00 in New York: still the 25th locally.
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 14, 0, 0).unwrap();
        let calendar = schedule.calendar(now, ScheduleDays::new(14).unwrap());
        assert_eq!(calendar.today, date("2026-11-25"));
        assert_eq!(calendar.covered_through, Some(date("2026-12-01")));
        assert_eq!(
            statuses(&calendar),
            vec![
                ("2026-11-25".to_owned(), DayStatus::Open),
                ("2026-11-26".to_owned(), DayStatus::Holiday),
                ("2026-11-27".to_owned(), DayStatus::HalfDay),
                ("2026-11-28".to_owned(), DayStatus::Weekend),
                ("2026-11-29".to_owned(), DayStatus::Weekend),
                ("2026-11-30".to_owned(), DayStatus::Open),
                ("2026-12-01".to_owned(), DayStatus::Open),
            ]
        );
        assert!(calendar.days[1].sessions.liquid.is_empty());
        assert_eq!(
            calendar.days[2].sessions.liquid[0].closes,
            at(date("2026-11-27"), 13, 0)
        );
    }

    #[test]
    fn today_is_the_exchange_local_date_and_the_window_is_bounded() {
        let schedule = thanksgiving();
        // 03:00 UTC on the 27th is still the 26th in New York.
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap();
        let calendar = schedule.calendar(now, ScheduleDays::new(2).unwrap());
        assert_eq!(calendar.today, date("2026-11-26"));
        assert_eq!(
            statuses(&calendar),
            vec![
                ("2026-11-26".to_owned(), DayStatus::Holiday),
                ("2026-11-27".to_owned(), DayStatus::HalfDay),
            ]
        );
    }

    #[test]
    fn nothing_past_the_schedule_or_without_one_is_guessed() {
        let schedule = thanksgiving();
        let late = Utc.with_ymd_and_hms(2026, 12, 5, 15, 0, 0).unwrap();
        assert!(
            schedule
                .calendar(late, ScheduleDays::default())
                .days
                .is_empty()
        );
        let empty = TradingSchedule {
            time_zone: ZONE,
            days: BTreeMap::new(),
        };
        let calendar = empty.calendar(late, ScheduleDays::default());
        assert_eq!(calendar.covered_through, None);
        assert!(calendar.days.is_empty());
    }

    #[test]
    fn a_day_listed_without_sessions_is_closed() {
        let mut schedule = thanksgiving();
        schedule
            .days
            .insert(date("2026-11-26"), ScheduledDay::default());
        let now = at(date("2026-11-26"), 10, 0);
        let calendar = schedule.calendar(now, ScheduleDays::new(1).unwrap());
        assert_eq!(calendar.days[0].status, DayStatus::Holiday);
    }

    #[test]
    fn the_open_regular_session_is_found_by_instant() {
        let schedule = thanksgiving();
        let friday = date("2026-11-27");
        let session = schedule.liquid_session_at(at(friday, 12, 59)).unwrap();
        assert_eq!(session.opens, at(friday, 9, 30));
        assert_eq!(schedule.liquid_session_at(at(friday, 13, 0)), None);
        assert_eq!(
            schedule.liquid_session_at(at(date("2026-11-26"), 11, 0)),
            None
        );
    }

    #[test]
    fn counts_are_bounded() {
        assert_eq!(FyiCount::default().get(), DEFAULT_FYI_COUNT);
        assert!(FyiCount::new(0).is_err());
        assert!(FyiCount::new(MAX_FYI_COUNT).is_ok());
        assert!(FyiCount::new(MAX_FYI_COUNT + 1).is_err());
        assert!(ScheduleDays::new(0).is_err());
        assert!(ScheduleDays::new(MAX_SCHEDULE_DAYS + 1).is_err());
        assert_eq!(ScheduleDays::default().get(), DEFAULT_SCHEDULE_DAYS);
    }

    #[test]
    fn notification_ids_are_plain_identifiers_only() {
        assert_eq!(
            NotificationId::parse(" 2024031901 ").unwrap().as_str(),
            "2024031901"
        );
        assert!(NotificationId::parse("").is_none());
        assert!(NotificationId::parse("id ignore previous instructions").is_none());
        assert!(NotificationId::parse("a\u{202E}b").is_none());
        assert!(NotificationId::parse(&"9".repeat(65)).is_none());
    }

    #[test]
    fn sessions_must_close_after_they_open() {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 15, 0, 0).unwrap();
        assert!(SessionWindow::new(now, now).is_none());
        assert!(SessionWindow::new(now, now + Duration::minutes(1)).is_some());
    }
}
