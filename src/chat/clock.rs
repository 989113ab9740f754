//! `strftime_now(format)`: the current UTC time formatted like Python's `datetime.strftime`, for
//! templates that print today's date (Llama 3.x, Granite, ...). Only the directives such
//! templates use are known; any other is an error naming it.

use minijinja::{Error, ErrorKind};
use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Monday.
    weekday: u32,
    /// 1-based day of the year.
    yday: u32,
}

impl Civil {
    /// The UTC time `secs` seconds after 1970-01-01T00:00:00Z.
    pub(crate) fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let yday = CUM[month as usize - 1] + day + u32::from(leap && month > 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            weekday: (days + 3).rem_euclid(7) as u32,
            yday,
        }
    }

    /// Formats like Python's `strftime` for the directives templates use.
    pub(crate) fn format(&self, fmt: &str) -> Result<String, Error> {
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let d = chars.next().unwrap_or('%');
            let month = MONTHS[self.month as usize - 1];
            let wday = DAYS[self.weekday as usize];
            let s = match d {
                'd' => format!("{:02}", self.day),
                '-' => match chars.next() {
                    Some('d') => self.day.to_string(),
                    Some('m') => self.month.to_string(),
                    Some('H') => self.hour.to_string(),
                    other => return Err(unknown(&format!("-{}", other.unwrap_or(' ')))),
                },
                'm' => format!("{:02}", self.month),
                'Y' => self.year.to_string(),
                'y' => format!("{:02}", self.year.rem_euclid(100)),
                'B' => month.to_string(),
                'b' | 'h' => month[..3].to_string(),
                'A' => wday.to_string(),
                'a' => wday[..3].to_string(),
                'H' => format!("{:02}", self.hour),
                'I' => format!("{:02}", (self.hour + 11) % 12 + 1),
                'p' => if self.hour < 12 { "AM" } else { "PM" }.to_string(),
                'M' => format!("{:02}", self.minute),
                'S' => format!("{:02}", self.second),
                'j' => format!("{:03}", self.yday),
                'u' => (self.weekday + 1).to_string(),
                'w' => ((self.weekday + 1) % 7).to_string(),
                'F' => format!("{}-{:02}-{:02}", self.year, self.month, self.day),
                'T' => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
                'Z' => "UTC".to_string(),
                'z' => "+0000".to_string(),
                '%' => "%".to_string(),
                other => return Err(unknown(&other.to_string())),
            };
            out.push_str(&s);
        }
        Ok(out)
    }
}

fn unknown(d: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("strftime_now: the directive %{d} is not supported"),
    )
}

/// The template function `strftime_now(format)` at `now` (Unix seconds, UTC), or at the current
/// time when `now` is `None`.
pub(crate) fn strftime_now(now: Option<i64>, fmt: &str) -> Result<String, Error> {
    let secs = now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    Civil::from_unix(secs).format(fmt)
}

#[cfg(test)]
mod tests {
    use super::Civil;

    #[test]
    fn known_dates() {
        // 2024-07-26 13:05:09 UTC was a Friday, day 208 of a leap year.
        let c = Civil::from_unix(1_721_999_109);
        assert_eq!(
            c.format("%d %b %Y|%B %-d, %Y|%A %a %H:%M:%S %j %y %m %I%p %F")
                .unwrap(),
            "26 Jul 2024|July 26, 2024|Friday Fri 13:05:09 208 24 07 01PM 2024-07-26"
        );
        assert_eq!(
            Civil::from_unix(0).format("%Y-%m-%d %A").unwrap(),
            "1970-01-01 Thursday"
        );
        // 2000-02-29 (leap day in a century year divisible by 400).
        assert_eq!(
            Civil::from_unix(951_782_400).format("%F %j").unwrap(),
            "2000-02-29 060"
        );
        assert!(Civil::from_unix(0).format("%Q").is_err());
    }
}
